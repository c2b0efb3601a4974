#!/usr/bin/env python
"""What limits the quality targets of issue 3 (binary F1 >= 0.97, macro-F1 >= 0.93, every class
F1 >= 0.85, severity MAE <= 5 points), measured on a corpus and its feature cache:

1. the detector's test metrics when only stronger damage counts (`adv evaluate --min-severity`);
2. how well severity follows from what each generator measured against the undamaged original
   (`adv.training.target_limits.severity_from_measured_effect`), next to the detector's MAE;
3. a learning curve over the training source tracks (type trees on the signal features,
   `adv.training.target_limits.learning_curve`).

    .venv/bin/python scripts/target_limits.py --corpus ../corpus --features ../features \
        --extra-features ../features_extra ../features_mastered --out runs/main/target_limits.json

About 8 minutes (16 with --extra-features) on 2 cores for corpus v5. `scripts/model_card.py --limits FILE` renders the JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from adv.config import load_toml
from adv.features.feature_cache import CachedSplit
from adv.models.model_file import SHIPPED_MODEL
from adv.training.evaluate import evaluate_model_on_cache
from adv.training.target_limits import learning_curve, severity_from_measured_effect, summarise_curve
from adv.training.train_head import HeadData

ROOT = Path(__file__).resolve().parent.parent


def _head_data(*splits: CachedSplit) -> HeadData:
    return HeadData(np.zeros((sum(len(s.labels) for s in splits), 0), np.float32),
                    np.concatenate([np.asarray(s.signal) for s in splits]),
                    np.concatenate([s.labels for s in splits]), np.concatenate([s.severity for s in splits]))


def _groups(*splits: CachedSplit) -> np.ndarray:
    return np.concatenate([s.index["source_track"].astype(str).to_numpy() for s in splits])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="corpus folder (its manifest.csv)")
    ap.add_argument("--features", required=True, help="its feature cache (train/val/test)")
    ap.add_argument("--model", default=str(SHIPPED_MODEL), help="detector file (default: the shipped one)")
    ap.add_argument("--config", default=str(ROOT / "configs/train.toml"), help="training config: [types] trees, clean weight")
    ap.add_argument("--extra-features", nargs="*", default=[], help="feature caches of extra training clips from the "
                    "same tracks (configs/train.toml extra_train): a second curve with them, to tell tracks from clips")
    ap.add_argument("--draws", type=int, default=2, help="random track draws per share below 100 %%")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    t0 = time.time()
    feat = Path(a.features)
    manifest = pd.read_csv(Path(a.corpus) / "manifest.csv")
    cfg = load_toml(a.config)

    out: dict = {"corpus": a.corpus, "features": a.features, "model": a.model}
    strata = {}
    for s in (0.0, 0.25, 0.5, 0.75):
        m = evaluate_model_on_cache(a.model, feat / "test", min_severity=s)
        strata[str(s)] = {"n": m["n"], "binary_f1": round(m["binary_f1"], 4), "macro_f1": round(m["macro_f1"], 4),
                          "clean_false_alarm_rate": round(m["clean_false_alarm_rate"], 4),
                          "per_class_f1": {k: round(v, 3) for k, v in m["per_class_f1"].items()},
                          "severity_mae_pp": {k: round(v, 1) for k, v in m["severity_mae_pp"].items()}}
        print(f"test, damage with severity >= {s}: {strata[str(s)]}", flush=True)
    out["test_by_min_severity"] = strata

    out["severity_from_measured_effect"] = severity_from_measured_effect(manifest)
    for k, v in out["severity_from_measured_effect"].items():
        print(f"severity of {k} from the measured effect: {v}", flush=True)

    train, val, test = (CachedSplit(feat / s) for s in ("train", "val", "test"))
    curves = {"learning_curve": [train]}
    if a.extra_features:
        curves["learning_curve_with_extra"] = [train, *(CachedSplit(Path(f) / "train") for f in a.extra_features)]
    for name, splits in curves.items():
        rows = learning_curve(_head_data(*splits), _groups(*splits), _head_data(val), _head_data(test),
                              cfg.get("types", {}), draws=a.draws, seed=int(cfg.get("seed", 0)),
                              clean_weight=float(cfg.get("head", {}).get("clean_weight", 1.0)))
        for r in rows:
            print(f"{name}: {r}", flush=True)
        out[name] = {"rows": rows, **summarise_curve(rows),
                     "rule": "type trees on the signal features; threshold flags 15 % of the clean validation clips"}
    out["seconds"] = round(time.time() - t0, 1)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {a.out} ({out['seconds']} s)")


if __name__ == "__main__":
    main()
