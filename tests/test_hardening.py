"""Hostile and careless input: decompression bombs, option-like file names, unusable output folders,
unreadable paths, bad service settings, slow clients, the server's paths, offline docs, exit codes."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from adv.audio_io import load_audio, stream_audio
from adv.cli import EXIT_CHECK_FAILED, EXIT_INPUT_ERROR, EXIT_OK, EXIT_USAGE, main
from adv.config import REPO_DIR
from adv.errors import ConfigError, TooLongError, UnreadableError
from adv.report.output_dir import LEDGER
from adv.service.app import create_app
from adv.service.settings import load_settings

SR = 44100
HAVE_FFMPEG = shutil.which("ffmpeg") is not None


def _music(seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 261.6 * t) * (1 + 0.3 * np.sin(2 * np.pi * 0.7 * t))
    return np.stack([x, 0.9 * x], axis=1).astype(np.float32)


def _silence_flac(path, seconds: float, sr: int = 8000) -> None:
    block = np.zeros((sr * 60, 1), np.float32)
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as f:
        for _ in range(int(seconds // 60)):
            f.write(block)


def _hide_length(path) -> None:
    """Zeroes the total-samples field of a FLAC's STREAMINFO: the header no longer says how long it is."""
    b = bytearray(path.read_bytes())
    v = int.from_bytes(b[18:26], "big") & ~((1 << 36) - 1)
    b[18:26] = v.to_bytes(8, "big")
    path.write_bytes(bytes(b))


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """Two hours of digital silence: a small file that decodes to a huge array."""
    p = tmp_path_factory.mktemp("bomb") / "bomb.flac"
    _silence_flac(p, 7200)
    return p


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as c:
        yield c


# ------------------------------------------------------------------------ decompression bombs
def test_bomb_is_refused_from_its_header(bomb):
    assert bomb.stat().st_size < 2_000_000
    t0 = time.perf_counter()
    with pytest.raises(TooLongError, match="declares 7200.0 s"):
        stream_audio(bomb)
    assert time.perf_counter() - t0 < 2.0


def test_bomb_upload_is_413_within_seconds(client, bomb):
    t0 = time.perf_counter()
    r = client.post("/analyze", files={"file": ("bomb.flac", bomb.read_bytes())})
    assert r.status_code == 413 and r.json()["error"] == "TooLongError", r.text
    assert "bomb.flac" in r.json()["detail"] and time.perf_counter() - t0 < 10


def test_a_lying_header_stops_decoding_at_the_limit(tmp_path):
    p = tmp_path / "liar.flac"
    _silence_flac(p, 120)
    _hide_length(p)
    with pytest.raises(TooLongError, match="decodes to more than the limit of 30 s"):
        load_audio(p, max_seconds=30)
    assert load_audio(p, max_seconds=200).duration == pytest.approx(120.0)


def test_the_limit_comes_from_the_environment_and_is_validated(tmp_path, monkeypatch):
    p = tmp_path / "a.wav"
    sf.write(p, _music(3.0), SR)
    monkeypatch.setenv("ADV_MAX_AUDIO_SECONDS", "2")
    with pytest.raises(TooLongError, match="ADV_MAX_AUDIO_SECONDS"):
        load_audio(p)
    for bad in ("inf", "-1", "0", "nan", "an hour"):
        monkeypatch.setenv("ADV_MAX_AUDIO_SECONDS", bad)
        with pytest.raises(ConfigError, match="ADV_MAX_AUDIO_SECONDS"):
            load_audio(p)


def test_a_long_stream_is_analysed_in_bounded_memory(tmp_path):
    """The validator cuts windows from the decoded stream: a 20-minute file is never held whole."""
    import tracemalloc

    from adv.inference.validator import AudioDistortionValidator

    p = tmp_path / "long.flac"
    rng = np.random.default_rng(0)
    with sf.SoundFile(p, "w", SR, 2, subtype="PCM_16") as f:
        for _ in range(40):
            f.write((0.1 * rng.standard_normal((SR * 30, 2))).astype(np.float32))
    v = AudioDistortionValidator(hop_s=10.0)
    tracemalloc.start()
    r = v.analyze(p)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r["duration"] == pytest.approx(1200.0)
    whole = 1200 * 32000 * 2 * 4  # the file at the model rate as float32: 307 MB
    assert peak < whole / 2, f"{peak / 1e6:.0f} MB traced"  # one batch of windows, not the file


