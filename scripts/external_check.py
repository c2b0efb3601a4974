#!/usr/bin/env python
"""External check: how well the detector generalises to damage made by third-party tools.

The project's own generators (src/adv/distortions/) make every damaged clip the detector was
trained and evaluated on. This benchmark takes CLEAN clips of a corpus split and damages them with
other people's code instead -- audiomentations, pedalboard (Spotify) and plain numpy -- with
seeded random parameters, then runs the detector on the clean clip and on every damaged copy.

Damage per clip (expected class: variant):
  clipping: audiomentations ClippingDistortion, pedalboard Gain + Clipping (peak driven 6-18 dB
            over a -1 dBFS hard clipper), pedalboard Distortion (tanh, drive 10-30 dB)
  mp3:      pedalboard MP3Compressor (LAME VBR), audiomentations Mp3Compression
            (fast-mp3-augment backend: LAME CBR, in memory)
  noise:    audiomentations AddGaussianSNR, AddColorNoise (pink), AddColorNoise (brown)
  eq:       audiomentations LowPass / HighPass / BandPass (telephone) / PeakingFilter,
            pedalboard LadderFilter (24 dB/oct low-pass)
  phase:    one channel polarity-inverted, one channel delayed 0.5-2 ms (numpy),
            pedalboard Phaser on one channel
  clean:    the clean clip, and a loud master of it (audiomentations Limiter 3-12 dB below the
            peak, peak at -1..-0.1 dBFS): limiting is not damage
  clipping: that loud master driven 3-9 dB into a hard clipper (pedalboard)

It prints, per variant, the share of copies flagged as damaged, the share typed correctly and the
mean reported severity, then per-class recall, the clean false-alarm rate and the macro-F1 over the
six classes (single-label: the reported `distortion_type`). Everything, including each copy's
parameters and the detector's answer, goes to --out as JSON.

    .venv/bin/python scripts/external_check.py --n-clips 40 --out runs/external_check.json

With --loud-masters every clean clip is first made a loud master (the limiter above), so the
whole table is measured on limited music, as most commercial releases are.

Needs the `eval` extra: pip install -e .[eval]
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EVAL_PACKAGES = {
    "audiomentations": "audiomentations",
    "pedalboard": "pedalboard",
    "fast_mp3_augment": "fast-mp3-augment",
}  # module -> PyPI name (the `eval` extra)


def _require_eval_packages() -> None:
    for module, dist in EVAL_PACKAGES.items():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            sys.exit(
                f"external_check: missing package '{dist}' ({exc}).\n"
                f"Install the evaluation extra: .venv/bin/pip install -e '.[eval]'"
            )


_require_eval_packages()

import audiomentations as am  # noqa: E402 - after the check that names the missing extra
import pandas as pd  # noqa: E402
import pedalboard as pb  # noqa: E402
import soundfile as sf  # noqa: E402
from sklearn.metrics import confusion_matrix, f1_score, recall_score  # noqa: E402
from tqdm import tqdm  # noqa: E402

from adv import CLASSES  # noqa: E402

SR = 32000
PEAK_LIMIT = 0.999  # a damaged copy louder than full scale is scaled down (as an editor would on export)


# ---------------------------------------------------------------- effects
# Each effect takes (audio [2, N] float32, sample rate, rng) and returns (damaged audio, parameters).


def _am_apply(transform, audio: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Runs an audiomentations transform whose ranges are already pinned; its own random draws
    (python `random`, numpy global) are seeded from `rng` so a run is reproducible."""
    s = int(rng.integers(2**31))
    random.seed(s)
    np.random.seed(s)
    out = transform(samples=audio, sample_rate=sr)
    params = {k: _plain(v) for k, v in transform.parameters.items() if k != "should_apply"}
    return out, params


def am_clipping(audio, sr, rng):
    pct = int(rng.integers(5, 31))
    return _am_apply(am.ClippingDistortion(pct, pct, p=1.0), audio, sr, rng)


