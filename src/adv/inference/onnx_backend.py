"""ONNX Runtime backend: the whole detector (log-mel front end + backbone + head) as one graph,
run without torch.

`cached_onnx` gives the graph of a detector file and that file's metadata, exported on first use
(adv.models.onnx_export, which needs torch) into a cache folder keyed by the model's md5, with the
metadata beside it as JSON; later loads, in any process, read both from the cache without importing
torch. `OnnxDetector` runs the graph.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from adv.config import cache_dir as adv_cache_dir
from adv.errors import CheckpointError
from adv.models.checkpoints import md5sum

#: bump when the exported graph changes for the same model file (invalidates cached exports)
EXPORT_VERSION = "adv-onnx-1"
OPSET = 17
INPUT_NAMES = ("mono", "signal")
OUTPUT_NAMES = ("probs", "severity")


def model_digest(model_path: str | os.PathLike) -> str:
    """md5 of the model file's md5 and the export version (the cache key of its ONNX graph)."""
    return hashlib.md5((md5sum(model_path) + EXPORT_VERSION).encode()).hexdigest()


def cache_dir() -> Path:
    """``onnx/`` in :func:`adv.config.cache_dir` (ADV_CACHE_DIR, else $XDG_CACHE_HOME/adv, else ~/.cache/adv)."""
    return adv_cache_dir(create=False) / "onnx"


def atomic_target(path: Path) -> Path:
    """A temporary file beside ``path``, to be renamed onto it when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _read_meta(path: Path) -> dict | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and "frontend" in meta else None


def cached_onnx(model_path: str | os.PathLike, *, int8: bool = False) -> tuple[Path, dict]:
    """(ONNX graph, metadata) of the detector file `model_path`, from :func:`cache_dir`, exported
    there on first use."""
    if not Path(model_path).is_file():
        raise CheckpointError(f"{model_path}: model file not found")
    digest = model_digest(model_path)
    path = cache_dir() / f"{digest}{'.int8' if int8 else ''}.onnx"
    meta_path = cache_dir() / f"{digest}.json"
    meta = _read_meta(meta_path) if path.exists() else None
    if meta is None:
        from adv.models.onnx_export import export_onnx

        try:
            _, meta = export_onnx(model_path, path, int8=int8)
            tmp = atomic_target(meta_path)
            tmp.write_text(json.dumps(meta), encoding="utf-8")
            tmp.replace(meta_path)
        except OSError as exc:
            raise CheckpointError(
                f"{model_path}: cannot write the ONNX export to {path.parent} ({exc}); "
                "set ADV_CACHE_DIR to a writable folder"
            ) from None
    return path, meta


class OnnxDetector:
    """Runs an exported detector with ONNX Runtime on the CPU. Thread-safe (one shared session)."""

    def __init__(self, onnx_path: str | os.PathLike, threads: int = 2):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # no busy-waiting between parallel sections: on a loaded 2-core machine spinning workers made
        # a 2-thread run 1.6x slower than 1 thread (24 vs 14 ms per window); without it 15 ms
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(onnx_path)
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - any load failure is a bad model file
            raise CheckpointError(f"{self.path}: not a loadable ONNX model ({type(exc).__name__}: {exc})") from None
        names = [i.name for i in self.session.get_inputs()]
        if names != list(INPUT_NAMES):
            raise CheckpointError(f"{self.path}: ONNX inputs {names}, expected {list(INPUT_NAMES)}")

    def __call__(self, mono: np.ndarray, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        signal = np.ascontiguousarray(signal, dtype=np.float32)
        if mono.ndim == 1:
            mono = mono[None]
        if signal.ndim == 1:
            signal = signal[None]
        probs, sev = self.session.run(list(OUTPUT_NAMES), {"mono": mono, "signal": signal})
        return probs, sev
