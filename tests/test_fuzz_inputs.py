"""A seeded fuzz suite of broken files for the decoder, the validator, the CLI and the service:
truncations at random offsets, bit flips, lying headers, zero channels, huge declared sizes and
random bytes behind audio magic. Every input gives a result or a typed error; never an
InternalError, a traceback or a 500."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from adv.audio_io import load_audio
from adv.cli import EXIT_INPUT_ERROR, EXIT_OK, main
from adv.errors import AdvError, AudioError
from adv.inference.validator import AudioDistortionValidator
from adv.service.app import create_app

SR = 44100
SEED = 20261202
HAVE_FFMPEG = shutil.which("ffmpeg") is not None


def _music(seconds: float = 1.5, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)
    return np.stack([x, 0.8 * x], axis=1).astype(np.float32)


def _encoded(fmt: str, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, _music(), SR, format=fmt, subtype=subtype)
    return buf.getvalue()


def base_files(tmp) -> dict[str, bytes]:
    out = {
        "wav16.wav": _encoded("WAV", "PCM_16"),
        "float.wav": _encoded("WAV", "FLOAT"),
        "f.flac": _encoded("FLAC", "PCM_16"),
        "v.ogg": _encoded("OGG", "VORBIS"),
        "m.mp3": _encoded("MP3", "MPEG_LAYER_III"),
    }
    if HAVE_FFMPEG:
        wav = tmp / "src.wav"
        wav.write_bytes(out["wav16.wav"])
        m4a = tmp / "src.m4a"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "aac", "-b:a", "96k", str(m4a)], check=True
        )
        out["a.m4a"] = m4a.read_bytes()
    return out


def _wav_with(data: bytes, **fields) -> bytes:
    """A PCM WAV with fmt fields (channels, rate, bits) or chunk sizes replaced."""
    b = bytearray(data)
    fmt = b.index(b"fmt ") + 8
    if "channels" in fields:
        b[fmt + 2 : fmt + 4] = struct.pack("<H", fields["channels"])
    if "rate" in fields:
        b[fmt + 4 : fmt + 8] = struct.pack("<I", fields["rate"])
    if "bits" in fields:
        b[fmt + 14 : fmt + 16] = struct.pack("<H", fields["bits"])
    if "data_size" in fields:
        d = b.index(b"data")
        b[d + 4 : d + 8] = struct.pack("<I", fields["data_size"])
    if "riff_size" in fields:
        b[4:8] = struct.pack("<I", fields["riff_size"])
    return bytes(b)


def _flac_with(data: bytes, total_samples: int | None = None, rate: int | None = None) -> bytes:
    """A FLAC whose STREAMINFO declares another length or sample rate."""
    b = bytearray(data)
    v = int.from_bytes(b[18:26], "big")  # rate(20) channels-1(3) bps-1(5) total samples(36)
    if total_samples is not None:
        v = (v & ~((1 << 36) - 1)) | (total_samples & ((1 << 36) - 1))
    if rate is not None:
        v = (v & ((1 << 44) - 1)) | (rate << 44)
    b[18:26] = v.to_bytes(8, "big")
    return bytes(b)


def fuzz_cases(tmp) -> dict[str, bytes]:
    """name -> file content; seeded, so every run tests the same inputs."""
    rng = np.random.default_rng(SEED)
    cases: dict[str, bytes] = {}
    for name, data in base_files(tmp).items():
        stem, ext = name.rsplit(".", 1)
        for k in range(3):
            cut = int(rng.integers(1, len(data)))
            cases[f"{stem}-trunc{k}.{ext}"] = data[:cut]
        for k in range(3):
            b = bytearray(data)
            for pos in rng.integers(0, len(b), size=int(rng.integers(1, 40))):
                b[pos] ^= 1 << int(rng.integers(0, 8))
            cases[f"{stem}-flip{k}.{ext}"] = bytes(b)
        b = bytearray(data)
        lo = min(len(b) - 1, 64)
        b[lo:] = rng.bytes(len(b) - lo)
        cases[f"{stem}-noise-body.{ext}"] = bytes(b)
    wav = _encoded("WAV", "PCM_16")
    cases.update(
        {
            "zero-channels.wav": _wav_with(wav, channels=0),
            "zero-rate.wav": _wav_with(wav, rate=0),
            "absurd-rate.wav": _wav_with(wav, rate=4_000_000_000),
            "zero-bits.wav": _wav_with(wav, bits=0),
            "huge-data-chunk.wav": _wav_with(wav, data_size=0x7FFFFFFF),
            "huge-riff.wav": _wav_with(wav, riff_size=0xFFFFFFF0),
            "no-data-chunk.wav": wav[: wav.index(b"data")],
        }
    )
    flac = _encoded("FLAC", "PCM_16")
    cases.update(
        {
            "flac-declares-years.flac": _flac_with(flac, total_samples=(1 << 36) - 1),
            "flac-declares-nothing.flac": _flac_with(flac, total_samples=0),
            "flac-zero-rate.flac": _flac_with(flac, rate=0),
        }
    )
    for magic, ext in (
        (b"ID3", "mp3"),
        (b"RIFF", "wav"),
        (b"fLaC", "flac"),
        (b"OggS", "ogg"),
        (b"\xff\xfb", "mp3"),
        (b"\x00\x00\x00\x18ftypM4A ", "m4a"),
        (b"\x1aE\xdf\xa3", "webm"),
    ):
        for k in range(2):
            cases[f"magic-{magic[:4].hex()}-{k}.{ext}"] = magic + rng.bytes(int(rng.integers(10, 6000)))
    return cases


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    src = tmp_path_factory.mktemp("fuzz_src")
    for name, data in fuzz_cases(src).items():
        (d / name).write_bytes(data)
    return d


@pytest.fixture(scope="module")
def validator():
    return AudioDistortionValidator()


def test_the_suite_is_seeded_and_large(tmp_path):
    a, b = fuzz_cases(tmp_path), fuzz_cases(tmp_path)
    assert a.keys() == b.keys() and len(a) >= 50
    # the Ogg muxer draws a random stream serial and libsndfile stamps float WAVs' PEAK chunk with the
    # time: those files differ, their mutations do not
    for k in a:
        assert (len(a[k]) == len(b[k])) if k.startswith(("v-", "a-", "float-")) else (a[k] == b[k]), k


def test_decoder_gives_audio_or_a_typed_error(fuzz_dir):
    for path in sorted(fuzz_dir.iterdir()):
        try:
            dec = load_audio(path, target_sr=32000)
        except AudioError as exc:
            assert path.name in str(exc), exc
            continue
        assert dec.samples.dtype == np.float32 and dec.samples.ndim == 2 and np.isfinite(dec.samples).all()


def test_validator_gives_a_result_or_a_typed_error(validator, fuzz_dir):
    for path in sorted(fuzz_dir.iterdir()):
        try:
            r = validator.analyze(path)
        except AdvError as exc:
            assert path.name in str(exc), exc
            continue
        assert r["distortion_type"] in ("clean", "clipping", "mp3", "noise", "eq", "phase")


def test_cli_reports_every_broken_file_as_a_typed_error(fuzz_dir, capsys):
    files = sorted(str(p) for p in fuzz_dir.iterdir())
    code = main(["analyze", *files, "--json", "--workers", "2"])
    doc = json.loads(capsys.readouterr().out)
    out = doc["results"]
    assert len(out) == len(files) and doc["summary"]["files"] == len(files)
    errors = [r for r in out if "error" in r]
    assert errors, "the suite must contain files that cannot be analysed"
    assert not [r for r in errors if r["error_type"] == "InternalError"]
    assert all(r["error_type"].endswith("Error") for r in errors)
    assert code == EXIT_INPUT_ERROR


def test_service_answers_every_broken_upload_with_4xx(validator, fuzz_dir):
    app = create_app(validator=validator, max_batch_files=20)
    files = sorted(fuzz_dir.iterdir())
    with TestClient(app, raise_server_exceptions=False) as c:
        for path in files[::3]:
            r = c.post("/analyze", files={"file": (path.name, path.read_bytes())}, params={"segments": "false"})
            assert r.status_code in (200, 413, 415, 422), (path.name, r.status_code, r.text)
            if r.status_code != 200:
                assert r.json()["filename"] == path.name and path.name in r.json()["detail"]
        for i in range(0, len(files), 20):
            part = files[i : i + 20]
            r = c.post(
                "/analyze/batch",
                files=[("files", (p.name, p.read_bytes())) for p in part],
                params={"segments": "false"},
            )
            assert r.status_code == 200, r.text
            for entry in r.json()["results"]:
                assert entry.get("error") != "InternalError", entry
                assert entry.get("status_code", 200) in (200, 413, 415, 422), entry


def test_a_good_file_still_passes_through_every_path(validator, tmp_path):
    p = tmp_path / "good.wav"
    sf.write(p, _music(3.0), SR)
    assert main(["analyze", str(p), "--json"]) == EXIT_OK
    assert validator.analyze(p)["duration"] == pytest.approx(3.0, abs=0.01)
