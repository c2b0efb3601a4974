"""Severity regressors: one gradient-boosted tree ensemble per distortion kind, held as tensors.

Each kind's severity is estimated by a scikit-learn ``HistGradientBoostingRegressor`` trained on
the signal features of the clips that have that kind (``adv.training.train_severity``). The MLP
head's severity output is a by-product of its type training (it stops early on the type score);
the trees fit the severity maps much more closely (clipping and codec severities are near-exact
functions of a few features, which trees split on directly).

For inference the fitted trees are converted into flat tensors so that they live in the detector
file (loaded with ``weights_only=True``, no pickled sklearn objects), run in torch and export to
ONNX with the rest of the detector: a clip walks every tree at once, one level per step, with
gathers; leaves point to themselves, so a fixed number of steps (the deepest tree) reaches every
leaf. Inputs must be finite (the signal features are); a NaN would go right at every split.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from adv import DISTORTION_KINDS


class SeverityTrees(nn.Module):
    """[B, n_signal] raw signal features -> [B, 5] severities in [0, 1]."""

    def __init__(self, n_signal: int, n_trees: int, n_nodes: int, depth: int):
        super().__init__()
        self.n_signal, self.depth = int(n_signal), int(depth)
        self.register_buffer("feature", torch.zeros(n_trees * n_nodes, dtype=torch.int32))
        self.register_buffer("threshold", torch.zeros(n_trees * n_nodes))
        self.register_buffer("left", torch.zeros(n_trees * n_nodes, dtype=torch.int32))
        self.register_buffer("right", torch.zeros(n_trees * n_nodes, dtype=torch.int32))
        self.register_buffer("value", torch.zeros(n_trees * n_nodes))
        self.register_buffer("root", torch.arange(n_trees, dtype=torch.int32) * n_nodes)  # flat index of each root
        self.register_buffer("kind_onehot", torch.zeros(n_trees, len(DISTORTION_KINDS)))
        self.register_buffer("baseline", torch.zeros(len(DISTORTION_KINDS)))

    @property
    def n_trees(self) -> int:
        return int(self.root.numel())

    @property
    def n_nodes(self) -> int:
        return self.feature.numel() // max(self.n_trees, 1)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        x = signal.float()
        node = self.root.long().unsqueeze(0).expand(x.shape[0], -1)  # [B, T] flat node indices
        feature, left, right = self.feature.long(), self.left.long(), self.right.long()
        for _ in range(self.depth):
            xv = torch.gather(x, 1, feature[node])
            node = torch.where(xv <= self.threshold[node], left[node], right[node])
        raw = self.value[node] @ self.kind_onehot + self.baseline
        return raw.clamp(0.0, 1.0)

    @classmethod
    def from_sklearn(cls, regressors: list, n_signal: int) -> "SeverityTrees":
        """From one fitted ``HistGradientBoostingRegressor`` per kind (order of DISTORTION_KINDS).

        Relies on the estimator's fitted tree arrays (``_predictors``, ``_baseline_prediction``);
        ``tests/test_severity_trees.py`` checks the result against ``predict`` for the pinned
        scikit-learn."""
        if len(regressors) != len(DISTORTION_KINDS):
            raise ValueError(f"need {len(DISTORTION_KINDS)} regressors, got {len(regressors)}")
        trees, kinds = [], []
        for k, reg in enumerate(regressors):
            for (pred,) in reg._predictors:
                if getattr(pred, "is_categorical", None) is not None and np.any(pred.nodes["is_categorical"]):
                    raise ValueError("categorical splits are not supported")
                trees.append(pred.nodes)
                kinds.append(k)
        n_nodes = max(len(t) for t in trees)
        model = cls(n_signal, len(trees), n_nodes, depth=max(int(t["depth"].max()) for t in trees))
        feat = np.zeros((len(trees), n_nodes), np.int32)
        thr = np.full((len(trees), n_nodes), np.inf, np.float32)
        left = np.zeros((len(trees), n_nodes), np.int32)
        right = np.zeros((len(trees), n_nodes), np.int32)
        value = np.zeros((len(trees), n_nodes), np.float32)
        for t, nodes in enumerate(trees):
            base = t * n_nodes
            n = len(nodes)
            leaf = nodes["is_leaf"].astype(bool)
            idx = np.arange(n)
            feat[t, :n] = np.where(leaf, 0, nodes["feature_idx"])
            thr[t, :n] = np.where(leaf, np.inf, nodes["num_threshold"])
            left[t, :n] = base + np.where(leaf, idx, nodes["left"])
            right[t, :n] = base + np.where(leaf, idx, nodes["right"])
            value[t, :n] = np.where(leaf, nodes["value"], 0.0)
            left[t, n:] = right[t, n:] = base + np.arange(n, n_nodes)  # padding: unreachable self-loops
        onehot = np.zeros((len(trees), len(DISTORTION_KINDS)), np.float32)
        onehot[np.arange(len(trees)), kinds] = 1.0
        base = np.array([float(np.ravel(r._baseline_prediction)[0]) for r in regressors], np.float32)
        for name, arr in (("feature", feat.ravel()), ("threshold", thr.ravel()), ("left", left.ravel()),
                          ("right", right.ravel()), ("value", value.ravel()), ("kind_onehot", onehot),
                          ("baseline", base)):
            getattr(model, name).copy_(torch.from_numpy(arr))
        return model

    def entry(self) -> dict:
        """What the detector file stores (plain tensors and ints)."""
        return {"n_signal": self.n_signal, "n_trees": self.n_trees, "n_nodes": self.n_nodes,
                "depth": self.depth, "state": self.state_dict()}

    @classmethod
    def from_entry(cls, e: dict) -> "SeverityTrees":
        model = cls(e["n_signal"], e["n_trees"], e["n_nodes"], e["depth"])
        model.load_state_dict(e["state"])
        return model
