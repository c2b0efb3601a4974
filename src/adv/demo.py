"""`adv demo`: makes an example song and damaged copies of it, then analyses them.

The example is a music21 score rendered with fluidsynth (random instruments, fixed seed); without
fluidsynth a synthetic chord progression is used instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adv import DISTORTION_KINDS
from adv.audio_io import load_audio, write_audio

SR = 32000


def synthetic_song(seconds: float = 12.0, seed: int = 0) -> np.ndarray:
    """A stereo chord progression with a bass line and hi-hat noise, [2, N] float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = np.zeros((2, n))
    chords = [(220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    beat = int(SR * 0.5)
    for k in range(-(-n // beat)):
        seg = slice(k * beat, min(n, (k + 1) * beat))
        env = np.exp(-3 * (t[seg] - t[seg][0]))
        for j, f in enumerate(chords[(k // 4) % 4]):
            tone = sum(np.sin(2 * np.pi * f * h * t[seg]) / h ** 1.5 for h in range(1, 8)) * env
            pan = 0.3 + 0.2 * j
            out[0, seg] += (1 - pan) * tone
            out[1, seg] += pan * tone
        hat = rng.standard_normal(seg.stop - seg.start) * np.exp(-40 * (t[seg] - t[seg][0]))
        out[:, seg] += 0.15 * hat
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def example_song(cache: Path, seed: int = 3) -> np.ndarray:
    """12 s of a Bach chorale (picked and instrumented by `seed`) rendered with fluidsynth."""
    try:
        from adv.data import midi_render

        score = midi_render.corpus_scores(np.random.default_rng(seed), {"bach": 1})[0][1]
        path, _ = midi_render.render_source(score, "score", cache, f"demo_song_{seed}", seed=seed)
        audio = load_audio(path, target_sr=SR).samples
        start = int(min(5 * SR, max(0, audio.shape[1] - 12 * SR)))
        return audio[:, start:start + 12 * SR]
    except Exception:  # noqa: BLE001 - any missing tool: fall back to a synthetic song
        return synthetic_song()


def make_examples(out_dir: Path, severity: float = 0.6) -> list[Path]:
    from adv.distortions import apply_distortion

    out_dir.mkdir(parents=True, exist_ok=True)
    song = example_song(out_dir / "_render")
    song = 0.7 * song / max(float(np.abs(song).max()), 1e-6)
    paths = [out_dir / "clean.wav"]
    write_audio(paths[0], song, SR, subtype="FLOAT")
    for i, kind in enumerate(DISTORTION_KINDS):
        damaged, _ = apply_distortion(kind, song, SR, severity, np.random.default_rng(i))
        paths.append(out_dir / f"{kind}.wav")
        write_audio(paths[-1], damaged, SR, subtype="FLOAT")
    return paths
