"""The ONNX Runtime backend reproduces the PyTorch detector.

Tolerances (measured with the shipped placeholder model on the generated clips below, 2-core CPU):
  fp32 ONNX vs torch: max |diff| of probabilities and severities ~2e-7; asserted < 1e-3.
  int8 ONNX (dynamically quantised backbone convolutions, front end kept fp32) vs torch: ~6e-6 on the
  placeholder; asserted < 0.1 with decisions at 0.5 agreeing on >= 90 % of (clip, class) pairs, so a
  more sensitive real model still passes when it is within what int8 can be expected to keep.
"""

import numpy as np
import pytest
import soundfile as sf
import torch

from adv.distortions import apply_distortion
from adv.features.signal_features import compute_signal_features
from adv.inference.onnx_backend import OnnxDetector, cached_onnx
from adv.models.onnx_export import WaveformDetector, export_onnx
from adv.models.model_file import SHIPPED_MODEL, load_detector

SR = 32000
FP32_TOL = 1e-3
# int8 is a bench-only option (the validator runs fp32). Measured with the 2026-11-26 model on these
# clips: mean |error| 0.010-0.015, max 0.08-0.10, 98.5 % identical decisions.
INT8_TOL = 0.15
INT8_MEAN_TOL = 0.03
INT8_AGREE = 0.9