def _hard_clip(audio, sr, overdrive_db: float, threshold_db: float = -1.0):
    """pedalboard Gain + Clipping: the clip's peak driven ``overdrive_db`` above a hard clipper."""
    peak_db = 20 * np.log10(max(float(np.abs(audio).max()), 1e-9))
    gain_db = threshold_db - peak_db + overdrive_db
    out = pb.Pedalboard([pb.Gain(gain_db), pb.Clipping(threshold_db=threshold_db)])(audio, sr)
    clipped = float(np.mean(np.abs(out) >= 10 ** (threshold_db / 20) * 0.9999))
    return out, {
        "overdrive_db": overdrive_db,
        "gain_db": gain_db,
        "threshold_db": threshold_db,
        "clipped_fraction": clipped,
    }


def pb_clipping(audio, sr, rng):
    """Driven into a hard clipper at -1 dBFS: the clip's peak ends up 6-18 dB above the threshold."""
    return _hard_clip(audio, sr, float(rng.uniform(6.0, 18.0)))


def pb_distortion(audio, sr, rng):
    drive_db = float(rng.uniform(10.0, 30.0))
    return pb.Distortion(drive_db=drive_db)(audio, sr), {"drive_db": drive_db}


def pb_mp3(audio, sr, rng):
    q = float(rng.uniform(6.0, 9.5))
    out = pb.MP3Compressor(vbr_quality=q)(audio, sr)
    return out, {"vbr_quality": q}


def am_mp3(audio, sr, rng):
    kbps = int(rng.choice([32, 40, 48, 56, 64, 80, 96]))
    t = am.Mp3Compression(min_bitrate=kbps, max_bitrate=kbps, backend="fast-mp3-augment", quality=7, p=1.0)
    out, params = _am_apply(t, audio, sr, rng)
    return out, {**params, "backend": "fast-mp3-augment", "lame_quality": 7}


def am_gaussian_snr(audio, sr, rng):
    snr = float(rng.uniform(5.0, 20.0))
    out, params = _am_apply(am.AddGaussianSNR(snr, snr, p=1.0), audio, sr, rng)
    return out, {"snr_db": snr, **params}


def _color_noise(f_decay: float) -> Callable:
    def effect(audio, sr, rng):
        snr = float(rng.uniform(5.0, 20.0))
        t = am.AddColorNoise(min_snr_db=snr, max_snr_db=snr, min_f_decay=f_decay, max_f_decay=f_decay, p=1.0)
        out, params = _am_apply(t, audio, sr, rng)
        return out, {"snr_db": snr, **params}

    return effect


def _rolloff(rng) -> int:
    return int(rng.choice([12, 18, 24]))


def am_lowpass(audio, sr, rng):
    fc, ro = float(rng.uniform(2000.0, 6000.0)), _rolloff(rng)
    return _am_apply(am.LowPassFilter(fc, fc, ro, ro, p=1.0), audio, sr, rng)


def am_highpass(audio, sr, rng):
    fc, ro = float(rng.uniform(300.0, 1000.0)), _rolloff(rng)
    return _am_apply(am.HighPassFilter(fc, fc, ro, ro, p=1.0), audio, sr, rng)


def am_bandpass(audio, sr, rng):
    """Telephone-like: centre 0.9-1.4 kHz, bandwidth 1.6-1.99 x centre (~0.3-3 kHz pass band)."""
    fc, bw, ro = float(rng.uniform(900.0, 1400.0)), float(rng.uniform(1.6, 1.99)), _rolloff(rng)
    t = am.BandPassFilter(fc, fc, bw, bw, ro, ro, p=1.0)
    return _am_apply(t, audio, sr, rng)


def am_peaking(audio, sr, rng):
    gain = float(rng.uniform(12.0, 18.0) * rng.choice([-1.0, 1.0]))
    fc, q = float(np.exp(rng.uniform(np.log(300.0), np.log(6000.0)))), float(rng.uniform(0.7, 3.0))
    t = am.PeakingFilter(fc, fc, gain, gain, q, q, p=1.0)
    return _am_apply(t, audio, sr, rng)


def pb_ladder_lowpass(audio, sr, rng):
    fc = float(rng.uniform(2000.0, 6000.0))
    out = pb.LadderFilter(mode=pb.LadderFilter.Mode.LPF24, cutoff_hz=fc, resonance=0.0, drive=1.0)(audio, sr)
    return out, {"mode": "LPF24", "cutoff_hz": fc}


def _one_channel(rng) -> int:
    return int(rng.integers(2))


def np_polarity(audio, sr, rng):
    ch = _one_channel(rng)
    out = audio.copy()
    out[ch] = -out[ch]
    return out, {"channel": ["left", "right"][ch]}