# ------------------------------------------------------------------------ names that look like options
@pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg not installed")
@pytest.mark.parametrize("name", ["-report.m4a", "http:song.m4a", "-i.m4a"])
def test_option_like_names_reach_ffmpeg_as_files(tmp_path, monkeypatch, name):
    wav = tmp_path / "x.wav"
    sf.write(wav, _music(2.0), SR)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", "-f", "mp4", str(tmp_path / "x.m4a")], check=True
    )
    (tmp_path / "x.m4a").rename(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "--json", "--", name]) == EXIT_OK
    assert not [p for p in os.listdir(tmp_path) if p.startswith("ffprobe-") or p.startswith("ffmpeg-")]


def test_id3_then_random_bytes_is_a_typed_error(client, tmp_path):
    data = b"ID3" + np.random.default_rng(3).bytes(5000)
    r = client.post("/analyze", files={"file": ("broken.mp3", data)})
    assert r.status_code in (415, 422) and r.json()["error"] in ("NotAudioError", "CorruptAudioError"), r.text


# ------------------------------------------------------------------------ adv scan --out
@pytest.fixture()
def music_dir(tmp_path):
    d = tmp_path / "music"
    d.mkdir()
    sf.write(d / "a.wav", _music(2.0), SR)
    sf.write(d / "b.flac", _music(2.5), SR)
    return d


def _scan(folder, out, *extra) -> int:
    return main(["scan", str(folder), "--out", str(out), "--quiet", "--no-plots", *extra])


def test_scan_out_that_is_a_file_fails_before_scanning(music_dir, tmp_path, capsys, monkeypatch):
    import adv.inference.validator as validator_module

    out = tmp_path / "results.txt"
    out.write_text("mine")
    monkeypatch.setattr(validator_module, "AudioDistortionValidator", None)  # nothing may be analysed
    assert _scan(music_dir, out) == EXIT_USAGE
    assert out.read_text() == "mine" and "not a folder" in capsys.readouterr().err


