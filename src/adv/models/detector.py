"""The distortion detector: PANN backbone embedding + signal features -> type and severity heads.

Two stages share this module:
  1. `BackboneTrainer` model: PANN backbone + a linear multi-task head on the log-mel only (trains
     the embedding on in-domain audio).
  2. `DistortionHead`: a small MLP on [embedding, standardised signal features] giving six type
     logits (clean, clipping, mp3, noise, eq, phase) and five severities in [0, 1]; per-class
     temperatures calibrate the type probabilities. `HeadEnsemble` averages several such heads.
`DistortionDetector` chains backbone and head(s) for inference; when the detector file has tree
ensembles (`adv.models.tree_ensemble`), the type trees' probabilities are blended with the heads'
and the severity trees replace the heads' severity output. Its first output column is the clean
score (:func:`clean_score`) on which the has-distortion threshold acts.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import norm
from torch import nn

from adv import CLASSES, DISTORTION_KINDS
from adv.models.pann import build_pann


def clean_score(probs: torch.Tensor, mix: float | torch.Tensor) -> torch.Tensor:
    """``probs`` [B, 6] with column 0 replaced by ``(1 - mix) * P(clean) + mix * (1 - max_k P(kind k))``.

    The clean class and the five kinds are separate (multi-label) outputs, so a clip can have both
    P(clean) and P(noise) near 0.5; with ``mix`` > 0 a strongly indicated kind also counts against
    "clean". ``mix`` is chosen on validation with the threshold (``[decision] clean_mix``).
    """
    worst = probs[:, 1:].max(dim=1).values
    clean = (1.0 - mix) * probs[:, 0] + mix * (1.0 - worst)
    return torch.cat([clean.unsqueeze(1), probs[:, 1:]], dim=1)


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

    def __init__(self, embed_dim: int, n_signal: int, hidden: int = 256, dropout: float = 0.2, n_knots: int = 0):
        super().__init__()
        self.embed_dim, self.n_signal, self.n_knots = embed_dim, n_signal, n_knots
        self.register_buffer("sig_mean", torch.zeros(n_signal))
        self.register_buffer("sig_std", torch.ones(n_signal))
        if n_knots:  # quantile normalisation: a monotone piecewise-linear map per feature (fit_quantiles)
            self.register_buffer("knot_lo", torch.zeros(n_signal, n_knots - 1))
            self.register_buffer("knot_hi", torch.zeros(n_signal, n_knots - 1))
            self.register_buffer("knot_slope", torch.zeros(n_signal, n_knots - 1))
            self.register_buffer("knot_v0", torch.zeros(n_signal))
        self.register_buffer("temperature", torch.ones(len(CLASSES)))
        self.body = nn.Sequential(
            nn.Linear(embed_dim + n_signal, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.type_out = nn.Linear(hidden, len(CLASSES))
        self.sev_out = nn.Linear(hidden, len(DISTORTION_KINDS))

    def fit_quantiles(self, signal: np.ndarray) -> None:
        """Maps each signal feature through its training quantiles onto a standard normal scale
        (like sklearn's QuantileTransformer: tied quantiles share their mean level), which tames
        the heavy-tailed features; values outside the training range saturate at about ±3.1."""
        k = self.n_knots
        levels = np.linspace(0.0, 1.0, k)
        q = np.quantile(signal.astype(np.float64), levels, axis=0).T  # [S, K]
        knots, values = np.zeros_like(q), np.zeros_like(q)
        for j in range(q.shape[0]):
            uniq, inv = np.unique(q[j], return_inverse=True)
            lv = np.array([levels[inv == i].mean() for i in range(len(uniq))])
            knots[j, : len(uniq)], knots[j, len(uniq) :] = uniq, uniq[-1]
            v = norm.ppf(np.clip(lv, 1e-3, 1 - 1e-3))
            values[j, : len(uniq)], values[j, len(uniq) :] = v, v[-1]
        width = np.diff(knots, axis=1)
        slope = np.where(width > 0, np.diff(values, axis=1) / np.where(width > 0, width, 1.0), 0.0)
        for name, arr in (
            ("knot_lo", knots[:, :-1]),
            ("knot_hi", knots[:, 1:]),
            ("knot_slope", slope),
            ("knot_v0", values[:, 0]),
        ):
            getattr(self, name).copy_(torch.from_numpy(arr.astype(np.float32)))

    def normalise_signal(self, signal: torch.Tensor) -> torch.Tensor:
        if not self.n_knots:
            return (signal - self.sig_mean) / self.sig_std
        x = signal.unsqueeze(-1)  # min/max rather than clamp: ONNX Clip takes scalar bounds only
        seg = torch.minimum(torch.maximum(x, self.knot_lo), self.knot_hi) - self.knot_lo
        return self.knot_v0 + (seg * self.knot_slope).sum(dim=-1)

    def forward(self, embedding: torch.Tensor, signal: torch.Tensor) -> dict:
        parts = []
        if self.embed_dim:
            parts.append(embedding)
        if self.n_signal:
            parts.append(self.normalise_signal(signal))
        h = self.body(torch.cat(parts, dim=1))
        logits = self.type_out(h)
        return {
            "type_logits": logits,
            "calibrated_logits": logits / self.temperature,
            "severity": torch.sigmoid(self.sev_out(h)),
        }

    def probabilities(
        self, embedding: torch.Tensor, signal: torch.Tensor, calibrated: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(type probabilities [B, 6], severities [B, 5])."""
        out = self(embedding, signal)
        return torch.sigmoid(out["calibrated_logits"] if calibrated else out["type_logits"]), out["severity"]


class HeadEnsemble(nn.Module):
    """Several independently trained (and calibrated) heads; probabilities and severities are
    averaged. Has the same inputs and ``embed_dim`` / ``n_signal`` as one head."""

    def __init__(self, heads: list[DistortionHead]):
        super().__init__()
        if not heads:
            raise ValueError("an ensemble needs at least one head")
        self.heads = nn.ModuleList(heads)
        self.embed_dim, self.n_signal = heads[0].embed_dim, heads[0].n_signal

    def probabilities(
        self, embedding: torch.Tensor, signal: torch.Tensor, calibrated: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Means of the heads' type probabilities and severities."""
        outs = [h.probabilities(embedding, signal, calibrated) for h in self.heads]
        return torch.stack([p for p, _ in outs]).mean(dim=0), torch.stack([v for _, v in outs]).mean(dim=0)


class DistortionDetector(nn.Module):
    """Inference model: log-mel -> backbone embedding; + signal features -> head (or heads) for the
    type probabilities (blended with the type trees' when there are any; column 0 is the clean score
    with ``clean_mix``, see :func:`clean_score`) and severities (the severity trees' when there are any)."""

    def __init__(
        self,
        backbone: nn.Module,
        head: DistortionHead | HeadEnsemble,
        severity: nn.Module | None = None,
        type_trees: nn.Module | None = None,
        clean_mix: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= float(clean_mix) <= 1.0:
            raise ValueError(f"clean_mix must be between 0 and 1, got {clean_mix!r}")
        self.backbone = backbone
        self.head = head
        self.severity = severity
        self.type_trees = type_trees
        self.clean_mix = float(clean_mix)

    def forward(self, logmel: torch.Tensor, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.backbone.forward_logmel(logmel)["embedding"]
        probs, sev = self.head.probabilities(emb, signal)
        if self.type_trees is not None:
            probs = self.type_trees.mix(probs, signal)
        if self.clean_mix > 0:
            probs = clean_score(probs, self.clean_mix)
        if self.severity is not None:
            sev = self.severity(signal)
        return probs, sev
