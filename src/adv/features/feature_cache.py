"""Caches what training needs from each corpus clip: the mono log-mel (PANN front end) and the
signal features of the stereo waveform, plus the labels. One folder per split:

  FEATURES/SPLIT/logmel.npy  float16 [N, frames, mel_bins]
  FEATURES/SPLIT/signal.npy  float32 [N, n_signal_features]
  FEATURES/SPLIT/labels.npy  float32 [N, 6]  multi-hot over CLASSES (clean = no distortion)
  FEATURES/SPLIT/severity.npy float32 [N, 5] severity per distortion kind (0 where absent)
  FEATURES/SPLIT/index.csv   clip ids, labels, source track, fold (row order of the arrays)

Extraction is resumable per split (a split is written once all its clips are done).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from tqdm import tqdm

from adv import CLASSES, DISTORTION_KINDS
from adv.features.signal_features import FEATURE_NAMES, compute_signal_features
from adv.models.frontend import LogMelFrontEnd

FRONTEND_DEFAULTS = {"sample_rate": 32000, "window_size": 1024, "hop_size": 320, "mel_bins": 64,
                     "fmin": 50.0, "fmax": 14000.0}


def labels_from_manifest(m: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    sev = m[[f"sev_{k}" for k in DISTORTION_KINDS]].to_numpy(np.float32)
    present = (sev > 0).astype(np.float32)
    clean = (present.sum(axis=1) == 0).astype(np.float32)[:, None]
    return np.concatenate([clean, present], axis=1), sev


def load_clip(corpus: Path, row) -> np.ndarray:
    data, _ = sf.read(corpus / row.path, dtype="float32", always_2d=True)
    return (data.T / float(row.storage_gain)).astype(np.float32)


def extract_split(corpus: Path, m: pd.DataFrame, out: Path, fe: dict, clip_seconds: float = 10.0, batch: int = 16) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if (out / "index.csv").exists():
        return
    frontend = LogMelFrontEnd(**fe).eval()
    n = len(m)
    sr = fe["sample_rate"]
    frames = int(clip_seconds * sr) // fe["hop_size"] + 1
    logmel = np.lib.format.open_memmap(out / "logmel.tmp.npy", mode="w+", dtype=np.float16, shape=(n, frames, fe["mel_bins"]))
    signal = np.zeros((n, len(FEATURE_NAMES)), np.float32)
    rows = list(m.itertuples())
    with torch.inference_mode():
        for start in tqdm(range(0, n, batch), desc=f"features {out.name}", unit="batch"):
            chunk = rows[start:start + batch]
            audios = [load_clip(corpus, r) for r in chunk]
            for i, a in enumerate(audios):
                signal[start + i] = compute_signal_features(a, sr)
            mono = torch.from_numpy(np.stack([a.mean(axis=0) for a in audios]))
            mel = frontend(mono).squeeze(1).numpy()  # [B, T, mel]
            logmel[start:start + len(chunk)] = mel[:, :frames].astype(np.float16)
    logmel.flush()
    del logmel
    (out / "logmel.tmp.npy").replace(out / "logmel.npy")
    labels, sev = labels_from_manifest(m)
    np.save(out / "signal.npy", signal)
    np.save(out / "labels.npy", labels)
    np.save(out / "severity.npy", sev)
    (out / "meta.json").write_text(json.dumps({"classes": CLASSES, "signal_features": FEATURE_NAMES,
                                               "frontend": fe}))
    m[["clip_id", "labels", "source_track", "fold", "variants"] + [f"sev_{k}" for k in DISTORTION_KINDS]].to_csv(
        out / "index.csv", index=False)


def build_feature_cache(corpus_dir: str | Path, out_dir: str | Path, splits=("train", "val", "test"),
                        fe: dict | None = None) -> Path:
    corpus, out = Path(corpus_dir), Path(out_dir)
    m = pd.read_csv(corpus / "manifest.csv")
    fe = {**FRONTEND_DEFAULTS, **(fe or {})}
    for split in splits:
        part = m[m["split"] == split].reset_index(drop=True)
        if len(part):
            extract_split(corpus, part, out / split, fe)
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
