"""Whole-track check: the validator on the full source tracks of a corpus split, clean and damaged.

The corpus clips are 10-s segments at a peak level drawn in adv.levels.PEAK_RANGE_DBFS; users give
whole tracks at their own level and rate. This runs the validator, as a user would, on every source
track of the split (decoded at its own rate, at most --seconds long): once clean, and once with each of
two damage kinds drawn at random (the project's own generators, whole track, severity uniform in
[0.05, 1]; noise without the recorded-ambience variant). It prints the share of clean 10-s windows
flagged, of clean tracks flagged and of damaged tracks flagged (per kind), and writes every
verdict to --out, with every window's probabilities (scripts/calibrate_decision.py chooses the
decision thresholds from them).

With --partial F (0 < F < 1) each track also gets one damage confined to a section of F times its
length at a random place (kind and severity drawn as above, from a separate random stream so the
other cases do not change): the summary adds the share of such tracks flagged and of their windows
flagged inside and outside the section ("where in the track").

With --loud-masters every track is first limited like a loud master (3-12 dB below its peak), as
most commercial releases are, before the same cases are made from it.

    .venv/bin/python scripts/track_check.py --corpus ../corpus --split test --out runs/track_check_test.json

About 7 minutes per split of ~75 tracks on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from adv import CLASSES
from adv.audio_io import load_audio
from adv.data.mastering import Mastering, draw_settings, limit
from adv.distortions import KINDS, apply_distortion
from adv.inference.validator import AudioDistortionValidator

NOISE_VARIANTS = ("white", "pink", "brown", "hum")  # "recorded" needs the corpus noise bank


def _damage(kind: str, x: np.ndarray, sr: int, sev: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The project's generator of ``kind`` (noise: a variant that needs no noise bank)."""
    kw = {"variant": str(rng.choice(NOISE_VARIANTS))} if kind == "noise" else {}
    return apply_distortion(kind, x, sr, sev, rng, **kw)


LOUD_MASTER = Mastering(fraction=1.0, limit_db=(-12.0, -3.0))


