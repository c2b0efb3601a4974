"""What limits the quality targets: two measurements behind the model card's "What limits the
targets" section (`scripts/target_limits.py` runs them on a corpus and its feature cache).

* `severity_from_measured_effect`: how well a kind's severity label can be predicted from what its
  generator *measured* on the damaged clip against the undamaged original (the spectral change of
  an EQ, the SNR of added noise, the mono-downmix loss of a phase fault) plus the variant name.
  The label is the effect's setting; the same setting changes different music by different amounts.
  This predictor needs the original, which the detector never has, so its error is a reference
  point for the severity target, not a bound.
* `false_alarms_by_bin` with `source_bitrate_bin`: clean clips flagged per bit rate of the source
  file they were cut from. Many game soundtracks are lossy files, some at 60-80 kbit/s, and their
  "clean" clips already carry codec damage.
* `learning_curve`: the type trees (the detector's tree half, on the signal features) trained on a
  growing share of the training source tracks, scored on the test split with one fixed decision
  rule: how much more music buys.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupKFold

from adv import DISTORTION_KINDS
from adv.training.metrics import compute_metrics
from adv.training.train_head import HeadData
from adv.training.train_trees import fit_type_trees

# per kind: the numeric params its generator measured on the clip it made (corpus manifest), which
# need the undamaged original. mp3 has none: its only size is the bitrate, which is its setting.
MEASURED_EFFECT_INPUTS = {
    "clipping": ("clipped_fraction",),
    "noise": ("measured_snr_db",),
    "eq": ("log_spectral_distance_db",),
    "phase": ("mono_loss_db", "lr_correlation_before", "lr_correlation_after"),
}


def _single_kind_params(manifest: pd.DataFrame, kind: str) -> tuple[list[dict], pd.DataFrame]:
    """The generator params of `kind` for each clip whose only label is `kind`, and those manifest rows."""
    rows = manifest[manifest["labels"].astype(str) == kind]
    return [next(d for d in json.loads(t) if d.get("kind") == kind) for t in rows["params"]], rows


def severity_from_measured_effect(manifest: pd.DataFrame, folds: int = 5, seed: int = 0) -> dict:
    """Per kind in `MEASURED_EFFECT_INPUTS`: MAE (percentage points) of gradient-boosted trees that
    predict the severity of single-kind clips from the measured effect (and, separately, from the
    measured effect plus the variant), cross-validated with folds grouped by source track."""
    out = {}
    for kind, keys in MEASURED_EFFECT_INPUTS.items():
        params, rows = _single_kind_params(manifest, kind)
        groups = rows["source_track"].astype(str).to_numpy()
        if len(params) < 4 * folds:
            continue
        x = np.array([[float(p.get(k, np.nan)) for k in keys] for p in params], dtype=np.float64)
        if kind == "phase":
            x[:, 0] = np.abs(x[:, 0])
        y = np.array([float(p["severity"]) for p in params])
        variants = np.array([str(p.get("variant", "")) for p in params])
        names = sorted(set(variants))
        onehot = (variants[:, None] == np.array(names)[None, :]).astype(np.float64)
        n_folds = min(folds, len(set(groups)))
        res = {"inputs": list(keys), "n": int(len(y))}
        for label, feats in (("effect", x), ("effect_and_variant", np.hstack([x, onehot]))):
            pred = np.zeros_like(y)
            for tr, te in GroupKFold(n_splits=n_folds).split(feats, y, groups):
                reg = HistGradientBoostingRegressor(loss="absolute_error", max_iter=200, random_state=seed)
                pred[te] = reg.fit(feats[tr], y[tr]).predict(feats[te])
            err = np.abs(np.clip(pred, 0, 1) - y) * 100
            res[f"mae_pp_{label}"] = round(float(err.mean()), 1)
            if label == "effect_and_variant":
                res["mae_pp_by_variant"] = {str(v): round(float(err[variants == v].mean()), 1) for v in names}
        out[kind] = res
    return out


# per kind: the one measured effect that a severity defined by the effect would follow (eq: how far the
# spectrum moved; phase: how much level a mono downmix loses, absolute)
EFFECT_SEVERITY_INPUT = {"eq": "log_spectral_distance_db", "phase": "mono_loss_db"}


def _kind_clips(
    manifest: pd.DataFrame, clip_ids: pd.Series, signal: np.ndarray, kind: str, key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signal features, |measured effect|, setting severity) of the single-kind clips of `kind`
    that are both in the manifest and in the feature cache (`clip_ids` row-aligned with `signal`)."""
    all_params, rows = _single_kind_params(manifest, kind)
    pos = {c: i for i, c in enumerate(clip_ids.astype(str))}
    keep = [(pos[c], p) for c, p in zip(rows["clip_id"].astype(str), all_params) if c in pos]
    params = [p for _, p in keep]
    x = np.asarray(signal)[[i for i, _ in keep]].astype(np.float32) if keep else np.zeros((0, signal.shape[1]))
    effect = np.array([abs(float(p.get(key, np.nan))) for p in params])
    setting = np.array([float(p["severity"]) for p in params])
    ok = np.isfinite(effect)
    return x[ok], effect[ok], setting[ok]


