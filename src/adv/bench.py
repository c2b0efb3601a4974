"""`adv bench`: latency, throughput, memory and model size on this machine.

For each backend (torch, onnx and optionally the int8 ONNX variant) it measures, after warm-up:

* end-to-end latency of `analyze(path)` on a 10-s 44.1 kHz stereo WAV and FLAC (decode + resample to
  32 kHz + signal features + log-mel + model + summary), p50 / p95 over `runs`;
* the stages alone: decode + resample, signal features of one 10-s window, the model (log-mel +
  backbone + head) on one 10-s window;
* batch throughput in x realtime: `analyze_batch` over `batch_files` 10-s files, and the batched
  model path (one call on `batch_files` windows, features excluded);
* peak resident memory (getrusage maxrss; each backend runs in a fresh process): after the
  single-file latency runs and at the end (the batches), model file sizes and the thread counts.

Targets (from the issue): p50 <= 50 ms end-to-end per 10-s clip, >= 200x realtime in batch,
model file <= 20 MB.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

CLIP_S = 10.0
FILE_RATE = 44100
TARGETS = {"e2e_p50_ms": 50.0, "batch_x_realtime": 200.0, "model_mb": 20.0}
BACKENDS = ("torch", "onnx", "onnx-int8")


def _music(seconds: float, sr: int, seed: int) -> np.ndarray:
    """A stereo test signal with music-like structure (chords, decays, noise bursts), [2, N]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    out = np.zeros((2, n))
    beat = int(sr * 0.5)
    for k in range(0, n, beat):
        seg = slice(k, min(n, k + beat))
        tt = t[seg] - t[k]
        env = np.exp(-3.0 * tt)
        for j, f in enumerate(rng.choice([196.0, 220.0, 246.9, 261.6, 293.7, 329.6, 392.0], 3, replace=False)):
            tone = sum(np.sin(2 * np.pi * f * h * tt) / h**1.5 for h in range(1, 6)) * env
            pan = 0.3 + 0.2 * j
            out[0, seg] += (1 - pan) * tone
            out[1, seg] += pan * tone
        out[:, seg] += 0.1 * rng.standard_normal((2, seg.stop - seg.start)) * np.exp(-30.0 * tt)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def make_bench_files(folder: Path, n_files: int) -> tuple[Path, Path, list[Path]]:
    """A 10-s 44.1 kHz stereo WAV and FLAC, and n_files WAVs for the batch (4 distinct signals)."""
    from adv.audio_io import write_audio

    folder.mkdir(parents=True, exist_ok=True)
    signals = [_music(CLIP_S, FILE_RATE, seed) for seed in range(4)]
    wav, flac = folder / "clip.wav", folder / "clip.flac"
    write_audio(wav, signals[0], FILE_RATE, subtype="PCM_16")
    write_audio(flac, signals[0], FILE_RATE, subtype="PCM_16")
    batch = []
    for i in range(n_files):
        p = folder / f"batch_{i:03d}.wav"
        write_audio(p, signals[i % len(signals)], FILE_RATE, subtype="PCM_16")
        batch.append(p)
    return wav, flac, batch


def _times(fn, runs: int, warmup: int = 2) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out * 1000.0


def _pct(ms: np.ndarray) -> dict:
    return {
        "p50": round(float(np.percentile(ms, 50)), 2),
        "p95": round(float(np.percentile(ms, 95)), 2),
        "min": round(float(ms.min()), 2),
    }


def _maxrss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)  # KiB on Linux


def _validator(backend: str, model: str | None, threads: int | None):
    from adv.inference.onnx_backend import OnnxDetector, cached_onnx
    from adv.inference.validator import AudioDistortionValidator

    v = AudioDistortionValidator(model, threads=threads, backend="torch" if backend == "torch" else "onnx")
    if backend == "onnx-int8":  # the validator itself only runs fp32; swap the session in for the bench
        v._onnx = OnnxDetector(cached_onnx(v.model_path, int8=True)[0], threads=v.threads)
    return v


