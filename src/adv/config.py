"""Configuration files and well-known locations (cache, shared data, shipped model)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent.parent
CONFIG_DIR = Path(os.environ.get("ADV_CONFIG_DIR", REPO_DIR / "configs"))
#: the detector file shipped in the package (the default model)
SHIPPED_MODEL = PACKAGE_DIR / "assets" / "detector.pt"


def cache_dir(create: bool = True) -> Path:
    """Root of every cache (downloads, unpacked packages, renders, PANN checkpoints, ONNX exports):
    ADV_CACHE_DIR, else $XDG_CACHE_HOME/adv, else ~/.cache/adv."""
    root = os.environ.get("ADV_CACHE_DIR")
    if root:
        d = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        d = (Path(xdg) if xdg else Path.home() / ".cache") / "adv"
    if create:
        d.mkdir(parents=True, exist_ok=True)
    return d


def load_toml(name_or_path: str | os.PathLike) -> dict:
    """Loads a TOML file: an existing path, or a file name inside configs/."""
    p = Path(name_or_path)
    if not p.exists():
        p = CONFIG_DIR / p
    with open(p, "rb") as fh:
        return tomllib.load(fh)
