"""Saving and loading the detector file (backbone + head + everything inference needs).

The file is a torch pickle of plain tensors and JSON-like metadata (loaded with weights_only=True):
the backbone, the type head(s) and, when trained with them, the type and severity tree ensembles.
The fixed front-end tensors (STFT kernels, mel matrix) and the unused AudioSet classifier are not
stored: they are rebuilt from the front-end settings.
"""

from __future__ import annotations

from pathlib import Path

import torch

from adv import CLASSES
from adv.config import SHIPPED_MODEL  # noqa: F401 - re-exported
from adv.errors import CheckpointError
from adv.models.detector import DistortionDetector, DistortionHead, HeadEnsemble
from adv.models.pann import build_pann
from adv.models.tree_ensemble import SeverityTrees, TypeTrees

FORMAT = "adv-detector-v1"
_DERIVED = ("spectrogram_extractor.", "logmel_extractor.", "fc_audioset.")


def _head_entry(head: DistortionHead) -> dict:
    return {
        "embed_dim": head.embed_dim,
        "n_signal": head.n_signal,
        "n_knots": head.n_knots,
        "hidden": head.body[0].out_features,
        "state": head.state_dict(),
    }


def _head_from(h: dict) -> DistortionHead:
    head = DistortionHead(h["embed_dim"], h["n_signal"], h["hidden"], n_knots=h.get("n_knots", 0))
    head.load_state_dict(h["state"])
    return head


def save_detector(
    path: Path,
    backbone_name: str,
    backbone_kw: dict,
    backbone: torch.nn.Module,
    head: DistortionHead | HeadEnsemble,
    meta: dict,
    severity: SeverityTrees | None = None,
    type_trees: TypeTrees | None = None,
) -> Path:
    state = {
        k: v.half() if v.is_floating_point() else v
        for k, v in backbone.state_dict().items()
        if not k.startswith(_DERIVED)
    }
    payload = {
        "format": FORMAT,
        "classes": list(CLASSES),
        "backbone": {"name": backbone_name, "kwargs": backbone_kw, "state": state},
        "meta": meta,
    }
    if isinstance(head, HeadEnsemble):
        payload["heads"] = [_head_entry(h) for h in head.heads]
    else:
        payload["head"] = _head_entry(head)
    if severity is not None:
        payload["severity"] = severity.entry()
    if type_trees is not None:
        payload["type_trees"] = type_trees.entry()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_detector(path: str | Path) -> tuple[DistortionDetector, dict]:
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: model file not found")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling problem is a bad file
        raise CheckpointError(f"{p}: not a readable detector file ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not an {FORMAT} file (for official PANN weights use --pann-checkpoint)")
    b = payload["backbone"]
    backbone = build_pann(b["name"], **b["kwargs"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in b["state"].items()}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith(_DERIVED)]
    if bad or unexpected:
        raise CheckpointError(
            f"{p}: backbone weights do not match {b['name']} (missing {bad[:3]}, unexpected {unexpected[:3]})"
        )
    head = (
        HeadEnsemble([_head_from(h) for h in payload["heads"]]) if "heads" in payload else _head_from(payload["head"])
    )
    trees = {}
    for key, cls in (("severity", SeverityTrees), ("type_trees", TypeTrees)):
        if key in payload:
            trees[key] = cls.from_entry(payload[key])
            if trees[key].n_signal != head.n_signal:
                raise CheckpointError(
                    f"{p}: the {key} trees expect {trees[key].n_signal} signal features, the head {head.n_signal}"
                )
    model = DistortionDetector(
        backbone,
        head,
        trees.get("severity"),
        trees.get("type_trees"),
        clean_mix=float(payload["meta"].get("clean_mix", 0.0)),
    ).eval()
    return model, payload["meta"]


def update_meta(src: str | Path, dst: str | Path, changes: dict) -> Path:
    """Writes the detector file ``src`` to ``dst`` with ``changes`` merged into its metadata (the
    weights are copied as they are); ``dst`` may be ``src``."""
    payload = torch.load(str(src), map_location="cpu", weights_only=True)
    payload["meta"] = {**payload["meta"], **changes}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(dst)
    return dst