def severity_as_measured_effect(
    train: tuple[pd.DataFrame, pd.Series, np.ndarray],
    test: tuple[pd.DataFrame, pd.Series, np.ndarray],
    inputs: dict[str, str] | None = None,
    seed: int = 0,
) -> dict:
    """Would a severity defined by the damage's measured effect be learnable where the setting is not?

    Per kind in `inputs` (default `EFFECT_SEVERITY_INPUT`): a label from the measured effect, its rank
    among the training clips mapped onto the training clips' setting severities (the same distribution,
    so the two MAEs compare), and severity trees on the signal features (as the detector's) fitted once
    to the setting and once to that label, on the training single-kind clips; test MAE of each, and of a
    constant (the training median). `train` / `test`: (manifest, cache clip ids, cache signal features)."""
    out = {}
    for kind, key in (inputs or EFFECT_SEVERITY_INPUT).items():
        xtr, etr, str_ = _kind_clips(*train, kind, key)
        xte, ete, ste = _kind_clips(*test, kind, key)
        if len(str_) < 20 or len(ste) < 5:
            continue
        qs = np.linspace(0.0, 1.0, 201)
        e_q, s_q = np.quantile(etr, qs), np.quantile(str_, qs)
        res = {
            "input": key,
            "n_train": int(len(str_)),
            "n_test": int(len(ste)),
            "spearman_effect_setting": round(float(pd.Series(etr).corr(pd.Series(str_), method="spearman")), 3),
        }
        for name, ytr, yte in (("setting", str_, ste), ("effect", np.interp(etr, e_q, s_q), np.interp(ete, e_q, s_q))):
            reg = HistGradientBoostingRegressor(
                loss="absolute_error", max_iter=400, max_leaf_nodes=15, random_state=seed
            ).fit(xtr, ytr)
            res[f"mae_pp_{name}_label"] = round(float(np.abs(np.clip(reg.predict(xte), 0, 1) - yte).mean() * 100), 1)
            res[f"mae_pp_{name}_label_constant"] = round(float(np.abs(np.median(ytr) - yte).mean() * 100), 1)
        out[kind] = res
    return out


def _clean_fa_threshold(clean_prob: np.ndarray, is_clean: np.ndarray, false_alarm_rate: float) -> float:
    """The clean-score threshold that flags `false_alarm_rate` of the clean clips."""
    return float(np.quantile(clean_prob[is_clean], false_alarm_rate))


