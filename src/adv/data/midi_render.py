"""Renders MIDI/score material to stereo audio with fluidsynth + FluidR3_GM, randomising instruments.

Scores come from the music21 corpus (shipped with the music21 package) and MIDI files from Debian
packages (openttd-openmsx). Each render is seeded: instruments (General MIDI programs), tempo and
transposition are drawn from the render's seed, so the corpus is reproducible.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from adv.errors import AdvError

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")

# General MIDI programs that sound like real instruments (no sound effects, no percussion kits)
GM_PROGRAMS = (
    list(range(0, 8))  # pianos
    + list(range(16, 24))  # organs
    + list(range(24, 32))  # guitars
    + list(range(32, 40))  # basses
    + list(range(40, 52))  # strings, ensembles
    + list(range(52, 56))  # choir, voice
    + list(range(56, 64))  # brass
    + list(range(64, 80))  # reeds, pipes
    + list(range(80, 96))  # synth leads and pads
)

# composers in the music21 corpus, with how many scores to take from each
CORPUS_COMPOSERS = {
    "bach": 60,
    "beethoven": 16,
    "mozart": 12,
    "haydn": 8,
    "monteverdi": 20,
    "palestrina": 20,
    "trecento": 10,
    "schumann": 4,
    "schubert": 4,
    "handel": 4,
    "joplin": 4,
    "verdi": 4,
}


MAX_SECONDS = 240.0  # renders are capped to about four minutes of music


class RenderError(AdvError, RuntimeError):
    """A score could not be rendered to audio."""


def soundfont() -> str:
    for sf2 in SOUNDFONTS:
        if Path(sf2).exists():
            return sf2
    raise RenderError("no General MIDI soundfont found; install the Debian package fluid-soundfont-gm")


def corpus_scores(rng: np.random.Generator, counts: dict[str, int] | None = None) -> list[tuple[str, str]]:
    """(composer, score path) pairs drawn from the music21 corpus."""
    from music21 import corpus

    out = []
    for composer, n in (counts or CORPUS_COMPOSERS).items():
        paths = sorted(str(p) for p in corpus.getComposer(composer))
        if not paths:
            continue
        pick = rng.choice(len(paths), size=min(n, len(paths)), replace=False)
        out.extend((composer, paths[i]) for i in sorted(pick))
    return out


def score_to_midi(src: str, dest: Path, rng: np.random.Generator) -> dict:
    """Writes a MIDI file with random instruments, tempo scale and transposition; returns the choices."""
    from music21 import converter, instrument, tempo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = converter.parse(src)
        programs = []
        parts = list(getattr(score, "parts", [])) or [score]
        for part in parts:
            for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
                if old.activeSite is not None:
                    old.activeSite.remove(old)
            prog = int(rng.choice(GM_PROGRAMS))
            inst = instrument.instrumentFromMidiProgram(prog)
            inst.midiProgram = prog
            part.insert(0, inst)
            programs.append(prog)
        bpm = float(rng.uniform(60, 150))
        seconds = float(score.highestTime) * 60.0 / bpm
        if seconds > MAX_SECONDS and getattr(score, "parts", None):
            # long movements: keep about MAX_SECONDS of music (whole measures)
            n_measures = len(score.parts[0].getElementsByClass("Measure")) or 1
            keep = max(4, int(n_measures * MAX_SECONDS / seconds))
            score = score.measures(1, keep)
        semitones = int(rng.integers(-4, 5))
        if semitones:
            score = score.transpose(semitones)
        for old in list(score.recurse().getElementsByClass(tempo.MetronomeMark)):
            if old.activeSite is not None:
                old.activeSite.remove(old)
        first = score.parts[0] if getattr(score, "parts", None) else score
        first.insert(0, tempo.MetronomeMark(number=bpm))
        score.write("midi", fp=str(dest))
    return {"programs": programs, "transpose": semitones, "bpm": round(bpm, 1)}


def render_midi(midi: Path, dest: Path, gain: float, reverb: bool, chorus: bool, sample_rate: int = 44100) -> None:
    """fluidsynth render (raw 16-bit stereo on a pipe) to a FLAC of at most MAX_SECONDS.

    Reading from a pipe bounds the work: some scores leave notes sounding for hours, and the
    renderer is stopped once enough audio has arrived.
    """
    if shutil.which("fluidsynth") is None:
        raise RenderError("fluidsynth is not installed (Debian package fluidsynth)")
    cmd = [
        "fluidsynth",
        "-ni",
        "-q",
        "-g",
        f"{gain:.3f}",
        "-r",
        str(sample_rate),
        "-R",
        "1" if reverb else "0",
        "-C",
        "1" if chorus else "0",
        "-T",
        "raw",
        "-O",
        "s16",
        "-F",
        "-",
        soundfont(),
        str(midi),
    ]
    limit = int(MAX_SECONDS * 1.25 * sample_rate) * 4
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    chunks, got = [], 0
    try:
        while got < limit:
            chunk = proc.stdout.read(min(1 << 20, limit - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    finally:
        proc.kill()
        proc.wait()
    raw = b"".join(chunks)
    audio = np.frombuffer(raw[: len(raw) - len(raw) % 4], dtype="<i2").reshape(-1, 2)
    if len(audio) < sample_rate:
        raise RenderError(f"fluidsynth produced {len(audio)} frames for {midi}")
    tmp = dest.with_name(f"{dest.stem}.{os.getpid()}.part.flac")
    sf.write(tmp, audio, sample_rate, subtype="PCM_16")
    tmp.replace(dest)


def render_source(src: str, kind: str, out_dir: Path, name: str, seed: int) -> tuple[Path, dict]:
    """Renders a score ("score") or MIDI file with random instruments ("midi") to out_dir/name.flac."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{name}.flac"
    rng = np.random.default_rng(seed)
    sidecar = out_dir / f"{name}.json"
    if dest.exists() and sidecar.exists():  # rendered before: reuse without parsing the score again
        return dest, json.loads(sidecar.read_text())
    midi = out_dir / f"{name}.{os.getpid()}.mid"
    render = {
        "gain": round(float(rng.uniform(0.2, 0.5)), 3),
        "reverb": bool(rng.random() < 0.7),
        "chorus": bool(rng.random() < 0.5),
    }
    params = score_to_midi(src, midi, rng)  # MIDI files are re-instrumented the same way
    params.update(render)
    failed = out_dir / f"{name}.failed"
    if failed.exists():
        raise RenderError(f"earlier render failed: {failed.read_text()}")
    try:
        if not dest.exists():
            render_midi(midi, dest, **render)
    except RenderError as exc:
        failed.write_text(str(exc))  # remembered, so a resumed build does not retry for minutes
        raise
    finally:
        midi.unlink(missing_ok=True)
    params["kind"] = kind
    sidecar.write_text(json.dumps(params))
    return dest, params
