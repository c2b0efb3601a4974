"""Stage 3: the severity regressors, one gradient-boosted tree ensemble per kind.

Each kind's regressor learns that kind's severity from the signal features of the training clips
that have the kind (the severity of an absent kind is not defined, so those clips are left out).
The fitted ensembles are converted to tensors (`adv.models.severity_trees.SeverityTrees`) so that
they are stored in the detector file and run inside the exported ONNX graph.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from adv import DISTORTION_KINDS
from adv.models.severity_trees import SeverityTrees
from adv.training.train_head import HeadData


def fit_severity_trees(train: HeadData, scfg: dict, seed: int) -> SeverityTrees:
    """``scfg``: the ``[severity]`` config table (loss, max_iter, learning_rate, max_leaf_nodes,
    min_samples_leaf)."""
    regressors = []
    for k, kind in enumerate(DISTORTION_KINDS):
        present = train.severity[:, k] > 0
        if present.sum() < 2 * int(scfg.get("min_samples_leaf", 20)):
            raise ValueError(f"too few training clips with {kind} ({int(present.sum())}) for its severity regressor")
        reg = HistGradientBoostingRegressor(
            loss=scfg.get("loss", "absolute_error"), max_iter=int(scfg.get("max_iter", 400)),
            learning_rate=float(scfg.get("learning_rate", 0.05)), max_leaf_nodes=int(scfg.get("max_leaf_nodes", 15)),
            min_samples_leaf=int(scfg.get("min_samples_leaf", 20)), early_stopping=False, random_state=seed)
        reg.fit(train.signal[present].astype(np.float32), train.severity[present, k])
        regressors.append(reg)
    return SeverityTrees.from_sklearn(regressors, train.signal.shape[1])
