"""Official PANN checkpoints: registry, download, lookup and loading.

The AudioSet-trained PANN weights are published on Zenodo (record 3987831).
Nothing here downloads implicitly: :func:`resolve_checkpoint` only looks
for files (explicit path, ``ADV_PANN_CHECKPOINT``, the cache) unless
``download=True`` is passed, and :func:`download_checkpoint` always verifies
the md5 before the file appears under its final name.

Every failure raises :class:`adv.errors.CheckpointError` with the file name
and the reason.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adv.config import cache_dir as adv_cache_dir
from adv.errors import CheckpointError

__all__ = [
    "OfficialCheckpoint",
    "OFFICIAL_CHECKPOINTS",
    "ZENODO_RECORD",
    "official_checkpoint",
    "checkpoint_url",
    "md5sum",
    "cache_dir",
    "download_checkpoint",
    "resolve_checkpoint",
    "read_state_dict",
    "guess_architecture",
    "load_pann_checkpoint",
]

ZENODO_RECORD = 3987831
_URL_TEMPLATE = "https://zenodo.org/record/{record}/files/{quoted}?download=1"
ENV_CHECKPOINT = "ADV_PANN_CHECKPOINT"


@dataclass(frozen=True)
class OfficialCheckpoint:
    arch: str
    filename: str
    md5: str
    mAP: float  # AudioSet evaluation mAP reported for the file


OFFICIAL_CHECKPOINTS: dict[str, OfficialCheckpoint] = {
    c.arch: c
    for c in (
        OfficialCheckpoint("Cnn14", "Cnn14_mAP=0.431.pth", "541141fa2ee191a88f24a3219fff024e", 0.431),
        OfficialCheckpoint("Cnn10", "Cnn10_mAP=0.380.pth", "bfb1f1f9968938fa8ef4012b8471f5f6", 0.380),
        OfficialCheckpoint("Cnn6", "Cnn6_mAP=0.343.pth", "e25e26b84585b14c7754c91e48efc9be", 0.343),
        OfficialCheckpoint("MobileNetV1", "MobileNetV1_mAP=0.389.pth", "a419303e1c88aa1b9d2ac3811563d371", 0.389),
    )
}
_BY_FILENAME = {c.filename: c for c in OFFICIAL_CHECKPOINTS.values()}
_OFFICIAL_MD5S = {c.md5: c for c in OFFICIAL_CHECKPOINTS.values()}


def official_checkpoint(name: str) -> OfficialCheckpoint:
    """Registry entry by architecture name (case-insensitive) or official file name."""
    key = str(name)
    if key in _BY_FILENAME:
        return _BY_FILENAME[key]
    for arch, entry in OFFICIAL_CHECKPOINTS.items():
        if arch.lower() == key.lower():
            return entry
    raise CheckpointError(f"no official PANN checkpoint named {name!r}; known: {', '.join(OFFICIAL_CHECKPOINTS)}")


def checkpoint_url(name: str) -> str:
    """Zenodo download URL of the official checkpoint for ``name``."""
    entry = official_checkpoint(name)
    return _URL_TEMPLATE.format(record=ZENODO_RECORD, quoted=urllib.parse.quote(entry.filename))


def md5sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex md5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> Path:
    """Where downloaded checkpoints live: ``pann/`` in :func:`adv.config.cache_dir`
    (``$ADV_CACHE_DIR/pann``, default ``~/.cache/adv/pann``).

    Not created here; :func:`download_checkpoint` creates it when needed.
    """
    return adv_cache_dir(create=False) / "pann"


# --------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------
def download_checkpoint(name: str, dest_dir: str | os.PathLike | None = None, timeout: float = 60) -> Path:
    """Download the official checkpoint for ``name`` into ``dest_dir`` (default :func:`cache_dir`).

    Streams to a temporary ``.part`` file in the destination folder, checks
    the md5 and only then renames it to the official file name; on any
    failure the partial file is removed and :class:`CheckpointError` raised.
    An existing file with the right md5 is returned without downloading.
    """
    entry = official_checkpoint(name)
    dest_dir = Path(dest_dir).expanduser() if dest_dir is not None else cache_dir()
    dest = dest_dir / entry.filename
    if dest.is_file() and md5sum(dest) == entry.md5:
        return dest
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create checkpoint folder {dest_dir}: {exc}") from exc

    url = checkpoint_url(entry.arch)
    fd, part_name = tempfile.mkstemp(prefix=entry.filename + ".", suffix=".part", dir=dest_dir)
    part = Path(part_name)
    try:
        h = hashlib.md5()
        size = 0
        with os.fdopen(fd, "wb") as fh:
            request = urllib.request.Request(url, headers={"User-Agent": "adv-pann-downloader"})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as resp:
                    expected = resp.headers.get("Content-Length")
                    while chunk := resp.read(1 << 20):
                        fh.write(chunk)
                        h.update(chunk)
                        size += len(chunk)
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError, OSError) as exc:
                raise CheckpointError(f"could not download {entry.filename} from {url}: {exc}") from exc
        if expected is not None and expected.isdigit() and int(expected) != size:
            raise CheckpointError(
                f"download of {entry.filename} from {url} was truncated: got {size} of {expected} bytes"
            )
        digest = h.hexdigest()
        if digest != entry.md5:
            raise CheckpointError(
                f"checksum mismatch for downloaded {entry.filename} from {url}: md5 {digest}, expected {entry.md5}"
            )
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


# --------------------------------------------------------------------------
# lookup
# --------------------------------------------------------------------------
def _existing(candidate: Path, entry: OfficialCheckpoint, origin: str) -> Path:
    candidate = candidate.expanduser()
    if candidate.is_dir():
        inner = candidate / entry.filename
        if inner.is_file():
            return inner
        raise CheckpointError(f"{candidate} ({origin}) is a folder without {entry.filename}")
    if candidate.is_file():
        return candidate
    raise CheckpointError(f"{candidate}: checkpoint file not found ({origin})")


def resolve_checkpoint(name: str, path: str | os.PathLike | None = None, *, download: bool = False) -> Path | None:
    """Find the checkpoint for architecture ``name``.

    Order: the explicit ``path``; else ``$ADV_PANN_CHECKPOINT``; else the
    official file in :func:`cache_dir`; else (only with ``download=True``)
    :func:`download_checkpoint`; else ``None``.  ``path`` and the env var
    may name a file or a folder holding the official file name; if given
    but missing, :class:`CheckpointError` is raised rather than falling back.
    """
    entry = official_checkpoint(name)
    if path is not None and str(path) != "":
        return _existing(Path(path), entry, "path argument")
    env = os.environ.get(ENV_CHECKPOINT)
    if env:
        return _existing(Path(env), entry, f"${ENV_CHECKPOINT}")
    cached = cache_dir() / entry.filename
    if cached.is_file():
        return cached
    if download:
        return download_checkpoint(entry.arch)
    return None


# --------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------
def _torch_load(path: Path, is_trusted):
    """``torch.load`` with ``weights_only=True``; falls back to full unpickling only
    when ``is_trusted()`` says the file's md5 was verified (official or given by the caller)."""
    import torch

    def unreadable(exc: BaseException) -> CheckpointError:
        return CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})")

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not is_trusted():
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
            first = text.splitlines()[0].strip() if text else repr(exc)
            raise CheckpointError(
                f"{path}: holds objects other than tensors and its md5 is not verified, so it was "
                f"not unpickled (weights_only=True refused it: {first})"
            ) from exc
    except Exception as exc:  # corrupt / truncated / not a torch file
        raise unreadable(exc) from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise unreadable(exc) from exc


