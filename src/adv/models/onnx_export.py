"""Exports a detector file to one ONNX graph (log-mel front end + backbone + head), with torch.

Graph inputs / outputs (batch and length are dynamic)::

    mono    float32 [B, L]   mono mix at the model's sample rate (32 kHz)
    signal  float32 [B, D]   raw signal features (adv.features.signal_features)
    ->
    probs    float32 [B, 6]  calibrated type probabilities (clean, clipping, mp3, noise, eq, phase)
    severity float32 [B, 5]  severities in [0, 1]

`export_onnx` writes it (opset 17, TorchScript exporter); `quantize_int8` makes a dynamically
quantised variant. Running the graph needs no torch (adv.inference.onnx_backend).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from adv.inference.onnx_backend import INPUT_NAMES, OPSET, OUTPUT_NAMES, atomic_target


class WaveformDetector(nn.Module):
    """DistortionDetector with its log-mel front end: (mono [B, L], signal [B, D]) -> (probs, severity)."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, mono: torch.Tensor, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bb = self.detector.backbone
        mel = bb.logmel_extractor(bb.spectrogram_extractor(mono))  # extract_logmel minus its python checks
        return self.detector(mel, signal)


def export_onnx(
    model_path: str | os.PathLike, onnx_path: str | os.PathLike, *, int8: bool = False
) -> tuple[Path, dict]:
    """Exports the detector file `model_path` to `onnx_path` (fp32; with int8=True the quantised
    variant is written there instead) and returns (path, the model's metadata). The file appears
    atomically (safe with concurrent callers)."""
    from adv.models.model_file import load_detector

    model, meta = load_detector(model_path)
    wrapped = WaveformDetector(model).eval()
    sr = int(meta["frontend"]["sample_rate"])
    n_sig = int(model.head.n_signal)
    mono = torch.randn(2, int(3.0 * sr)) * 0.1
    signal = torch.zeros(2, n_sig)
    out = Path(onnx_path)
    tmp = atomic_target(out)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                (mono, signal),
                str(tmp),
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                opset_version=OPSET,
                dynamo=False,
                do_constant_folding=True,
                dynamic_axes={
                    "mono": {0: "batch", 1: "samples"},
                    "signal": {0: "batch"},
                    "probs": {0: "batch"},
                    "severity": {0: "batch"},
                },
            )
        if int8:
            quantize_int8(tmp, tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out, {**meta, "n_signal": n_sig}


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
    front = [
        n.name
        for n in onnx.load(str(src), load_external_data=False).graph.node
        if "spectrogram_extractor" in n.name or "logmel_extractor" in n.name
    ]
    tmp = atomic_target(dst)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(src), str(tmp), weight_type=QuantType.QUInt8, op_types_to_quantize=["Conv"], nodes_to_exclude=front
            )
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst
