"""Plans the corpus: which 10-s segment of which track becomes which clip, with what distortion.

The plan is a pure function of the scanned tracks and the config (seeded), so a build is
reproducible and can resume: every clip has a stable id and its own seed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from adv import DISTORTION_KINDS
from adv.data.splits import SPLITS, assign_folds, assign_splits


@dataclass
class PlannedClip:
    clip_id: str
    split: str
    fold: int
    track_id: str
    offset_s: float
    kinds: tuple[str, ...]  # () for clean
    severities: tuple[float, ...]
    severity_bin: int  # stratum of the (first) severity, -1 for clean
    seed: int


def _label_pool(n: int, cfg: dict, rng: np.random.Generator) -> list[tuple[tuple[str, ...], tuple[float, ...], int]]:
    """n (kinds, severities, bin) labels balanced over classes and severity strata."""
    weights = cfg["class_weights"]
    n_combo = int(round(n * cfg["combo_fraction"]))
    n_single = n - n_combo
    classes = list(weights)
    w = np.array([weights[c] for c in classes], dtype=float)
    counts = np.floor(n_single * w / w.sum()).astype(int)
    for i in np.argsort(-w)[: n_single - counts.sum()]:
        counts[i] += 1
    lo, hi, bins = cfg["severity_min"], cfg["severity_max"], cfg["severity_bins"]
    edges = np.linspace(lo, hi, bins + 1)

    def draw(b: int) -> float:
        return round(float(rng.uniform(edges[b], edges[b + 1])), 4)

    labels = []
    for cls, cnt in zip(classes, counts):
        for j in range(cnt):
            if cls == "clean":
                labels.append(((), (), -1))
            else:
                b = j % bins
                labels.append(((cls,), (draw(b),), b))
    pairs = list(itertools.combinations(DISTORTION_KINDS, 2))
    for j in range(n_combo):
        a, b_kind = pairs[j % len(pairs)]
        b1, b2 = j % bins, int(rng.integers(bins))
        labels.append(((a, b_kind), (draw(b1), draw(b2)), b1))
    order = rng.permutation(len(labels))
    return [labels[i] for i in order]


def plan_corpus(
    tracks: list[dict], cfg: dict, n_clips: int, seed: int, plan_seed: int | None = None, id_prefix: str = "c"
) -> list[PlannedClip]:
    """tracks: dicts with track_id, package, valid_offsets (list of seconds).

    ``seed`` fixes the track splits and folds; ``plan_seed`` (default: ``seed``) draws the segments,
    labels and clip seeds, so another plan seed gives new clips of the same tracks in the same splits
    (extra training data without touching validation or test). Clip ids are ``id_prefix`` + a number.
    """
    usable = [t for t in tracks if t["valid_offsets"]]
    if not usable:
        raise ValueError("no usable source tracks")
    split_of = assign_splits([(t["track_id"], t["package"]) for t in usable], cfg["splits"], seed)
    fold_of = assign_folds([t["track_id"] for t in usable], cfg["kfold"], seed)
    rng = np.random.default_rng(seed if plan_seed is None else plan_seed)
    # clips per track: proportional to the usable material, capped, at least one
    weight = np.array([len(t["valid_offsets"]) for t in usable], dtype=float) ** 0.5
    cap = cfg["max_clips_per_track"]

    def quotas(scale: float) -> np.ndarray:
        return np.minimum(np.maximum(1, np.round(scale * weight / weight.sum())).astype(int), cap)

    lo, hi = float(n_clips), float(n_clips) * 20
    if quotas(hi).sum() < n_clips:  # not enough material at the cap: take the cap everywhere
        lo = hi
    for _ in range(40):  # water-filling: the smallest scale whose capped quotas reach n_clips
        mid = (lo + hi) / 2
        if quotas(mid).sum() >= n_clips:
            hi = mid
        else:
            lo = mid
    quota = quotas(hi)
    clips: list[PlannedClip] = []
    for split in SPLITS:
        slots = []
        for t, q in zip(usable, quota):
            if split_of[t["track_id"]] != split:
                continue
            offs = np.array(t["valid_offsets"], dtype=float)
            pick = rng.choice(len(offs), size=q, replace=q > len(offs))
            slots.extend((t["track_id"], float(offs[i])) for i in sorted(pick))
        labels = _label_pool(len(slots), cfg, rng)
        for (tid, off), (kinds, sevs, sbin) in zip(slots, labels):
            idx = len(clips)
            clips.append(
                PlannedClip(
                    f"{id_prefix}{idx:06d}",
                    split,
                    fold_of[tid],
                    tid,
                    off,
                    kinds,
                    sevs,
                    sbin,
                    int(rng.integers(0, 2**31 - 1)),
                )
            )
    return clips
