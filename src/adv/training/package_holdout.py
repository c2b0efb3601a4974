"""Held-out packages: does music from more packages help on packages never learnt from?

A corpus built from several source packages (e.g. `adv data build --extra-train extra_train_sources`)
is split by package into two corpora (`split_by_package`): one joins a training run's `extra_train`,
the other is held out, and `metrics_on_packages` scores detectors on it, per package too. The
validation and test splits cannot show this: their tracks come from the training packages.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from adv.features.feature_cache import CachedSplit
from adv.training.evaluate import predict_cached
from adv.training.metrics import rounded_summary


def package_of(source_track: pd.Series) -> np.ndarray:
    """The package of each clip's source track ("package:path" in manifests and cache indexes)."""
    return source_track.astype(str).str.split(":").str[0].to_numpy()


def split_by_package(corpus: Path, packages_a: list[str], out_a: Path, out_b: Path) -> dict:
    """Write two corpora over `corpus`'s clips: the clips of `packages_a` and those of every other
    package. Each gets its manifest rows, a `clips` link to the original clips (nothing is copied or
    changed) and the original summary with its own packages and clip count."""
    manifest = pd.read_csv(corpus / "manifest.csv")
    pkg = manifest["package"].astype(str) if "package" in manifest else pd.Series(package_of(manifest["source_track"]))
    known = set(pkg)
    unknown = sorted(set(packages_a) - known)
    if unknown:
        raise ValueError(f"{corpus}: no clips from package(s) {', '.join(unknown)}")
    in_a = pkg.isin(packages_a).to_numpy()
    summary = json.loads((corpus / "summary.json").read_text())
    out = {}
    for name, folder, rows in (("a", out_a, in_a), ("b", out_b, ~in_a)):
        if not rows.any():
            raise ValueError(f"{corpus}: part {name} would have no clips")
        folder.mkdir(parents=True, exist_ok=False)
        manifest[rows].to_csv(folder / "manifest.csv", index=False)
        (folder / "clips").symlink_to((corpus / "clips").resolve(), target_is_directory=True)
        packages = sorted(set(pkg[rows]))
        part = _part_summary(summary, manifest[rows], packages, corpus)
        (folder / "summary.json").write_text(json.dumps(part, indent=1))
        out[name] = {"folder": str(folder), "clips": int(rows.sum()), "packages": packages}
    return out


def _part_summary(summary: dict, rows: pd.DataFrame, packages: list[str], corpus: Path) -> dict:
    """The original summary with the counts of one part recomputed; per-clip tables it cannot
    recompute (clips per severity bin) are left out."""
    part = {k: v for k, v in summary.items() if k != "class_by_severity_bin"}
    tracks = int(rows["source_track"].nunique())
    part.update(
        {
            "clips": len(rows),
            "packages": packages,
            "split_from": str(corpus),
            "source_tracks": tracks,
            "clips_per_split": {"train": len(rows)},
            "tracks_per_split": {"train": tracks},
            "clips_per_label": {str(k): int(v) for k, v in rows["labels"].astype(str).value_counts().items()},
        }
    )
    if "duration_s" in rows:
        part["hours"] = round(float(rows["duration_s"].sum()) / 3600, 2)
    if "mastering" in rows:
        part["mastered_clips"] = int((rows["mastering"].fillna("{}").astype(str).str.len() > 2).sum())
    return part


def metrics_on_packages(det, meta: dict, split_dir: Path) -> dict:
    """A detector on a cached split of clips from packages it did not learn from: the usual metrics at
    its own thresholds, the clip ROC AUC of damaged vs clean (threshold-free), and the clean false
    alarms per package."""
    split = CachedSplit(split_dir)
    probs, sev = predict_cached(det, split)
    thr = meta["threshold"]
    summary = rounded_summary(split.labels, probs, split.severity, sev, thr, meta.get("kind_threshold", thr))
    clean = split.labels[:, 0] == 1
    pkg = package_of(split.index["source_track"])
    fa = {p: round(float((probs[clean & (pkg == p), 0] < thr).mean()), 3) for p in sorted(set(pkg[clean]))}
    auc = float(roc_auc_score(~clean, -probs[:, 0])) if 0 < clean.sum() < len(clean) else float("nan")
    return {
        "features": str(split_dir),
        "clips": summary.pop("n"),
        "packages": len(set(pkg)),
        **summary,
        "roc_auc": round(auc, 4),
        "clean_false_alarms_by_package": fa,
    }