def _loud_master(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` limited with settings drawn like a corpus build's (threshold 3-12 dB below the peak),
    its peak then at -1..-0.1 dBFS."""
    s = draw_settings(rng, LOUD_MASTER)
    y = limit(x, sr, s["limit_db"], s["attack_s"], s["release_s"])
    return y * (10 ** (rng.uniform(-1.0, -0.1) / 20) / max(float(np.abs(y).max()), 1e-9))


def _row(t: dict, kind: str, sev: float, params: dict, r: dict, section: tuple[float, float] | None = None) -> dict:
    return {
        "track": t["track_id"],
        "kind": kind,
        "severity": sev,
        "variant": params.get("variant", ""),
        "section": [round(section[0], 2), round(section[1], 2)] if section else None,
        "has_distortion": r["has_distortion"],
        "predicted": r["distortion_type"],
        "damage_score": round(max(t["probability"] - t["threshold"] for t in r["types"].values()), 4),
        "windows_flagged": [s["has_distortion"] for s in r["segments"]],
        "windows": [[s["start"], s["end"], round(1.0 - s["probabilities"]["clean"], 4)] for s in r["segments"]],
        "window_probs": [[s["probabilities"][c] for c in CLASSES] for s in r["segments"]],
        "window_silent": [bool(s.get("silent", False)) for s in r["segments"]],
    }


def partial_summary(part: pd.DataFrame, fraction: float) -> dict:
    """Tracks damaged in one section: share flagged, and their windows flagged wholly inside / outside it."""
    inside, outside = [], []
    for _, r in part.iterrows():
        a, b = r.section
        for (s, e, _), flagged in zip(r.windows, r.windows_flagged):
            if s >= a and e <= b:
                inside.append(flagged)
            elif e <= a or s >= b:
                outside.append(flagged)
    return {
        "partial_fraction": fraction,
        "partial_tracks_flagged_pct": round(100 * float(part.has_distortion.mean()), 1),
        "partial_flagged_pct_by_kind": {
            k: round(100 * float(g.has_distortion.mean()), 1) for k, g in part.groupby("kind")
        },
        "partial_windows_inside_flagged_pct": round(100 * float(np.mean(inside)), 1) if inside else None,
        "partial_windows_outside_flagged_pct": round(100 * float(np.mean(outside)), 1) if outside else None,
    }


def threshold_free(damaged: pd.Series, score: np.ndarray) -> dict:
    """Track ROC AUC (damaged vs clean, on the verdict's damage score: the largest margin of a kind's
    probability over its threshold) and the share of damaged tracks caught at fixed clean-track
    false-alarm rates: compares models whose decision thresholds differ."""
    from sklearn.metrics import roc_auc_score

    y = damaged.to_numpy(bool)
    out = {"track_roc_auc": round(float(roc_auc_score(y, score)), 4)}
    for fa in (0.05, 0.10, 0.20):
        t = np.quantile(score[~y], 1.0 - fa)
        out[f"damaged_tracks_caught_pct_at_{int(fa * 100)}pct_clean_flagged"] = round(
            100 * float((score[y] > t).mean()), 1
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="corpus folder (manifest.csv, tracks.jsonl)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--seconds", type=float, default=180.0, help="analyse at most this much of each track")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--model", default=None)
    ap.add_argument(
        "--partial", type=float, default=0.0, help="also damage only a section of this fraction of each track"
    )
    ap.add_argument(
        "--loud-masters",
        action="store_true",
        help="limit every track like a loud master first (adv.data.mastering, 3-12 dB below its peak, "
        "peak at -1..-0.1 dBFS; separate random stream, so the damage draws do not change)",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    corpus = Path(args.corpus)
    ids = set(pd.read_csv(corpus / "manifest.csv").query("split == @args.split")["source_track"])
    tracks = [
        t
        for t in map(json.loads, (corpus / "tracks.jsonl").read_text().splitlines())
        if t["track_id"] in ids and Path(t["path"]).exists()
    ]
    if not tracks:
        print(f"no source files of split {args.split!r} found (tracks.jsonl paths)", file=sys.stderr)
        return 2
    v = AudioDistortionValidator(args.model)
    rng = np.random.default_rng(args.seed)
    rows, t0 = [], time.time()
    for i, t in enumerate(tracks, 1):
        dec = load_audio(t["path"])
        sr = dec.sample_rate
        x = dec.samples[:, : int(args.seconds * sr)]
        if x.shape[0] == 1:
            x = np.repeat(x, 2, axis=0)
        if args.loud_masters:
            x = _loud_master(x, sr, np.random.default_rng([args.seed, i, 1]))
        cases = [("clean", 0.0)] + [
            (str(k), float(rng.uniform(0.05, 1.0))) for k in rng.choice(KINDS, 2, replace=False)
        ]
        for kind, sev in cases:
            y, params = (x, {}) if kind == "clean" else _damage(kind, x, sr, sev, rng)
            rows.append(_row(t, kind, sev, params, v.analyze(y, sample_rate=sr)))
        if args.partial > 0:
            prng = np.random.default_rng([args.seed, i])
            kind, sev = str(prng.choice(KINDS)), float(prng.uniform(0.05, 1.0))
            n = int(args.partial * x.shape[1])
            a = int(prng.integers(0, x.shape[1] - n + 1))
            section, params = _damage(kind, x[:, a : a + n], sr, sev, prng)
            y = x.copy()
            y[:, a : a + n] = section
            rows.append(_row(t, kind, sev, params, v.analyze(y, sample_rate=sr), section=(a / sr, (a + n) / sr)))
        print(f"\r{i}/{len(tracks)} tracks, {time.time() - t0:.0f} s", end="", flush=True)
    print()
    df = pd.DataFrame(rows)
    part = df[df.section.notna()]
    df = df[df.section.isna()]
    clean = df[df.kind == "clean"]
    damaged = df[df.kind != "clean"]
    summary = {
        "split": args.split,
        "tracks": len(tracks),
        "seconds_max": args.seconds,
        "loud_masters": args.loud_masters,
        "clean_windows_flagged_pct": round(100 * float(np.mean(np.concatenate(clean.windows_flagged.tolist()))), 1),
        "clean_tracks_flagged_pct": round(100 * float(clean.has_distortion.mean()), 1),
        "damaged_tracks_flagged_pct": round(100 * float(damaged.has_distortion.mean()), 1),
        "damaged_flagged_pct_by_kind": {
            k: round(100 * float(g.has_distortion.mean()), 1) for k, g in damaged.groupby("kind")
        },
        "damaged_typed_correctly_pct": round(100 * float((damaged.predicted == damaged.kind).mean()), 1),
        **threshold_free(df.kind != "clean", df.damage_score.to_numpy()),
        **(partial_summary(part, args.partial) if len(part) else {}),
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
