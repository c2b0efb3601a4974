"""The results store of `adv scan`: every result kept in one SQLite file, so a scan can be resumed
and its outputs rendered again at any time.

`adv scan DIR --out OUT` keeps each result in ``OUT/results.sqlite`` the moment it is done (one
committed row per file, WAL mode), so Ctrl-C or kill -9 loses at most the files still being
analysed. Running the same scan again analyses only the files that are new, were edited, failed
last time, or were decided by another model or decision settings; the rest are taken from the
store (``--rescan`` analyses everything again). The outputs of a scan cover all its files, reused
or not, with the delivery rules of that run applied. ``adv report STORE`` renders results.csv,
results.json, results.jsonl and report.html from a store file (or an --out folder holding one) at
any time, also while a scan is still writing to it.

Why SQLite: it is in the standard library (no new dependency, unlike DuckDB or Parquet), keeps the
whole catalog in one file, commits each row in a transaction that survives a killed process, lets
readers look at the file while one writer adds to it, and can be read by any tool (``sqlite3``,
pandas, DuckDB).

Rows are keyed by (path, content key, model key):

* path: the file's absolute path (results keep the path as scanned).
* content key (``quick-v1``): the size, the modification time in nanoseconds and the SHA-256 of the
  first and last MiB. Hashing whole files would read the full catalog on every run; an edit changes
  the time and usually the size, and the hashes catch edits that kept the time. An edit in the
  middle of a file over 2 MiB that keeps both size and time goes unseen: use ``--rescan``.
* model key: a hash of the model file's MD5, the per-kind thresholds, window, hop, max_windows,
  RESULT_SCHEMA_VERSION and the adv version (a release may change the analysis). The backend is
  left out: ONNX and torch run the same model.

``adv report`` shows, per path, the latest row of the newest model key (the one the latest scan
used); rows of older model keys stay in the file but are not shown, since their verdicts came from
another model or settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from adv import RESULT_SCHEMA_VERSION, __version__
from adv.errors import AdvError

STORE_NAME = "results.sqlite"
FORMAT = "adv-results-store"
STORE_VERSION = 1
CONTENT_KEY_SCHEME = "quick-v1"
_EDGE = 1 << 20
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE scans (
    id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT, status TEXT NOT NULL, root TEXT,
    model_key TEXT NOT NULL, model_parts TEXT NOT NULL, model_info TEXT NOT NULL, rules TEXT NOT NULL,
    summary TEXT);
CREATE TABLE results (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, content_key TEXT NOT NULL, model_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')), result TEXT NOT NULL,
    first_analysed TEXT NOT NULL, analysed TEXT NOT NULL, scan_id INTEGER REFERENCES scans (id),
    UNIQUE (path, content_key, model_key));
CREATE INDEX results_by_model ON results (model_key, path);
"""


class StoreError(AdvError):
    """A results store cannot be used (missing, not an adv store, newer than this adv, damaged)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def store_key_path(path: str | os.PathLike) -> str:
    """The path a row is stored under: absolute, so a scan started from another folder finds it."""
    return os.path.abspath(os.fspath(path))


def content_key(path: str | os.PathLike) -> str:
    """``size:mtime_ns:sha256`` of the first and last MiB (the whole file when it is smaller);
    OSError when the file cannot be read."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        h = hashlib.sha256(str(st.st_size).encode())
        h.update(fh.read(_EDGE))
        if st.st_size > _EDGE:
            fh.seek(max(_EDGE, st.st_size - _EDGE))
            h.update(fh.read(_EDGE))
    return f"{st.st_size}:{st.st_mtime_ns}:{h.hexdigest()}"


def _md5(path: str | os.PathLike) -> str | None:
    h = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def model_key(validator) -> tuple[str, dict]:
    """(key, parts): what decides a validator's verdicts, and a short hash of it."""
    info = validator.model_info()
    parts = {
        "model_md5": _md5(info.get("model_path") or validator.model_path),
        "kind_thresholds": info.get("kind_thresholds"),
        "window_s": info.get("window_s"),
        "hop_s": info.get("hop_s"),
        "max_windows": getattr(validator, "max_windows", None),
        "schema_version": RESULT_SCHEMA_VERSION,
        "package_version": __version__,
    }
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16], parts


