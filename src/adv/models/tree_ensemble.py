"""Gradient-boosted tree ensembles on the signal features, held as tensors.

Two uses (``adv.training.train_trees``), each one scikit-learn ``HistGradientBoosting*`` model per
output:

* :class:`SeverityTrees`: one regressor per distortion kind, trained on the clips that have that
  kind. The MLP head's severity output is a by-product of its type training (it stops early on the
  type score); trees fit the severity maps much more closely (clipping and codec severities are
  near-exact functions of a few features, which trees split on directly).
* :class:`TypeTrees`: one binary classifier per class (clean, clipping, ...); their probabilities
  are averaged with the MLP heads' (two different model families err differently).

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


class TreeEnsemble(nn.Module):
    """[B, n_signal] raw signal features -> [B, n_outputs] raw scores (sum of leaf values + baseline)."""

    def __init__(self, n_signal: int, n_trees: int, n_nodes: int, depth: int, n_outputs: int):
        super().__init__()
        self.n_signal, self.depth, self.n_outputs = int(n_signal), int(depth), int(n_outputs)
        self.register_buffer("feature", torch.zeros(n_trees * n_nodes, dtype=torch.int32))
        self.register_buffer("threshold", torch.zeros(n_trees * n_nodes))
        self.register_buffer("left", torch.zeros(n_trees * n_nodes, dtype=torch.int32))
        self.register_buffer("right", torch.zeros(n_trees * n_nodes, dtype=torch.int32))
        self.register_buffer("value", torch.zeros(n_trees * n_nodes))
        self.register_buffer("root", torch.arange(n_trees, dtype=torch.int32) * n_nodes)  # flat index of each root
        self.register_buffer("output_onehot", torch.zeros(n_trees, n_outputs))
        self.register_buffer("baseline", torch.zeros(n_outputs))

    @property
    def n_trees(self) -> int:
        return int(self.root.numel())

    @property
    def n_nodes(self) -> int:
        return self.feature.numel() // max(self.n_trees, 1)

    def raw(self, signal: torch.Tensor) -> torch.Tensor:
        x = signal.float()
        node = self.root.long().unsqueeze(0).expand(x.shape[0], -1)  # [B, T] flat node indices
        feature, left, right = self.feature.long(), self.left.long(), self.right.long()
        for _ in range(self.depth):
            xv = torch.gather(x, 1, feature[node])
            node = torch.where(xv <= self.threshold[node], left[node], right[node])
        return self.value[node] @ self.output_onehot + self.baseline

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        return self.raw(signal)

    @classmethod
    def from_sklearn(cls, estimators: list, n_signal: int) -> "TreeEnsemble":
        """From one fitted single-output ``HistGradientBoostingRegressor`` or binary
        ``HistGradientBoostingClassifier`` per output (their raw scores: the regression value, or
        the log-odds of class 1).

        Relies on the estimator's fitted tree arrays (``_predictors``, ``_baseline_prediction``);
        ``tests/test_tree_ensemble.py`` checks the result against ``predict`` / ``predict_proba``
        for the pinned scikit-learn."""
        trees, outputs = [], []
        for k, est in enumerate(estimators):
            if len(est._predictors[0]) != 1:
                raise ValueError("only single-output regressors and binary classifiers are supported")
            for (pred,) in est._predictors:
                if np.any(pred.nodes["is_categorical"]):
                    raise ValueError("categorical splits are not supported")
                trees.append(pred.nodes)
                outputs.append(k)
        n_nodes = max(len(t) for t in trees)
        model = cls(n_signal, len(trees), n_nodes, max(int(t["depth"].max()) for t in trees), len(estimators))
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
        onehot = np.zeros((len(trees), len(estimators)), np.float32)
        onehot[np.arange(len(trees)), outputs] = 1.0
        baselines = np.array([float(np.ravel(e._baseline_prediction)[0]) for e in estimators], np.float32)
        for name, arr in (
            ("feature", feat.ravel()),
            ("threshold", thr.ravel()),
            ("left", left.ravel()),
            ("right", right.ravel()),
            ("value", value.ravel()),
            ("output_onehot", onehot),
            ("baseline", baselines),
        ):
            getattr(model, name).copy_(torch.from_numpy(arr))
        return model

    def entry(self) -> dict:
        """What the detector file stores (plain tensors and ints)."""
        return {
            "n_signal": self.n_signal,
            "n_trees": self.n_trees,
            "n_nodes": self.n_nodes,
            "depth": self.depth,
            "n_outputs": self.n_outputs,
            "state": self.state_dict(),
        }

    @classmethod
    def from_entry(cls, e: dict) -> "TreeEnsemble":
        model = cls(e["n_signal"], e["n_trees"], e["n_nodes"], e["depth"], e["n_outputs"])
        model.load_state_dict(e["state"])
        return model


class SeverityTrees(TreeEnsemble):
    """One regressor per kind: [B, n_signal] -> [B, 5] severities, clipped to [0, 1]."""

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        return self.raw(signal).clamp(0.0, 1.0)


class TypeTrees(TreeEnsemble):
    """One binary classifier per class: [B, n_signal] -> [B, 6] probabilities. ``blend`` (stored
    with the trees) is their weight when averaged with the MLP heads' probabilities."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("blend", torch.tensor(0.5))

    def mix(self, head_probs: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
        """``(1 - blend) * head_probs + blend * trees' probabilities``."""
        return (1.0 - self.blend) * head_probs + self.blend * self(signal)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.raw(signal))
