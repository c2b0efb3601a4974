#!/usr/bin/env python
"""What limits the quality targets of issue 3 (binary F1 >= 0.97, macro-F1 >= 0.93, every class
F1 >= 0.85, severity MAE <= 5 points), measured on a corpus and its feature cache:

1. the detector's test metrics when only stronger damage counts (as `evaluate_model_on_cache(...,
   min_severity=)` counts it);
2. how well severity follows from what each generator measured against the undamaged original
   (`adv.training.target_limits.severity_from_measured_effect`), next to the detector's MAE, and
   how well severity trees would learn eq and phase severities defined by that measured effect
   instead of the setting (`severity_as_measured_effect`);
3. a learning curve over the training source tracks (type trees on the signal features,
   `adv.training.target_limits.learning_curve`);
4. validation and test clips flagged per bit rate of the source file they were cut from (ffprobe);
5. with --unseen, the detector on clips from packages it never learnt from (--unseen-model: another
   detector for this one, e.g. the model from before those packages joined the training data).

    .venv/bin/python scripts/target_limits.py --corpus ../corpus --features ../features \
        --extra-features ../features_extra ../features_mastered \
        --unseen ../features_sources_ungated/train --unseen-model runs/v14/detector.pt \
        --out runs/main/target_limits.json

Corpus v5 on 2 cores: 10 min with --extra-features and --unseen (runs/v17). `scripts/model_card.py --limits FILE` renders the JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from adv.audio_io import tool_input
from adv.config import load_toml
from adv.features.feature_cache import CachedSplit
from adv.models.model_file import SHIPPED_MODEL, load_detector
from adv.training.evaluate import predict_cached, severity_floor_mask
from adv.training.metrics import rounded_summary
from adv.training.package_holdout import metrics_on_packages
from adv.training.target_limits import (
    false_alarms_by_bin,
    learning_curve,
    severity_as_measured_effect,
    severity_from_measured_effect,
    source_bitrate_bin,
    summarise_curve,
)
from adv.training.train_head import HeadData

ROOT = Path(__file__).resolve().parent.parent


def _head_data(*splits: CachedSplit) -> HeadData:
    return HeadData(
        np.zeros((sum(len(s.labels) for s in splits), 0), np.float32),
        np.concatenate([np.asarray(s.signal) for s in splits]),
        np.concatenate([s.labels for s in splits]),
        np.concatenate([s.severity for s in splits]),
    )


def _groups(*splits: CachedSplit) -> np.ndarray:
    return np.concatenate([s.index["source_track"].astype(str).to_numpy() for s in splits])


def _probe(path: str) -> tuple[str, float]:
    """(codec, kbit/s) of a source file by ffprobe; ("?", -1) when it cannot be read."""
    try:
        out = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "format=bit_rate:stream=codec_name",
                "-of",
                "json",
                "-i",
                tool_input(path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        j = json.loads(out.stdout)
        return str(j["streams"][0]["codec_name"]), float(j["format"].get("bit_rate", 0)) / 1000
    except (OSError, ValueError, KeyError, IndexError, subprocess.TimeoutExpired):
        return "?", -1.0


def by_min_severity(split: CachedSplit, probs: np.ndarray, sev: np.ndarray, meta: dict) -> dict:
    """Test metrics when only clean clips and damage of at least 0 / 0.25 / 0.5 / 0.75 count."""
    thr = meta["threshold"]
    out = {}
    for s in (0.0, 0.25, 0.5, 0.75):
        keep = severity_floor_mask(split.severity, s)
        out[str(s)] = rounded_summary(
            split.labels[keep], probs[keep], split.severity[keep], sev[keep], thr, meta.get("kind_threshold", thr)
        )
    return out


def by_source_bitrate(splits: dict[str, tuple[CachedSplit, np.ndarray]], threshold: float, corpus: Path) -> dict:
    """Clips flagged per bit rate of their source file, for each (split, clean scores) given (needs
    ffprobe and the source files the corpus was cut from, listed in its tracks.jsonl)."""
    if shutil.which("ffprobe") is None:
        return {"skipped": "ffprobe is not installed"}
    tracks = [json.loads(line) for line in (corpus / "tracks.jsonl").read_text().splitlines() if line.strip()]
    with ThreadPoolExecutor(4) as ex:
        probed = dict(zip((t["track_id"] for t in tracks), ex.map(_probe, (t["path"] for t in tracks))))
    out = {}
    for name, (split, probs) in splits.items():
        bins = np.array(
            [source_bitrate_bin(*probed.get(t, ("?", -1.0))) for t in split.index["source_track"].astype(str)]
        )
        out[name] = false_alarms_by_bin(probs[:, 0] < threshold, split.labels[:, 0] == 1, bins)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="corpus folder (its manifest.csv)")
    ap.add_argument("--features", required=True, help="its feature cache (train/val/test)")
    ap.add_argument("--model", default=str(SHIPPED_MODEL), help="detector file (default: the shipped one)")
    ap.add_argument(
        "--config", default=str(ROOT / "configs/train.toml"), help="training config: [types] trees, clean weight"
    )
    ap.add_argument(
        "--extra-features",
        nargs="*",
        default=[],
        help="feature caches of extra training clips from the "
        "same tracks (configs/train.toml extra_train): a second curve with them, to tell tracks from clips",
    )
    ap.add_argument(
        "--unseen",
        default=None,
        help="a cached split of clips from packages the model never learnt "
        "from (e.g. ../features_sources_ungated/train: --extra-train extra_train_sources built without its "
        "bit-rate gate, with --unseen-model set to a model that never learnt from those packages)",
    )
    ap.add_argument(
        "--unseen-model",
        default=None,
        help="detector for --unseen (default: --model), e.g. one that "
        "never learnt from those packages when --model did",
    )
    ap.add_argument("--draws", type=int, default=2, help="random track draws per share below 100 %%")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    t0 = time.time()
    feat = Path(a.features)
    manifest = pd.read_csv(Path(a.corpus) / "manifest.csv")
    cfg = load_toml(a.config)

    out: dict = {"corpus": a.corpus, "features": a.features, "model": a.model}
    det, meta = load_detector(a.model)
    train, val, test = (CachedSplit(feat / s) for s in ("train", "val", "test"))
    preds = {name: predict_cached(det, split) for name, split in (("val", val), ("test", test))}
    out["test_by_min_severity"] = by_min_severity(test, *preds["test"], meta)
    for s, v in out["test_by_min_severity"].items():
        print(f"test, damage with severity >= {s}: {v}", flush=True)

    out["severity_from_measured_effect"] = severity_from_measured_effect(manifest)
    for k, v in out["severity_from_measured_effect"].items():
        print(f"severity of {k} from the measured effect: {v}", flush=True)
    out["severity_as_measured_effect"] = severity_as_measured_effect(
        (manifest, train.index["clip_id"], train.signal),
        (manifest, test.index["clip_id"], test.signal),
        seed=int(cfg.get("seed", 0)),
    )
    for k, v in out["severity_as_measured_effect"].items():
        print(f"severity of {k} defined by its measured effect: {v}", flush=True)

    out["by_source_bitrate"] = by_source_bitrate(
        {"val": (val, preds["val"][0]), "test": (test, preds["test"][0])}, meta["threshold"], Path(a.corpus)
    )
    print(f"by source bit rate: {out['by_source_bitrate']}", flush=True)
    if a.unseen:
        udet, umeta = load_detector(a.unseen_model) if a.unseen_model else (det, meta)
        out["unseen_packages"] = {
            "model": a.unseen_model or a.model,
            **metrics_on_packages(udet, umeta, Path(a.unseen)),
        }
        print(f"unseen packages: {out['unseen_packages']}", flush=True)

    curves = {"learning_curve": [train]}
    if a.extra_features:
        curves["learning_curve_with_extra"] = [train, *(CachedSplit(Path(f) / "train") for f in a.extra_features)]
    for name, splits in curves.items():
        rows = learning_curve(
            _head_data(*splits),
            _groups(*splits),
            _head_data(val),
            _head_data(test),
            cfg.get("types", {}),
            draws=a.draws,
            seed=int(cfg.get("seed", 0)),
            clean_weight=float(cfg.get("head", {}).get("clean_weight", 1.0)),
        )
        for r in rows:
            print(f"{name}: {r}", flush=True)
        out[name] = {
            "rows": rows,
            **summarise_curve(rows),
            "rule": "type trees on the signal features; threshold flags 15 % of the clean validation clips",
        }
    out["seconds"] = round(time.time() - t0, 1)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {a.out} ({out['seconds']} s)")


if __name__ == "__main__":
    main()