def np_channel_delay(audio, sr, rng):
    ch, ms = _one_channel(rng), float(rng.uniform(0.5, 2.0))
    lag = round(ms * sr / 1000)
    out = audio.copy()
    out[ch, lag:] = audio[ch, :-lag]
    out[ch, :lag] = 0.0
    return out, {"channel": ["left", "right"][ch], "delay_ms": lag * 1000 / sr, "delay_samples": lag}


def pb_phaser_one_channel(audio, sr, rng):
    ch = _one_channel(rng)
    params = {
        "rate_hz": float(rng.uniform(0.2, 2.0)),
        "depth": float(rng.uniform(0.5, 1.0)),
        "centre_frequency_hz": float(rng.uniform(500.0, 2500.0)),
        "feedback": float(rng.uniform(0.0, 0.7)),
        "mix": float(rng.uniform(0.5, 1.0)),
    }
    out = audio.copy()
    out[ch] = pb.Phaser(**params)(audio[ch : ch + 1], sr)[0]
    return out, {"channel": ["left", "right"][ch], **params}


def am_limiter_master(audio, sr, rng):
    """A loud master: audiomentations Limiter 3-12 dB below the peak (look-ahead, no flat tops),
    then the peak brought to -1..-0.1 dBFS. A clean clip: nothing is clipped."""
    thr = float(rng.uniform(-12.0, -3.0))
    t = am.Limiter(
        min_threshold_db=thr,
        max_threshold_db=thr,
        min_attack=0.0005,
        max_attack=0.005,
        min_release=0.05,
        max_release=0.3,
        threshold_mode="relative_to_signal_peak",
        p=1.0,
    )
    out, params = _am_apply(t, np.ascontiguousarray(audio), sr, rng)
    ceiling_db = float(rng.uniform(-1.0, -0.1))
    out = out * (10 ** (ceiling_db / 20) / max(float(np.abs(out).max()), 1e-9))
    return out, {"limit_db": thr, "ceiling_dbfs": ceiling_db, **params}


def master_then_clipped(audio, sr, rng):
    """A loud master (as above) driven 3-9 dB into a hard clipper at -1 dBFS."""
    mastered, mparams = am_limiter_master(audio, sr, rng)
    out, cparams = _hard_clip(mastered, sr, float(rng.uniform(3.0, 9.0)))
    return out, {**mparams, **cparams}


@dataclass(frozen=True)
class Variant:
    kind: str  # the class the damage belongs to
    tool: str  # library that made it
    name: str
    effect: Callable | None  # None: the clean clip itself


VARIANTS = (
    Variant("clean", "-", "clean", None),
    Variant("clipping", "audiomentations", "ClippingDistortion", am_clipping),
    Variant("clipping", "pedalboard", "Gain+Clipping", pb_clipping),
    Variant("clipping", "pedalboard", "Distortion", pb_distortion),
    Variant("mp3", "pedalboard", "MP3Compressor(VBR)", pb_mp3),
    Variant("mp3", "audiomentations", "Mp3Compression(CBR)", am_mp3),
    Variant("noise", "audiomentations", "AddGaussianSNR", am_gaussian_snr),
    Variant("noise", "audiomentations", "AddColorNoise(pink)", _color_noise(-3.01)),
    Variant("noise", "audiomentations", "AddColorNoise(brown)", _color_noise(-6.02)),
    Variant("eq", "audiomentations", "LowPassFilter", am_lowpass),
    Variant("eq", "audiomentations", "HighPassFilter", am_highpass),
    Variant("eq", "audiomentations", "BandPassFilter(telephone)", am_bandpass),
    Variant("eq", "audiomentations", "PeakingFilter", am_peaking),
    Variant("eq", "pedalboard", "LadderFilter(LPF24)", pb_ladder_lowpass),
    Variant("phase", "numpy", "polarity(one channel)", np_polarity),
    Variant("phase", "numpy", "delay(one channel)", np_channel_delay),
    Variant("phase", "pedalboard", "Phaser(one channel)", pb_phaser_one_channel),
    # appended (each variant's random stream depends on its position): loud masters
    Variant("clean", "audiomentations", "Limiter(loud master)", am_limiter_master),
    Variant("clipping", "audiomentations+pedalboard", "loud master+Clipping", master_then_clipped),
)