def _music(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = np.zeros((2, n))
    beat = SR // 2
    for k in range(0, n, beat):
        seg = slice(k, min(n, k + beat))
        tt = t[seg] - t[k]
        for j, f in enumerate(rng.choice([196.0, 220.0, 261.6, 293.7, 329.6, 392.0], 3, replace=False)):
            tone = sum(np.sin(2 * np.pi * f * h * tt) / h**1.5 for h in range(1, 6)) * np.exp(-3 * tt)
            out[0, seg] += (0.7 - 0.2 * j) * tone
            out[1, seg] += (0.3 + 0.2 * j) * tone
        out[:, seg] += 0.1 * rng.standard_normal((2, seg.stop - seg.start)) * np.exp(-30 * tt)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def _clips(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Generated clean and damaged clips -> (mono [B, L], signal features [B, D])."""
    rng = np.random.default_rng(7)
    clips = []
    for seed in range(2):
        song = _music(seconds, seed)
        clips.append(song)
        for kind in ("clipping", "noise", "eq", "phase"):
            clips.append(apply_distortion(kind, song, SR, 0.6, rng)[0].astype(np.float32))
    clips.append((0.05 * rng.standard_normal((2, int(seconds * SR)))).astype(np.float32))
    mono = np.stack([c.mean(axis=0) for c in clips]).astype(np.float32)
    sig = np.stack([compute_signal_features(c, SR) for c in clips])
    return mono, sig


@pytest.fixture(scope="module")
def torch_model():
    torch.set_num_threads(1)
    model, _ = load_detector(SHIPPED_MODEL)
    return WaveformDetector(model).eval()


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    return export_onnx(SHIPPED_MODEL, d / "fp32.onnx")[0], export_onnx(SHIPPED_MODEL, d / "int8.onnx", int8=True)[0]


@pytest.fixture(scope="module", params=[10.0, 3.0], ids=["10s", "3s"])
def inputs(request):
    return _clips(request.param)


def _reference(model, mono, sig):
    with torch.inference_mode():
        p, v = model(torch.from_numpy(mono), torch.from_numpy(sig))
    return p.numpy(), v.numpy()


def test_fp32_onnx_matches_torch(torch_model, onnx_files, inputs):
    mono, sig = inputs
    ref_p, ref_v = _reference(torch_model, mono, sig)
    got_p, got_v = OnnxDetector(onnx_files[0], threads=1)(mono, sig)
    assert got_p.shape == ref_p.shape == (len(mono), 6) and got_v.shape == ref_v.shape == (len(mono), 5)
    assert np.abs(got_p - ref_p).max() < FP32_TOL
    assert np.abs(got_v - ref_v).max() < FP32_TOL
    assert ((got_p >= 0.5) == (ref_p >= 0.5)).all()


def test_torch_reference_is_the_validator_path(torch_model, inputs):
    """WaveformDetector = extract_logmel + DistortionDetector, as AudioDistortionValidator runs it."""
    mono, sig = inputs
    det = torch_model.detector
    with torch.inference_mode():
        p, _ = det(det.backbone.extract_logmel(torch.from_numpy(mono)), torch.from_numpy(sig))
    ref_p, _ = _reference(torch_model, mono, sig)
    assert np.abs(p.numpy() - ref_p).max() < 1e-6


def test_onnx_dynamic_batch_and_length(onnx_files, inputs):
    mono, sig = inputs
    det = OnnxDetector(onnx_files[0], threads=1)
    full_p, full_v = det(mono, sig)
    one_p, one_v = det(mono[2], sig[2])  # 1-D inputs are a batch of one
    assert np.abs(one_p[0] - full_p[2]).max() < 1e-5 and np.abs(one_v[0] - full_v[2]).max() < 1e-5


def test_int8_onnx_stays_close(torch_model, onnx_files, inputs):
    mono, sig = inputs
    ref_p, _ = _reference(torch_model, mono, sig)
    got_p, _ = OnnxDetector(onnx_files[1], threads=1)(mono, sig)
    err = np.abs(got_p - ref_p)
    assert err.mean() < INT8_MEAN_TOL and err.max() < INT8_TOL
    assert ((got_p >= 0.5) == (ref_p >= 0.5)).mean() >= INT8_AGREE


def test_cached_export_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("ADV_CACHE_DIR", str(tmp_path))
    first, meta = cached_onnx(SHIPPED_MODEL)
    assert first.parent == tmp_path / "onnx" and first.suffix == ".onnx"
    assert meta == {**load_detector(SHIPPED_MODEL)[1], "n_signal": meta["n_signal"]}
    stamp = first.stat().st_mtime_ns
    again, meta_again = cached_onnx(SHIPPED_MODEL)
    assert again == first and first.stat().st_mtime_ns == stamp and meta_again == meta
    assert not list(first.parent.glob("*.part"))


def test_a_cached_model_loads_without_torch(tmp_path):
    """Once exported, the ONNX backend serves in a process that never imports torch."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "ADV_CACHE_DIR": str(tmp_path)}
    code = (
        "import sys, numpy as np\n"
        "from adv.inference.validator import AudioDistortionValidator\n"
        "v = AudioDistortionValidator(threads=1)\n"
        "r = v.analyze(np.zeros((2, 32000 * 3), np.float32) + 0.1 * np.sin(np.arange(96000) / 7), sample_rate=32000)\n"
        "print(v.backend, 'torch' in sys.modules, r['distortion_type'])\n"
        "heavy = ('matplotlib', 'pandas', 'sklearn', 'wandb', 'music21', 'fastapi', 'scipy.signal')\n"
        "print(*[m for m in heavy if m in sys.modules])\n"
    )
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split()[0] == "onnx"
    assert second.stdout.split()[:2] == ["onnx", "False"], second.stdout
    assert first.stdout.split()[2] == second.stdout.split()[2]
    assert second.stdout.splitlines()[1].strip() == "", "analysis imported: " + second.stdout.splitlines()[1]


def test_validator_onnx_backend_gives_the_torch_verdict(tmp_path, monkeypatch):
    from adv.inference.validator import AudioDistortionValidator

    monkeypatch.setenv("ADV_CACHE_DIR", str(tmp_path / "cache"))
    song = np.concatenate([_music(8.0, 3), np.clip(3 * _music(8.0, 4), -0.4, 0.4), _music(6.5, 5)], axis=1)
    path = tmp_path / "song.flac"
    sf.write(path, song.T, SR, subtype="PCM_24")
    v_torch = AudioDistortionValidator(backend="torch", threads=1)
    v_onnx = AudioDistortionValidator(backend="onnx", threads=1)
    assert v_torch.model_info()["backend"] == "torch" and v_onnx.model_info()["backend"] == "onnx"
    a, b = v_torch.analyze(path), v_onnx.analyze(path)
    for key in ("has_distortion", "distortion_type", "detected_types", "duration"):
        assert a[key] == b[key], key
    for key in ("severity", "worst_severity"):
        assert abs(a[key] - b[key]) <= 0.2, key
    assert abs(a["confidence"] - b["confidence"]) < FP32_TOL
    assert len(a["segments"]) == len(b["segments"]) >= 3
    for sa, sb in zip(a["segments"], b["segments"]):
        assert (sa["start"], sa["end"], sa["distortion_type"]) == (sb["start"], sb["end"], sb["distortion_type"])
        for c in sa["probabilities"]:
            assert abs(sa["probabilities"][c] - sb["probabilities"][c]) < FP32_TOL
    for kind in a["types"]:
        assert abs(a["types"][kind]["probability"] - b["types"][kind]["probability"]) < FP32_TOL
    # arrays go through the same path
    ra, rb = v_torch.analyze(song, SR), v_onnx.analyze(song, SR)
    assert ra["distortion_type"] == rb["distortion_type"] and abs(ra["confidence"] - rb["confidence"]) < FP32_TOL


def test_unknown_backend_is_rejected():
    from adv.inference.validator import AudioDistortionValidator

    with pytest.raises(ValueError, match="backend"):
        AudioDistortionValidator(backend="tensorrt")


def test_bench_smoke(capsys):
    """`adv bench --json` runs end to end (tiny settings; timings are not asserted)."""
    import json

    from adv.cli import main

    assert main(["bench", "--runs", "1", "--batch-files", "2", "--backend", "onnx", "--threads", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (res,) = report["backends"]
    assert res["backend"] == "onnx" and res["onnx_threads"] == 1
    for key in ("e2e_wav_ms", "e2e_flac_ms", "model_ms", "signal_features_ms", "decode_resample_ms"):
        assert res[key]["p50"] > 0
    assert res["batch_x_realtime"] > 0 and res["batched_model_x_realtime"] > 0
    assert res["peak_rss_mb"] >= res["peak_rss_mb_single"] > 0 and 0 < res["model_mb"] <= 20