def learning_curve(
    train: HeadData,
    train_groups: np.ndarray,
    val: HeadData,
    test: HeadData,
    tcfg: dict,
    fractions=(0.25, 0.5, 1.0),
    draws: int = 2,
    seed: int = 0,
    clean_weight: float = 3.0,
    false_alarm_rate: float = 0.15,
    kind_threshold: float = 0.5,
) -> list[dict]:
    """Type trees on the signal features from a share of the training source tracks (`draws`
    random draws per share below 1), each scored on `test` at the threshold that flags
    `false_alarm_rate` of the clean validation clips (the same rule for every share)."""
    tracks = np.array(sorted(set(train_groups)))
    rng = np.random.default_rng(seed)
    no_sev = np.zeros((len(test.labels), len(DISTORTION_KINDS)))
    rows = []
    for frac in fractions:
        for d in range(1 if frac >= 1 else draws):
            keep_tracks = tracks if frac >= 1 else rng.choice(tracks, max(2, round(frac * len(tracks))), replace=False)
            mask = np.isin(train_groups, keep_tracks)
            trees = fit_type_trees(train.subset(mask), tcfg, seed + d, clean_weight)
            with torch.inference_mode():
                pv = trees(torch.from_numpy(val.signal.astype(np.float32))).numpy()
                pt = trees(torch.from_numpy(test.signal.astype(np.float32))).numpy()
            thr = _clean_fa_threshold(pv[:, 0], val.labels[:, 0] == 1, false_alarm_rate)
            m = compute_metrics(test.labels, pt, no_sev, no_sev, thr, kind_threshold)
            rows.append(
                {
                    "fraction": frac,
                    "draw": d,
                    "tracks": int(len(keep_tracks)),
                    "clips": int(mask.sum()),
                    "threshold": round(thr, 4),
                    "binary_f1": round(m["binary_f1"], 4),
                    "macro_f1": round(m["macro_f1"], 4),
                    "clean_false_alarm_rate": round(float((pt[test.labels[:, 0] == 1, 0] < thr).mean()), 4),
                    "per_class_f1": {k: round(v, 3) for k, v in m["per_class_f1"].items()},
                }
            )
    return rows


def summarise_curve(rows: list[dict]) -> dict:
    """Mean test scores per share of tracks, and the gain per doubling of the tracks (least squares
    on log2 of the track count)."""
    fr = sorted({r["fraction"] for r in rows})
    mean = {
        f: {
            k: float(np.mean([r[k] for r in rows if r["fraction"] == f]))
            for k in ("binary_f1", "macro_f1", "tracks", "clips")
        }
        for f in fr
    }
    out = {"by_fraction": {str(f): {k: round(v, 4) for k, v in m.items()} for f, m in mean.items()}}
    if len(fr) >= 2:
        lx = np.log2([r["tracks"] for r in rows])
        for k in ("binary_f1", "macro_f1"):
            out[f"{k}_gain_per_doubling"] = round(float(np.polyfit(lx, [r[k] for r in rows], 1)[0]), 4)
    return out


def source_bitrate_bin(codec: str, kbps: float) -> str:
    """The quality bin of a source file: lossless, or the lossy codec's bit rate (kbit/s, all channels)."""
    if codec in ("flac", "wav", "alac") or codec.startswith("pcm_"):
        return "lossless"
    if kbps <= 0:
        return "unknown"
    return "<= 80" if kbps <= 80 else "81-100" if kbps <= 100 else "101-128" if kbps <= 128 else "> 128"


BITRATE_BINS = ("<= 80", "81-100", "101-128", "> 128", "lossless", "unknown")


def false_alarms_by_bin(flagged: np.ndarray, is_clean: np.ndarray, bins: np.ndarray) -> list[dict]:
    """Clean clips and the share of them flagged, and damaged clips and the share detected, per bin."""
    rows = []
    for b in BITRATE_BINS:
        m = bins == b
        if not m.any():
            continue
        c, d = m & is_clean, m & ~is_clean
        rows.append(
            {
                "source": b,
                "clean_clips": int(c.sum()),
                "clean_flagged": round(float(flagged[c].mean()), 3) if c.any() else None,
                "damaged_clips": int(d.sum()),
                "damaged_flagged": round(float(flagged[d].mean()), 3) if d.any() else None,
            }
        )
    return rows
