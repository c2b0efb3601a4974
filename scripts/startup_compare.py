#!/usr/bin/env python
"""Wall time of `adv analyze FILE` (process start to exit), this checkout beside an earlier commit.

The earlier commit is checked out into a temporary git worktree and run from its own source with
the same virtual environment, alternating runs so that machine load hits both alike. Prints the
median and spread of each and their ratio.

    .venv/bin/python scripts/startup_compare.py --baseline f7f43d2 --runs 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent


def _one_wav(path: Path, seconds: float = 30.0, sr: int = 44100) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(0).standard_normal(t.size)
    sf.write(path, np.stack([x, 0.9 * x], 1), sr)
    return path


def _time(src: Path, wav: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "adv.cli", "analyze", str(wav)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", required=True, help="git commit to compare with")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--file", default=None, help="audio file (default: a generated 30-s 44.1-kHz stereo WAV)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wav = Path(a.file) if a.file else _one_wav(tmp / "one.wav")
        tree = tmp / "baseline"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), a.baseline],
            check=True,
            capture_output=True,
        )
        try:
            now, before = [], []
            _time(REPO / "src", wav), _time(tree / "src", wav)  # warm caches (ONNX export, page cache)
            for _ in range(a.runs):
                now.append(_time(REPO / "src", wav))
                before.append(_time(tree / "src", wav))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
    m_now, m_before = statistics.median(now), statistics.median(before)
    print(f"adv analyze {wav.name if a.file else '30-s 44.1-kHz stereo WAV'}, {a.runs} runs each, alternating")
    print(f"  {a.baseline:>10}: median {m_before:.2f} s (min {min(before):.2f}, max {max(before):.2f})")
    print(f"  {'this':>10}: median {m_now:.2f} s (min {min(now):.2f}, max {max(now):.2f})")
    print(f"  ratio this / {a.baseline}: {m_now / m_before:.2f} (target <= 0.50)")
    return 0 if m_now <= 0.5 * m_before else 1


if __name__ == "__main__":
    sys.exit(main())
