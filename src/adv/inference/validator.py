"""The public API: `AudioDistortionValidator().analyze(path)` and `.analyze_batch(paths)`."""

from __future__ import annotations

import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from adv import CLASSES, __version__
from adv.audio_io import check_sample_rate, load_audio, resample, validate_samples
from adv.errors import AdvError, CheckpointError, TooShortError
from adv.features.signal_features import FEATURE_NAMES, compute_signal_features
from adv.inference.windows import TRACK_RUN_SCORE_FACTOR, TRACK_RUN_WINDOWS, TRACK_TOP_FRACTION, summarise, window_starts
from adv.levels import PEAK_RANGE_DBFS, SILENT_PEAK, match_training_level, peak
from adv.models.model_file import SHIPPED_MODEL, load_detector

MIN_SECONDS = 0.5


class AudioDistortionValidator:
    """Detects and rates distortions in music files or arrays.

    Args:
        model_path: a detector file (default: the model shipped in the package, or ADV_MODEL).
        window_s / hop_s: analysis windows; tracks longer than one window get a timeline.
        max_windows: the hop widens on very long files so at most this many windows are run.
        threads: torch / ONNX Runtime intra-op threads (default: all cores, at most 4).
        backend: "onnx" (ONNX Runtime, the model exported once per model file into a cache, see
            adv.inference.onnx_backend; ~2.5x faster on CPU), "torch", or "auto" (the default:
            onnx, falling back to torch with a warning when the export cannot be made or loaded).
        threshold: decision threshold on the clean score (default: the model's, chosen on validation): a window
            is damaged when its clean score < threshold. The clean score is P(clean), or for models trained
            with a clean mix (adv.models.detector.clean_score) P(clean) blended with 1 - the strongest damage
            kind's probability. Lower means fewer false alarms and fewer detections; the model card lists
            the trade-off measured on the test split.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, window_s: float = 10.0, hop_s: float = 5.0,
                 max_windows: int = 240, threads: int | None = None, batch_size: int = 16,
                 backend: str = "auto", threshold: float | None = None):
        if backend not in ("auto", "onnx", "torch"):
            raise ValueError(f"backend must be 'auto', 'onnx' or 'torch', got {backend!r}")
        if threshold is not None and not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {threshold!r}")
        self.user_threshold = None if threshold is None else float(threshold)
        self.window_s, self.hop_s, self.max_windows, self.batch_size = window_s, hop_s, max_windows, batch_size
        self.threads = threads or min(4, os.cpu_count() or 1)
        torch.set_num_threads(self.threads)
        self.requested_backend = backend
        self._lock = threading.Lock()
        self.load_checkpoint(model_path or os.environ.get("ADV_MODEL") or SHIPPED_MODEL)

    # ---- model ----
    def load_checkpoint(self, path: str | os.PathLike) -> None:
        model, meta = load_detector(path)
        onnx = self._load_onnx(path) if self.requested_backend != "torch" else None
        with self._lock:
            self.model, self.meta, self.model_path, self._onnx = model, meta, str(path), onnx
            self.backend = "onnx" if onnx is not None else "torch"
        self._signal_cols = _signal_columns(meta, path)
        fe = meta["frontend"]
        self.sample_rate = int(fe["sample_rate"])
        self.threshold = self.user_threshold if self.user_threshold is not None else float(meta.get("threshold", 0.5))
        # a kind is listed when its probability reaches this (chosen on validation; older models: the threshold)
        self.kind_threshold = float(meta.get("kind_threshold", self.threshold))

    def _load_onnx(self, path: str | os.PathLike):
        from adv.inference.onnx_backend import OnnxDetector, cached_onnx

        try:
            return OnnxDetector(cached_onnx(path), threads=self.threads)
        except Exception as exc:  # noqa: BLE001 - "auto" must always give a working validator
            if self.requested_backend == "onnx":
                raise
            warnings.warn(f"ONNX backend unavailable, using torch ({type(exc).__name__}: {exc})", stacklevel=3)
            return None

    def model_info(self) -> dict:
        return {"package_version": __version__, "model_version": self.meta.get("version"),
                "model_path": self.model_path, "classes": list(CLASSES),
                "backbone": self.meta.get("config", {}).get("backbone", {}).get("name"),
                "model_bytes": Path(self.model_path).stat().st_size if Path(self.model_path).exists() else None,
                "metrics": self.meta.get("metrics", {}), "threshold": self.threshold,
                "kind_threshold": self.kind_threshold,
                "window_s": self.window_s, "hop_s": self.hop_s, "backend": self.backend,
                "window_peak_range_dbfs": list(PEAK_RANGE_DBFS), "track_top_fraction": TRACK_TOP_FRACTION,
                "track_run_windows": TRACK_RUN_WINDOWS,
                "track_run_clean_score_below": round(self.threshold * TRACK_RUN_SCORE_FACTOR, 4)}

    # ---- core ----
    def _prepare(self, audio: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
        notes = []
        if audio.shape[0] == 1:
            audio = np.broadcast_to(audio, (2, audio.shape[1]))  # a view: no copy of long mono tracks
            notes.append("mono input: stereo phase problems cannot be present or detected")
        elif audio.shape[0] > 2:
            notes.append(f"{audio.shape[0]} channels: the first two (front left/right) were analysed")
            audio = audio[:2]
        if audio.shape[1] < MIN_SECONDS * self.sample_rate:
            raise TooShortError(name, f"{audio.shape[1] / self.sample_rate:.3f} s, need at least {MIN_SECONDS} s")
        if peak(audio) < SILENT_PEAK:
            notes.append("digital silence: nothing to analyse")
        return audio, notes

    @torch.inference_mode()
    def _run_windows(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
        sr = self.sample_rate
        starts = window_starts(audio.shape[1], sr, self.window_s, self.hop_s, self.max_windows)
        win = min(int(self.window_s * sr), audio.shape[1])
        probs, sevs = [], []
        for b in range(0, len(starts), self.batch_size):
            # each window into the training clips' level range (adv.levels; the user's audio is not modified)
            chunk = [match_training_level(audio[:, s:s + win])[0] for s in starts[b:b + self.batch_size]]
            sig = np.stack([compute_signal_features(c, sr) for c in chunk])
            mono = np.stack([c.mean(axis=0) for c in chunk])
            p, v = self.predict(mono, sig)
            probs.append(p)
            sevs.append(v)
        return np.concatenate(probs), np.concatenate(sevs), starts

    @torch.inference_mode()
    def predict(self, mono: np.ndarray, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model only: mono windows [B, L] at the model rate + their signal features [B, D] ->
        (type probabilities [B, 6], severities [B, 5]), on the active backend."""
        if self._signal_cols is not None:  # the model was trained on a subset / older list of features
            signal = np.ascontiguousarray(signal[:, self._signal_cols])
        onnx = self._onnx
        if onnx is not None:
            return onnx(mono, signal)
        with self._lock:
            mel = self.model.backbone.extract_logmel(torch.from_numpy(mono))
            p, v = self.model(mel, torch.from_numpy(signal))
        return p.numpy(), v.numpy()

    def _analyze_audio(self, audio: np.ndarray, name: str, info: dict) -> dict:
        t0 = time.perf_counter()
        audio, notes = self._prepare(audio, name)
        probs, sev, starts = self._run_windows(audio)
        duration = audio.shape[1] / self.sample_rate
        starts_s = [s / self.sample_rate for s in starts]
        verdict = summarise(probs, sev, starts_s, self.window_s, duration, self.threshold, self.kind_threshold)
        result = {"path": name, **verdict}
        result.update(info)
        result.update({"duration": round(duration, 3), "notes": notes,
                       "model_version": self.meta.get("version"),
                       "analysis_ms": round((time.perf_counter() - t0) * 1000, 1)})
        return result

    # ---- public ----
    def analyze(self, source, sample_rate: int | None = None) -> dict:
        """Analyses a file path, or a numpy array ([channels, samples] or 1-D) with its sample_rate."""
        t0 = time.perf_counter()
        if isinstance(source, (str, os.PathLike)):
            dec = load_audio(source, target_sr=self.sample_rate)
            info = {"sample_rate": dec.source_rate, "channels": dec.source_channels, "format": dec.format}
            name, audio = str(source), dec.samples
        else:
            if sample_rate is None:
                raise ValueError("sample_rate is required when analysing an array")
            name = "<array>"
            sample_rate = check_sample_rate(sample_rate, name)
            audio = validate_samples(source, name)
            info = {"sample_rate": sample_rate, "channels": int(audio.shape[0]), "format": "array"}
            audio = resample(audio, sample_rate, self.sample_rate)
        decode_ms = (time.perf_counter() - t0) * 1000
        result = self._analyze_audio(audio, name, info)
        result["decode_ms"] = round(decode_ms, 1)
        return result

    def analyze_batch(self, sources: list, workers: int = 2) -> list[dict]:
        """Analyses many files (or (array, sample_rate) pairs); decoding runs in parallel threads, a
        failing input gives an error entry ({"path", "error", "error_type"}) and the batch goes on."""

        def one(src):
            pair = isinstance(src, tuple)
            name = "<array>" if pair else str(src)
            try:
                return self.analyze(*src) if pair else self.analyze(src)
            except AdvError as exc:
                return {"path": name, "error": str(exc), "error_type": type(exc).__name__}
            except Exception as exc:  # noqa: BLE001 - one file must never stop a batch
                return {"path": name, "error": f"{type(exc).__name__}: {exc}", "error_type": "InternalError"}

        if workers <= 1 or len(sources) <= 1:
            return [one(s) for s in sources]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, sources))


def _signal_columns(meta: dict, path) -> np.ndarray | None:
    """Columns of the current feature vector that the model was trained on (None: all of them)."""
    names = meta.get("signal_features")
    if not names or list(names) == FEATURE_NAMES:
        return None
    index = {n: i for i, n in enumerate(FEATURE_NAMES)}
    missing = [n for n in names if n not in index]
    if missing:
        raise CheckpointError(f"{path}: the model uses signal features this version does not compute: {missing[:5]}")
    return np.array([index[n] for n in names], dtype=np.int64)
