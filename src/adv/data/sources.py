"""Real audio sources: Debian packages fetched with `apt-get download` and unpacked with `dpkg-deb -x`.

`configs/sources.toml` names each package, its licence, and globs for its music and noise files
(plain files, members of zip/pk3 archives, or MIDI files to render). Nothing is installed.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from adv.config import cache_dir, load_toml
from adv.errors import AdvError

AUDIO_EXTS = (".ogg", ".wav", ".flac", ".mp3", ".opus")


@dataclass(frozen=True)
class SourceFile:
    path: str  # local file path (extracted archive members and MIDI renders live in the cache)
    package: str
    licence: str
    role: str  # "music" or "noise" or "midi"
    origin: str  # path inside the package (and archive member), for the manifest

    @property
    def track_id(self) -> str:
        stem = re.sub(r"[^A-Za-z0-9]+", "_", self.origin.rsplit(".", 1)[0]).strip("_")
        return f"{self.package}:{stem[-80:]}"


class SourceError(AdvError, RuntimeError):
    """A Debian package cannot be fetched or unpacked, is reserved, or holds no music."""


def _expand_braces(pattern: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    out = []
    for alt in m.group(1).split(","):
        out.extend(_expand_braces(pattern[: m.start()] + alt + pattern[m.end() :]))
    return out


def fetch_package(name: str, reserved: set[str], root: Path | None = None) -> Path:
    """Downloads and unpacks one Debian package into the cache; returns the unpacked root."""
    if name in reserved:
        raise SourceError(f"{name} is reserved for independent evaluation and must not be used")
    root = root or cache_dir()
    dest = root / "extract" / name
    if (dest / ".complete").exists():
        return dest
    debs = root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{name}_*.deb"))
    if not found:
        if shutil.which("apt-get") is None:
            raise SourceError(f"apt-get is not available to download {name}")
        proc = subprocess.run(["apt-get", "download", name], cwd=debs, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SourceError(f"apt-get download {name} failed: {proc.stderr.strip()[-300:]}")
        found = sorted(debs.glob(f"{name}_*.deb"))
        if not found:
            raise SourceError(f"apt-get download {name} produced no .deb")
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SourceError(f"dpkg-deb -x {found[-1].name} failed: {proc.stderr.strip()[-300:]}")
    (dest / ".complete").write_text(found[-1].name)
    return dest


def _extract_members(pkg_root: Path, archive: str, prefix: str, out_dir: Path) -> list[tuple[Path, str]]:
    zpath = pkg_root / archive
    if not zpath.exists():
        raise SourceError(f"archive {archive} not found in {pkg_root.name}")
    out = []
    with zipfile.ZipFile(zpath) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or not name.startswith(prefix) or not name.lower().endswith(AUDIO_EXTS):
                continue
            target = out_dir / name
            if not target.exists() or target.stat().st_size != info.file_size:
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(target.suffix + ".part")
                with zf.open(info) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                tmp.replace(target)
            out.append((target, f"{archive}!{name}"))
    return out


def _glob(pkg_root: Path, patterns: list[str], reserved_files: set[str]) -> list[tuple[Path, str]]:
    out = []
    for pat in patterns:
        for p in _expand_braces(pat):
            for f in sorted(pkg_root.glob(p)):
                if (
                    f.is_file()
                    and f.name not in reserved_files
                    and (f.suffix.lower() in AUDIO_EXTS or f.suffix.lower() in (".mid", ".midi"))
                ):
                    out.append((f, str(f.relative_to(pkg_root))))
    return out


def load_sources_config(path: str | Path | None = None) -> dict:
    return load_toml(path or "sources.toml")


def collect_sources(config: dict, root: Path | None = None, progress=None) -> list[SourceFile]:
    """Fetches every configured package and lists its music, noise and MIDI files."""
    root = root or cache_dir()
    reserved = set(config.get("reserved", []))
    reserved_files = set(config.get("reserved_files", []))
    files: list[SourceFile] = []
    packages = config["package"]
    for entry in packages:
        name, licence = entry["name"], entry["licence"]
        pkg_root = fetch_package(name, reserved, root)
        for role in ("music", "noise", "midi"):
            found = _glob(pkg_root, entry.get(role, []), reserved_files)
            for arch in entry.get(f"{role}_archives", []):
                found += _extract_members(pkg_root, arch["archive"], arch["prefix"], root / "archives" / name)
            for path, origin in found:
                if any(fnmatch.fnmatch(Path(origin).name, r) for r in reserved_files):
                    continue
                files.append(SourceFile(str(path), name, licence, role, origin))
        if progress:
            progress(name)
    return files
