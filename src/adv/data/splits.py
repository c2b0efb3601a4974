"""Train/validation/test splits grouped by source track (no track in two splits) plus k folds.

Tracks are shuffled inside each source package and dealt out by cumulative share, so every package
is spread over the splits in the configured proportions; classes are balanced inside each split by
the clip planner (see corpus_plan.py), which makes the splits stratified by class.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

SPLITS = ("train", "val", "test")


def assign_splits(tracks: list[tuple[str, str]], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """tracks: (track_id, group/package) -> {track_id: split}."""
    rng = np.random.default_rng(seed)
    by_group: dict[str, list[str]] = defaultdict(list)
    for tid, group in sorted(tracks):
        by_group[group].append(tid)
    names = [s for s in SPLITS if fractions.get(s, 0) > 0]
    cum = np.cumsum([fractions[s] for s in names])
    cum = cum / cum[-1]
    out: dict[str, str] = {}
    offset = 0.0
    for group in sorted(by_group):
        ids = by_group[group]
        order = rng.permutation(len(ids))
        for rank, i in enumerate(order):
            # stagger the start per group so small groups do not all land in train
            pos = ((rank + 0.5) / len(ids) + offset) % 1.0
            out[ids[i]] = names[int(np.searchsorted(cum, pos, side="right").clip(0, len(names) - 1))]
        offset = (offset + 0.37) % 1.0
    # tiny inputs: every split gets at least one track, taken from the largest split
    if len(out) >= len(names):
        for name in names:
            if name not in out.values():
                largest = max(names, key=lambda n: sum(v == n for v in out.values()))
                victim = sorted(t for t, v in out.items() if v == largest)[-1]
                out[victim] = name
    return out


def assign_folds(track_ids: list[str], k: int, seed: int) -> dict[str, int]:
    """k folds over tracks (grouped by track)."""
    rng = np.random.default_rng(seed + 1)
    ids = sorted(track_ids)
    order = rng.permutation(len(ids))
    return {ids[i]: int(rank % k) for rank, i in enumerate(order)}


def check_no_leakage(rows: list[dict], key: str = "source_track") -> None:
    """Raises if any source track appears in more than one split."""
    seen: dict[str, str] = {}
    for r in rows:
        prev = seen.setdefault(r[key], r["split"])
        if prev != r["split"]:
            raise AssertionError(f"track {r[key]} is in both {prev} and {r['split']}")
