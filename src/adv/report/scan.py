"""`adv scan DIR`: analyse every audio file under a folder and write results.jsonl (one line per
file as soon as it is analysed), then results.csv, results.json and report.html.

The output folder is checked before anything is analysed, and no file the tool did not write is
replaced (adv.report.output_dir). Files are found by extension (case-insensitive, symlinked folders
are not followed); a folder that cannot be read becomes an error row naming it. Files are analysed
in a thread pool (decoding and signal features run in parallel, the model is shared) with a tqdm
progress bar; a file that cannot be decoded becomes a row with status "error" and the scan goes on.
On Ctrl-C the files already analysed are written out before the scan stops.
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
from adv.report.measurement_format import CSV_MEASUREMENTS
from adv.report.output_dir import OutputDir

AUDIO_EXTENSIONS = frozenset({"wav", "flac", "ogg", "opus", "mp3", "m4a", "aac", "aiff", "aif", "wma", "webm"})
CSV_FIELDS = ("path", "status", "has_distortion", "distortion_type", "severity", "worst_severity", "confidence",
              "detected_types", "section_start", "section_end", "duration", "error", "spec_passed", "spec_failed",
              *(f"m_{k}" for k in CSV_MEASUREMENTS))


OUTPUT_FILES = ("results.jsonl", "results.csv", "results.json", "report.html")


def find_audio_files(root: str | os.PathLike, extensions=AUDIO_EXTENSIONS) -> list[Path]:
    """Audio files under `root` (recursive, sorted); `root` may also be a single file."""
    return walk_audio_files(root, extensions)[0]


def walk_audio_files(root: str | os.PathLike,
                     extensions=AUDIO_EXTENSIONS) -> tuple[list[Path], list[AudioError]]:
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
        return {"path": result["path"], "status": "error", "error": f'{result.get("error_type", "")}: {result["error"]}'}
    return {"path": result["path"], "status": "ok", "has_distortion": result["has_distortion"],
            "distortion_type": result["distortion_type"], "severity": result["severity"],
            "worst_severity": result["worst_severity"], "confidence": result["confidence"],
            "detected_types": ";".join(result["detected_types"]),
            "section_start": (result.get("section") or {}).get("start", ""),
            "section_end": (result.get("section") or {}).get("end", ""), "duration": result.get("duration"), "error": "",
            "spec_passed": result["checks"]["passed"] if "checks" in result else "",
            "spec_failed": ";".join(f["rule"] for f in result["checks"]["failed"]) if "checks" in result else "",
            **{f"m_{k}": v for k, v in (result.get("measurements") or {}).items() if k in CSV_MEASUREMENTS}}


def write_csv(results: list[dict], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, restval="")
        w.writeheader()
        for r in results:
            w.writerow(csv_row(r))
    return path


def summarise_scan(results: list[dict]) -> dict:
    ok = [r for r in results if "error" not in r]
    flagged = [r for r in ok if r["has_distortion"]]
    by_type: dict[str, int] = {}
    for r in flagged:
        by_type[r["distortion_type"]] = by_type.get(r["distortion_type"], 0) + 1
    out = {"files": len(results), "analysed": len(ok), "errors": len(results) - len(ok), "flagged": len(flagged),
           "flagged_by_type": by_type, "audio_seconds": round(sum(r.get("duration", 0.0) for r in ok), 1)}
    checked = [r for r in ok if "checks" in r]
    if checked:
        out["failed_spec"] = sum(not r["checks"]["passed"] for r in checked)
    return out


def scan_folder(root: str | os.PathLike, out_dir: str | os.PathLike = "adv_scan", *, validator=None,
                model: str | None = None, hop_s: float = 5.0, backend: str = "auto", workers: int = 2,
                progress: bool = True, plots: bool = True, max_plots: int = 100,
                threshold: float | None = None, rules: list | None = None) -> dict:
    """Scans `root`, writes the outputs into `out_dir` and returns
    {"summary", "results", "outputs": {"jsonl", "csv", "json", "html"}, "model"}.

    ``rules`` (adv.specs.Rule): delivery rules checked on every result (its ``checks`` entry).
    Raises OutputError before anything is analysed when `out_dir` cannot be used. On Ctrl-C the
    outputs are written for the files done so far (summary "interrupted": true) and
    KeyboardInterrupt is raised again."""
    from tqdm import tqdm

    from adv.report.html_report import write_html_report
    from adv.specs import check_result

    files, problems = walk_audio_files(root)
    out = OutputDir(out_dir)
    out.prepare(list(OUTPUT_FILES))
    if validator is None:
        from adv.inference.validator import AudioDistortionValidator

        validator = AudioDistortionValidator(model, hop_s=hop_s, backend=backend, threshold=threshold)
    t0 = time.perf_counter()
    results: list[dict | None] = [None] * len(files)
    done: list[dict] = [error_entry(e) for e in problems]
    interrupted = False
    with open(out.path("results.jsonl"), "w", encoding="utf-8") as stream:
        def keep(r: dict) -> None:
            stream.write(json.dumps(r, default=str) + "\n")
            stream.flush()

        for r in done:
            keep(r)
        pool = ThreadPoolExecutor(max(1, workers))
        try:
            with tqdm(total=len(files), unit="file", desc="scanning", disable=not progress or not files) as bar:
                # analyze_batch on one file: its error handling turns any failure into an error entry
                futures = {pool.submit(validator.analyze_batch, [str(f)], 1): i for i, f in enumerate(files)}
                for fut in as_completed(futures):
                    r = fut.result()[0]
                    if rules and "error" not in r:
                        r["checks"] = check_result(r, rules)
                    results[futures[fut]] = r
                    keep(r)
                    bar.update()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            pool.shutdown(wait=not interrupted, cancel_futures=True)
    out.written("results.jsonl")
    done += [r for r in results if r is not None]
    wall = time.perf_counter() - t0

    summary = summarise_scan(done)
    summary["wall_seconds"] = round(wall, 2)
    if interrupted:
        summary["interrupted"] = True
    info = validator.model_info()
    outputs = {name.replace("results.", "").replace("report.", ""): out.path(name) for name in OUTPUT_FILES}
    write_csv(done, outputs["csv"])
    out.written("results.csv")
    payload = {"schema_version": RESULT_SCHEMA_VERSION, "root": str(root), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "summary": summary,
               "model": {k: info.get(k) for k in ("package_version", "model_version", "model_path", "backbone",
                                                  "kind_thresholds", "window_s", "hop_s", "backend")},
               "rules": [r.text for r in rules or []], "results": done}
    outputs["json"].write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    out.written("results.json")
    write_html_report(done, outputs["html"], root=root, model_info=info, plots=plots and not interrupted,
                      max_plots=max_plots, sample_rate=validator.sample_rate, workers=workers)
    out.written("report.html")
    if interrupted:
        raise KeyboardInterrupt
    return {"summary": summary, "results": done, "outputs": outputs, "model": payload["model"]}
