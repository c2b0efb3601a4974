"""Detection metrics: binary/per-class/macro F1, severity MAE, confusion matrix."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, precision_score, recall_score

from adv import CLASSES, DISTORTION_KINDS


def decide(
    probs: np.ndarray,
    threshold: float = 0.5,
    kind_threshold: float | None = None,
    kind_thresholds: np.ndarray | None = None,
) -> np.ndarray:
    """Multi-hot decisions [N, 6] from probabilities; clean and the kinds are made consistent.

    With ``kind_thresholds`` [5] (the product's rule, adv.inference.decision) a clip has every kind
    whose probability reaches its own threshold and is clean when it has none. Without: a clip is
    clean when its clean score (column 0) >= threshold, else it has every kind whose probability
    reaches ``kind_threshold`` (default: ``threshold``), and at least the most likely one."""
    dec = np.zeros_like(probs, dtype=bool)
    if kind_thresholds is not None:
        dec[:, 1:] = probs[:, 1:] >= np.asarray(kind_thresholds)[None, :]
        dec[:, 0] = ~dec[:, 1:].any(axis=1)
        return dec
    clean = probs[:, 0] >= threshold
    dec[:, 0] = clean
    kinds = probs[:, 1:] >= (threshold if kind_threshold is None else kind_threshold)
    top = probs[:, 1:].argmax(axis=1)
    kinds[np.arange(len(probs)), top] = True
    dec[:, 1:] = kinds & ~clean[:, None]
    return dec


def primary_class(probs: np.ndarray, threshold: float = 0.5, kind_thresholds: np.ndarray | None = None) -> np.ndarray:
    """Single class index per clip: 0 (clean) or 1 + the most likely (detected) kind."""
    if kind_thresholds is not None:
        over = probs[:, 1:] >= np.asarray(kind_thresholds)[None, :]
        return np.where(over.any(axis=1), 1 + np.where(over, probs[:, 1:], -1.0).argmax(axis=1), 0)
    return np.where(probs[:, 0] >= threshold, 0, 1 + probs[:, 1:].argmax(axis=1))


def confusion(
    labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5, kind_thresholds: np.ndarray | None = None
) -> np.ndarray:
    """6x6 counts over single-label clips: rows true class, columns predicted primary class."""
    single = labels.sum(axis=1) == 1
    t = labels[single].argmax(axis=1)
    p = primary_class(probs[single], threshold, kind_thresholds)
    cm = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    np.add.at(cm, (t, p), 1)
    return cm


def compute_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    sev_true: np.ndarray,
    sev_pred: np.ndarray,
    threshold: float = 0.5,
    kind_threshold: float | None = None,
    kind_thresholds: np.ndarray | None = None,
) -> dict:
    dec = decide(probs, threshold, kind_threshold, kind_thresholds)
    y = labels.astype(bool)
    per_class = {c: float(f1_score(y[:, i], dec[:, i], zero_division=0)) for i, c in enumerate(CLASSES)}
    bin_true, bin_pred = ~y[:, 0], ~dec[:, 0]
    mae = {}
    for i, k in enumerate(DISTORTION_KINDS):
        present = sev_true[:, i] > 0
        if present.any():
            mae[k] = float(np.abs(sev_pred[present, i] - sev_true[present, i]).mean() * 100)
    return {
        "n": int(len(labels)),
        "binary_f1": float(f1_score(bin_true, bin_pred, zero_division=0)),
        "binary_precision": float(precision_score(bin_true, bin_pred, zero_division=0)),
        "binary_recall": float(recall_score(bin_true, bin_pred, zero_division=0)),
        "macro_f1": float(np.mean(list(per_class.values()))),
        "per_class_f1": per_class,
        "severity_mae_pp": mae,
        "severity_mae_pp_mean": float(np.mean(list(mae.values()))) if mae else float("nan"),
        "confusion": confusion(labels, probs, threshold, kind_thresholds).tolist(),
    }


def rounded_summary(
    labels: np.ndarray,
    probs: np.ndarray,
    sev_true: np.ndarray,
    sev_pred: np.ndarray,
    threshold: float,
    kind_threshold: float | None = None,
) -> dict:
    """`compute_metrics` at the given thresholds with the clean false-alarm rate, rounded for reports:
    n, binary and macro F1 (4 places), clean false alarms (4), per-class F1 (3), severity MAE pp (1)."""
    m = compute_metrics(labels, probs, sev_true, sev_pred, threshold, kind_threshold)
    return {
        "n": m["n"],
        "binary_f1": round(m["binary_f1"], 4),
        "macro_f1": round(m["macro_f1"], 4),
        "clean_false_alarm_rate": round(float((probs[labels[:, 0] == 1, 0] < threshold).mean()), 4),
        "per_class_f1": {k: round(v, 3) for k, v in m["per_class_f1"].items()},
        "severity_mae_pp": {k: round(v, 1) for k, v in m["severity_mae_pp"].items()},
    }


def threshold_table(
    labels: np.ndarray, probs: np.ndarray, thresholds, kind_threshold: float | None = None
) -> list[dict]:
    """Per decision threshold on the clean score (column 0): clean false-alarm rate, binary recall and F1, macro-F1."""
    clean = labels[:, 0] == 1
    no_sev = np.zeros((len(labels), len(DISTORTION_KINDS)))
    rows = []
    for t in thresholds:
        m = compute_metrics(labels, probs, no_sev, no_sev, t, kind_threshold)
        rows.append(
            {
                "threshold": float(t),
                "clean_false_alarm_rate": round(float((probs[clean, 0] < t).mean()), 4),
                "binary_f1": round(m["binary_f1"], 4),
                "binary_recall": round(m["binary_recall"], 4),
                "macro_f1": round(m["macro_f1"], 4),
            }
        )
    return rows


def format_confusion(cm) -> str:
    cm = np.asarray(cm)
    w = max(8, max(len(c) for c in CLASSES) + 1)
    lines = ["true \\ pred".ljust(w) + "".join(c.rjust(w) for c in CLASSES)]
    for i, c in enumerate(CLASSES):
        lines.append(c.ljust(w) + "".join(str(v).rjust(w) for v in cm[i]))
    return "\n".join(lines)
