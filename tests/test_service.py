"""The HTTP service (adv.service.app): endpoints, error mapping, limits, API key, temp files, concurrency.

The shipped model is a placeholder, so no test asserts a particular verdict, only the contract.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from adv.service.app import create_app

SR = 32000
DOCUMENTED_KEYS = {
    "filename",
    "has_distortion",
    "distortion_type",
    "severity",
    "confidence",
    "types",
    "detected_types",
    "segments",
    "duration",
    "sample_rate",
    "channels",
    "format",
    "notes",
    "model_version",
    "analysis_ms",
    "decode_ms",
}


def _audio(seconds: float, sr: int = SR, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1760 * t) + 0.01 * rng.standard_normal(t.size)
    right = 0.3 * np.sin(2 * np.pi * 330 * t + 0.3) + 0.01 * rng.standard_normal(t.size)
    x = np.stack([left, right][:channels], axis=1)
    return x.astype(np.float32)


def _encode(x: np.ndarray, sr: int = SR, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="module")
def wav3() -> bytes:
    return _encode(_audio(3.0))


@pytest.fixture(scope="module")
def client():
    """The default app: the shipped model is loaded once, at startup, and shared by every test."""
    app = create_app()
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def validator(client):
    return client.app.state.service.validator


class _Wrapped:
    """Wraps the real validator: records calls, concurrency and paths; can sleep or fail."""

    def __init__(self, inner, delay: float = 0.0, fail: bool = False):
        self.inner, self.delay, self.fail = inner, delay, fail
        self.lock = threading.Lock()
        self.active = self.peak = 0
        self.paths: list[str] = []

    def analyze(self, path):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.paths.append(str(path))
        try:
            time.sleep(self.delay)
            if self.fail:
                raise RuntimeError("boom: secret internals")
            return self.inner.analyze(path)
        finally:
            with self.lock:
                self.active -= 1

    def model_info(self):
        return self.inner.model_info()


def _check_result(r: dict, name: str, fmt: str) -> None:
    assert DOCUMENTED_KEYS <= set(r), DOCUMENTED_KEYS - set(r)
    assert r["filename"] == name and "path" not in r
    assert 0.0 <= r["severity"] <= 100.0
    assert 0.0 <= r["confidence"] <= 1.0
    assert isinstance(r["has_distortion"], bool)
    assert r["distortion_type"] in ("clean", "clipping", "mp3", "noise", "eq", "phase")
    assert r["sample_rate"] == SR and r["channels"] == 2 and r["format"] == fmt
    assert r["duration"] == pytest.approx(3.0, abs=0.05)
    assert r["segments"] and {"start", "end", "distortion_type"} <= set(r["segments"][0])
    for t in r["types"].values():
        assert 0.0 <= t["severity"] <= 100.0 and 0.0 <= t["probability"] <= 1.0


# ---------------------------------------------------------------- basic endpoints
def test_health_and_model(client):
    h = client.get("/health")
    assert h.status_code == 200
    assert h.json()["status"] == "ok" and h.json()["model_loaded"] is True
    m = client.get("/model")
    assert m.status_code == 200
    info = m.json()
    assert info["classes"][0] == "clean" and "model_version" in info
    assert set(info["kind_thresholds"]) == {"clipping", "mp3", "noise", "eq", "phase"}
    assert info["window_peak_range_dbfs"] == [-12.0, -0.1] and info["run_windows"] == 3


def test_openapi_docs(client):
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Audio Distortion Validator" and spec["info"]["version"]
    assert {"/analyze", "/analyze/batch", "/health", "/model"} <= set(spec["paths"])
    body = spec["paths"]["/analyze"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["file"]["format"] == "binary"
    assert "AnalysisResult" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("fmt,subtype,name", [("WAV", "PCM_16", "song.wav"), ("FLAC", "PCM_16", "song.flac")])
def test_analyze_wav_and_flac(client, fmt, subtype, name):
    data = _encode(_audio(3.0), fmt=fmt, subtype=subtype)
    r = client.post("/analyze", files={"file": (name, data, "application/octet-stream")})
    assert r.status_code == 200, r.text
    _check_result(r.json(), name, fmt.lower())


def test_segments_can_be_left_out(client, wav3):
    r = client.post("/analyze", params={"segments": "false"}, files={"file": ("a.wav", wav3)})
    assert r.status_code == 200
    assert "segments" not in r.json() and "severity" in r.json()


# ---------------------------------------------------------------- bad input -> 4xx JSON naming the file
def _bad_inputs() -> list:
    good = _encode(_audio(3.0))
    nan = _audio(1.0)
    nan[1000:1100] = np.nan
    return [
        pytest.param("empty.wav", b"", 422, "EmptyAudioError", id="empty"),
        pytest.param("notes.wav", b"these are my notes, not audio\n" * 20, 415, "NotAudioError", id="text"),
        pytest.param("tiny.wav", b"hi", 415, "NotAudioError", id="two-bytes"),
        pytest.param("cut.wav", good[: len(good) // 2], 422, "CorruptAudioError", id="truncated"),
        pytest.param("short.wav", _encode(_audio(0.2)), 422, "TooShortError", id="too-short"),
        pytest.param("nan.wav", _encode(nan, subtype="FLOAT"), 422, "InvalidSamplesError", id="nan"),
    ]


@pytest.mark.parametrize("name,data,status,error", _bad_inputs())
def test_bad_inputs_give_4xx_naming_the_file(client, name, data, status, error):
    r = client.post("/analyze", files={"file": (name, data, "audio/wav")})
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error
    assert body["filename"] == name and name in body["detail"]
    assert "adv-upload" not in body["detail"]  # the temp file is never shown
    assert client.get("/health").status_code == 200


def test_malformed_requests_are_400(client, wav3):
    r = client.post("/analyze", json={"file": "x"})
    assert r.status_code == 400 and r.json()["error"] == "BadRequest"
    r = client.post("/analyze", files={"upload": ("a.wav", wav3)})
    assert r.status_code == 400 and r.json()["error"] == "MissingFile" and "upload" in r.json()["detail"]
    r = client.post("/analyze", files=[("file", ("a.wav", wav3)), ("file", ("b.wav", wav3))])
    assert r.status_code == 400 and r.json()["error"] == "TooManyFiles"
    assert client.get("/health").status_code == 200


def _multipart_stream(name: str, data: bytes, boundary: str = "adv-test-boundary", chunk: int = 4096):
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()

    def gen():
        yield head
        for i in range(0, len(data), chunk):
            yield data[i : i + chunk]
        yield f"\r\n--{boundary}--\r\n".encode()

    return gen(), {"content-type": f"multipart/form-data; boundary={boundary}"}


def test_oversize_upload_is_413(validator, wav3):
    app = create_app(validator=validator, max_upload_mb=0.01)
    with TestClient(app) as c:
        r = c.post("/analyze", files={"file": ("big.wav", wav3)})  # rejected from Content-Length
        assert r.status_code == 413 and r.json()["error"] == "FileTooLarge"
        body, headers = _multipart_stream("big.wav", wav3)  # chunked: rejected while streaming
        r = c.post("/analyze", content=body, headers=headers)
        assert r.status_code == 413
        assert r.json()["filename"] == "big.wav" and "big.wav" in r.json()["detail"]
        assert c.get("/health").json()["status"] == "ok"


def test_streamed_upload_is_analysed(client, wav3):
    body, headers = _multipart_stream("streamed.wav", wav3)
    r = client.post("/analyze", content=body, headers=headers)
    assert r.status_code == 200, r.text
    _check_result(r.json(), "streamed.wav", "wav")


# ---------------------------------------------------------------- batch
def test_batch_one_good_one_bad(client, wav3):
    files = [("files", ("good.wav", wav3, "audio/wav")), ("files", ("bad.wav", b"plain text, no audio", "audio/wav"))]
    r = client.post("/analyze/batch", files=files)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["n_files"] == 2 and out["n_errors"] == 1
    good, bad = out["results"]
    _check_result(good, "good.wav", "wav")
    assert bad["error"] == "NotAudioError" and bad["filename"] == "bad.wav" and bad["status_code"] == 415
    assert "bad.wav" in bad["detail"]


def test_batch_limits(validator, wav3):
    small = _encode(_audio(1.0))
    app = create_app(validator=validator, max_upload_mb=0.2, max_batch_files=3)
    with TestClient(app) as c:
        files = [("files", ("ok.wav", small)), ("files", ("huge.wav", wav3)), ("files", ("empty.wav", b""))]
        out = c.post("/analyze/batch", files=files, params={"segments": "false"}).json()
        assert [("error" in e) for e in out["results"]] == [False, True, True]
        assert "segments" not in out["results"][0]
        assert out["results"][1]["status_code"] == 413 and out["results"][1]["filename"] == "huge.wav"
        assert out["results"][2]["status_code"] == 422
        r = c.post("/analyze/batch", files=[("files", (f"{i}.wav", small)) for i in range(4)])
        assert r.status_code == 400 and r.json()["error"] == "TooManyFiles"
        r = c.post("/analyze/batch", files={"file": ("x.wav", small)})  # the single-file name is an alias
        assert r.status_code == 200 and r.json()["results"][0]["filename"] == "x.wav"
        r = c.post("/analyze/batch", files={"upload": ("x.wav", small)})
        assert r.status_code == 400 and r.json()["error"] == "MissingFile"


# ---------------------------------------------------------------- API key
def test_api_key(validator, wav3):
    app = create_app(validator=validator, api_key="k")
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200  # stays open
        r = c.post("/analyze", files={"file": ("a.wav", wav3)})
        assert r.status_code == 401 and r.json()["error"] == "Unauthorized"
        assert c.post("/analyze", files={"file": ("a.wav", wav3)}, headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.get("/model").status_code == 401
        assert c.post("/analyze/batch", files={"files": ("a.wav", wav3)}).status_code == 401
        r = c.post("/analyze", files={"file": ("a.wav", wav3)}, headers={"X-API-Key": "k"})
        assert r.status_code == 200
        assert c.get("/model", headers={"X-API-Key": "k"}).status_code == 200


def test_api_key_from_environment(validator, monkeypatch):
    monkeypatch.setenv("ADV_API_KEY", "env-key")
    monkeypatch.setenv("ADV_MAX_UPLOAD_MB", "5")
    monkeypatch.setenv("ADV_MAX_CONCURRENT", "3")
    app = create_app(validator=validator)
    s = app.state.service.settings
    assert s.api_key == "env-key" and s.max_upload_bytes == 5_000_000 and s.max_concurrent == 3
    with TestClient(app) as c:
        assert c.get("/model").status_code == 401
        assert c.get("/model", headers={"X-API-Key": "env-key"}).status_code == 200


# ---------------------------------------------------------------- temp files
def test_temp_files_are_removed(validator, wav3, tmp_path, monkeypatch):
    spool = tmp_path / "spool"
    spool.mkdir()
    wrapped = _Wrapped(validator)
    app = create_app(validator=wrapped, tmp_dir=spool, max_upload_mb=0.2)
    flac = _encode(_audio(1.5), fmt="FLAC")
    nan = _audio(0.6)
    nan[5] = np.nan
    with TestClient(app) as c:
        # FLAC content with a .wav name: the temp file gets the sniffed suffix
        assert c.post("/analyze", files={"file": ("misnamed.wav", flac)}).status_code == 200
        assert wrapped.paths[-1].startswith(str(spool)) and wrapped.paths[-1].endswith(".flac")
        assert c.post("/analyze", files={"file": ("cut.wav", wav3[:60000])}).status_code == 422
        assert c.post("/analyze", files={"file": ("nan.wav", _encode(nan, subtype="FLOAT"))}).status_code == 422
        body, headers = _multipart_stream("big.wav", wav3)
        assert c.post("/analyze", content=body, headers=headers).status_code == 413
        files = [("files", ("a.wav", _encode(_audio(1.0)))), ("files", ("b.wav", wav3[:30000]))]
        assert c.post("/analyze/batch", files=files).status_code == 200
    assert list(spool.iterdir()) == []

    # the default location is the system temp folder
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    default_app = create_app(validator=wrapped)
    with TestClient(default_app) as c:
        assert c.post("/analyze", files={"file": ("a.wav", wav3)}).status_code == 200
        assert wrapped.paths[-1].startswith(str(tmp_path)) and wrapped.paths[-1].endswith(".wav")
        assert c.post("/analyze", files={"file": ("cut.wav", wav3[:60000])}).status_code == 422
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spool"]


# ---------------------------------------------------------------- concurrency and robustness
def test_parallel_requests(client, wav3):
    def one(i):
        return client.post("/analyze", files={"file": (f"p{i}.wav", wav3)}, params={"segments": "false"})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(one, range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert sorted(r.json()["filename"] for r in responses) == sorted(f"p{i}.wav" for i in range(8))


def test_concurrency_limit_and_responsive_event_loop(validator, wav3):
    wrapped = _Wrapped(validator, delay=1.0)
    app = create_app(validator=wrapped, max_concurrent=2)
    with TestClient(app) as c:
        with ThreadPoolExecutor(5) as pool:
            futures = [pool.submit(c.post, "/analyze", files={"file": (f"{i}.wav", wav3)}) for i in range(5)]
            time.sleep(0.2)
            t0 = time.perf_counter()
            assert c.get("/health").status_code == 200  # answered while analyses run in the thread pool
            health_s = time.perf_counter() - t0
            codes = [f.result().status_code for f in futures]
    assert codes == [200] * 5
    assert wrapped.peak == 2
    assert health_s < 0.8  # an analysis blocking the event loop would take >= 1 s


def test_unexpected_error_is_500_and_service_survives(validator, wav3):
    app = create_app(validator=_Wrapped(validator, fail=True))
    with TestClient(app) as c:
        r = c.post("/analyze", files={"file": ("a.wav", wav3)})
        assert r.status_code == 500
        assert r.json()["error"] == "InternalError" and "secret" not in r.text and r.json()["filename"] == "a.wav"
        out = c.post("/analyze/batch", files={"files": ("a.wav", wav3)}).json()
        assert out["results"][0]["status_code"] == 500
        assert c.get("/health").status_code == 200


def test_model_is_loaded_once_at_startup(monkeypatch, validator, wav3):
    import adv.inference.validator as vmod

    made = []

    def factory(*a, **kw):
        made.append(1)
        return validator

    monkeypatch.setattr(vmod, "AudioDistortionValidator", factory)
    app = create_app()
    assert app.state.service.validator is None
    with TestClient(app) as c:
        assert c.get("/health").json()["model_loaded"] is True
        for _ in range(2):
            assert c.post("/analyze", files={"file": ("a.wav", wav3)}).status_code == 200
        assert c.get("/model").status_code == 200
    assert len(made) == 1


def test_cli_serve_parser():
    from adv.cli import _cmd_serve, build_parser

    args = build_parser().parse_args(["serve", "--port", "9001", "--api-key", "k", "--max-upload-mb", "5"])
    assert args.func is _cmd_serve
    assert (args.host, args.port, args.api_key, args.max_upload_mb) == ("127.0.0.1", 9001, "k", 5.0)
