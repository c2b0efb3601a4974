"""`adv scan DIR`: analyse every audio file under a folder and write results.jsonl (one line per
file as soon as it is done), then results.csv, results.json and report.html; `adv report STORE`
writes the same outputs again from a results store.

The output folder is checked before anything is analysed, and no file the tool did not write is
replaced (adv.report.output_dir). Every result is committed to the results store
(OUT/results.sqlite, adv.report.results_store) as soon as it is done; a file whose content and
model key are already stored with status ok is reused instead of analysed, so an interrupted scan
resumes where it stopped. Files are found by extension (case-insensitive, symlinked folders are not
followed); a folder that cannot be read becomes an error row naming it. Files are analysed in a
thread pool (decoding and signal features run in parallel, the model is shared) with a tqdm progress
bar; a file that cannot be decoded becomes a row with status "error" (tried again on the next run)
and the scan goes on. The outputs list every file of the scan, reused or analysed, in folder-tree
order, with this run's delivery rules applied. On Ctrl-C the files already done are written out
before the scan stops.
"""

from __future__ import annotations

import csv
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from adv import RESULT_SCHEMA_VERSION
from adv.errors import AudioError, FileMissingError, UnreadableError
from adv.report.json_output import summary as cli_summary
from adv.report.measurement_format import CSV_MEASUREMENTS
from adv.report.output_dir import OutputDir
from adv.specs import apply_rules
from adv.report.results_store import STORE_NAME, ResultsStore, content_key, model_key

AUDIO_EXTENSIONS = frozenset({"wav", "flac", "ogg", "opus", "mp3", "m4a", "aac", "aiff", "aif", "wma", "webm"})
CSV_FIELDS = (
    "path",
    "status",
    "has_distortion",
    "distortion_type",
    "severity",
    "worst_severity",
    "confidence",
    "detected_types",
    "section_start",
    "section_end",
    "duration",
    "error",
    "spec_passed",
    "spec_failed",
    *(f"m_{k}" for k in CSV_MEASUREMENTS),
)


OUTPUT_FILES = ("results.jsonl", "results.csv", "results.json", "report.html")
FORMATS = {"csv": "results.csv", "json": "results.json", "jsonl": "results.jsonl", "html": "report.html"}
FORMAT_OF = {name: fmt for fmt, name in FORMATS.items()}
MODEL_FIELDS = (
    "package_version",
    "model_version",
    "model_path",
    "backbone",
    "kind_thresholds",
    "window_s",
    "hop_s",
    "backend",
)


def find_audio_files(root: str | os.PathLike, extensions=AUDIO_EXTENSIONS) -> list[Path]:
    """Audio files under `root` (recursive, sorted); `root` may also be a single file."""
    return walk_audio_files(root, extensions)[0]


def walk_audio_files(root: str | os.PathLike, extensions=AUDIO_EXTENSIONS) -> tuple[list[Path], list[AudioError]]:
    """(audio files under `root`, sorted; an UnreadableError for every folder that could not be
    listed). `root` may also be a single file."""
    base = Path(root)
    if base.is_file():
        return [base], []
    if not base.is_dir():
        raise FileMissingError(base, "no such folder")
    found: list[Path] = []
    problems: list[AudioError] = []

    def unreadable(exc: OSError) -> None:
        problems.append(UnreadableError(exc.filename or base, f"folder not listed: {exc.strerror or exc}"))

    for folder, dirs, names in os.walk(base, onerror=unreadable):
        dirs.sort()
        for name in names:
            if name.rsplit(".", 1)[-1].lower() in extensions and "." in name:
                path = Path(folder) / name
                if path.is_file() or path.is_symlink():  # a dangling link is reported as missing
                    found.append(path)
    return sorted(found), problems


def error_entry(exc: AudioError) -> dict:
    return {"path": exc.path, "error": str(exc), "error_type": type(exc).__name__}


def csv_row(result: dict) -> dict:
    if "error" in result:
        return {
            "path": result["path"],
            "status": "error",
            "error": f"{result.get('error_type', '')}: {result['error']}",
        }
    return {
        "path": result["path"],
        "status": "ok",
        "has_distortion": result["has_distortion"],
        "distortion_type": result["distortion_type"],
        "severity": result["severity"],
        "worst_severity": result["worst_severity"],
        "confidence": result["confidence"],
        "detected_types": ";".join(result["detected_types"]),
        "section_start": (result.get("section") or {}).get("start", ""),
        "section_end": (result.get("section") or {}).get("end", ""),
        "duration": result.get("duration"),
        "error": "",
        "spec_passed": result["checks"]["passed"] if "checks" in result else "",
        "spec_failed": ";".join(f["rule"] for f in result["checks"]["failed"]) if "checks" in result else "",
        **{f"m_{k}": v for k, v in (result.get("measurements") or {}).items() if k in CSV_MEASUREMENTS},
    }


def write_csv(results: list[dict], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, restval="")
        w.writeheader()
        for r in results:
            w.writerow(csv_row(r))
    return path


