"""`adv train --config FILE`: features -> backbone -> embeddings -> head -> calibration -> type and
severity trees -> model file -> evaluation, ablation and cross-validation reports. Every stage resumes from what is on disk."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from adv import DISTORTION_KINDS
from adv.config import REPO_DIR, load_toml
from adv.features.feature_cache import CachedSplit, build_feature_cache
from adv.features.signal_features import FEATURE_GROUPS, FEATURE_NAMES
from adv.models.checkpoints import md5sum
from adv.models.detector import BackboneWithHead, HeadEnsemble, clean_score
from adv.models.model_file import save_detector
from adv.training.evaluate import evaluate_model_on_cache, write_report
from adv.training.experiment_log import ExperimentLog
from adv.training.metrics import compute_metrics, threshold_table
from adv.training.train_backbone import build_backbone_model, predict_logmel, train_backbone
from adv.training.train_head import (
    HeadData,
    cross_validate,
    expected_calibration_error,
    predict_head,
    train_calibrated_heads,
    train_head,
)
from adv.training.train_trees import fit_severity_trees, fit_type_trees


def _path(p: str, base: Path) -> Path:
    q = Path(p)
    return q if q.is_absolute() else (base / q).resolve()


def load_train_config(path: str | Path, **overrides) -> dict:
    cfg = load_toml(path)
    for k, v in overrides.items():
        if v is not None:
            cfg[k] = v
    return cfg


def embeddings_for(
    model: BackboneWithHead, features: Path, run_dir: Path, split: str, backbone_md5: str = "", cache_name: str = ""
) -> HeadData:
    """Backbone embeddings of a cached split, cached in the run folder (as ``embeddings_{cache_name or
    split}.npz``); a cache made by another backbone checkpoint (``backbone_md5``, e.g. after a resumed
    run found a better epoch) or from other clips (the feature cache's clip index and signal features,
    e.g. after a corpus was re-rendered) is redone."""
    cache = run_dir / f"embeddings_{cache_name or split}.npz"
    cs = CachedSplit(features / split)
    clips_md5 = md5sum(features / split / "index.csv") + md5sum(features / split / "signal.npy")
    emb = None
    if cache.exists():
        with np.load(cache) as z:
            made_by = str(z["backbone_md5"]) if "backbone_md5" in z else ""
            made_from = str(z["clips_md5"]) if "clips_md5" in z else ""
            if made_by == backbone_md5 and made_from == clips_md5:
                emb = z["embedding"]
    if emb is None:
        emb = predict_logmel(model, cs.logmel)["embedding"]
        np.savez(cache, embedding=emb, backbone_md5=np.array(backbone_md5), clips_md5=np.array(clips_md5))
    return HeadData(emb, cs.signal, cs.labels, cs.severity)


def choose_decision(
    setting,
    val_labels: np.ndarray,
    val_probs: np.ndarray,
    tolerance: float = 0.0,
    mixes=(0.0,),
    max_false_alarm_rate: float = 1.0,
) -> tuple[float, float, list[dict]]:
    """The clean-score mix (:func:`clean_score`) and the decision threshold on that score.

    ``setting``: a threshold fixed as given (with the first of ``mixes``), or "val_macro_f1": every
    ``mix`` x threshold (0.25 .. 0.6) pair is scored on validation; of the pairs whose clean
    false-alarm rate is within ``max_false_alarm_rate`` (if none is, the pair with the fewest), the
    best macro-F1 is found, and of those within ``tolerance`` of it the one with the fewest clean
    false alarms wins (ties: the higher macro-F1). Returns (mix, threshold, the validation table).
    """
    mixes = [float(m) for m in np.atleast_1d(mixes)]
    if not mixes or any(not 0.0 <= m <= 1.0 for m in mixes):
        raise ValueError(f"[decision] clean_mix must be numbers between 0 and 1, got {mixes!r}")
    if setting != "val_macro_f1":
        t = float(setting)
        if not 0.0 < t < 1.0:
            raise ValueError(f"[decision] threshold must be between 0 and 1 or 'val_macro_f1', got {setting!r}")
        return mixes[0], t, []
    table = []
    for m in mixes:
        scored = clean_score(torch.from_numpy(np.asarray(val_probs, dtype=np.float32)), m).numpy()
        table += [
            {"clean_mix": m, **r}
            for r in threshold_table(val_labels, scored, np.round(np.arange(0.25, 0.601, 0.05), 2))
        ]
    feasible = [r for r in table if r["clean_false_alarm_rate"] <= max_false_alarm_rate] or [
        min(table, key=lambda r: (r["clean_false_alarm_rate"], -r["macro_f1"]))
    ]
    best = max(r["macro_f1"] for r in feasible)
    pick = min(
        (r for r in feasible if r["macro_f1"] >= best - tolerance),
        key=lambda r: (r["clean_false_alarm_rate"], -r["macro_f1"]),
    )
    return pick["clean_mix"], pick["threshold"], table


def choose_kind_threshold(
    setting, val_labels: np.ndarray, val_probs: np.ndarray, threshold: float
) -> tuple[float, list[dict]]:
    """The probability a damage kind needs to be listed in a damaged clip (the most likely kind always
    is): ``setting`` a number, "same" (the decision threshold), or "val_macro_f1": the value in
    0.3 .. 0.7 with the best validation macro-F1 (the lowest of equals). Whether a clip is damaged
    does not change. Returns it with the validation table (empty unless searched)."""
    if setting == "same":
        return float(threshold), []
    if setting != "val_macro_f1":
        t = float(setting)
        if not 0.0 < t < 1.0:
            raise ValueError(
                f"[decision] kind_threshold must be between 0 and 1, 'same' or 'val_macro_f1', got {setting!r}"
            )
        return t, []
    no_sev = np.zeros((len(val_labels), len(DISTORTION_KINDS)))
    table = [
        {
            "kind_threshold": float(k),
            "val_macro_f1": round(
                compute_metrics(val_labels, val_probs, no_sev, no_sev, threshold, float(k))["macro_f1"], 4
            ),
        }
        for k in np.round(np.arange(0.3, 0.701, 0.05), 2)
    ]
    best = max(r["val_macro_f1"] for r in table)
    return next(r["kind_threshold"] for r in table if r["val_macro_f1"] == best), table


def _above_floor(d: HeadData, floor: float) -> np.ndarray:
    """Clean clips and clips whose strongest damage is at least `floor`."""
    worst = d.severity.max(axis=1)
    return (worst == 0) | (worst >= floor)


def ablation(train: HeadData, val: HeadData, test: HeadData, hcfg: dict, seed: int) -> list[dict]:
    """Test metrics of heads trained on feature subsets (embedding frozen)."""
    all_cols = np.arange(len(FEATURE_NAMES))
    variants = [
        ("embedding + all signal features", True, all_cols),
        ("embedding only", True, all_cols[:0]),
        ("signal features only", False, all_cols),
    ]
    for group, names in FEATURE_GROUPS.items():
        keep = np.array([i for i, n in enumerate(FEATURE_NAMES) if n not in set(names)])
        variants.append((f"embedding + signal without {group}", True, keep))
    rows = []
    for name, emb, cols in variants:
        head = train_head(train.select(emb, cols), val.select(emb, cols), hcfg, seed)
        probs, sev = predict_head(head, test.select(emb, cols), calibrated=False)
        m = compute_metrics(test.labels, probs, test.severity, sev)
        rows.append(
            {
                "features": name,
                "macro_f1": round(m["macro_f1"], 4),
                "binary_f1": round(m["binary_f1"], 4),
                "severity_mae_pp": round(m["severity_mae_pp_mean"], 2),
                **{f"f1_{k}": round(v, 3) for k, v in m["per_class_f1"].items()},
            }
        )
        print(json.dumps(rows[-1]))
    return rows


def run_training(
    config: str | Path,
    corpus: str | None = None,
    features: str | None = None,
    run_dir: str | None = None,
    max_batches: int | None = None,
    skip_extras: bool = False,
    ship_to: str | None = None,
) -> dict:
    t0 = time.time()
    cfg = load_train_config(config, corpus=corpus, features=features, run_dir=run_dir)
    torch.set_num_threads(cfg.get("threads", 2))
    corpus_dir, feat_dir, out = (_path(cfg[k], REPO_DIR) for k in ("corpus", "features", "run_dir"))
    out.mkdir(parents=True, exist_ok=True)
    log = ExperimentLog(out, cfg)
    level = {"train_gain_db": cfg.get("train_level_gain_db"), "seed": cfg["seed"]}
    build_feature_cache(corpus_dir, feat_dir, **level)
    # extra training clips (`adv data build --extra-train`): same training tracks, for the heads and trees
    # and, with [backbone] extra_train, the backbone
    extra_dirs = []
    for e in cfg.get("extra_train", []):
        x_feat = _path(e["features"], REPO_DIR)
        build_feature_cache(_path(e["corpus"], REPO_DIR), x_feat, splits=("train",), **level)
        extra_dirs.append(x_feat / "train")
    backbone_extra = extra_dirs if cfg["backbone"].get("extra_train", False) else []
    best = train_backbone(cfg, feat_dir, out, log, max_batches=max_batches, extra_train=backbone_extra)
    model = build_backbone_model(cfg)
    model.load_state_dict(torch.load(best, map_location="cpu", weights_only=False)["model"])
    digest = md5sum(best)
    data = {s: embeddings_for(model, feat_dir, out, s, digest) for s in ("train", "val", "test")}
    for i, x_train in enumerate(extra_dirs):
        data["train"] = HeadData.concat(
            [data["train"], embeddings_for(model, x_train.parent, out, "train", digest, cache_name=f"extra{i}_train")]
        )
    train_dirs = [feat_dir / "train", *extra_dirs]
    hcfg = cfg["head"]
    floor = hcfg.get("min_train_severity", 0.0)
    full = data
    # the heads learn and are calibrated without near-imperceptible damage (0 < severity < floor),
    # which otherwise teaches them that clean-sounding music is probably damaged
    data = {s: d.subset(_above_floor(d, floor)) for s, d in data.items()}
    head = train_calibrated_heads(data["train"], data["val"], hcfg, cfg["seed"], verbose=True)
    val_uncal, _ = predict_head(head, data["val"], calibrated=False)
    val_cal, _ = predict_head(head, data["val"], calibrated=True)
    heads = head.heads if isinstance(head, HeadEnsemble) else [head]
    calib = {
        "temperature": [h.temperature.numpy().round(4).tolist() for h in heads],
        "val_ece_before": expected_calibration_error(data["val"].labels, val_uncal),
        "val_ece_after": expected_calibration_error(data["val"].labels, val_cal),
    }
    tcfg = cfg.get("types", {})
    type_trees = None
    if tcfg.get("trees", False):  # same clips as the heads; blended with their calibrated probabilities
        type_trees = fit_type_trees(data["train"], tcfg, cfg["seed"], hcfg.get("clean_weight", 1.0))
        with torch.inference_mode():
            val_blend = type_trees.mix(torch.from_numpy(val_cal), torch.from_numpy(data["val"].signal)).numpy()
        calib["val_ece_blended_with_trees"] = expected_calibration_error(data["val"].labels, val_blend)
    print("calibration", json.dumps(calib))
    dcfg = cfg["decision"]
    val_probs = val_blend if type_trees is not None else val_cal  # what the detector will output on validation
    clean_mix, threshold, threshold_choice = choose_decision(
        dcfg["threshold"],
        data["val"].labels,
        val_probs,
        dcfg.get("threshold_tolerance", 0.0),
        dcfg.get("clean_mix", 0.0),
        dcfg.get("max_false_alarm_rate", 1.0),
    )
    val_scored = clean_score(torch.from_numpy(val_probs), clean_mix).numpy()
    kind_threshold, kind_choice = choose_kind_threshold(
        dcfg.get("kind_threshold", "same"), data["val"].labels, val_scored, threshold
    )
    if clean_mix > 0:
        calib["val_ece_with_clean_score"] = expected_calibration_error(data["val"].labels, val_scored)
    scfg = cfg.get("severity", {"model": "head"})
    severity = None
    if scfg.get("model", "head") == "trees":  # trained on every clip (the floor only concerns the type heads)
        severity = fit_severity_trees(full["train"], scfg, cfg["seed"])
    elif scfg.get("model") != "head":
        raise ValueError(f"[severity] model must be 'trees' or 'head', not {scfg.get('model')!r}")
    bcfg = cfg["backbone"]
    bkw = {"width_mult": bcfg["width_mult"]} if bcfg["name"] == "MobileNetV1" else {}
    meta = {
        "version": time.strftime("%Y.%m.%d"),
        "config": cfg,
        "signal_features": FEATURE_NAMES,
        "frontend": {
            "sample_rate": 32000,
            "window_size": 1024,
            "hop_size": 320,
            "mel_bins": 64,
            "fmin": 50.0,
            "fmax": 14000.0,
        },
        "threshold": threshold,
        "kind_threshold": kind_threshold,
        "clean_mix": clean_mix,
        "calibration": calib,
        "clip_seconds": 10.0,
    }
    model_path = save_detector(out / "detector.pt", bcfg["name"], bkw, model.backbone, head, meta, severity, type_trees)
    metrics = evaluate_model_on_cache(model_path, feat_dir / "test", manifest=corpus_dir / "manifest.csv")
    report = {"test": metrics, "calibration": calib}
    if threshold_choice:
        report["threshold_choice"] = threshold_choice
    if kind_choice:
        report["kind_threshold_choice"] = kind_choice
    if type_trees is not None or severity is not None:  # what the heads' own outputs would have scored
        head_p, head_sev = predict_head(head, full["test"])
        head_p = clean_score(torch.from_numpy(head_p), clean_mix).numpy()  # the same decision rule
        m = compute_metrics(full["test"].labels, head_p, full["test"].severity, head_sev, threshold, kind_threshold)
        if type_trees is not None:
            report["test_heads_only"] = {k: m[k] for k in ("binary_f1", "macro_f1", "per_class_f1")}
        if severity is not None:
            report["severity_mae_pp_head_only"] = m["severity_mae_pp"]
    if floor > 0:
        report["test_above_floor"] = evaluate_model_on_cache(model_path, feat_dir / "test", min_severity=floor)
    if not skip_extras:
        report["ablation"] = ablation(data["train"], data["val"], data["test"], hcfg, cfg["seed"])
        trval = HeadData.concat([full["train"], full["val"]])
        folds = np.concatenate([CachedSplit(d).index["fold"].to_numpy() for d in (*train_dirs, feat_dir / "val")])
        keep = _above_floor(trval, floor)
        report["cross_validation"] = cross_validate(trval.subset(keep), folds[keep], hcfg, cfg["seed"])
    report["train_seconds"] = round(time.time() - t0, 1)
    meta["metrics"] = {
        k: report["test"][k] for k in ("binary_f1", "macro_f1", "per_class_f1", "severity_mae_pp", "binary_precision")
    }
    save_detector(model_path, bcfg["name"], bkw, model.backbone, head, meta, severity, type_trees)
    write_report(report, out)
    log.log({"test/macro_f1": metrics["macro_f1"], "test/binary_f1": metrics["binary_f1"]})
    log.finish()
    if ship_to:
        Path(ship_to).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_path, ship_to)
    return report
