"""The distortion detector: PANN backbone embedding + signal features -> type and severity heads.

Two stages share this module:
  1. `BackboneTrainer` model: PANN backbone + a linear multi-task head on the log-mel only (trains
     the embedding on in-domain audio).
  2. `DistortionHead`: a small MLP on [embedding, standardised signal features] giving six type
     logits (clean, clipping, mp3, noise, eq, phase) and five severities in [0, 1]; per-class
     temperatures calibrate the type probabilities.
`DistortionDetector` chains backbone and head for inference.
"""

from __future__ import annotations

import torch
from torch import nn

from adv import CLASSES, DISTORTION_KINDS
from adv.models.pann import build_pann


class BackboneWithHead(nn.Module):
    """Stage 1: PANN backbone with a linear type + severity head on its embedding."""

    def __init__(self, backbone: str = "MobileNetV1", **backbone_kw):
        super().__init__()
        self.backbone = build_pann(backbone, **backbone_kw)
        dim = self.backbone.embedding_dim
        self.type_out = nn.Linear(dim, len(CLASSES))
        self.sev_out = nn.Linear(dim, len(DISTORTION_KINDS))

    def forward(self, logmel: torch.Tensor) -> dict:
        emb = self.backbone.forward_logmel(logmel)["embedding"]
        return {"type_logits": self.type_out(emb), "severity": torch.sigmoid(self.sev_out(emb)), "embedding": emb}


class DistortionHead(nn.Module):
    """Stage 2: MLP over [embedding, signal features] with calibrated type outputs."""

    def __init__(self, embed_dim: int, n_signal: int, hidden: int = 256, dropout: float = 0.2):
        super().__init__()
        self.embed_dim, self.n_signal = embed_dim, n_signal
        self.register_buffer("sig_mean", torch.zeros(n_signal))
        self.register_buffer("sig_std", torch.ones(n_signal))
        self.register_buffer("temperature", torch.ones(len(CLASSES)))
        self.body = nn.Sequential(
            nn.Linear(embed_dim + n_signal, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        )
        self.type_out = nn.Linear(hidden, len(CLASSES))
        self.sev_out = nn.Linear(hidden, len(DISTORTION_KINDS))

    def forward(self, embedding: torch.Tensor, signal: torch.Tensor) -> dict:
        parts = []
        if self.embed_dim:
            parts.append(embedding)
        if self.n_signal:
            parts.append((signal - self.sig_mean) / self.sig_std)
        h = self.body(torch.cat(parts, dim=1))
        logits = self.type_out(h)
        return {"type_logits": logits, "calibrated_logits": logits / self.temperature,
                "severity": torch.sigmoid(self.sev_out(h))}


class DistortionDetector(nn.Module):
    """Inference model: log-mel -> backbone embedding; + signal features -> head."""

    def __init__(self, backbone: nn.Module, head: DistortionHead):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, logmel: torch.Tensor, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.backbone.forward_logmel(logmel)["embedding"]
        out = self.head(emb, signal)
        return torch.sigmoid(out["calibrated_logits"]), out["severity"]