def summarise_scan(results: list[dict]) -> dict:
    """The CLI summary (adv.report.json_output.summary) with the flagged files per kind and the audio seconds."""
    ok = [r for r in results if "error" not in r]
    by_type: dict[str, int] = {}
    for r in ok:
        if r["has_distortion"]:
            by_type[r["distortion_type"]] = by_type.get(r["distortion_type"], 0) + 1
    return {
        **cli_summary(results),
        "flagged_by_type": by_type,
        "audio_seconds": round(sum(r.get("duration", 0.0) for r in ok), 1),
    }


def path_order(result: dict) -> tuple[str, ...]:
    """Sort key of the outputs: the folder tree's order (a folder's error row before its files)."""
    return Path(str(result.get("path", ""))).parts


def _quiet_content_key(path: Path) -> str | None:
    """The content key, or None when the file cannot be read (its analysis then reports why)."""
    try:
        return content_key(path)
    except OSError:
        return None


class _Collector:
    """Keeps each finished result: committed to the store at once (unless it came from there),
    checked against the rules, and streamed to results.jsonl."""

    def __init__(self, db: ResultsStore, key: str, scan_id: int, rules: list | None, stream):
        self.db, self.key, self.scan_id, self.rules, self.stream = db, key, scan_id, rules, stream
        self.done: list[dict] = []
        self.reused = self.analysed_now = 0

    def keep(self, result: dict, ckey: str | None = None, reused: bool = False) -> None:
        if reused:
            self.reused += 1
        else:
            result = self.db.put(result["path"], ckey, self.key, result, self.scan_id)
        r = apply_rules(result, self.rules)
        self.stream.write(json.dumps(r, default=str) + "\n")
        self.stream.flush()
        self.done.append(r)

    def analysed(self, result: dict, ckey: str | None) -> None:
        self.analysed_now += 1
        self.keep(result, ckey)


def _analyse(files: list[Path], validator, keep: _Collector, workers: int, progress: bool, rescan: bool) -> bool:
    """Reuses stored results and analyses the other files in a thread pool; True when interrupted."""
    from tqdm import tqdm

    pool = ThreadPoolExecutor(max(1, workers))
    interrupted = False
    try:
        with tqdm(total=len(files), unit="file", desc="scanning", disable=not progress or not files) as bar:
            todo = []
            for f, ckey in zip(files, pool.map(_quiet_content_key, files)):
                hit = None if rescan or ckey is None else keep.db.lookup(f, ckey, keep.key)
                if hit is None:
                    todo.append((f, ckey))
                    continue
                hit["path"] = str(f)
                keep.keep(hit, reused=True)
                bar.update()
            # analyze_batch on one file: its error handling turns any failure into an error entry
            futures = {pool.submit(validator.analyze_batch, [str(f)], 1): ckey for f, ckey in todo}
            for fut in as_completed(futures):
                keep.analysed(fut.result()[0], futures[fut])
                bar.update()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
    return interrupted


def write_outputs(
    out: OutputDir,
    results: list[dict],
    names: list[str],
    *,
    root,
    info: dict,
    rules: list,
    summary: dict,
    store: dict,
    plots: bool,
    max_plots: int,
    workers: int,
) -> dict[str, Path]:
    """Writes the claimed ``names`` (of OUTPUT_FILES) from ``results`` in tree order; returns
    {"jsonl", "csv", "json", "html"} -> path for those written."""
    from adv.report.html_report import write_html_report

    results = sorted(results, key=path_order)
    written = {}
    for name in names:
        path = out.path(name)
        if name == "results.jsonl":
            path.write_text("".join(json.dumps(r, default=str) + "\n" for r in results), encoding="utf-8")
        elif name == "results.csv":
            write_csv(results, path)
        elif name == "results.json":
            payload = {
                "schema_version": RESULT_SCHEMA_VERSION,
                "root": None if root is None else str(root),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "summary": summary,
                "model": {k: info.get(k) for k in MODEL_FIELDS},
                "rules": [r.text for r in rules],
                "store": store,
                "results": results,
            }
            path.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
        else:
            write_html_report(
                results, path, root=root, model_info=info, plots=plots, max_plots=max_plots, workers=workers
            )
        out.written(name)
        written[FORMAT_OF[name]] = path
    return written