def _header(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def locate_store(path: str | os.PathLike) -> Path:
    """The store file named by ``path``: the file itself, or results.sqlite in a folder;
    StoreError when there is none."""
    p = Path(path)
    if p.is_dir():
        p = p / STORE_NAME
        if not p.is_file():
            raise StoreError(f"{path}: the folder holds no {STORE_NAME} (run adv scan with --out there)")
    elif not p.exists():
        raise StoreError(f"{p}: no such file or folder")
    elif not p.is_file():
        raise StoreError(f"{p}: not a file")
    return p


class ResultsStore:
    """One open store. ``ResultsStore.open(path)`` for a scan (created when missing),
    ``ResultsStore.open(path, readonly=True)`` for reading while another process writes."""

    def __init__(self, path: Path, conn: sqlite3.Connection, readonly: bool):
        self.path, self._conn, self.readonly = path, conn, readonly

    @classmethod
    def open(cls, path: str | os.PathLike, readonly: bool = False) -> ResultsStore:
        """Opens (or, for writing, creates) the store; StoreError naming the file when it is not
        an adv store or is newer than this adv."""
        p = Path(path)
        fresh = not readonly and (not p.exists() or (p.is_file() and p.stat().st_size == 0))
        if not fresh:
            p = locate_store(p) if readonly else p
            if _header(p) != _SQLITE_MAGIC:
                raise StoreError(f"{p}: not an adv results store (not an SQLite database)")
        conn = cls._connect(p, readonly)
        try:
            store = cls(p, conn, readonly)
            if fresh:
                store._create()
            else:
                store._check()
            return store
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{p}: cannot use the results store ({exc})") from None
        except BaseException:
            conn.close()
            raise

    @staticmethod
    def _connect(p: Path, readonly: bool) -> sqlite3.Connection:
        """A connection in autocommit mode (each row its own transaction)."""
        try:
            if readonly:
                return sqlite3.connect(p.resolve().as_uri() + "?mode=ro", uri=True, timeout=30, isolation_level=None)
            return sqlite3.connect(p, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{p}: cannot open the results store ({exc})") from None

    def _create(self) -> None:
        c = self._conn
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute("BEGIN")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            c.execute(statement)
        c.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [
                ("format", FORMAT),
                ("version", str(STORE_VERSION)),
                ("created", _now()),
                ("content_key", CONTENT_KEY_SCHEME),
            ],
        )
        c.execute("COMMIT")

    def _check(self) -> None:
        try:
            meta = dict(self._conn.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not an adv results store ({exc})") from None
        if meta.get("format") != FORMAT:
            raise StoreError(f"{self.path}: not an adv results store (an SQLite database of another program)")
        version = meta.get("version", "")
        if not version.isdigit():
            raise StoreError(f"{self.path}: not an adv results store (version {version!r})")
        if int(version) > STORE_VERSION:
            raise StoreError(
                f"{self.path}: results store version {version} is newer than this adv reads "
                f"({STORE_VERSION}); upgrade adv"
            )
        if not self.readonly:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        """Runs one statement; StoreError naming the file when SQLite fails (disk full, damaged)."""
        try:
            return self._conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: results store error ({exc})") from None

    # ---- scans ----
    def begin_scan(self, root, key: str, parts: dict, info: dict, rules: list) -> int:
        """Records a scan as running; returns its id."""
        texts = [{"text": r.text, "source": r.source, "why": r.why, "profile": r.profile} for r in rules]
        cur = self._run(
            "INSERT INTO scans (started, status, root, model_key, model_parts, model_info, rules) "
            "VALUES (?, 'running', ?, ?, ?, ?, ?)",
            (
                _now(),
                None if root is None else str(root),
                key,
                json.dumps(parts, default=str),
                json.dumps(info, default=str),
                json.dumps(texts),
            ),
        )
        return int(cur.lastrowid)

    def finish_scan(self, scan_id: int, summary: dict, interrupted: bool) -> None:
        self._run(
            "UPDATE scans SET finished = ?, status = ?, summary = ? WHERE id = ?",
            (_now(), "interrupted" if interrupted else "done", json.dumps(summary, default=str), scan_id),
        )

    def latest_scan(self, key: str | None = None) -> dict | None:
        """The newest scan (of model key ``key`` when given), its JSON columns decoded."""
        sql = (
            "SELECT id, started, finished, status, root, model_key, model_parts, model_info, rules, summary FROM scans"
        )
        row = self._run(
            sql + (" WHERE model_key = ?" if key else "") + " ORDER BY id DESC LIMIT 1", (key,) if key else ()
        ).fetchone()
        if row is None:
            return None
        names = (
            "id",
            "started",
            "finished",
            "status",
            "root",
            "model_key",
            "model_parts",
            "model_info",
            "rules",
            "summary",
        )
        scan = dict(zip(names, row))
        for k in ("model_parts", "model_info", "rules", "summary"):
            scan[k] = None if scan[k] is None else json.loads(scan[k])
        return scan

    def roots(self, key: str) -> list[str]:
        return [
            r[0] for r in self._run("SELECT DISTINCT root FROM scans WHERE model_key = ? AND root IS NOT NULL", (key,))
        ]

    # ---- results ----
    def lookup(self, path, ckey: str, key: str) -> dict | None:
        """The stored ok result of this file content under this model key, or None."""
        row = self._run(
            "SELECT result FROM results WHERE path = ? AND content_key = ? AND model_key = ? AND status = 'ok'",
            (store_key_path(path), ckey, key),
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, path, ckey: str | None, key: str, result: dict, scan_id: int | None = None) -> dict:
        """Stores (and commits) one result, without its rule checks; returns it as stored."""
        body = {k: v for k, v in result.items() if k != "checks"}
        text = json.dumps(body, default=str)
        now, args = _now(), (store_key_path(path), ckey or "", key)
        self._run(
            "INSERT OR REPLACE INTO results (path, content_key, model_key, status, result, first_analysed, "
            "analysed, scan_id) VALUES (?, ?, ?, ?, ?, COALESCE((SELECT first_analysed FROM results "
            "WHERE path = ? AND content_key = ? AND model_key = ?), ?), ?, ?)",
            (*args, "error" if "error" in body else "ok", text, *args, now, now, scan_id),
        )
        return json.loads(text)

    def latest_results(self, key: str) -> list[dict]:
        """Per path, the result written last under model key ``key``."""
        rows = self._run(
            "SELECT result FROM results WHERE id IN (SELECT max(id) FROM results WHERE model_key = ? GROUP BY path)",
            (key,),
        )
        return [json.loads(r[0]) for r in rows]

    def count(self, key: str | None = None, status: str | None = None) -> int:
        where = [(c, v) for c, v in (("model_key", key), ("status", status)) if v is not None]
        sql = "SELECT count(*) FROM results" + (" WHERE " + " AND ".join(f"{c} = ?" for c, _ in where) if where else "")
        return int(self._run(sql, tuple(v for _, v in where)).fetchone()[0])
