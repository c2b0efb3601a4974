"""Caches what training needs from each corpus clip: the mono log-mel (PANN front end) and the
signal features of the stereo waveform, plus the labels. One folder per split:

  FEATURES/SPLIT/logmel.npy  float16 [N, frames, mel_bins]
  FEATURES/SPLIT/signal.npy  float32 [N, n_signal_features]
  FEATURES/SPLIT/labels.npy  float32 [N, 6]  multi-hot over CLASSES (clean = no distortion)
  FEATURES/SPLIT/severity.npy float32 [N, 5] severity per distortion kind (0 where absent)
  FEATURES/SPLIT/index.csv   clip ids, labels, source track, fold, level gains (row order of the arrays)

Level: each clip goes through ``adv.levels.match_training_level`` exactly as an analysis window does in
the validator, so a clip a damage pushed above -0.1 dBFS (hard clipping, EQ boosts) or below -12 dBFS
(turned-down clipping, EQ cuts) is brought back into that range: level is no cue for the model. Clips
of the training split may first get a random gain (``train_gain_db``, drawn per clip from the seed and
the clip id), so that some clean clips, like real masters and quiet passages, end up on the ends of
the range too. Both gains are in ``index.csv`` (``level_gain_db``, ``match_gain_db``) and the settings
in ``meta.json``; a cache made with other level settings is refused rather than silently reused.

Extraction is resumable per split (a split is written once all its clips are done).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from tqdm import tqdm

from adv import CLASSES, DISTORTION_KINDS
from adv.errors import AdvError
from adv.features.signal_features import FEATURE_NAMES
from adv.features.window_features import window_features
from adv.levels import PEAK_RANGE_DBFS, apply_gain_db, match_training_level
from adv.models.frontend import LogMelFrontEnd

FRONTEND_DEFAULTS = {
    "sample_rate": 32000,
    "window_size": 1024,
    "hop_size": 320,
    "mel_bins": 64,
    "fmin": 50.0,
    "fmax": 14000.0,
}


def labels_from_manifest(m: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    sev = m[[f"sev_{k}" for k in DISTORTION_KINDS]].to_numpy(np.float32)
    present = (sev > 0).astype(np.float32)
    clean = (present.sum(axis=1) == 0).astype(np.float32)[:, None]
    return np.concatenate([clean, present], axis=1), sev


class CacheMismatchError(AdvError):
    """An existing cache folder was made with other level settings."""


def load_clip(corpus: Path, row) -> tuple[np.ndarray, int]:
    """``(the clip as rendered (storage gain undone), before any level change; its sample rate)``."""
    data, rate = sf.read(corpus / row.path, dtype="float32", always_2d=True)
    return (data.T / float(row.storage_gain)).astype(np.float32), int(rate)


def level_settings(train_gain_db: tuple[float, float] | None = None, seed: int = 0) -> dict:
    """What decides the level of the cached clips (stored in meta.json, compared on reuse)."""
    gain = [float(train_gain_db[0]), float(train_gain_db[1])] if train_gain_db else [0.0, 0.0]
    return {"peak_range_dbfs": list(PEAK_RANGE_DBFS), "train_gain_db": gain, "seed": int(seed) if train_gain_db else 0}


def clip_gain_db(clip_id: str, gain_range: tuple[float, float], seed: int) -> float:
    """The random level gain of one training clip: reproducible from the seed and the clip id alone."""
    lo, hi = gain_range
    if lo == hi:
        return float(lo)
    rng = np.random.default_rng([int(seed), zlib.crc32(str(clip_id).encode())])
    return float(rng.uniform(lo, hi))


def leveled_clip(audio: np.ndarray, gain_db: float = 0.0) -> tuple[np.ndarray, float]:
    """``(clip after the gain and the validator's level matching, matching gain in dB)``."""
    return match_training_level(apply_gain_db(audio, gain_db) if gain_db else audio)


def check_level_settings(folder: Path, level: dict) -> None:
    meta = folder / "meta.json"
    if not (folder / "index.csv").exists() or not meta.exists():
        return
    found = json.loads(meta.read_text()).get("level")
    if found != level:
        raise CacheMismatchError(
            f"{folder}: feature cache made with level settings {found or '(none: made before level matching)'}, "
            f"this run wants {level}; point `features` (--features) at another folder, or delete this one to "
            "rebuild it"
        )


def extract_split(
    corpus: Path,
    m: pd.DataFrame,
    out: Path,
    fe: dict,
    clip_seconds: float = 10.0,
    batch: int = 16,
    level: dict | None = None,
) -> None:
    level = level or level_settings()
    out.mkdir(parents=True, exist_ok=True)
    check_level_settings(out, level)
    if (out / "index.csv").exists():
        return
    level_gain = np.array(
        [clip_gain_db(c, tuple(level["train_gain_db"]), level["seed"]) for c in m["clip_id"]], np.float32
    )
    match_gain = np.zeros(len(m), np.float32)
    frontend = LogMelFrontEnd(**fe).eval()
    n = len(m)
    sr = fe["sample_rate"]
    frames = int(clip_seconds * sr) // fe["hop_size"] + 1
    logmel = np.lib.format.open_memmap(
        out / "logmel.tmp.npy", mode="w+", dtype=np.float16, shape=(n, frames, fe["mel_bins"])
    )
    signal = np.zeros((n, len(FEATURE_NAMES)), np.float32)
    rows = list(m.itertuples())
    with torch.inference_mode():
        for start in tqdm(range(0, n, batch), desc=f"features {out.name}", unit="batch"):
            chunk = rows[start : start + batch]
            monos = []
            for i, r in enumerate(chunk):  # the function analyze() runs on each window (train/serve parity)
                audio, rate = load_clip(corpus, r)
                m_, signal[start + i], match_gain[start + i] = window_features(
                    audio, rate, sr, float(level_gain[start + i])
                )
                monos.append(m_)
            mono = torch.from_numpy(np.stack(monos))
            mel = frontend(mono).squeeze(1).numpy()  # [B, T, mel]
            logmel[start : start + len(chunk)] = mel[:, :frames].astype(np.float16)
    logmel.flush()
    del logmel
    (out / "logmel.tmp.npy").replace(out / "logmel.npy")
    labels, sev = labels_from_manifest(m)
    np.save(out / "signal.npy", signal)
    np.save(out / "labels.npy", labels)
    np.save(out / "severity.npy", sev)
    (out / "meta.json").write_text(
        json.dumps({"classes": CLASSES, "signal_features": FEATURE_NAMES, "frontend": fe, "level": level})
    )
    index = m[["clip_id", "labels", "source_track", "fold", "variants"] + [f"sev_{k}" for k in DISTORTION_KINDS]].copy()
    index["level_gain_db"] = np.round(level_gain, 3)
    index["match_gain_db"] = np.round(match_gain, 3)
    index.to_csv(out / "index.csv", index=False)


def build_feature_cache(
    corpus_dir: str | Path,
    out_dir: str | Path,
    splits=("train", "val", "test"),
    fe: dict | None = None,
    train_gain_db: tuple[float, float] | None = None,
    seed: int = 0,
) -> Path:
    """Cache the given splits of a corpus; ``train_gain_db``: range of the random level gain of the
    training clips (None: none), drawn per clip from ``seed`` and the clip id."""
    corpus, out = Path(corpus_dir), Path(out_dir)
    m = pd.read_csv(corpus / "manifest.csv")
    fe = {**FRONTEND_DEFAULTS, **(fe or {})}
    for split in splits:
        part = m[m["split"] == split].reset_index(drop=True)
        if len(part):  # the random gain is for training clips only: val and test are what the validator sees
            level = level_settings(train_gain_db if split == "train" else None, seed)
            extract_split(corpus, part, out / split, fe, level=level)
    return out


class CachedSplit:
    """Arrays of one cached split (log-mels memory-mapped)."""

    def __init__(self, folder: str | Path):
        f = Path(folder)
        self.logmel = np.load(f / "logmel.npy", mmap_mode="r")
        self.signal = np.load(f / "signal.npy")
        self.labels = np.load(f / "labels.npy")
        self.severity = np.load(f / "severity.npy")
        self.index = pd.read_csv(f / "index.csv")

    def __len__(self) -> int:
        return len(self.labels)
