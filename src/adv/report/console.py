"""The `adv analyze` / `adv scan` terminal output: a table of verdicts with the key measurements
and failed delivery rules under each file; colour only on a terminal (and never with NO_COLOR),
full paths when the output is not a terminal, paths cut in the middle to fit one that is."""

from __future__ import annotations

import os
import shutil
import sys
from typing import TextIO

from adv.report.measurement_format import one_line

_RED, _GREEN, _YELLOW, _DIM, _RESET = "\033[31m", "\033[32m", "\033[33m", "\033[2m", "\033[0m"
_FIXED = 52  # characters of the table after the file column


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def use_colour(stream: TextIO) -> bool:
    return is_terminal(stream) and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def fit_path(path: str, width: int) -> str:
    """``path`` cut in the middle (keeping its start and its file name) to at most ``width`` characters."""
    if len(path) <= width:
        return path
    if width <= 3:
        return path[-width:]
    tail = max(1, (width - 1) * 2 // 3)
    return path[: width - 1 - tail] + "…" + path[-tail:]


def print_table(
    results: list[dict], stream: TextIO | None = None, *, colour: bool | None = None, width: int | None = None
) -> None:
    stream = stream or sys.stdout
    colour = use_colour(stream) if colour is None else colour
    tty = is_terminal(stream)
    longest = max([4, *(len(r["path"]) for r in results)])
    if width is None and tty:
        width = max(20, shutil.get_terminal_size((120, 24)).columns - _FIXED)
    col = min(longest, width) if width else longest

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    header = f"{'file':{col}} {'verdict':10} {'type':9} {'severity':>8} {'confidence':>10}  other types"
    print(header, file=stream)
    print("-" * len(header), file=stream)
    for r in results:
        name = fit_path(r["path"], col)
        if "error" in r:
            label = paint(f"{'ERROR':10}", _YELLOW)
            print(f"{name:{col}} {label} {r.get('error_type', '')}: {r['error']}", file=stream)
            continue
        verdict = paint(f"{'DAMAGED':10}", _RED) if r["has_distortion"] else paint(f"{'ok':10}", _GREEN)
        others = ", ".join(
            f"{k} {r['types'][k]['severity']:.0f}%" for k in r["detected_types"] if k != r["distortion_type"]
        )
        print(
            f"{name:{col}} {verdict} {r['distortion_type']:9} {r['severity']:7.1f}% {r['confidence']:10.2f}  {others}",
            file=stream,
        )
        if r.get("measurements"):
            print(paint(f"{'':{min(col, 4)}} {one_line(r['measurements'])}", _DIM), file=stream)
        checks = r.get("checks")
        if checks:
            for f in checks["failed"]:
                values = ", ".join(f"{k} {_show(v)}" for k, v in f["values"].items())
                where = f" [{f['profile']}]" if f.get("profile") else ""
                print(f"{'':{min(col, 4)}} {paint('FAILED', _RED)} {f['rule']}  ({values}){where}", file=stream)
            if checks["passed"]:
                na = f", {len(checks['not_applicable'])} not applicable" if checks["not_applicable"] else ""
                print(f"{'':{min(col, 4)}} {paint('spec passed', _GREEN)}{na}", file=stream)


def _show(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower() if v is not None else "null"
    return f"{v:g}" if isinstance(v, float) else str(v)
