"""Stage 1: trains the PANN backbone (with a linear multi-task head) on cached log-mels.

Seeded, resumable (last.pt holds model, optimiser, scheduler and epoch), keeps best.pt by validation
macro-F1, stops early after `patience` epochs without improvement.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from adv.features.feature_cache import CachedSplit
from adv.models.checkpoints import load_pann_checkpoint, resolve_checkpoint
from adv.models.detector import BackboneWithHead
from adv.training.experiment_log import ExperimentLog
from adv.training.metrics import compute_metrics


def multitask_loss(
    out: dict, labels: torch.Tensor, sev: torch.Tensor, severity_weight: float, clean_weight: float = 1.0
) -> torch.Tensor:
    """BCE over the six types (clean clips weighted by clean_weight) + weighted severity MSE."""
    weight = None
    if clean_weight != 1.0:
        weight = 1.0 + (clean_weight - 1.0) * labels[:, :1]  # whole row of a clean clip
    type_loss = F.binary_cross_entropy_with_logits(out["type_logits"], labels, weight=weight)
    # severities are learnt where the kind is present, and pulled to 0 (weakly) where it is absent
    present = labels[:, 1:]
    w = present + 0.1 * (1 - present)
    sev_loss = (w * (out["severity"] - sev) ** 2).sum() / w.sum()
    return type_loss + severity_weight * sev_loss


@torch.inference_mode()
def predict_logmel(model: BackboneWithHead, logmel: np.ndarray, batch: int = 32) -> dict:
    """Full-length predictions and embeddings for [N, T, mel] log-mels."""
    model.eval()
    probs, sevs, embs = [], [], []
    for s in range(0, len(logmel), batch):
        x = torch.from_numpy(np.array(logmel[s : s + batch], dtype=np.float32)).unsqueeze(1)
        out = model(x)
        probs.append(torch.sigmoid(out["type_logits"]).numpy())
        sevs.append(out["severity"].numpy())
        embs.append(out["embedding"].numpy())
    return {"probs": np.concatenate(probs), "severity": np.concatenate(sevs), "embedding": np.concatenate(embs)}


def build_backbone_model(cfg: dict) -> BackboneWithHead:
    bcfg = cfg["backbone"]
    kw = {"width_mult": bcfg["width_mult"]} if bcfg["name"] == "MobileNetV1" else {}
    model = BackboneWithHead(bcfg["name"], **kw)
    ckpt = resolve_checkpoint(bcfg["name"], bcfg.get("pann_checkpoint") or None)
    if ckpt is not None and bcfg.get("width_mult", 1.0) in (1.0, None):
        load_pann_checkpoint(model.backbone, ckpt, verify_md5="auto")
        print(f"backbone initialised from official PANN weights {ckpt}")
    return model


def train_backbone(
    cfg: dict,
    features: Path,
    run_dir: Path,
    log: ExperimentLog | None = None,
    max_batches: int | None = None,
    extra_train: list[Path] | tuple = (),
) -> Path:
    """``extra_train``: more cached training folders (the extra clips) whose clips the backbone also
    learns from; validation is always ``features/val``."""
    bcfg = cfg["backbone"]
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    parts = [CachedSplit(features / "train"), *(CachedSplit(d) for d in extra_train)]
    val = CachedSplit(features / "val")
    # into memory: float16 keeps it ~1 GB per 7,500 clips
    train_mel = np.concatenate([np.asarray(p.logmel) for p in parts]) if len(parts) > 1 else np.asarray(parts[0].logmel)
    train_labels = np.concatenate([p.labels for p in parts])
    train_sev = np.concatenate([p.severity for p in parts])
    n_train = len(train_labels)
    model = build_backbone_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=bcfg["lr"], weight_decay=bcfg["weight_decay"])
    steps_per_epoch = int(np.ceil(n_train / bcfg["batch_size"]))
    if max_batches:
        steps_per_epoch = min(steps_per_epoch, max_batches)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=bcfg["lr"], total_steps=steps_per_epoch * bcfg["epochs"], pct_start=0.15
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    last, best = run_dir / "backbone_last.pt", run_dir / "backbone_best.pt"
    state = {"epoch": 0, "best": -1.0, "bad_epochs": 0, "history": []}
    if last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        state = ck["state"]
        rng = np.random.default_rng(cfg["seed"] + state["epoch"])
        print(f"resuming backbone training after epoch {state['epoch']}")
    crop = bcfg["crop_frames"]
    labels_t = torch.from_numpy(train_labels)
    sev_t = torch.from_numpy(train_sev)
    while state["epoch"] < bcfg["epochs"] and state["bad_epochs"] < bcfg["patience"]:
        model.train()
        t0 = time.time()
        order = rng.permutation(n_train)
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"backbone epoch {state['epoch'] + 1}/{bcfg['epochs']}", unit="batch")
        for step in bar:
            idx = np.sort(order[step * bcfg["batch_size"] : (step + 1) * bcfg["batch_size"]])
            if len(idx) == 0:
                break
            starts = rng.integers(0, train_mel.shape[1] - crop + 1, size=len(idx))
            x = np.stack([train_mel[i, s : s + crop] for i, s in zip(idx, starts)]).astype(np.float32)
            x += rng.uniform(-bcfg["gain_jitter_db"], bcfg["gain_jitter_db"], size=(len(idx), 1, 1)).astype(np.float32)
            out = model(torch.from_numpy(x).unsqueeze(1))
            loss = multitask_loss(
                out, labels_t[idx], sev_t[idx], bcfg["severity_weight"], bcfg.get("clean_weight", 1.0)
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        pred = predict_logmel(model, val.logmel)
        m = compute_metrics(val.labels, pred["probs"], val.severity, pred["severity"])
        state["epoch"] += 1
        entry = {
            "epoch": state["epoch"],
            "train_clips": n_train,
            "train_loss": float(np.mean(losses)),
            "val_macro_f1": m["macro_f1"],
            "val_binary_f1": m["binary_f1"],
            "val_sev_mae_pp": m["severity_mae_pp_mean"],
            "epoch_seconds": round(time.time() - t0, 1),
        }
        state["history"].append(entry)
        print(json.dumps(entry))
        if log:
            log.log({f"backbone/{k}": v for k, v in entry.items()})
        if m["macro_f1"] > state["best"]:
            state["best"], state["bad_epochs"] = m["macro_f1"], 0
            torch.save({"model": model.state_dict(), "config": cfg, "metrics": m}, best)
        else:
            state["bad_epochs"] += 1
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "state": state,
                "config": cfg,
            },
            last,
        )
    (run_dir / "backbone_history.json").write_text(json.dumps(state["history"], indent=2))
    return best