def read_state_dict(obj, path: str | os.PathLike = "<checkpoint>") -> dict:
    """Extract the state dict from a loaded checkpoint object.

    Accepts the official format (``{'model': state_dict, ...}``), a bare
    state dict, or ``{'state_dict': ...}``; strips a DataParallel
    ``module.`` prefix.
    """
    import torch

    sd = None
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), Mapping):
                sd = obj[key]
                break
        if sd is None and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            sd = obj
    if sd is None:
        kind = type(obj).__name__
        keys = f" with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, Mapping) else ""
        raise CheckpointError(
            f"{path}: not a PANN checkpoint (a {kind}{keys}; expected a dict with key 'model' or a bare state dict)"
        )
    sd = dict(sd)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state dict entries are not tensors: {bad[:5]}")
    return sd


def guess_architecture(state_dict: Mapping) -> str:
    """Describe which PANN a state dict seems to belong to, e.g. ``'Cnn10 (classes_num=527)'``."""
    keys = set(state_dict)
    arch = "an unknown architecture"
    if "features.0.0.weight" in keys:
        width = state_dict["features.0.0.weight"].shape[0] / 32
        arch = "MobileNetV1" + ("" if width == 1 else f" (width_mult={width:g})")
    elif "conv_block6.conv1.weight" in keys:
        arch = "Cnn14"
    elif "conv_block1.conv1.weight" in keys:
        ksize = tuple(state_dict["conv_block1.conv1.weight"].shape[-2:])
        has_second = "conv_block1.conv2.weight" in keys
        if ksize == (5, 5) and not has_second:
            arch = "Cnn6"
        elif ksize == (3, 3) and has_second and "conv_block5.conv1.weight" not in keys:
            arch = "Cnn10"
    fc = state_dict.get("fc_audioset.weight")
    if fc is not None and getattr(fc, "ndim", 0) == 2:
        arch += f" (classes_num={fc.shape[0]})"
    return arch