def bench_backend(
    backend: str,
    files: tuple[Path, Path, list[Path]],
    runs: int,
    model: str | None = None,
    threads: int | None = None,
    workers: int = 2,
) -> dict:
    from adv.audio_io import load_audio
    from adv.features.signal_features import compute_signal_features
    from adv.inference.onnx_backend import cached_onnx

    wav, flac, batch = files
    v = _validator(backend, model, threads)
    sr = v.sample_rate
    res: dict = {
        "backend": backend,
        "torch_threads": v.threads if backend == "torch" else None,
        "onnx_threads": v.threads if backend != "torch" else None,
    }

    res["e2e_wav_ms"] = _pct(_times(lambda: v.analyze(wav), runs))
    res["e2e_flac_ms"] = _pct(_times(lambda: v.analyze(flac), runs))
    res["peak_rss_mb_single"] = _maxrss_mb()
    res["decode_resample_ms"] = _pct(_times(lambda: load_audio(wav, target_sr=sr), runs))
    window = load_audio(wav, target_sr=sr).samples[:, : int(CLIP_S * sr)]
    res["signal_features_ms"] = _pct(_times(lambda: compute_signal_features(window, sr), runs))

    sig1 = compute_signal_features(window, sr)[None]
    mono1 = window.mean(axis=0)[None]
    monob = np.repeat(mono1, len(batch), axis=0)
    sigb = np.repeat(sig1, len(batch), axis=0)
    model_call = v.predict
    res["model_ms"] = _pct(_times(lambda: model_call(mono1, sig1), runs))
    t_batch = float(np.median(_times(lambda: model_call(monob, sigb), 3, warmup=1))) / 1000.0
    res["batched_model_x_realtime"] = round(len(batch) * CLIP_S / t_batch, 1)

    t_files = float(np.median(_times(lambda: v.analyze_batch([str(p) for p in batch], workers=workers), 3, warmup=1)))
    res["batch_files"] = len(batch)
    res["batch_workers"] = workers
    res["batch_x_realtime"] = round(len(batch) * CLIP_S / (t_files / 1000.0), 1)
    res["peak_rss_mb"] = _maxrss_mb()
    res["model_mb"] = round(Path(v.model_path).stat().st_size / 1e6, 2)
    if backend != "torch":
        res["onnx_mb"] = round(cached_onnx(v.model_path, int8=backend == "onnx-int8")[0].stat().st_size / 1e6, 2)
    res["meets_targets"] = {
        "e2e_p50": res["e2e_wav_ms"]["p50"] <= TARGETS["e2e_p50_ms"],
        "batch": res["batch_x_realtime"] >= TARGETS["batch_x_realtime"],
        "model_size": res["model_mb"] <= TARGETS["model_mb"],
    }
    return res


def _isolated(*args) -> dict:
    """bench_backend in a fresh interpreter: clean peak-memory numbers, no state shared between backends."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(bench_backend, *args).result()


def run_bench(
    backends: tuple[str, ...] = ("torch", "onnx"),
    runs: int = 20,
    model: str | None = None,
    threads: int | None = None,
    batch_files: int = 32,
    workers: int = 2,
    isolate: bool = True,
) -> dict:
    for b in backends:
        if b not in BACKENDS:
            raise ValueError(f"unknown backend {b!r}; choose from {BACKENDS}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="adv_bench_") as tmp:
        files = make_bench_files(Path(tmp), batch_files)
        run = _isolated if isolate else bench_backend
        results = [run(b, files, runs, model, threads, workers) for b in backends]
    return {
        "machine": {"cpus": os.cpu_count(), "load_avg_1min": None if load is None else round(load, 2)},
        "runs": runs,
        "clip_seconds": CLIP_S,
        "file_rate": FILE_RATE,
        "targets": TARGETS,
        "backends": results,
    }


def format_bench(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"adv bench: {m['cpus']} CPUs, 1-min load average {m['load_avg_1min']} (timings are noisy "
        f"when the machine is busy); {report['runs']} runs per latency, 10-s 44.1 kHz stereo clips",
        "",
    ]
    rows = [
        ("end-to-end WAV p50 / p95 ms", lambda r: f"{r['e2e_wav_ms']['p50']:.1f} / {r['e2e_wav_ms']['p95']:.1f}"),
        ("end-to-end FLAC p50 / p95 ms", lambda r: f"{r['e2e_flac_ms']['p50']:.1f} / {r['e2e_flac_ms']['p95']:.1f}"),
        ("  decode + resample p50 ms", lambda r: f"{r['decode_resample_ms']['p50']:.1f}"),
        ("  signal features p50 ms", lambda r: f"{r['signal_features_ms']['p50']:.1f}"),
        ("  model (log-mel+net) p50 ms", lambda r: f"{r['model_ms']['p50']:.1f}"),
        (
            "batch files x realtime",
            lambda r: f"{r['batch_x_realtime']:.0f}x ({r['batch_files']} files, {r['batch_workers']} workers)",
        ),
        ("batched model x realtime", lambda r: f"{r['batched_model_x_realtime']:.0f}x"),
        ("peak RSS MB 1 file / all", lambda r: f"{r['peak_rss_mb_single']:.0f} / {r['peak_rss_mb']:.0f}"),
        ("model file MB", lambda r: f"{r['model_mb']:.2f}" + (f" (onnx {r['onnx_mb']:.2f})" if "onnx_mb" in r else "")),
        (
            "threads",
            lambda r: f"torch {r['torch_threads']}" + (f", onnx {r['onnx_threads']}" if r["onnx_threads"] else ""),
        ),
        (
            "targets met (p50/batch/size)",
            lambda r: "/".join("yes" if ok else "NO" for ok in r["meets_targets"].values()),
        ),
    ]
    res = report["backends"]
    width = max(len(r[0]) for r in rows) + 2
    col = 34
    lines.append(" " * width + "".join(f"{r['backend']:<{col}}" for r in res))
    for label, fn in rows:
        lines.append(f"{label:<{width}}" + "".join(f"{fn(r):<{col}}" for r in res))
    t = report["targets"]
    lines += [
        "",
        f"targets: p50 <= {t['e2e_p50_ms']:.0f} ms per 10-s clip, >= {t['batch_x_realtime']:.0f}x realtime "
        f"in batch, model <= {t['model_mb']:.0f} MB",
    ]
    return "\n".join(lines)
