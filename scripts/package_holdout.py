#!/usr/bin/env python
"""Held-out packages: split a multi-package corpus by package, and score detectors on the held-out part.

The validation and test splits come from the training packages, so they cannot show whether music
from more packages helps on music from packages never learnt from. This measures it:

    # 1. split the extra-sources corpus into the packages to learn from (a) and the rest (b)
    A=amoebax-data,enigma-data,freecol,freedink-data,fretsonfire-songs-muldjord,hyperrogue-music
    A=$A,openarena-088-data,searchandrescue-data,starfighter-data,warzone2100-music,xmoto-data
    .venv/bin/python scripts/package_holdout.py split --corpus ../corpus_sources --packages $A \\
        --out-a ../corpus_sources_halfA --out-b ../corpus_sources_halfB
    # 2. train heads and trees with ../corpus_sources_halfA added to extra_train (features
    #    ../features_sources_halfA), e.g. runs/v18
    # 3. score the model without and with (a) on (b); --corpus makes b's feature cache when it is missing
    .venv/bin/python scripts/package_holdout.py eval --corpus ../corpus_sources_halfB \\
        --features ../features_holdout_halfB/train \\
        --models runs/v14/detector.pt runs/v18/detector.pt --out runs/v18/package_holdout.json

Each model is scored at its own thresholds; the clip ROC AUC (damaged vs clean) compares them free of
threshold. Nothing in the source corpus is copied or changed: the parts link to its clips.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adv.features.feature_cache import build_feature_cache
from adv.models.model_file import load_detector
from adv.training.package_holdout import metrics_on_packages, split_by_package


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("split", help="two corpora by package over one corpus's clips")
    sp.add_argument("--corpus", required=True, type=Path)
    sp.add_argument("--packages", required=True, help="comma-separated packages of part a (the rest: part b)")
    sp.add_argument("--out-a", required=True, type=Path)
    sp.add_argument("--out-b", required=True, type=Path)
    ev = sub.add_parser("eval", help="detectors on a cached split of held-out packages")
    ev.add_argument("--features", required=True, type=Path, help="a cached split, e.g. ../features_sources_halfB/train")
    ev.add_argument("--models", required=True, nargs="+")
    ev.add_argument(
        "--corpus",
        default=None,
        type=Path,
        help="the held-out corpus: when --features is missing, "
        "its clips are cached there first, at the level the validator sees (no training gain)",
    )
    ev.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.cmd == "split":
        try:
            res = split_by_package(a.corpus, [p.strip() for p in a.packages.split(",") if p.strip()], a.out_a, a.out_b)
        except (ValueError, FileExistsError, FileNotFoundError) as e:
            raise SystemExit(f"package_holdout split: {e}")
        for k, v in res.items():
            print(f"part {k}: {v['clips']} clips of {len(v['packages'])} packages -> {v['folder']}")
        return
    if not (a.features / "index.csv").exists():
        if a.corpus is None:
            raise SystemExit(
                f"package_holdout eval: {a.features} is not a feature cache (no index.csv); pass --corpus to make it"
            )
        if a.features.name != "train":
            raise SystemExit(
                f"package_holdout eval: --features must end in /train to be made from --corpus "
                f"(the corpus's clips are all in its train split), not {a.features}"
            )
        build_feature_cache(a.corpus, a.features.parent, splits=("train",))
    out = {}
    for m in a.models:
        det, meta = load_detector(m)
        out[m] = metrics_on_packages(det, meta, a.features)
        r = out[m]
        print(
            f"{m}: {r['clips']} clips of {r['packages']} packages, ROC AUC {r['roc_auc']:.4f}, binary F1 "
            f"{r['binary_f1']:.4f}, macro-F1 {r['macro_f1']:.4f}, clean false alarms {r['clean_false_alarm_rate']:.1%}"
        )
        print("  per-class F1 " + ", ".join(f"{k} {v:.3f}" for k, v in r["per_class_f1"].items()))
        print(
            "  clean false alarms by package "
            + ", ".join(f"{k} {v:.0%}" for k, v in r["clean_false_alarms_by_package"].items())
        )
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1))
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
