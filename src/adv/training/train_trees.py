"""Stage 3: gradient-boosted tree ensembles on the signal features.

* Severity: one regressor per kind learns that kind's severity from the training clips that have
  the kind (the severity of an absent kind is not defined, so those clips are left out).
* Types: one binary classifier per class (clean clips weighted like in the MLP heads); their
  probabilities are averaged with the heads' at inference (``[types] trees_blend``).

The fitted ensembles are converted to tensors (`adv.models.tree_ensemble`) so that they are stored
in the detector file and run inside the exported ONNX graph.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from adv import CLASSES, DISTORTION_KINDS
from adv.models.tree_ensemble import SeverityTrees, TypeTrees
from adv.training.train_head import HeadData


def _hgb_kwargs(cfg: dict, seed: int) -> dict:
    return {
        "max_iter": int(cfg.get("max_iter", 400)),
        "learning_rate": float(cfg.get("learning_rate", 0.05)),
        "max_leaf_nodes": int(cfg.get("max_leaf_nodes", 15)),
        "min_samples_leaf": int(cfg.get("min_samples_leaf", 20)),
        "early_stopping": False,
        "random_state": seed,
    }


def fit_severity_trees(train: HeadData, scfg: dict, seed: int) -> SeverityTrees:
    """``scfg``: the ``[severity]`` config table (loss, max_iter, learning_rate, max_leaf_nodes,
    min_samples_leaf)."""
    regressors = []
    for k, kind in enumerate(DISTORTION_KINDS):
        present = train.severity[:, k] > 0
        if present.sum() < 2 * int(scfg.get("min_samples_leaf", 20)):
            raise ValueError(f"too few training clips with {kind} ({int(present.sum())}) for its severity regressor")
        reg = HistGradientBoostingRegressor(loss=scfg.get("loss", "absolute_error"), **_hgb_kwargs(scfg, seed))
        reg.fit(train.signal[present].astype(np.float32), train.severity[present, k])
        regressors.append(reg)
    return SeverityTrees.from_sklearn(regressors, train.signal.shape[1])


def fit_type_trees(train: HeadData, tcfg: dict, seed: int, clean_weight: float = 1.0) -> TypeTrees:
    """``tcfg``: the ``[types]`` config table (trees_blend, max_iter, learning_rate, max_leaf_nodes,
    min_samples_leaf); clean clips weigh ``clean_weight`` in the clean classifier."""
    classifiers = []
    x = train.signal.astype(np.float32)
    for c, name in enumerate(CLASSES):
        y = train.labels[:, c].astype(int)
        if y.min() == y.max():
            raise ValueError(f"the training data has no {'positive' if y.max() == 0 else 'negative'} {name} clips")
        w = np.where(y == 1, clean_weight, 1.0) if c == 0 else None
        classifiers.append(HistGradientBoostingClassifier(**_hgb_kwargs(tcfg, seed)).fit(x, y, sample_weight=w))
    trees = TypeTrees.from_sklearn(classifiers, train.signal.shape[1])
    trees.blend.copy_(torch.tensor(float(tcfg.get("trees_blend", 0.5))))
    return trees