def scan_folder(
    root: str | os.PathLike,
    out_dir: str | os.PathLike = "adv_scan",
    *,
    validator=None,
    model: str | None = None,
    hop_s: float = 5.0,
    backend: str = "auto",
    workers: int = 2,
    progress: bool = True,
    plots: bool = True,
    max_plots: int = 100,
    threshold: float | None = None,
    rules: list | None = None,
    store: str | os.PathLike | None = None,
    rescan: bool = False,
) -> dict:
    """Scans `root`, writes the outputs into `out_dir` and returns
    {"summary", "results", "outputs": {"jsonl", "csv", "json", "html", "store"}, "model"}.

    ``rules`` (adv.specs.Rule): delivery rules checked on every result (its ``checks`` entry).
    ``store``: the results store (default OUT/results.sqlite); files already there with the same
    content and model key are reused, unless ``rescan``. Raises OutputError or StoreError before
    anything is analysed when `out_dir` or the store cannot be used. On Ctrl-C the outputs are
    written for the files done so far (summary "interrupted": true) and KeyboardInterrupt is
    raised again."""
    files, problems = walk_audio_files(root)
    out = OutputDir(out_dir)
    out.prepare(list(OUTPUT_FILES), in_place=[] if store else [STORE_NAME])
    with ResultsStore.open(store or out.folder / STORE_NAME) as db:
        if validator is None:
            from adv.inference.validator import AudioDistortionValidator

            validator = AudioDistortionValidator(model, hop_s=hop_s, backend=backend, threshold=threshold)
        return _scan(
            root,
            files,
            problems,
            out,
            db,
            validator,
            rules or [],
            workers=workers,
            progress=progress,
            plots=plots,
            max_plots=max_plots,
            rescan=rescan,
        )


def _scan(
    root,
    files: list[Path],
    problems: list[AudioError],
    out: OutputDir,
    db: ResultsStore,
    validator,
    rules: list,
    *,
    workers: int,
    progress: bool,
    plots: bool,
    max_plots: int,
    rescan: bool,
) -> dict:
    key, parts = model_key(validator)
    info = validator.model_info()
    scan_id = db.begin_scan(root, key, parts, info, rules)
    t0 = time.perf_counter()
    with open(out.path("results.jsonl"), "w", encoding="utf-8") as stream:
        keep = _Collector(db, key, scan_id, rules, stream)
        for e in problems:
            keep.keep(error_entry(e))
        interrupted = _analyse(files, validator, keep, workers, progress, rescan)
    out.written("results.jsonl")
    summary = summarise_scan(keep.done)
    summary.update(analysed_now=keep.analysed_now, reused=keep.reused, wall_seconds=round(time.perf_counter() - t0, 2))
    if interrupted:
        summary["interrupted"] = True
    db.finish_scan(scan_id, summary, interrupted)
    outputs = write_outputs(
        out,
        keep.done,
        list(OUTPUT_FILES[1:]),
        root=root,
        info=info,
        rules=rules,
        summary=summary,
        store={"path": str(db.path), "model_key": key, "scan_id": scan_id},
        plots=plots and not interrupted,
        max_plots=max_plots,
        workers=workers,
    )
    outputs = {"jsonl": out.path("results.jsonl"), **outputs, "store": db.path}
    if interrupted:
        raise KeyboardInterrupt
    return {
        "summary": summary,
        "results": sorted(keep.done, key=path_order),
        "outputs": outputs,
        "model": {k: info.get(k) for k in MODEL_FIELDS},
    }


def _common_root(roots: list[str]) -> str | None:
    """The one folder all these scans started from (their common parent when they differ)."""
    if len(set(roots)) <= 1:
        return roots[0] if roots else None
    try:
        return os.path.commonpath([os.path.abspath(r) for r in roots])
    except ValueError:
        return None


def _stored_rules(scan: dict | None) -> list:
    from adv.specs import parse_rule

    return [
        parse_rule(r["text"], source=r.get("source"), why=r.get("why"), profile=r.get("profile"))
        for r in (scan or {}).get("rules") or []
    ]


def report_from_store(
    store: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    formats: tuple[str, ...] = tuple(FORMATS),
    *,
    plots: bool = True,
    max_plots: int = 100,
    workers: int = 2,
) -> dict:
    """Renders ``formats`` (of FORMATS) from a store file, or a folder holding results.sqlite, into
    ``out_dir`` (default: the store's folder): per path the latest result of the newest model key,
    with the latest scan's rules. Works while a scan writes to the store. Returns
    {"summary", "results", "outputs", "store"}; StoreError when ``store`` is not an adv store."""
    with ResultsStore.open(store, readonly=True) as db:
        scan = db.latest_scan()
        key = scan["model_key"] if scan else None
        results = db.latest_results(key) if key else []
        root = _common_root(db.roots(key)) if key else None
        where = db.path
    rules = _stored_rules(scan)
    results = sorted((apply_rules(r, rules) for r in results), key=path_order)
    out = OutputDir(where.parent if out_dir is None else out_dir)
    names = [FORMATS[f] for f in formats]
    out.prepare(names)
    summary = summarise_scan(results)
    last = {k: scan[k] for k in ("id", "started", "finished", "status")} if scan else None
    outputs = write_outputs(
        out,
        results,
        names,
        root=root,
        info=(scan or {}).get("model_info") or {},
        rules=rules,
        summary=summary,
        store={"path": str(where), "model_key": key, "last_scan": last},
        plots=plots,
        max_plots=max_plots,
        workers=workers,
    )
    return {"summary": summary, "results": results, "outputs": outputs, "store": where, "last_scan": last}