def _model_arch(model) -> str:
    name = getattr(model, "arch_name", type(model).__name__)
    wm = getattr(model, "width_mult", 1.0)
    if wm != 1.0:
        name += f" (width_mult={wm:g})"
    fc = getattr(model, "fc_audioset", None)
    if fc is not None and hasattr(fc, "out_features"):
        name += f" (classes_num={fc.out_features})"
    return name


def load_pann_checkpoint(model, path: str | os.PathLike, verify_md5: str | None = "auto"):
    """Load a PANN checkpoint strictly into ``model`` and return the model.

    ``verify_md5``: an md5 hex string to require; ``None`` for no check;
    ``"auto"`` (default) checks the official md5 only when the file name is
    one of the official names.  Mismatch, unreadable files, missing /
    unexpected keys and shape mismatches raise :class:`CheckpointError`.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")

    expected = None
    if verify_md5 == "auto":
        entry = _BY_FILENAME.get(path.name)
        expected = entry.md5 if entry else None
    elif verify_md5 is not None:
        expected = str(verify_md5).strip().lower()
    digest = None
    if expected is not None:
        digest = md5sum(path)
        if digest != expected:
            raise CheckpointError(f"{path.name}: md5 mismatch (file {path} has md5 {digest}, expected {expected})")

    def trusted() -> bool:
        nonlocal digest
        if expected is not None:
            return True  # already verified above
        digest = digest or md5sum(path)
        return digest in _OFFICIAL_MD5S

    obj = _torch_load(path, trusted)
    sd = read_state_dict(obj, path)
    own = model.state_dict()
    # BatchNorm step counters carry no information for inference; tolerate their absence
    for key, value in own.items():
        if key.endswith("num_batches_tracked") and key not in sd:
            sd[key] = value.clone()

    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches (e.g. {'; '.join(mismatched[:3])})")
        raise CheckpointError(
            f"{path.name}: does not fit {_model_arch(model)}; the checkpoint looks like "
            f"{guess_architecture(sd)}: " + "; ".join(parts)
        )
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:  # pragma: no cover - pre-checks above should catch everything
        raise CheckpointError(f"{path.name}: load_state_dict failed: {exc}") from exc
    return model
