"""The output folder of `adv scan`: checked before a scan starts, and written so that no file the
tool did not write is ever replaced.

The folder keeps a ledger (``.adv-scan.json``) of the files `adv scan` wrote there, each with its
SHA-256. A file may be replaced only when the ledger lists it and it is unchanged since; any other
existing file of the same name (the user's own ``report.html``, or one edited since) stops the scan
before anything is analysed. A file the tool updates in place (the results store) is listed as
such rather than with a hash: it is reopened when the ledger lists it, and the store itself refuses a
file that is not an adv store (adv.report.results_store).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from adv.errors import OutputError

LEDGER = ".adv-scan.json"
IN_PLACE = "updated in place"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class OutputDir:
    """An `adv scan` output folder. ``prepare(names)`` checks it and claims the names; ``path(name)``
    gives a claimed file's path; ``written(name)`` records the file once it is complete."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._ledger: dict[str, str | None] = {}

    def _read_ledger(self) -> dict[str, str | None]:
        p = self.folder / LEDGER
        if not p.exists():
            return {}
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            files = data["files"]
            return {str(k): (None if v is None else str(v)) for k, v in files.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise OutputError(f"{p}: not a ledger written by adv scan; choose another --out") from None

    def _save_ledger(self, ledger: dict[str, str | None] | None = None) -> None:
        tmp = self.folder / (LEDGER + ".tmp")
        files = self._ledger if ledger is None else ledger
        tmp.write_text(json.dumps({"written_by": "adv scan", "files": files}, indent=1), encoding="utf-8")
        os.replace(tmp, self.folder / LEDGER)

    def prepare(self, names: list[str], in_place: tuple[str, ...] | list[str] = ()) -> None:
        """Creates the folder if needed and claims ``names`` (files written whole) and ``in_place``
        (files updated in place, not hashed); OutputError (naming the path and the problem) when the
        folder cannot be used or a file there is not the tool's own."""
        f = self.folder
        if f.exists() and not f.is_dir():
            raise OutputError(f"--out {f}: exists and is not a folder")
        try:
            f.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"--out {f}: cannot create the folder ({exc.strerror or exc})") from None
        if not os.access(f, os.W_OK | os.X_OK):
            raise OutputError(f"--out {f}: the folder is not writable")
        ledger = self._read_ledger()
        for name in [*names, *in_place]:
            p = f / name
            if not p.exists() and not p.is_symlink():
                continue
            if p.is_symlink() or not p.is_file():
                raise OutputError(f"{p}: exists and is not a file adv scan wrote; choose another --out")
            known = ledger.get(name, "missing")
            if known == "missing":
                raise OutputError(
                    f"{p}: exists and was not written by adv scan; it is left as it is, choose another --out"
                )
            if name not in in_place and known is not None and _sha256(p) != known:
                raise OutputError(
                    f"{p}: changed since adv scan wrote it; it is left as it is, choose another --out or move it"
                )
        self._ledger = ledger
        for name in names:
            self._ledger[name] = None  # claimed: being written
        for name in in_place:
            self._ledger[name] = IN_PLACE
        self._save_ledger()

    def path(self, name: str) -> Path:
        if name not in self._ledger:
            raise KeyError(f"{name} was not claimed with prepare()")
        return self.folder / name

    def written(self, name: str) -> Path:
        """Records the finished file's hash, so a later scan may replace it. Only this entry is
        changed on disk: an `adv report` writing into the folder meanwhile keeps its own."""
        p = self.path(name)
        if self._ledger[name] == IN_PLACE:
            return p
        self._ledger[name] = _sha256(p)
        self._save_ledger({**self._read_ledger(), name: self._ledger[name]})
        return p
