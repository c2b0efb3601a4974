"""Bad and unusual inputs: each gives a typed error naming the input, or a sane result."""

import math
import time

import numpy as np
import pytest
import soundfile as sf

from adv.errors import (
    AudioError,
    CorruptAudioError,
    EmptyAudioError,
    FileMissingError,
    InvalidSamplesError,
    NotAudioError,
    TooShortError,
)
from adv.inference.validator import AudioDistortionValidator

SR = 44100


def _music(seconds: float, sr: int = SR, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t)) + 0.03 * rng.standard_normal(t.size)
    return np.stack([x * (1 - 0.1 * c) for c in range(channels)]).astype(np.float32)


@pytest.fixture(scope="module")
def validator():
    return AudioDistortionValidator()


def check_result(r: dict, capped: bool = False) -> None:
    """Finite numbers in range, and a timeline whose windows cover the whole input (`capped`: the
    validator's max_windows widened the hop, so the windows span the input evenly, with gaps)."""
    assert r["distortion_type"] in ("clean", "clipping", "mp3", "noise", "eq", "phase")
    assert isinstance(r["has_distortion"], bool)
    assert 0.0 <= r["confidence"] <= 1.0
    for key in ("severity", "worst_severity"):
        assert math.isfinite(r[key]) and 0.0 <= r[key] <= 100.0
    for t in r["types"].values():
        assert 0.0 <= t["probability"] <= 1.0 and 0.0 <= t["severity"] <= 100.0
        assert 0.0 <= t["worst_severity"] <= 100.0
    segs = r["segments"]
    assert segs and segs[0]["start"] == 0.0
    assert segs[-1]["end"] == pytest.approx(r["duration"], abs=0.01)
    starts = np.array([s["start"] for s in segs])
    if capped:
        hops = np.diff(starts)
        assert hops.max() - hops.min() <= 0.05  # evenly spread (rounded to 10 ms)
    else:
        for a, b in zip(segs, segs[1:]):
            assert b["start"] <= a["end"] + 1e-6  # no gaps
    for s in segs:
        assert all(0.0 <= p <= 1.0 for p in s["probabilities"].values())
        assert all(0.0 <= v <= 100.0 for v in s["severity"].values())


# ---------------------------------------------------------------------------------------------
# files


def _write(path, audio, sr, **kw):
    sf.write(path, np.ascontiguousarray(audio.T), sr, **kw)
    return path


