"""Stage 2: the type/severity head on [backbone embedding, signal features], its temperature
calibration, k-fold cross-validation and the feature-group ablation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from adv.models.detector import DistortionHead, HeadEnsemble
from adv.training.metrics import compute_metrics
from adv.training.train_backbone import multitask_loss


@dataclass
class HeadData:
    embedding: np.ndarray  # [N, E] (E may be 0)
    signal: np.ndarray  # [N, S] (S may be 0)
    labels: np.ndarray  # [N, 6]
    severity: np.ndarray  # [N, 5]

    def select(self, emb: bool = True, signal_cols: np.ndarray | None = None) -> "HeadData":
        e = self.embedding if emb else self.embedding[:, :0]
        s = self.signal if signal_cols is None else self.signal[:, signal_cols]
        return HeadData(e, s, self.labels, self.severity)

    def subset(self, mask: np.ndarray) -> "HeadData":
        return HeadData(self.embedding[mask], self.signal[mask], self.labels[mask], self.severity[mask])

    @staticmethod
    def concat(parts: list["HeadData"]) -> "HeadData":
        return HeadData(
            *(np.concatenate([getattr(d, f) for d in parts]) for f in ("embedding", "signal", "labels", "severity"))
        )


def _tensors(d: HeadData):
    return (
        torch.from_numpy(d.embedding.astype(np.float32)),
        torch.from_numpy(d.signal.astype(np.float32)),
        torch.from_numpy(d.labels.astype(np.float32)),
        torch.from_numpy(d.severity.astype(np.float32)),
    )


@torch.inference_mode()
def predict_head(
    head: DistortionHead | HeadEnsemble, d: HeadData, calibrated: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    head.eval()
    e, s, _, _ = _tensors(d)
    probs, sev = head.probabilities(e, s, calibrated)
    return probs.numpy(), sev.numpy()


def train_calibrated_heads(
    train: HeadData, val: HeadData, hcfg: dict, seed: int, verbose: bool = False
) -> DistortionHead | HeadEnsemble:
    """``hcfg["ensemble"]`` heads (default 1) from seeds seed, seed + 1, ..., each temperature-calibrated
    on ``val``; more than one are returned as a :class:`HeadEnsemble` (probabilities averaged)."""
    heads = []
    for i in range(int(hcfg.get("ensemble", 1))):
        head = train_head(train, val, hcfg, seed + i, verbose=verbose and i == 0)
        calibrate_temperature(head, val)
        heads.append(head)
    return heads[0] if len(heads) == 1 else HeadEnsemble(heads)


def train_head(train: HeadData, val: HeadData, hcfg: dict, seed: int, verbose: bool = False) -> DistortionHead:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_knots = hcfg.get("quantile_knots", 0) if hcfg.get("signal_norm", "standard") == "quantile" else 0
    head = DistortionHead(
        train.embedding.shape[1],
        train.signal.shape[1],
        hcfg["hidden"],
        hcfg["dropout"],
        n_knots=n_knots if train.signal.shape[1] else 0,
    )
    if train.signal.shape[1] and head.n_knots:
        head.fit_quantiles(train.signal)
    if train.signal.shape[1]:
        mean, std = train.signal.mean(axis=0), train.signal.std(axis=0)
        head.sig_mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        head.sig_std.copy_(torch.from_numpy(np.where(std > 1e-6, std, 1.0).astype(np.float32)))
    opt = torch.optim.AdamW(head.parameters(), lr=hcfg["lr"], weight_decay=hcfg["weight_decay"])
    e, s, y, sev = _tensors(train)
    best, best_state, bad = -1.0, None, 0
    for epoch in range(hcfg["epochs"]):
        head.train()
        order = rng.permutation(len(y))
        for i in range(0, len(order), hcfg["batch_size"]):
            idx = torch.from_numpy(order[i : i + hcfg["batch_size"]])
            loss = multitask_loss(
                head(e[idx], s[idx]), y[idx], sev[idx], hcfg["severity_weight"], hcfg.get("clean_weight", 1.0)
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        probs, sev_pred = predict_head(head, val, calibrated=False)
        m = compute_metrics(val.labels, probs, val.severity, sev_pred)
        score = m["macro_f1"] - 0.002 * m["severity_mae_pp_mean"]
        if verbose:
            print(f"head epoch {epoch + 1}: val macro-F1 {m['macro_f1']:.4f} MAE {m['severity_mae_pp_mean']:.2f}")
        if score > best:
            best, bad = score, 0
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        else:
            bad += 1
            if bad >= hcfg["patience"]:
                break
    head.load_state_dict(best_state)
    return head


def calibrate_temperature(head: DistortionHead, val: HeadData) -> np.ndarray:
    """Per-class temperature scaling fitted on validation (decisions at p = 0.5 are unchanged)."""
    head.eval()
    e, s, y, _ = _tensors(val)
    with torch.no_grad():
        logits = head(e, s)["type_logits"]
    log_t = torch.zeros(logits.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    temp = log_t.detach().exp().clamp(0.05, 20.0)
    head.temperature.copy_(temp)
    return temp.numpy()


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Mean over classes of the binned |accuracy - confidence| gap (one-vs-rest)."""
    eces = []
    edges = np.linspace(0, 1, bins + 1)
    for c in range(labels.shape[1]):
        p, t = probs[:, c], labels[:, c]
        ece = 0.0
        for lo, hi in zip(edges[:-1], edges[1:]):
            m = (p > lo) & (p <= hi) if lo > 0 else (p >= lo) & (p <= hi)
            if m.any():
                ece += m.mean() * abs(t[m].mean() - p[m].mean())
        eces.append(ece)
    return float(np.mean(eces))


def cross_validate(data: HeadData, folds: np.ndarray, hcfg: dict, seed: int) -> dict:
    """k-fold cross-validation (folds grouped by source track) of the head."""
    scores = []
    for f in np.unique(folds):
        tr, te = data.subset(folds != f), data.subset(folds == f)
        head = train_head(tr, te, {**hcfg, "epochs": min(hcfg["epochs"], 30)}, seed + int(f))
        probs, sev = predict_head(head, te, calibrated=False)
        m = compute_metrics(te.labels, probs, te.severity, sev)
        scores.append(
            {
                "fold": int(f),
                "macro_f1": m["macro_f1"],
                "binary_f1": m["binary_f1"],
                "severity_mae_pp": m["severity_mae_pp_mean"],
            }
        )
    arr = {k: np.array([s[k] for s in scores]) for k in ("macro_f1", "binary_f1", "severity_mae_pp")}
    return {
        "folds": scores,
        **{f"{k}_mean": float(v.mean()) for k, v in arr.items()},
        **{f"{k}_std": float(v.std()) for k, v in arr.items()},
    }