def test_scan_never_replaces_a_file_it_did_not_write(music_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("<p>my own report</p>")
    assert _scan(music_dir, out) == EXIT_USAGE
    assert (out / "report.html").read_text() == "<p>my own report</p>"
    assert "not written by adv scan" in capsys.readouterr().err
    assert not (out / "results.csv").exists()


def test_scan_replaces_its_own_outputs_but_not_edited_ones(music_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert _scan(music_dir, out) == EXIT_OK
    assert (out / LEDGER).exists()
    assert _scan(music_dir, out) == EXIT_OK  # its own files: replaced
    (out / "results.csv").write_text("edited by hand\n")
    assert _scan(music_dir, out) == EXIT_USAGE
    assert (out / "results.csv").read_text() == "edited by hand\n" and "changed since" in capsys.readouterr().err


def test_scan_into_the_scanned_folder_keeps_the_users_files(music_dir):
    before = {p.name: p.read_bytes() for p in music_dir.iterdir()}
    assert _scan(music_dir, music_dir) == EXIT_OK
    assert all((music_dir / n).read_bytes() == b for n, b in before.items())
    rows = (music_dir / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + the two audio files
    (music_dir / "results.json").unlink()
    (music_dir / "results.json").write_text("{}")  # now the user's
    assert _scan(music_dir, music_dir) == EXIT_USAGE


def test_scan_writes_each_result_as_it_comes(music_dir, tmp_path):
    out = tmp_path / "out"
    assert _scan(music_dir, out) == EXIT_OK
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(os.path.basename(r["path"]) for r in lines) == ["a.wav", "b.flac"]


# ------------------------------------------------------------------------ unreadable input
def test_unreadable_folder_is_an_error_row(music_dir, tmp_path, monkeypatch):
    locked = music_dir / "locked"
    locked.mkdir()
    sf.write(locked / "c.wav", _music(1.0), SR)
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out = tmp_path / "out"
    assert _scan(music_dir, out) == EXIT_INPUT_ERROR
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    err = [r for r in rows if "error" in r]
    assert len(err) == 1 and err[0]["error_type"] == "UnreadableError" and "locked" in err[0]["path"]
    assert "Permission denied" in err[0]["error"]


def test_unreadable_file_is_a_typed_error(tmp_path, monkeypatch):
    import builtins

    import adv.audio_io as audio_io

    p = tmp_path / "secret.wav"
    sf.write(p, _music(1.0), SR)
    real_open = builtins.open

    def guarded(file, *a, **kw):
        if os.fspath(file) == os.fspath(p):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *a, **kw)

    monkeypatch.setattr(audio_io, "open", guarded, raising=False)
    with pytest.raises(UnreadableError, match="secret.wav.*Permission denied"):
        load_audio(p)


# ------------------------------------------------------------------------ service settings
@pytest.mark.parametrize(
    "var,value",
    [
        ("ADV_MAX_UPLOAD_MB", "inf"),
        ("ADV_MAX_UPLOAD_MB", "-3"),
        ("ADV_MAX_CONCURRENT", "lots"),
        ("ADV_MAX_CONCURRENT", "0"),
        ("ADV_MAX_BATCH_FILES", "2.5"),
        ("ADV_HEADER_TIMEOUT_S", "nan"),
        ("ADV_MAX_AUDIO_SECONDS", "forever"),
    ],
)
def test_bad_settings_stop_start_up_with_one_line(monkeypatch, capsys, var, value):
    import uvicorn

    monkeypatch.setenv(var, value)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the server must not start"))
    with pytest.raises(ConfigError, match=var):
        load_settings()
    assert main(["serve"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert var in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_model_info_does_not_show_server_paths(client):
    r = client.get("/model")
    assert r.status_code == 200
    assert "model_path" not in r.json() and r.json()["model_file"] == "detector.pt"
    assert str(REPO_DIR) not in r.text and os.path.expanduser("~") + "/" not in r.text


def test_both_field_names_work_on_both_endpoints(client):
    buf = io.BytesIO()
    sf.write(buf, _music(1.0), SR, format="WAV")
    wav = buf.getvalue()
    assert client.post("/analyze", files={"files": ("a.wav", wav)}).status_code == 200
    r = client.post("/analyze/batch", files={"file": ("a.wav", wav)})
    assert r.status_code == 200 and r.json()["n_files"] == 1


def test_docs_work_without_internet(client):
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(page).text
        assert f"/docs-static/{asset}" in html and "cdn" not in html.lower() and "googleapis" not in html
        r = client.get(f"/docs-static/{asset}")
        assert r.status_code == 200 and len(r.content) > 100_000
    assert client.get("/docs-static/swagger-ui.css").status_code == 200


# ------------------------------------------------------------------------ slow clients (a real server)
class _Stub:
    def analyze(self, path):
        return {
            "has_distortion": False,
            "distortion_type": "clean",
            "severity": 0.0,
            "confidence": 1.0,
            "types": {},
            "detected_types": [],
            "duration": 1.0,
            "sample_rate": SR,
            "channels": 2,
            "format": "wav",
            "notes": [],
            "model_version": "stub",
            "analysis_ms": 0.0,
            "decode_ms": 0.0,
        }

    def model_info(self):
        return {"package_version": "0", "model_version": "stub", "classes": []}


@pytest.fixture(scope="module")
def slow_server():
    import uvicorn

    from adv.service.protocol import protocol_with_header_timeout
    from adv.service.settings import ServiceSettings

    settings = ServiceSettings(header_timeout_s=0.5, body_idle_timeout_s=0.5, upload_timeout_s=2.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(_Stub(), settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http=protocol_with_header_timeout(settings.header_timeout_s),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(5)


def _recv_all(sock: socket.socket, limit: float) -> bytes:
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def test_slow_headers_are_cut_off(slow_server):
    with socket.create_connection(("127.0.0.1", slow_server)) as sock:
        sock.sendall(b"POST /analyze HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        t0 = time.perf_counter()
        data = _recv_all(sock, 5.0)
        assert data == b"" and time.perf_counter() - t0 < 3.0  # closed by the server, not by our time-out


@pytest.mark.parametrize("drip", [False, True])
def test_slow_bodies_get_408(slow_server, drip):
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + b"RIFF" + b"\0" * 60
    head = (
        f"POST /analyze HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(body) + 10_000}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", slow_server)) as sock:
        sock.sendall(head + body)
        t0 = time.perf_counter()
        if drip:  # a byte every 0.3 s: never idle for 0.5 s, but the 2-s total runs out
            sock.settimeout(0.3)
            data = b""
            while time.perf_counter() - t0 < 6 and not data:
                sock.sendall(b"x")
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    pass
            data += _recv_all(sock, 1.0)
        else:
            data = _recv_all(sock, 5.0)
        assert data.startswith(b"HTTP/1.1 408"), data[:200]
        assert time.perf_counter() - t0 < (4.0 if drip else 2.0)


# ------------------------------------------------------------------------ exit codes
def test_exit_codes_tell_usage_from_bad_input(tmp_path, capsys):
    good = tmp_path / "good.wav"
    sf.write(good, _music(2.0), SR)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + b"\x01" * 100)
    assert main(["analyze", str(good)]) == EXIT_OK
    assert main(["analyze", str(good), str(bad)]) == EXIT_INPUT_ERROR == 3
    assert main(["analyze", str(good), "--fail-on", "any", "--threshold", "0.999"]) in (EXIT_OK, EXIT_CHECK_FAILED)
    with pytest.raises(SystemExit) as usage:
        main(["analyze", str(good), "--no-such-option"])
    assert usage.value.code == EXIT_USAGE == 2
    assert main(["analyze", str(good), "--model", str(bad)]) == EXIT_USAGE  # a bad model file is configuration