def make_bad_files(d):
    """name -> (path, expected error class)."""
    out = {}
    (d / "empty.wav").write_bytes(b"")
    out["empty"] = (d / "empty.wav", EmptyAudioError)
    full = _write(d / "full.wav", _music(3.0), SR).read_bytes()
    (d / "truncated.wav").write_bytes(full[: len(full) // 2])
    out["truncated wav"] = (d / "truncated.wav", CorruptAudioError)
    flac = _write(d / "full.flac", _music(3.0), SR).read_bytes()
    (d / "truncated.flac").write_bytes(flac[: len(flac) // 2])
    out["truncated flac"] = (d / "truncated.flac", AudioError)  # ffmpeg: corrupt; without it: not audio
    (d / "text.mp3").write_text("definitely not audio\n" * 50)
    out["text as mp3"] = (d / "text.mp3", NotAudioError)
    (d / "garbage.wav").write_bytes(b"RIFF" + np.random.default_rng(1).bytes(4000))
    out["garbage with RIFF magic"] = (d / "garbage.wav", CorruptAudioError)
    (d / "garbage.flac").write_bytes(b"fLaC" + np.random.default_rng(2).bytes(4000))
    out["garbage with fLaC magic"] = (d / "garbage.flac", AudioError)
    x = _music(2.0)
    x[0, 500] = np.nan
    out["NaN samples"] = (_write(d / "nan.wav", x, SR, subtype="FLOAT"), InvalidSamplesError)
    x = _music(2.0)
    x[1, 900] = -np.inf
    out["inf samples"] = (_write(d / "inf.wav", x, SR, subtype="FLOAT"), InvalidSamplesError)
    out["1 sample"] = (_write(d / "one.wav", np.zeros((2, 1), np.float32), SR), TooShortError)
    out["0.3 s"] = (_write(d / "short.wav", _music(0.3), SR), TooShortError)
    out["absurd sample values"] = (_write(d / "huge.wav", _music(1.0) * 1e20, SR, subtype="FLOAT"), InvalidSamplesError)
    out["1 Hz sample rate"] = (_write(d / "rate1.wav", _music(3.0, sr=1000)[:, :5], 1), NotAudioError)
    (d / "folder.wav").mkdir()
    out["directory"] = (d / "folder.wav", NotAudioError)
    out["missing"] = (d / "missing.flac", FileMissingError)
    return out


def make_good_files(d):
    """name -> (path, expected note substring or None)."""
    out = {
        "0.5 s": (_write(d / "half.wav", _music(0.5), SR), None),
        "silence": (_write(d / "silence.wav", np.zeros((2, 3 * SR), np.float32), SR), "silence"),
        "DC offset": (_write(d / "dc.wav", np.full((2, 3 * SR), 0.4, np.float32), SR), None),
        "8 kHz": (_write(d / "r8k.wav", _music(3.0, sr=8000), 8000), None),
        "192 kHz": (_write(d / "r192k.wav", _music(3.0, sr=192000), 192000), None),
        "mono": (_write(d / "mono.wav", _music(3.0, channels=1), SR), "mono"),
        "6 channels": (_write(d / "six.wav", _music(3.0, sr=48000, channels=6), 48000), "6 channels"),
        "24-bit": (_write(d / "p24.wav", _music(3.0), SR, subtype="PCM_24"), None),
        "8-bit unsigned": (_write(d / "u8.wav", _music(3.0), SR, subtype="PCM_U8"), None),
        "AIFF": (_write(d / "a.aiff", _music(3.0), SR, format="AIFF"), None),
        "float > 1": (_write(d / "hot.wav", 2.5 * _music(3.0), SR, subtype="FLOAT"), None),
        "long 25 s": (_write(d / "long.flac", _music(25.0), SR), None),
    }
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("robust")
    return make_bad_files(d), make_good_files(d)


BAD_NAMES = [
    "empty",
    "truncated wav",
    "truncated flac",
    "text as mp3",
    "garbage with RIFF magic",
    "garbage with fLaC magic",
    "NaN samples",
    "inf samples",
    "1 sample",
    "0.3 s",
    "absurd sample values",
    "1 Hz sample rate",
    "directory",
    "missing",
]
GOOD_NAMES = [
    "0.5 s",
    "silence",
    "DC offset",
    "8 kHz",
    "192 kHz",
    "mono",
    "6 channels",
    "24-bit",
    "8-bit unsigned",
    "AIFF",
    "float > 1",
    "long 25 s",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_file_gives_typed_error_naming_it(validator, files, name):
    path, expected = files[0][name]
    with pytest.raises(expected) as info:
        validator.analyze(path)
    assert isinstance(info.value, AudioError)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_unusual_file_gives_sane_result(validator, files, name):
    path, note = files[1][name]
    r = validator.analyze(path)
    check_result(r)
    assert r["path"] == str(path)
    if note:
        assert any(note in n for n in r["notes"]), r["notes"]
    if name == "192 kHz":
        assert r["sample_rate"] == 192000
    if name == "long 25 s":
        assert len(r["segments"]) >= 4


def test_silence_is_not_called_damaged_with_confidence(validator, files):
    r = validator.analyze(files[1]["silence"][0])
    assert any("silence" in n for n in r["notes"])


# ---------------------------------------------------------------------------------------------
# arrays

BAD_ARRAYS = {
    "NaN": (np.full((2, SR), np.nan, np.float32), SR, InvalidSamplesError),
    "inf": (np.full((2, SR), np.inf, np.float32), SR, InvalidSamplesError),
    "empty": (np.zeros((2, 0), np.float32), SR, EmptyAudioError),
    "1 sample": (np.zeros(1, np.float32), SR, TooShortError),
    "3-D": (np.zeros((2, 2, 100), np.float32), SR, InvalidSamplesError),
    "strings": (np.array(["a", "b"]), SR, InvalidSamplesError),
    "complex": (np.zeros(SR, np.complex64), SR, InvalidSamplesError),
    "absurd values": (np.full((2, SR), 1e30, np.float32), SR, InvalidSamplesError),
    "rate 0": (_music(1.0), 0, InvalidSamplesError),
    "rate 1": (_music(1.0), 1, InvalidSamplesError),  # would make soxr allocate ~1e10 samples
    "rate -44100": (_music(1.0), -44100, InvalidSamplesError),
    "rate 44100.5": (_music(1.0), 44100.5, InvalidSamplesError),
    "rate NaN": (_music(1.0), float("nan"), InvalidSamplesError),
    "rate text": (_music(1.0), "44100", InvalidSamplesError),
}


@pytest.mark.parametrize("name", list(BAD_ARRAYS))
def test_bad_array_gives_typed_error(validator, name):
    audio, sr, expected = BAD_ARRAYS[name]
    with pytest.raises(expected, match="<array>"):
        validator.analyze(audio, sr)


def test_array_without_rate_is_a_usage_error(validator):
    with pytest.raises(ValueError, match="sample_rate"):
        validator.analyze(_music(1.0))


GOOD_ARRAYS = {
    "0.5 s": (_music(0.5), SR),
    "int16": ((_music(2.0) * 20000).astype(np.int16), SR),
    "float64": (_music(2.0).astype(np.float64), SR),
    "samples x channels": (np.ascontiguousarray(_music(2.0).T), SR),
    "1-D mono": (_music(2.0, channels=1)[0], SR),
    "list": (list(_music(1.0, channels=1)[0]), SR),
    "tiny values": (_music(2.0) * 1e-30, SR),
    "DC": (np.full((2, SR), -0.7, np.float32), SR),
    "8 kHz": (_music(2.0, sr=8000), 8000),
    "192 kHz": (_music(2.0, sr=192000), 192000),
    "6 channels": (_music(2.0, channels=6), SR),
    "rate as float 44100.0": (_music(2.0), 44100.0),
}


@pytest.mark.parametrize("name", list(GOOD_ARRAYS))
def test_unusual_array_gives_sane_result(validator, name):
    audio, sr = GOOD_ARRAYS[name]
    r = validator.analyze(audio, sr)
    check_result(r)
    assert r["path"] == "<array>"


def test_one_hour_is_bounded_and_covered(validator):
    """1 h of low-level noise at 8 kHz mono: the work is bounded (the hop widens to at most the
    window length: 360 windows of 10 s cover the hour without gaps)."""
    hour = (0.01 * np.random.default_rng(0).standard_normal(8000 * 3600)).astype(np.float32)
    t0 = time.perf_counter()
    r = validator.analyze(hour, 8000)
    elapsed = time.perf_counter() - t0
    check_result(r, capped=True)
    assert r["duration"] == pytest.approx(3600.0)
    assert len(r["segments"]) <= 361
    ends = [s["end"] for s in r["segments"]]
    starts = [s["start"] for s in r["segments"]]
    assert starts[0] == 0 and ends[-1] == pytest.approx(3600.0)
    assert all(b <= a + 1e-6 for a, b in zip(ends[:-1], starts[1:])), "gap between windows"
    assert elapsed < 120, f"{elapsed:.1f} s for one hour"
    assert any("mono" in n for n in r["notes"])


# ---------------------------------------------------------------------------------------------
# batch


def test_batch_goes_past_every_failure(validator, files):
    bad, good = files
    sources = [p for p, _ in bad.values()] + [p for p, _ in good.values()]
    sources += [(a, sr) for a, sr, _ in BAD_ARRAYS.values()] + [GOOD_ARRAYS["int16"], GOOD_ARRAYS["8 kHz"]]
    results = validator.analyze_batch(sources, workers=2)
    assert len(results) == len(sources)
    n_bad = len(bad) + len(BAD_ARRAYS)
    errors = [r for r in results if "error" in r]
    assert len(errors) == n_bad
    for r in errors:
        assert r["error_type"] != "InternalError", r  # every failure is a typed, expected one
        assert r["path"] in r["error"]
    for src, r in zip(sources, results):
        if "error" not in r:
            check_result(r)
            assert r["path"] == ("<array>" if isinstance(src, tuple) else str(src))
