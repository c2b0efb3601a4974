"""Compares a gradient-boosted head with the shipped MLP head on the same inputs (experiment).

usage: .venv/bin/python scripts/compare_gbm_head.py RUN_DIR FEATURES_DIR [--floor 0.0]
Uses RUN_DIR/embeddings_{train,test}.npz and the cached signal features; prints test metrics of
one HistGradientBoosting classifier per class (clean clips weighted like the MLP head).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from adv.features.feature_cache import CachedSplit
from adv.training.metrics import compute_metrics


def load(run: str, features: str, split: str, floor: float):
    cs = CachedSplit(f"{features}/{split}")
    emb = np.load(f"{run}/embeddings_{split}.npz")["embedding"]
    worst = cs.severity.max(axis=1)
    keep = (worst == 0) | (worst >= floor)
    return np.hstack([cs.signal, emb])[keep], cs.labels[keep], cs.severity[keep]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("features_dir")
    ap.add_argument("--floor", type=float, default=0.0)
    ap.add_argument("--clean-weight", type=float, default=3.0)
    a = ap.parse_args()
    x_tr, y_tr, _ = load(a.run_dir, a.features_dir, "train", a.floor)
    x_te, y_te, s_te = load(a.run_dir, a.features_dir, "test", a.floor)
    probs = np.zeros_like(y_te)
    for c in range(y_tr.shape[1]):
        w = np.where(y_tr[:, 0] == 1, a.clean_weight, 1.0) if c == 0 else None
        clf = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.08, random_state=0)
        probs[:, c] = clf.fit(x_tr, y_tr[:, c], sample_weight=w).predict_proba(x_te)[:, 1]
    m = compute_metrics(y_te, probs, s_te, s_te)  # severities not modelled here
    print(json.dumps({"macro_f1": round(m["macro_f1"], 4), "binary_f1": round(m["binary_f1"], 4),
                      "per_class_f1": {k: round(v, 3) for k, v in m["per_class_f1"].items()}}, indent=2))


if __name__ == "__main__":
    main()