def _plain(v):
    """JSON-friendly copy of a parameter value."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 16 else f"array{list(v.shape)}"
    return v


def damage(variant: Variant, audio: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Applies one variant; the result is float32 [2, N], scaled down if it went over full scale."""
    if variant.effect is None:
        return audio, {}
    out, params = variant.effect(audio.copy(), SR, rng)
    out = np.ascontiguousarray(out, dtype=np.float32)
    if out.shape != audio.shape:
        raise ValueError(f"{variant.name} changed the shape {audio.shape} -> {out.shape}")
    peak = float(np.abs(out).max())
    if peak > 1.0:
        out *= PEAK_LIMIT / peak
        params["peak_scaled_db"] = 20 * np.log10(PEAK_LIMIT / peak)
    return out, params


# ---------------------------------------------------------------- data


def pick_clean_clips(corpus: Path, split: str, n: int, seed: int) -> pd.DataFrame:
    m = pd.read_csv(corpus / "manifest.csv", usecols=["clip_id", "path", "split", "labels", "source_track"])
    clean = m[(m["split"] == split) & (m["labels"] == "clean")].sort_values("clip_id").reset_index(drop=True)
    if clean.empty:
        sys.exit(f"external_check: no clean clips in split '{split}' of {corpus / 'manifest.csv'}")
    idx = np.sort(np.random.default_rng(seed).choice(len(clean), size=min(n, len(clean)), replace=False))
    return clean.iloc[idx].reset_index(drop=True)


def load_clip(path: Path) -> np.ndarray:
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != SR:
        raise ValueError(f"{path}: {sr} Hz, the corpus clips are {SR} Hz")
    audio = audio.T
    return np.ascontiguousarray(np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio[:2])


# ---------------------------------------------------------------- run


