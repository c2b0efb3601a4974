#!/usr/bin/env python
"""Clipping check on the user's path: music at 44.1/48/96 kHz, clipped by common tools, as files.

For excerpts of real tracks (a corpus split's source files, or any folder of music with --music),
resampled to each rate with a peak at -1 dBFS, this writes files the way users make them and runs
`AudioDistortionValidator.analyze(path)` on each:

  clipped:  sox `gain G` (16-bit, sox clips at full scale), ffmpeg `volume=G dB` into 16-bit PCM,
            ffmpeg `volume` + `asoftclip=type=tanh` (soft), numpy clip at full scale then
            normalised to -3 dBFS (24-bit FLAC), sox `gain` then LAME 320 kbit/s MP3;
            G drawn from 2-15 dB per excerpt and tool
  clean:    as it is, a loud master by ffmpeg `alimiter` (driven 4-12 dB into a -0.5 dBFS
            ceiling), a loud master by sox `compand` then `gain -n -0.3`

None of these tools makes the corpus's damage or its loud masters (adv.distortions,
adv.data.mastering). The truth is the share of samples a hard clipper at the same drive would
clip (|x| * G >= 1). It prints, per tool and rate, the cases, the median truth, and the shares
flagged as damaged and with `clipping` detected; the targets (issue: >= 97 % of clipped files
with >= 1 % of samples clipped detected as clipping, <= 2 % of loud masters flagged) are checked
at the end. Every case goes to --out as JSON.

    .venv/bin/python scripts/clipping_check.py --corpus ../corpus --split test --n-tracks 20 --out runs/clipping_check.json

Needs sox, ffmpeg and lame on the PATH.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from adv.audio_io import load_audio, resample
from adv.inference.validator import AudioDistortionValidator

RATES = (44100, 48000, 96000)
AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".aiff"}


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr.strip()[-300:]}")


def _ff(src: Path, dst: Path, af: str, codec: list[str]) -> None:
    _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", f"file:{src}", "-af", af, *codec, f"file:{dst}"])


def _truth(x: np.ndarray, gain_db: float) -> float:
    """Share of samples a hard clipper at full scale clips after ``gain_db``."""
    return float(np.mean(np.abs(x) * 10 ** (gain_db / 20) >= 1.0))


def make_cases(x: np.ndarray, sr: int, d: Path, rng: np.random.Generator) -> list[dict]:
    """Writes the clean excerpt ``x`` [C, n] (peak -1 dBFS) and its variants into ``d``."""
    clean = d / "clean.wav"
    sf.write(clean, x.T, sr, subtype="PCM_24")
    cases = [{"tool": "clean as is", "expected": "clean", "path": clean, "truth": 0.0}]

    g = float(rng.uniform(4, 12))
    p = d / "alimiter.wav"
    _ff(clean, p, f"volume={g:.2f}dB,alimiter=limit=0.944:attack=5:release=50:level=false", ["-c:a", "pcm_s24le"])
    cases.append({"tool": "loud master (ffmpeg alimiter)", "expected": "clean", "path": p, "truth": 0.0, "gain_db": g})
    p = d / "compand.wav"
    _run(
        [
            "sox",
            "-V1",
            str(clean),
            "-b",
            "24",
            str(p),
            "compand",
            "0.002,0.08",
            "6:-40,-40,-24,-16,-12,-9,0,-4",
            "-3",
            "-90",
            "0.002",
            "gain",
            "-n",
            "-0.3",
        ]
    )
    cases.append({"tool": "loud master (sox compand)", "expected": "clean", "path": p, "truth": 0.0})

    def gain() -> float:
        return float(rng.uniform(2, 15))

    g = gain()
    p = d / "sox_gain.wav"
    _run(["sox", "-V1", str(clean), "-b", "16", str(p), "gain", f"{g:.2f}"])
    cases.append({"tool": "sox gain", "expected": "clipping", "path": p, "truth": _truth(x, g), "gain_db": g})
    g = gain()
    p = d / "ffmpeg_volume.wav"
    _ff(clean, p, f"volume={g:.2f}dB", ["-c:a", "pcm_s16le"])
    cases.append(
        {"tool": "ffmpeg volume -> 16-bit", "expected": "clipping", "path": p, "truth": _truth(x, g), "gain_db": g}
    )
    g = gain()
    p = d / "asoftclip.wav"
    _ff(clean, p, f"volume={g:.2f}dB,asoftclip=type=tanh", ["-c:a", "pcm_f32le"])
    cases.append(
        {"tool": "ffmpeg asoftclip tanh", "expected": "clipping", "path": p, "truth": _truth(x, g), "gain_db": g}
    )
    g = gain()
    p = d / "clip_normalised.flac"
    y = np.clip(x * 10 ** (g / 20), -1.0, 1.0) * 10 ** (-3 / 20)
    sf.write(p, y.T, sr, subtype="PCM_24")
    cases.append(
        {"tool": "clip, normalise to -3 dBFS", "expected": "clipping", "path": p, "truth": _truth(x, g), "gain_db": g}
    )
    if sr <= 48000:  # MP3 has no 96 kHz
        g = gain()
        w = d / "sox_gain_for_mp3.wav"
        _run(["sox", "-V1", str(clean), "-b", "16", str(w), "gain", f"{g:.2f}"])
        p = d / "clipped.mp3"
        _run(["lame", "--quiet", "-b", "320", str(w), str(p)])
        cases.append(
            {"tool": "sox gain -> MP3 320k", "expected": "clipping", "path": p, "truth": _truth(x, g), "gain_db": g}
        )
    return cases


def music_files(args) -> list[Path]:
    if args.music:
        files = sorted(p for p in Path(args.music).rglob("*") if p.suffix.lower() in AUDIO_EXT)
    else:
        corpus = Path(args.corpus)
        ids = set(pd.read_csv(corpus / "manifest.csv").query("split == @args.split")["source_track"])
        files = [
            Path(t["path"])
            for t in map(json.loads, (corpus / "tracks.jsonl").read_text().splitlines())
            if t["track_id"] in ids and Path(t["path"]).exists()
        ]
    rng = np.random.default_rng(args.seed)
    rng.shuffle(files)
    return files[: args.n_tracks]


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (tool, rate), g in df.groupby(["tool", "rate"], sort=False):
        rows.append(
            {
                "tool": tool,
                "rate": rate,
                "n": len(g),
                "truth_median_pct": round(100 * g.truth.median(), 2),
                "flagged_pct": round(100 * g.has_distortion.mean(), 1),
                "clipping_detected_pct": round(100 * g.clipping_detected.mean(), 1),
                "typed_clipping_pct": round(100 * (g.distortion_type == "clipping").mean(), 1),
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="../corpus", help="corpus folder (manifest.csv, tracks.jsonl)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--music", default=None, help="a folder of music files instead of a corpus split")
    ap.add_argument("--n-tracks", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0, help="excerpt length")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    missing = [t for t in ("sox", "ffmpeg", "lame") if shutil.which(t) is None]
    if missing:
        print(f"clipping_check: needs {', '.join(missing)} on the PATH", file=sys.stderr)
        return 2
    files = music_files(args)
    if not files:
        print("clipping_check: no music found", file=sys.stderr)
        return 2
    v = AudioDistortionValidator(args.model)
    rows, t0 = [], time.time()
    for i, f in enumerate(files, 1):
        dec = load_audio(f)
        x = dec.samples if dec.samples.shape[0] > 1 else np.repeat(dec.samples, 2, axis=0)
        rng = np.random.default_rng([args.seed, i])
        n = int(args.seconds * dec.sample_rate)
        a = int(rng.integers(0, max(1, x.shape[1] - n)))
        for rate in RATES:
            y = resample(x[:2, a : a + n], dec.sample_rate, rate)
            y = y * np.float32(10 ** (-1 / 20) / max(float(np.abs(y).max()), 1e-9))
            with tempfile.TemporaryDirectory(prefix="adv-clipcheck-") as tmp:
                for c in make_cases(y, rate, Path(tmp), rng):
                    r = v.analyze(c["path"])
                    rows.append(
                        {
                            "track": str(f),
                            "rate": rate,
                            "tool": c["tool"],
                            "expected": c["expected"],
                            "truth": c["truth"],
                            "gain_db": c.get("gain_db"),
                            "has_distortion": r["has_distortion"],
                            "distortion_type": r["distortion_type"],
                            "clipping_detected": "clipping" in r["detected_types"],
                            "p_clipping": r["types"]["clipping"]["probability"],
                            "measured_clipped_fraction": (r.get("measurements") or {}).get("clipped_fraction"),
                        }
                    )
        print(f"\r{i}/{len(files)} tracks, {time.time() - t0:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    df = pd.DataFrame(rows)
    table = summarise(df)
    print(table.to_string(index=False))
    clipped = df[(df.expected == "clipping") & (df.truth >= 0.01)]
    masters = df[df.tool.str.startswith("loud master")]
    clean = df[df.expected == "clean"]
    res = {
        "clipped_ge_1pct_detected_as_clipping_pct": round(100 * clipped.clipping_detected.mean(), 1),
        "clipped_ge_1pct_cases": len(clipped),
        "loud_masters_flagged_pct": round(100 * masters.has_distortion.mean(), 1),
        "loud_master_cases": len(masters),
        "clean_flagged_pct": round(100 * clean.has_distortion.mean(), 1),
    }
    print(
        f"clipped (>= 1 % of samples): {res['clipped_ge_1pct_detected_as_clipping_pct']} % detected as clipping "
        f"(target >= 97 %, {len(clipped)} files); loud masters flagged: {res['loud_masters_flagged_pct']} % "
        f"(target <= 2 %, {len(masters)} files); all clean flagged {res['clean_flagged_pct']} %"
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            json.dumps({"summary": res, "table": table.to_dict("records"), "cases": rows}, indent=1, default=str)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
