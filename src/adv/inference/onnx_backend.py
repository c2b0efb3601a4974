"""ONNX Runtime backend: the whole detector (log-mel front end + backbone + head) as one graph.

Graph inputs / outputs (batch and length are dynamic)::

    mono    float32 [B, L]   mono mix at the model's sample rate (32 kHz)
    signal  float32 [B, D]   raw signal features (adv.features.signal_features)
    ->
    probs    float32 [B, 6]  calibrated type probabilities (clean, clipping, mp3, noise, eq, phase)
    severity float32 [B, 5]  severities in [0, 1]

`export_onnx` writes it (opset 17, TorchScript exporter); `cached_onnx` exports once per model file
into a cache folder keyed by the model's md5; `OnnxDetector` runs it. `quantize_int8` makes a
dynamically quantised variant (int8 backbone convolutions; see there why the validator keeps fp32).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adv.config import cache_dir as adv_cache_dir
from adv.errors import CheckpointError
from adv.models.checkpoints import md5sum

#: bump when the exported graph changes for the same model file (invalidates cached exports)
EXPORT_VERSION = "adv-onnx-1"
OPSET = 17
INPUT_NAMES = ("mono", "signal")
OUTPUT_NAMES = ("probs", "severity")


class WaveformDetector(nn.Module):
    """DistortionDetector with its log-mel front end: (mono [B, L], signal [B, D]) -> (probs, severity)."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, mono: torch.Tensor, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bb = self.detector.backbone
        mel = bb.logmel_extractor(bb.spectrogram_extractor(mono))  # extract_logmel minus its python checks
        return self.detector(mel, signal)


def model_digest(model_path: str | os.PathLike) -> str:
    """md5 of the model file's md5 and the export version (the cache key of its ONNX graph)."""
    return hashlib.md5((md5sum(model_path) + EXPORT_VERSION).encode()).hexdigest()


def cache_dir() -> Path:
    """``onnx/`` in :func:`adv.config.cache_dir` (ADV_CACHE_DIR, else $XDG_CACHE_HOME/adv, else ~/.cache/adv)."""
    return adv_cache_dir(create=False) / "onnx"


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def export_onnx(model_path: str | os.PathLike, onnx_path: str | os.PathLike, *, int8: bool = False) -> Path:
    """Exports the detector file `model_path` to `onnx_path` (fp32; with int8=True the quantised
    variant is written there instead). The file appears atomically (safe with concurrent callers)."""
    from adv.models.model_file import load_detector

    model, meta = load_detector(model_path)
    wrapped = WaveformDetector(model).eval()
    sr = int(meta["frontend"]["sample_rate"])
    n_sig = int(model.head.n_signal)
    mono = torch.randn(2, int(3.0 * sr)) * 0.1
    signal = torch.zeros(2, n_sig)
    out = Path(onnx_path)
    tmp = _atomic_target(out)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped, (mono, signal), str(tmp), input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES), opset_version=OPSET, dynamo=False,
                do_constant_folding=True,
                dynamic_axes={"mono": {0: "batch", 1: "samples"}, "signal": {0: "batch"},
                              "probs": {0: "batch"}, "severity": {0: "batch"}})
        if int8:
            quantize_int8(tmp, tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def quantize_int8(fp32_path: str | os.PathLike, int8_path: str | os.PathLike) -> Path:
    """Dynamic int8 quantisation (ConvInteger) of the backbone's convolutions.

    The front end stays float: int8 STFT kernels / mel matrix cap the spectrum's dynamic range
    at ~48 dB and wreck the codec and noise cues (measured: probabilities off by up to 1.0).
    Measured on the 2-core CPU box: no faster than fp32 (ConvInteger is slower than MLAS float
    convolutions for these small depthwise layers), so the validator does not use it.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = Path(fp32_path), Path(int8_path)
    front = [n.name for n in onnx.load(str(src), load_external_data=False).graph.node
             if "spectrogram_extractor" in n.name or "logmel_extractor" in n.name]
    tmp = _atomic_target(dst)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QUInt8, op_types_to_quantize=["Conv"],
                             nodes_to_exclude=front)
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def cached_onnx(model_path: str | os.PathLike, *, int8: bool = False) -> Path:
    """The ONNX graph of `model_path`, exported on first use into :func:`cache_dir`."""
    digest = model_digest(model_path)
    path = cache_dir() / f"{digest}{'.int8' if int8 else ''}.onnx"
    if not path.exists():
        try:
            export_onnx(model_path, path, int8=int8)
        except OSError as exc:
            raise CheckpointError(f"{model_path}: cannot write the ONNX export to {path.parent} ({exc}); "
                                  "set ADV_CACHE_DIR to a writable folder") from None
    return path


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
