"""`adv demo`: makes an example song and damaged copies of it the way users meet them, then
analyses them and says, for each copy, whether its damage was found and what the measurements show.

The example is a music21 score rendered with fluidsynth (random instruments, fixed seed); without
fluidsynth a synthetic chord progression is used instead. The copies are 44.1-kHz files: hard
clipping (12 dB into full scale), a 96 kbit/s MP3 made by LAME, hiss 30 dB below the music, a 1.5-kHz
low-pass (ffmpeg), and the right channel's polarity inverted.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adv import DISTORTION_KINDS
from adv.audio_io import load_audio, resample, write_audio

SR = 32000
#: the rate of the demo's files (a common release rate)
DEMO_RATE = 44100


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
            tone = sum(np.sin(2 * np.pi * f * h * t[seg]) / h**1.5 for h in range(1, 8)) * env
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
        return audio[:, start : start + 12 * SR]
    except Exception:  # noqa: BLE001 - any missing tool: fall back to a synthetic song
        return synthetic_song()


@dataclass(frozen=True)
class Copy:
    path: Path
    kind: str  # "clean" for the original
    made_by: str  # the tool and setting, in words


def _run(cmd: list[str]) -> bool:
    if shutil.which(cmd[0]) is None:
        return False
    return subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=120).returncode == 0


def _ffmpeg(src: Path, dst: Path, *args: str) -> bool:
    """ffmpeg from ``src`` to ``dst`` with ``args`` between them; False when it is missing or fails."""
    return _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", f"file:{src}", *args, f"file:{dst}"])


def make_examples(out_dir: Path, seed: int = 0) -> list[Copy]:
    """The original (clean.wav) and one damaged copy per kind in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sr = DEMO_RATE
    song = resample(example_song(out_dir / "_render"), SR, sr)
    song = (0.7 * song / max(float(np.abs(song).max()), 1e-6)).astype(np.float32)
    rng = np.random.default_rng(seed)
    clean = out_dir / "clean.wav"
    write_audio(clean, song, sr, subtype="PCM_24")
    copies = [Copy(clean, "clean", "the original (peak -3 dBFS)")]

    clipped = np.clip(song * 10 ** (12 / 20), -1.0, 1.0)
    write_audio(out_dir / "clipping.wav", clipped, sr, subtype="PCM_16")
    copies.append(Copy(out_dir / "clipping.wav", "clipping", "12 dB of gain into full scale, hard clipped (16-bit)"))

    mp3 = out_dir / "mp3.mp3"
    if _run(["lame", "--quiet", "-b", "96", str(clean), str(mp3)]):
        copies.append(Copy(mp3, "mp3", "LAME MP3 at 96 kbit/s"))
    elif _ffmpeg(clean, mp3, "-c:a", "libmp3lame", "-b:a", "96k"):
        copies.append(Copy(mp3, "mp3", "ffmpeg libmp3lame MP3 at 96 kbit/s"))
    else:
        from adv.distortions import apply_distortion

        coded, _ = apply_distortion("mp3", song, sr, 0.6, rng)
        write_audio(out_dir / "mp3.wav", coded, sr, subtype="PCM_24")
        copies.append(Copy(out_dir / "mp3.wav", "mp3", "the project's codec simulation (no lame or ffmpeg found)"))

    level = np.sqrt(np.mean(song.astype(np.float64) ** 2))
    hiss = rng.standard_normal(song.shape) * level * 10 ** (-30 / 20)
    write_audio(out_dir / "noise.wav", (song + hiss).astype(np.float32), sr, subtype="PCM_24")
    copies.append(Copy(out_dir / "noise.wav", "noise", "white hiss 30 dB below the music"))

    eq = out_dir / "eq.wav"
    if _ffmpeg(clean, eq, "-af", "lowpass=f=1500", "-c:a", "pcm_s24le"):
        copies.append(Copy(eq, "eq", "ffmpeg lowpass at 1.5 kHz (a muffled master)"))
    else:
        from adv.measurements.synth import lowpass

        write_audio(eq, lowpass(song, sr, 1500.0, order=2), sr, subtype="PCM_24")
        copies.append(Copy(eq, "eq", "a 1.5-kHz low-pass (scipy)"))

    write_audio(out_dir / "phase.wav", song * np.array([[1.0], [-1.0]], dtype=np.float32), sr, subtype="PCM_24")
    copies.append(Copy(out_dir / "phase.wav", "phase", "the right channel's polarity inverted"))
    assert {c.kind for c in copies} == {"clean", *DISTORTION_KINDS}
    return copies


#: the measurement that shows each kind of damage, with its label and format
EVIDENCE = {
    "clipping": ("clipped_fraction", "clipped samples", "{:.1%}"),
    "mp3": ("cutoff_hz", "cut-off", "{:.0f} Hz"),
    "noise": ("snr_db", "SNR", "{:.0f} dB"),
    "eq": ("spectral_deviation_db", "spectral deviation", "{:.1f} dB"),
    "phase": ("lr_correlation", "L/R correlation", "{:.2f}"),
}


def _measured(result: dict, original: dict, kind: str) -> str:
    key, label, fmt = EVIDENCE[kind]
    got, ref = (result.get("measurements") or {}).get(key), (original.get("measurements") or {}).get(key)

    def show(v) -> str:
        return "n/a" if v is None else fmt.format(v)

    return f"{label} {show(got)} (original {show(ref)})"


def explain(copy: Copy, result: dict, original: dict) -> str:
    """One line: was the copy's damage found, and what do its probability and measurement say."""
    name = copy.path.name
    if "error" in result:
        return f"{name:14} ERROR   {result['error']}"
    if copy.kind == "clean":
        if not result["has_distortion"]:
            return f"{name:14} ok      clean, as it should be ({copy.made_by})"
        t = result["types"][result["distortion_type"]]
        return (
            f"{name:14} FALSE ALARM  called {result['distortion_type']} (P {t['probability']:.2f} >= its threshold "
            f"{t['threshold']:.2f})"
        )
    t = result["types"][copy.kind]
    evidence = _measured(result, original, copy.kind)
    if t["detected"]:
        return (
            f"{name:14} found   {copy.kind} at {t['severity']:.0f} % (P {t['probability']:.2f} >= threshold "
            f"{t['threshold']:.2f}); {evidence}; made by {copy.made_by}"
        )
    said = "clean" if not result["has_distortion"] else result["distortion_type"]
    return (
        f"{name:14} MISSED  called {said}: P({copy.kind}) {t['probability']:.2f} is below its threshold "
        f"{t['threshold']:.2f} (set for few false alarms on clean music); {evidence}; made by {copy.made_by}"
    )