def run_case(validator, clip: pd.Series, audio: np.ndarray, variant: Variant, v_index: int, seed: int) -> dict:
    row = {
        "clip_id": clip["clip_id"],
        "path": clip["path"],
        "source_track": clip["source_track"],
        "kind": variant.kind,
        "tool": variant.tool,
        "variant": variant.name,
    }
    rng = np.random.default_rng([seed, int(clip["clip_id"].lstrip("c") or 0), v_index])
    try:
        t0 = time.perf_counter()
        damaged, params = damage(variant, audio, rng)
        row["params"] = {k: _plain(v) for k, v in params.items()}
        row["effect_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        r = validator.analyze(damaged, sample_rate=SR)
    except Exception as exc:  # noqa: BLE001 - one failing effect must not stop the benchmark
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row.update(
        {
            "has_distortion": r["has_distortion"],
            "predicted": r["distortion_type"],
            "severity": r["severity"],
            "confidence": r["confidence"],
            "probabilities": {k: t["probability"] for k, t in r["types"].items()},
            "kind_severities": {k: t["severity"] for k, t in r["types"].items()},
            "analysis_ms": r["analysis_ms"],
        }
    )
    return row


def _group_stats(rows: list[dict]) -> dict:
    n = len(rows)
    return {
        "n": n,
        "detected_pct": round(100 * sum(r["has_distortion"] for r in rows) / n, 1),
        "typed_correctly_pct": round(100 * sum(r["predicted"] == r["kind"] for r in rows) / n, 1),
        "mean_severity": round(float(np.mean([r["severity"] for r in rows])), 1),
    }


def summarise(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    per_variant = []
    for v in VARIANTS:
        group = [r for r in ok if r["variant"] == v.name]
        if group:
            per_variant.append({"kind": v.kind, "tool": v.tool, "variant": v.name, **_group_stats(group)})
    per_kind = {k: _group_stats(g) for k in CLASSES if (g := [r for r in ok if r["kind"] == k])}
    y_true, y_pred = [r["kind"] for r in ok], [r["predicted"] for r in ok]
    labels = list(CLASSES)
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    clean = [r for r in ok if r["kind"] == "clean"]
    return {
        "cases": len(rows),
        "errors": len(rows) - len(ok),
        "per_variant": per_variant,
        "per_kind": per_kind,
        "per_class_recall": {c: round(float(x), 4) for c, x in zip(labels, recall)},
        "clean_false_alarm_rate": round(sum(r["has_distortion"] for r in clean) / max(1, len(clean)), 4),
        "damaged_detection_rate": round(
            float(np.mean([r["has_distortion"] for r in ok if r["kind"] != "clean"] or [0.0])), 4
        ),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4),
        "confusion": {
            "labels": labels,
            "rows_true_cols_pred": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }


def print_report(summary: dict) -> None:
    head = f"{'kind':<9}{'tool':<16}{'variant':<27}{'n':>4}{'detected%':>11}{'typed%':>8}{'mean sev':>10}"
    print("\n" + head + "\n" + "-" * len(head))
    for r in summary["per_variant"]:
        print(
            f"{r['kind']:<9}{r['tool']:<16}{r['variant']:<27}{r['n']:>4}{r['detected_pct']:>11.1f}"
            f"{r['typed_correctly_pct']:>8.1f}{r['mean_severity']:>10.1f}"
        )
    print("-" * len(head))
    for k, r in summary["per_kind"].items():
        print(
            f"{k:<9}{'(all)':<16}{'':<27}{r['n']:>4}{r['detected_pct']:>11.1f}"
            f"{r['typed_correctly_pct']:>8.1f}{r['mean_severity']:>10.1f}"
        )
    print("\nper-class recall: " + ", ".join(f"{c} {x:.3f}" for c, x in summary["per_class_recall"].items()))
    print(
        f"clean false-alarm rate: {summary['clean_false_alarm_rate']:.3f}   "
        f"damaged detected: {summary['damaged_detection_rate']:.3f}   "
        f"macro-F1 (6 classes): {summary['macro_f1']:.4f}"
    )
    if summary["errors"]:
        print(f"{summary['errors']} of {summary['cases']} cases failed (see 'error' in the JSON rows)")


def versions() -> dict:
    from importlib.metadata import version

    dists = ("audio-distortion-validator", "audiomentations", "pedalboard", "fast-mp3-augment", "numpy", "scikit-learn")
    return {**{d: version(d) for d in dists}, "python": sys.version.split()[0]}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "corpus", help="corpus dir with manifest.csv")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n-clips", type=int, default=40, help="clean clips to damage (default 40)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", type=Path, default=None, help="detector file (default: the shipped model)")
    ap.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    ap.add_argument("--out", type=Path, default=None, help="write rows + summary as JSON here")
    ap.add_argument(
        "--loud-masters",
        action="store_true",
        help="make every clean clip a loud master first (the 'Limiter(loud master)' effect), so all "
        "damage lands on limited music; its settings are in each row's 'master' field",
    )
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from adv.inference.validator import AudioDistortionValidator

    t0 = time.perf_counter()
    clips = pick_clean_clips(args.corpus, args.split, args.n_clips, args.seed)
    validator = AudioDistortionValidator(args.model, threads=args.threads)
    rows = []
    with tqdm(total=len(clips) * len(VARIANTS), unit="case") as bar:
        for _, clip in clips.iterrows():
            audio = load_clip(args.corpus / clip["path"])
            master = {}
            if args.loud_masters:
                rng = np.random.default_rng([args.seed, int(clip["clip_id"].lstrip("c") or 0), len(VARIANTS)])
                audio, master = am_limiter_master(audio, SR, rng)
                audio = np.asarray(audio, dtype=np.float32)
            for i, variant in enumerate(VARIANTS):
                bar.set_postfix_str(f"{clip['clip_id']} {variant.name}", refresh=False)
                rows.append(
                    {
                        **run_case(validator, clip, audio, variant, i, args.seed),
                        **({"master": master} if master else {}),
                    }
                )
                bar.update()
    summary = summarise(rows)
    elapsed = time.perf_counter() - t0
    print_report(summary)
    print(f"\n{len(clips)} clips x {len(VARIANTS)} cases in {elapsed:.0f} s")
    if args.out:
        info = validator.model_info()
        report = {
            "config": {
                "corpus": str(args.corpus),
                "split": args.split,
                "n_clips": len(clips),
                "seed": args.seed,
                "loud_masters": args.loud_masters,
                "model": info["model_path"],
                "model_version": info["model_version"],
                "backend": info["backend"],
                "kind_thresholds": info.get("kind_thresholds"),
                "versions": versions(),
                "variants": [{"kind": v.kind, "tool": v.tool, "variant": v.name} for v in VARIANTS],
            },
            "elapsed_s": round(elapsed, 1),
            "summary": summary,
            "rows": rows,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
