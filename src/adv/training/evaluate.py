"""`adv evaluate`: metrics of a detector file on a cached split, written as JSON, text and PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from adv import CLASSES
from adv.features.feature_cache import CachedSplit
from adv.models.model_file import load_detector
from adv.inference.decision import Decision
from adv.training.metrics import compute_metrics, decide, format_confusion, threshold_table


@torch.inference_mode()
def predict_cached(model, split: CachedSplit, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    probs, sevs = [], []
    for s in range(0, len(split), batch):
        mel = torch.from_numpy(np.array(split.logmel[s : s + batch], dtype=np.float32)).unsqueeze(1)
        sig = torch.from_numpy(split.signal[s : s + batch])
        p, v = model(mel, sig)
        probs.append(p.numpy())
        sevs.append(v.numpy())
    return np.concatenate(probs), np.concatenate(sevs)


# per kind: what its generator measured on the clip it made (a key of the clip's params in the corpus
# manifest), a unit, and bin edges; `detection_by_measured_effect` reports detection per bin
MEASURED_EFFECT = {
    "mp3": ("bitrate_kbps", "kbit/s", (0, 48, 64, 96, 1000)),
    "noise": ("measured_snr_db", "dB signal-to-noise ratio", (-100, 10, 20, 100)),
    "eq": ("log_spectral_distance_db", "dB mean change of the spectrum", (0, 2, 4, 8, 100)),
    "phase": ("mono_loss_db", "dB level lost by the mono downmix (absolute)", (0, 1, 2, 4, 100)),
}


def detection_by_measured_effect(flagged: np.ndarray, index: pd.DataFrame, manifest: pd.DataFrame) -> dict:
    """Share of single-damage clips flagged, per bin of the size its generator measured
    (`MEASURED_EFFECT`): how detection depends on how much the audio actually changed."""
    params = manifest.set_index("clip_id").reindex(index["clip_id"])["params"].fillna("[]").tolist()
    out = {}
    for kind, (key, unit, edges) in MEASURED_EFFECT.items():
        vals = np.full(len(index), np.nan)
        for i, (labels, text) in enumerate(zip(index["labels"].astype(str), params)):
            if labels != kind:
                continue
            p = next((d for d in json.loads(text) if d.get("kind") == kind), {})
            if isinstance(p.get(key), (int, float)):
                vals[i] = abs(p[key]) if kind == "phase" else p[key]
        rows = []
        for j, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            m = (vals >= lo) & (vals < hi)
            if m.any():
                span = f"< {hi:g}" if j == 0 else f">= {lo:g}" if j == len(edges) - 2 else f"{lo:g}-{hi:g}"
                rows.append({"range": span, "n": int(m.sum()), "flagged": round(float(flagged[m].mean()), 3)})
        if rows:
            out[kind] = {"measure": key, "unit": unit, "rows": rows}
    return out


def severity_floor_mask(sev_true: np.ndarray, min_severity: float) -> np.ndarray:
    """Clips counted when only damage of at least ``min_severity`` counts: clean clips and clips whose
    strongest damage reaches it."""
    worst = sev_true.max(axis=1)
    return (worst == 0) | (worst >= min_severity)


def evaluate_model_on_cache(
    model_path: str | Path, split_dir: str | Path, min_severity: float = 0.0, manifest: str | Path | None = None
) -> dict:
    """Metrics on a cached split; with min_severity, only clean clips and clips whose strongest
    damage reaches it are counted; with the corpus manifest, also `detection_by_measured_effect`."""
    model, meta = load_detector(model_path)
    split = CachedSplit(split_dir)
    probs, sev = predict_cached(model, split)
    idx = split.index
    labels, sev_true = split.labels, split.severity
    if min_severity > 0:
        keep = severity_floor_mask(sev_true, min_severity)
        probs, sev, labels, sev_true = probs[keep], sev[keep], labels[keep], sev_true[keep]
        idx = idx[keep].reset_index(drop=True)
    thr = meta.get("threshold", 0.5)
    kind_thr = meta.get("kind_threshold", thr)
    m = compute_metrics(labels, probs, sev_true, sev, thr, kind_thr)
    m["split"] = Path(split_dir).name + (f" (severity >= {min_severity})" if min_severity > 0 else "")
    m["clean_false_alarm_rate"] = float((probs[labels[:, 0] == 1, 0] < thr).mean())
    worst = sev_true.max(axis=1)
    edges = [0.0, 0.25, 0.5, 0.75, 1.0]  # strata (lo, hi] of the strongest damage; clean clips excluded
    m["detection_rate_by_severity"] = {
        f"{lo:.2f}-{hi:.2f}": round(float((probs[(worst > lo) & (worst <= hi), 0] < thr).mean()), 3)
        for lo, hi in zip(edges[:-1], edges[1:])
        if ((worst > lo) & (worst <= hi)).any()
    }
    # per-variant recall of the distorted clips (which sub-types are missed)
    dec_clean = probs[:, 0] >= thr
    var = {}
    for v in sorted(set(idx["variants"].fillna("").astype(str))):
        if not v:
            continue
        mask = (idx["variants"].fillna("").astype(str) == v).to_numpy()
        var[v] = {"n": int(mask.sum()), "detected": round(float((~dec_clean[mask]).mean()), 3)}
    m["detection_rate_by_variant"] = var
    if manifest is not None and Path(manifest).exists():
        m["detection_by_measured_effect"] = detection_by_measured_effect(~dec_clean, idx, pd.read_csv(manifest))
    m["threshold_tradeoff"] = threshold_table(labels, probs, (0.2, 0.3, 0.4, 0.5, 0.6), kind_thr)
    if meta.get("kind_thresholds"):  # the product's per-kind rule (adv.inference.decision), one clip = one window
        kt = Decision.from_meta(meta).array
        rule = compute_metrics(labels, probs, sev_true, sev, kind_thresholds=kt)
        rule["clean_false_alarm_rate"] = float(
            decide(probs, kind_thresholds=kt)[labels[:, 0] == 1, 1:].any(axis=1).mean()
        )
        rule["kind_thresholds"] = Decision.from_meta(meta).as_dict()
        m["per_kind_rule"] = rule
    return m


def save_confusion_png(cm, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=30)
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(CLASSES)):
        for j in range(len(CLASSES)):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=8,
            )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_metrics(m: dict) -> str:
    lines = [
        f"split {m.get('split', '?')}: {m['n']} clips",
        f"binary F1 {m['binary_f1']:.4f}  precision {m['binary_precision']:.4f}  recall {m['binary_recall']:.4f}",
        f"macro-F1 {m['macro_f1']:.4f}   clean false-alarm rate {m.get('clean_false_alarm_rate', float('nan')):.3f}",
        "per-class F1: " + "  ".join(f"{k} {v:.3f}" for k, v in m["per_class_f1"].items()),
        "severity MAE (pp): " + "  ".join(f"{k} {v:.1f}" for k, v in m["severity_mae_pp"].items()),
        "confusion (single-label clips):",
        format_confusion(m["confusion"]),
    ]
    for kind, d in m.get("detection_by_measured_effect", {}).items():
        lines.append(
            f"{kind} flagged by {d['measure']}: "
            + "  ".join(f"{r['range']} {r['flagged']:.0%} (n={r['n']})" for r in d["rows"])
        )
    if "per_kind_rule" in m:
        lines += [
            "",
            f"with the per-kind thresholds {m['per_kind_rule']['kind_thresholds']}:",
            format_metrics({**m["per_kind_rule"], "split": m.get("split", "?")}),
        ]
    return "\n".join(lines)


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    m = report["test"]
    text = format_metrics(m)
    if "test_above_floor" in report:
        text += "\n\n" + format_metrics(report["test_above_floor"])
    if "cross_validation" in report:
        cv = report["cross_validation"]
        text += (
            f"\n{len(cv['folds'])}-fold CV (train+val, grouped by track): macro-F1 {cv['macro_f1_mean']:.4f} "
            f"± {cv['macro_f1_std']:.4f}, binary F1 {cv['binary_f1_mean']:.4f} ± {cv['binary_f1_std']:.4f}"
        )
    (out / f"metrics_{m.get('split', 'test')}.txt").write_text(text + "\n")
    save_confusion_png(
        m["confusion"], out / f"confusion_{m.get('split', 'test')}.png", f"confusion ({m.get('split', 'test')})"
    )
