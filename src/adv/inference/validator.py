"""The public API: `AudioDistortionValidator().analyze(path)` and `.analyze_batch(paths)`."""

from __future__ import annotations

import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from adv import CLASSES, RESULT_SCHEMA_VERSION, __version__
from adv.audio_io import (
    check_sample_rate,
    max_audio_seconds as audio_limit_s,
    stream_audio,
    validate_samples,
)
from adv.errors import AdvError, CheckpointError, TooLongError, TooShortError
from adv.features.signal_features import FEATURE_NAMES
from adv.features.window_features import window_features
from adv.inference.window_stream import WindowStream
from adv.inference.decision import RUN_STRENGTH, RUN_WINDOWS, Decision
from adv.inference.evidence import apply_evidence
from adv.inference.windows import summarise
from adv.measurements import TrackMeter, measure_window
from adv.levels import PEAK_RANGE_DBFS, SILENT_PEAK, peak
from adv.config import SHIPPED_MODEL

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
        threshold: one probability every damage kind needs to be detected (default: each kind's own
            threshold, chosen on validation tracks for a clean false-alarm budget; see
            adv.inference.decision and the model card). Higher means fewer false alarms and fewer
            detections. Probabilities do not depend on it.
        max_audio_seconds: longer files raise TooLongError, from the header before decoding when it
            says so (default: ADV_MAX_AUDIO_SECONDS, else 1 hour; adv.audio_io.max_audio_seconds).
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        window_s: float = 10.0,
        hop_s: float = 5.0,
        max_windows: int = 240,
        threads: int | None = None,
        batch_size: int = 16,
        backend: str = "auto",
        threshold: float | None = None,
        max_audio_seconds: float | None = None,
    ):
        if backend not in ("auto", "onnx", "torch"):
            raise ValueError(f"backend must be 'auto', 'onnx' or 'torch', got {backend!r}")
        if threshold is not None and not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {threshold!r}")
        self.user_threshold = None if threshold is None else float(threshold)
        self.max_audio_seconds = audio_limit_s(max_audio_seconds)
        self.window_s, self.hop_s, self.max_windows, self.batch_size = window_s, hop_s, max_windows, batch_size
        self.threads = threads or min(4, os.cpu_count() or 1)
        self.requested_backend = backend
        self._lock = threading.Lock()
        self.load_checkpoint(model_path or os.environ.get("ADV_MODEL") or SHIPPED_MODEL)

    # ---- model ----
    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Loads a detector file. The ONNX backend reads the graph and metadata exported once per
        model file (torch is imported only for that export, or for the torch backend)."""
        model = onnx = None
        if self.requested_backend != "torch":
            onnx, meta, model = self._load_onnx(path)
        if onnx is None and model is None:
            model, meta = self._load_torch(path)
        with self._lock:
            self._model, self.meta, self.model_path, self._onnx = model, meta, str(path), onnx
            self.backend = "onnx" if onnx is not None else "torch"
        self._signal_cols = _signal_columns(meta, path)
        fe = meta["frontend"]
        self.sample_rate = int(fe["sample_rate"])
        self.decision = Decision.from_meta(meta, self.user_threshold)

    @property
    def model(self):
        """The PyTorch detector (loaded on first use when the ONNX backend serves)."""
        if self._model is None:
            self._model = self._load_torch(self.model_path)[0]
        return self._model

    def _load_torch(self, path: str | os.PathLike):
        import torch

        from adv.models.model_file import load_detector

        torch.set_num_threads(self.threads)
        return load_detector(path)

    def _load_onnx(self, path: str | os.PathLike):
        """(OnnxDetector, meta, None), or with "auto" when ONNX cannot be used (None, meta, torch model)."""
        from adv.inference.onnx_backend import OnnxDetector, cached_onnx

        try:
            graph, meta = cached_onnx(path)
            return OnnxDetector(graph, threads=self.threads), meta, None
        except Exception as exc:  # noqa: BLE001 - "auto" must always give a working validator
            if self.requested_backend == "onnx":
                raise
            model, meta = self._load_torch(path)  # a bad model file raises here, without the warning
            warnings.warn(f"ONNX backend unavailable, using torch ({type(exc).__name__}: {exc})", stacklevel=3)
            return None, meta, model

    def model_info(self) -> dict:
        return {
            "package_version": __version__,
            "model_version": self.meta.get("version"),
            "model_path": self.model_path,
            "classes": list(CLASSES),
            "backbone": self.meta.get("config", {}).get("backbone", {}).get("name"),
            "model_bytes": Path(self.model_path).stat().st_size if Path(self.model_path).exists() else None,
            "metrics": self.meta.get("metrics", {}),
            "kind_thresholds": self.decision.as_dict(),
            "decision_budget": self.meta.get("decision_budget"),
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "backend": self.backend,
            "window_peak_range_dbfs": list(PEAK_RANGE_DBFS),
            "run_windows": RUN_WINDOWS,
            "run_strength": RUN_STRENGTH,
        }

    # ---- core ----
    def _windows(self, blocks, rate: int, expected: int | None, notes: list[str], meter: TrackMeter | None = None):
        """Analysis windows [2, n] at the audio's own ``rate``, cut from a stream of blocks
        [channels, n] (the first two channels; mono doubled); fills ``notes``, feeds every block to
        ``meter`` (the track's measurements) and yields ``(start, window)``, then returns
        (samples, peak) through StopIteration.value."""
        stream = WindowStream(rate, self.window_s, self.hop_s, self.max_windows, expected)
        top, first = 0.0, True
        for block in blocks:
            if meter is not None:
                meter.update(block)
            if first:
                first = False
                if block.shape[0] == 1:
                    notes.append("mono input: stereo phase problems cannot be present or detected")
                elif block.shape[0] > 2:
                    notes.append(f"{block.shape[0]} channels: the first two (front left/right) were analysed")
            block = np.broadcast_to(block, (2, block.shape[1])) if block.shape[0] == 1 else block[:2]
            if block.shape[1]:
                top = max(top, peak(block))
            yield from stream.push(block)
        if stream.total < MIN_SECONDS * rate:
            return stream.total, top
        yield from stream.finish()
        return stream.total, top

    def _analyze_stream(self, blocks, rate: int, expected: int | None, name: str, info: dict) -> dict:
        """Verdict of a stream of blocks [channels, n] at their own ``rate``; ``expected``: the
        stream's length in samples when known beforehand (the hop of very long files widens from it)."""
        t0 = time.perf_counter()
        notes: list[str] = []
        timed = _Timed(blocks)
        meter = TrackMeter(rate, info["channels"], expected)
        windows = self._windows(timed, rate, expected, notes, meter)
        starts, probs, sevs, silent, measured, batch = [], [], [], [], [], []
        while True:
            try:
                start, win = next(windows)
            except StopIteration as stop:
                n_samples, top = stop.value
                break
            starts.append(start)
            silent.append(_silent(win))
            measured.append(measure_window(win[: info["channels"]], rate))  # the user's audio, unscaled
            batch.append(win)
            if len(batch) == self.batch_size:
                self._run_batch(batch, rate, probs, sevs)
                batch = []
        if n_samples < MIN_SECONDS * rate:
            raise TooShortError(name, f"{n_samples / rate:.3f} s, need at least {MIN_SECONDS} s")
        if batch:
            self._run_batch(batch, rate, probs, sevs)
        if all(silent):
            notes.append(
                "digital silence: nothing to analyse"
                if top < SILENT_PEAK
                else f"no signal but a constant offset (DC {top:.3g} of full scale): nothing to analyse"
            )
        elif any(silent):
            notes.append(f"{sum(silent)} of {len(silent)} windows are digital silence and were left out of the verdict")
        duration = n_samples / rate
        starts_s = [st / rate for st in starts]
        probs, sevs, proved = apply_evidence(
            np.concatenate(probs), np.concatenate(sevs), measured, self.decision.clip_evidence_fraction
        )
        verdict = summarise(probs, sevs, starts_s, self.window_s, duration, self.decision, np.array(silent), proved)
        if proved.any():
            n = int(proved.any(axis=1).sum())
            notes.append(
                f"clipping measured: {n} of {len(proved)} windows have at least "
                f"{self.decision.clip_evidence_fraction:.1%} of their samples in flat runs at the ceiling"
            )
        for seg, m in zip(verdict["segments"], measured):
            seg["measurements"] = m
        result = {"schema_version": RESULT_SCHEMA_VERSION, "path": name, **verdict, "measurements": meter.result()}
        result.update(info)
        result.update(
            {
                "duration": round(duration, 3),
                "notes": notes,
                "model_version": self.meta.get("version"),
                "analysis_ms": round((time.perf_counter() - t0 - timed.seconds) * 1000, 1),
                "decode_ms": round(timed.seconds * 1000, 1),
            }
        )
        return result

    def features(self, source, sample_rate: int | None = None) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """``(start s, mono at the model rate, signal features)`` of every analysis window of a file (or
        an array with its rate), along exactly the path ``analyze`` takes (train/serve parity checks)."""
        if isinstance(source, (str, os.PathLike)):
            info, blocks = stream_audio(source, max_seconds=self.max_audio_seconds)
            rate, expected = info.sample_rate, info.frames
        else:
            rate, blocks = check_sample_rate(sample_rate), iter([validate_samples(source)])
            expected = None
        windows = self._windows(blocks, rate, expected, [])
        out = []
        for start, win in _until_return(windows):
            mono, sig, _ = window_features(win, rate, self.sample_rate)
            out.append((start / rate, mono, sig))
        return out

    def _run_batch(self, windows: list[np.ndarray], rate: int, probs: list, sevs: list) -> None:
        feats = [window_features(w, rate, self.sample_rate) for w in windows]  # one stream: equal lengths
        p, v = self.predict(np.stack([f[0] for f in feats]), np.stack([f[1] for f in feats]))
        probs.append(p)
        sevs.append(v)

    def predict(self, mono: np.ndarray, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model only: mono windows [B, L] at the model rate + their signal features [B, D] ->
        (type probabilities [B, 6], severities [B, 5]), on the active backend."""
        if self._signal_cols is not None:  # the model was trained on a subset / older list of features
            signal = np.ascontiguousarray(signal[:, self._signal_cols])
        onnx = self._onnx
        if onnx is not None:
            return onnx(mono, signal)
        import torch

        with self._lock, torch.inference_mode():
            mel = self.model.backbone.extract_logmel(torch.from_numpy(mono))
            p, v = self.model(mel, torch.from_numpy(signal))
        return p.numpy(), v.numpy()

    # ---- public ----
    def analyze(self, source, sample_rate: int | None = None) -> dict:
        """Analyses a file path, or a numpy array ([channels, samples] or 1-D) with its sample_rate.

        A file is decoded as a stream and cut into windows as it is read, at its own rate, so memory
        does not grow with its length."""
        t0 = time.perf_counter()
        if isinstance(source, (str, os.PathLike)):
            info, blocks = stream_audio(source, max_seconds=self.max_audio_seconds)
            meta = {"sample_rate": info.sample_rate, "channels": info.channels, "format": info.format}
            result = self._analyze_stream(blocks, info.sample_rate, info.frames, str(source), meta)
            result["decode_ms"] = round((time.perf_counter() - t0) * 1000 - result["analysis_ms"], 1)  # probe too
            return result
        if sample_rate is None:
            raise ValueError("sample_rate is required when analysing an array")
        name = "<array>"
        sample_rate = check_sample_rate(sample_rate, name)
        audio = validate_samples(source, name)
        if audio.shape[1] > self.max_audio_seconds * sample_rate:
            raise TooLongError(name, f"{audio.shape[1] / sample_rate:.1f} s, the limit is {self.max_audio_seconds:g} s")
        meta = {"sample_rate": sample_rate, "channels": int(audio.shape[0]), "format": "array"}
        decode_ms = (time.perf_counter() - t0) * 1000
        result = self._analyze_stream(iter([audio]), sample_rate, audio.shape[1], name, meta)
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


class _Timed:
    """An iterator that counts the seconds spent producing its items (decoding and resampling)."""

    def __init__(self, it):
        self._it, self.seconds = iter(it), 0.0

    def __iter__(self):
        return self

    def __next__(self):
        t0 = time.perf_counter()
        try:
            return next(self._it)
        finally:
            self.seconds += time.perf_counter() - t0


def _silent(window: np.ndarray) -> bool:
    """Digital silence, or nothing but a constant offset: no evidence of any kind of damage."""
    if window.shape[1] == 0:
        return True
    ac = window - window.mean(axis=1, keepdims=True)
    return peak(ac) < SILENT_PEAK


def _until_return(gen):
    """The items of a generator, ignoring the value it returns."""
    while True:
        try:
            yield next(gen)
        except StopIteration:
            return
