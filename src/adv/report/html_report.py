"""Self-contained interactive HTML report of a folder scan.

One file, no network at view time: inline CSS and JavaScript, images as base64 JPEG, excerpts as
base64 FLAC. The results are embedded once as JSON (``<script type="application/json">``, with
``<``, ``>`` and ``&`` escaped so no file name can end the script); the page's script builds a
sortable, filterable table from it with textContent only. Each file has a server-rendered detail
section (all text HTML-escaped) that opens under its row: verdict, per-kind table (severities only
for detected kinds), measurements, notes, a full-band spectrogram over the window timeline, a link
to the file at the interesting time, and for flagged files a short FLAC excerpt to listen to.

Page size is bounded: figures for at most ``max_plots`` files (flagged files first, most severe
first, then the files that came closest to a threshold), excerpts (at most 8 s, 16-bit, <= 48 kHz)
for the first ``max_excerpts`` flagged files in that order. Per-window probabilities, severities
and measurements stay in results.json; the page keeps each window's time span and verdict.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np

from adv import DISTORTION_KINDS
from adv.report.excerpts import ExcerptCollector, encode_flac, excerpt_span, focus_span
from adv.report.figures import COLOURS, SpectrogramAccumulator, draw_figure, figure_from_samples
from adv.report.measurement_format import CSV_MEASUREMENTS, KEY_MEASUREMENTS
from adv.report.report_page import CSS, ERROR_TRAP, SCRIPT

__all__ = ["COLOURS", "MAX_EXCERPTS", "display_name", "figure_png", "file_media", "render_html", "write_html_report"]

#: flagged files (most severe first) that get an embedded audio excerpt
MAX_EXCERPTS = 10

#: key measurements shown as table columns (all of KEY_MEASUREMENTS but the sample peak)
TABLE_MEASUREMENTS = (
    "true_peak_dbtp",
    "integrated_lufs",
    "loudness_range_lu",
    "clipped_fraction",
    "intersample_overs",
    "cutoff_hz",
    "snr_db",
    "hum_hz",
    "lr_correlation",
    "channel_delay_ms",
    "mono_downmix_loss_db",
    "spectral_deviation_db",
)

_SEGMENT_KEYS = ("start", "end", "has_distortion", "distortion_type", "confidence", "silent")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _f(value, fmt: str = "{:.1f}") -> str:
    v = _num(value)
    return "\u2013" if v is None else fmt.format(v)


def display_name(path: str, root: str | os.PathLike | None) -> str:
    """The path relative to the scanned folder when it lies inside it."""
    path = str(path)
    if root is None:
        return path
    try:
        rel = os.path.relpath(path, root)
    except ValueError:  # other drive (Windows)
        return path
    return path if rel.startswith("..") else rel


def _tag(kind: str) -> str:
    return f'<span class="tag" style="background:{COLOURS.get(kind, "#555555")}">{_e(kind)}</span>'


def _is_error(r: dict) -> bool:
    return "error" in r


def _verdict(r: dict) -> str:
    return "error" if _is_error(r) else ("damaged" if r.get("has_distortion") else "ok")


def _clean_results(results) -> list[dict]:
    """Every entry as a dict with a path; anything else becomes an error row saying so."""
    out = []
    for r in results or []:
        if isinstance(r, dict):
            out.append(
                r if "path" in r else {**r, "path": "?", "error": "result without a path", "error_type": "ReportError"}
            )
        else:
            out.append({"path": str(r), "error": "not a result", "error_type": "ReportError"})
    return out


# ---------------------------------------------------------------------------------------------
# measurements


def _unit(fmt: str) -> tuple[str, float]:
    """(unit, display scale) of a KEY_MEASUREMENTS format."""
    if "%}" in fmt:
        return "%", 100.0
    return fmt.rsplit("}", 1)[-1].strip(), 1.0


_KEY_INFO = {key: (label, fmt) for key, label, fmt in KEY_MEASUREMENTS}


def measurement_text(key: str, value) -> str | None:
    """The shared formatter's text of one measurement without its unit (the header shows it)."""
    if key not in _KEY_INFO or _num(value) is None:
        return None
    fmt = _KEY_INFO[key][1]
    try:
        text = fmt.format(int(value) if "d}" in fmt else value)
    except (ValueError, TypeError):
        return None
    unit = _unit(fmt)[0]
    return text[: -len(unit)].strip() if unit != "%" and unit and text.endswith(unit) else text


def _filter_options(results: list[dict]) -> list[dict]:
    """Numeric measurements present in at least one result, for the measurement filter."""
    present: set[str] = set()
    for r in results:
        m = r.get("measurements")
        if isinstance(m, dict):
            present.update(k for k, v in m.items() if _num(v) is not None)
    keys = [k for k, _, _ in KEY_MEASUREMENTS] + [k for k in CSV_MEASUREMENTS if k not in _KEY_INFO]
    keys += sorted(present - set(keys))
    out = []
    for k in keys:
        if k not in present:
            continue
        if k in _KEY_INFO:
            unit, scale = _unit(_KEY_INFO[k][1])
            out.append({"key": k, "label": _KEY_INFO[k][0], "unit": unit, "scale": scale})
        else:
            out.append({"key": k, "label": k.replace("_", " "), "unit": "", "scale": 1.0})
    return out


# ---------------------------------------------------------------------------------------------
# embedded data


def _plain(obj):
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None, keys to str."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def embedded_result(r: dict) -> dict:
    """The result as embedded in the page: everything but each window's probabilities,
    severities and measurements (those are in results.json)."""
    out = _plain(r)
    segs = out.get("segments")
    if isinstance(segs, list):
        out["segments"] = [{k: s[k] for k in _SEGMENT_KEYS if k in s} if isinstance(s, dict) else s for s in segs]
    return out


def _file_href(path: str, span: tuple[float, float] | None = None) -> str:
    """file: URI of a path, with a media-fragment time range when given."""
    try:
        uri = Path(os.path.abspath(str(path))).as_uri()
    except ValueError:
        return ""
    if span is not None:
        uri += f"#t={span[0]:.1f},{span[1]:.1f}"
    return uri


def _link_span(r: dict) -> tuple[float, float] | None:
    if _is_error(r):
        return None
    try:
        a, b, _ = focus_span(r)
    except Exception:  # noqa: BLE001 - a malformed result only loses its time range
        return None
    return (a, b) if b > a else None


def _row_data(r: dict, root) -> dict:
    m = r.get("measurements") if isinstance(r.get("measurements"), dict) else {}
    texts = {}
    for k in TABLE_MEASUREMENTS:
        t = measurement_text(k, m.get(k))
        if t is not None:
            texts[k] = t
    if _is_error(r):
        notes = f"{r.get('error_type', '')}: {r.get('error', '')}"
    else:
        notes = "; ".join(str(n) for n in (r.get("notes") or []) if n is not None)
    return {
        "name": display_name(r["path"], root),
        "verdict": _verdict(r),
        "t": texts,
        "notes": notes,
        "href": _file_href(r["path"], _link_span(r)),
    }


def _json_blob(data: dict) -> str:
    """JSON text safe inside a <script> element: no '<', '>' or '&' outside escapes."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ---------------------------------------------------------------------------------------------
# media: one decode pass per file gives both the spectrogram and the excerpt


def file_media(result: dict, figure: bool = True, excerpt: bool = False) -> dict:
    """{"figure": base64 JPEG | None, "excerpt": {"b64", "start", "end", "rate", "why"} | None,
    "problem": text | None} for one analysed file, decoded again at its own rate. Never raises."""
    out: dict = {"figure": None, "excerpt": None, "problem": None}
    if not (figure or excerpt):
        return out
    from adv.audio_io import stream_audio

    blocks = None
    try:
        info, blocks = stream_audio(result["path"])
        sr = info.sample_rate
        expected = info.frames or int((_num(result.get("duration")) or 0.0) * sr) or None
        acc = SpectrogramAccumulator(sr, expected_frames=expected) if figure else None
        span = excerpt_span(result) if excerpt else None
        col = ExcerptCollector(sr, span[0], span[1]) if span else None
        for block in blocks:
            if acc is not None:
                acc.feed(block)
            if col is not None:
                col.feed(block)
                if acc is None and col.complete:
                    break
    except Exception as exc:  # noqa: BLE001 - any failure here only costs the figure
        out["problem"] = f"the file could not be decoded again ({type(exc).__name__}: {exc})"
        return out
    finally:
        if blocks is not None and hasattr(blocks, "close"):
            try:
                blocks.close()
            except Exception:  # noqa: BLE001
                pass
    if acc is not None:
        try:
            db, freqs, column_s = acc.result()
            data = draw_figure(
                db,
                freqs,
                column_s,
                {**result, "sample_rate": sr, "duration": _num(result.get("duration")) or acc.samples_seen / sr},
            )
            out["figure"] = base64.b64encode(data).decode("ascii")
        except Exception as exc:  # noqa: BLE001
            out["problem"] = f"the figure could not be drawn ({type(exc).__name__}: {exc})"
    if col is not None:
        try:
            samples = col.samples()
            if samples.shape[1]:
                flac, rate = encode_flac(samples, sr)
                out["excerpt"] = {
                    "b64": base64.b64encode(flac).decode("ascii"),
                    "start": span[0],
                    "end": round(span[0] + samples.shape[1] / sr, 2),
                    "rate": rate,
                    "why": span[2],
                }
        except Exception:  # noqa: BLE001 - the file keeps its figure and link
            pass
    return out


def figure_png(samples: np.ndarray, sr: int, result: dict, dpi: int = 100) -> bytes:
    """PNG bytes of the report figure for an in-memory signal [channels, n]."""
    return figure_from_samples(samples, sr, result, fmt="png", dpi=dpi)


def _priority(r: dict) -> float:
    """How close a file passed as ok came to a threshold (largest probability / threshold)."""
    best = 0.0
    types = r.get("types") if isinstance(r.get("types"), dict) else {}
    for t in types.values():
        if isinstance(t, dict):
            p, thr = _num(t.get("probability")), _num(t.get("threshold"))
            if p is not None and thr:
                best = max(best, p / thr)
    return best


def plan_media(results: list[dict], max_plots: int, max_excerpts: int) -> tuple[list[int], set[int], set[int]]:
    """(analysed indices in media order, indices with a figure, indices with an excerpt): flagged
    files first, most severe first, then the others closest to a threshold first."""
    analysed = [i for i, r in enumerate(results) if not _is_error(r)]
    flagged = sorted(
        (i for i in analysed if results[i].get("has_distortion")),
        key=lambda i: (-(_num(results[i].get("worst_severity")) or 0.0), i),
    )
    rest = sorted(
        (i for i in analysed if not results[i].get("has_distortion")), key=lambda i: (-_priority(results[i]), i)
    )
    order = flagged + rest
    return order, set(order[: max(0, int(max_plots))]), set(flagged[: max(0, int(max_excerpts))])


# ---------------------------------------------------------------------------------------------
# document


def _summary_cards(results: list[dict]) -> str:
    ok = [r for r in results if not _is_error(r)]
    flagged = [r for r in ok if r.get("has_distortion")]
    kinds = Counter(k for r in flagged for k in (r.get("detected_types") or [r.get("distortion_type")]))
    cards = [
        ("files", len(results), {}),
        ("analysed", len(ok), {}),
        ("damaged", len(flagged), {"verdict": "damaged"}),
        ("ok", len(ok) - len(flagged), {"verdict": "ok"}),
        ("errors", len(results) - len(ok), {"verdict": "error"}),
    ]
    cards += [(k, kinds[k], {"kind": k}) for k in DISTORTION_KINDS if kinds[k]]
    out = []
    for label, n, data in cards:
        attrs = "".join(f' data-{a}="{_e(v)}"' for a, v in data.items())
        out.append(f'<button type="button" class="card"{attrs} title="show these files"><b>{n}</b>{_e(label)}</button>')
    return '<div class="cards">' + "".join(out) + "</div>"


def _controls(filters: list[dict]) -> str:
    kinds = "".join(f'<option value="{_e(k)}">{_e(k)}</option>' for k in ("clean", *DISTORTION_KINDS))
    meas = "".join(
        f'<option value="{_e(f["key"])}">{_e(f["label"])}{" (" + _e(f["unit"]) + ")" if f["unit"] else ""}</option>'
        for f in filters
    )
    return (
        '<div class="controls">'
        '<label>search<input id="f-q" type="search" placeholder="file name"></label>'
        '<label>verdict<select id="f-verdict"><option value="">all</option><option value="damaged">damaged</option>'
        '<option value="ok">ok</option><option value="error">error</option></select></label>'
        f'<label>kind<select id="f-kind"><option value="">any</option>{kinds}</select></label>'
        '<label>min severity<input id="f-minsev" type="number" min="0" max="100" step="1"></label>'
        f'<label>measurement<select id="f-m"><option value="">(none)</option>{meas}</select></label>'
        '<label>min<input id="f-mmin" type="number" step="any"></label>'
        '<label>max<input id="f-mmax" type="number" step="any"></label>'
        '<button type="button" id="f-reset">reset filters</button>'
        '<button type="button" id="expand-all">open shown</button>'
        '<button type="button" id="collapse-all">close all</button>'
        '<span id="shown"></span></div>'
    )


def _kinds_table(r: dict) -> str:
    types = r.get("types") if isinstance(r.get("types"), dict) else {}
    rows = []
    for k, t in types.items():
        if not isinstance(t, dict):
            continue
        det = bool(t.get("detected"))
        sev = (
            f'<td class="num">{_f(t.get("severity"))}</td><td class="num">{_f(t.get("worst_severity"))}</td>'
            if det
            else '<td class="num">\u2013</td><td class="num">\u2013</td>'
        )
        rows.append(
            f'<tr><td>{_tag(str(k))}</td><td class="num">{_f(t.get("probability"), "{:.3f}")}</td>'
            f'<td class="num">{_f(t.get("threshold"), "{:.3f}")}</td><td>{"yes" if det else "no"}</td>'
            f'{sev}<td class="num">{_f(t.get("flagged_windows"), "{:.0f}")}</td></tr>'
        )
    if not rows:
        return ""
    return (
        '<table class="kinds"><tr><th>kind</th><th>probability</th><th>threshold</th><th>detected</th>'
        "<th>severity</th><th>worst window</th><th>flagged windows</th></tr>" + "".join(rows) + "</table>"
    )


def _measurements_table(r: dict) -> str:
    m = r.get("measurements") if isinstance(r.get("measurements"), dict) else {}
    rows = []
    for key, label, fmt in KEY_MEASUREMENTS:
        if key not in m or (key == "hum_hz" and m[key] is None):
            continue
        v = m[key]
        try:
            text = "\u2013" if _num(v) is None else fmt.format(int(v) if "d}" in fmt else v)
        except (ValueError, TypeError):
            text = "\u2013"
        rows.append(f'<tr><th>{_e(label)}</th><td class="num">{_e(text)}</td></tr>')
    if m.get("polarity_inverted"):
        rows.append("<tr><th>polarity</th><td>inverted</td></tr>")
    return '<table class="measures">' + "".join(rows) + "</table>" if rows else ""


def _excerpt_html(ex: dict | None) -> str:
    if not ex:
        return ""
    return (
        f'<div class="excerpt">excerpt {ex["start"]:.1f}\u2013{ex["end"]:.1f} s ({_e(ex["why"])}, '
        f'{ex["rate"] / 1000:g} kHz FLAC)<audio controls preload="metadata" '
        f'src="data:audio/flac;base64,{ex["b64"]}"></audio></div>'
    )


def _image_mime(b64: str) -> str:
    return "image/jpeg" if b64.startswith("/9j/") else "image/png"


def _detail(
    r: dict, anchor: str, root, image: str | None, excerpt: dict | None = None, no_figure: str | None = None
) -> str:
    """The detail section of one file (HTML, every text escaped)."""
    name = display_name(r.get("path", "?"), root)
    href = _file_href(r.get("path", "?"), _link_span(r))
    head = f'<div class="detail" id="{_e(anchor)}"><h3>{_e(name)}</h3>'
    if _is_error(r):
        link = f'<div><a href="{_e(href)}">open the file</a></div>' if href else ""
        return (
            head + f'<div class="verdict">{_tag("error")} could not be analysed: '
            f"{_e(r.get('error_type', ''))}: {_e(r.get('error', ''))}</div>{link}</div>"
        )
    kind = str(r.get("distortion_type", "?"))
    flagged = bool(r.get("has_distortion"))
    segs = r.get("segments") if isinstance(r.get("segments"), list) else []
    facts = [f"{_f(r.get('duration'))} s"]
    if _num(r.get("sample_rate")):
        facts.append(f"{r['sample_rate'] / 1000:g} kHz")
    if r.get("channels"):
        facts.append(f"{_e(r['channels'])} ch")
    if r.get("format"):
        facts.append(_e(r["format"]))
    facts.append(f"{len(segs)} windows")
    sec = r.get("section") if isinstance(r.get("section"), dict) else None
    if sec:
        facts.append(f"clearly damaged {_f(sec.get('start'))}-{_f(sec.get('end'))} s")
    if flagged:
        verdict = (
            f"<b>DAMAGED</b> {_tag(kind)} severity {_f(r.get('severity'))} "
            f"(worst window {_f(r.get('worst_severity'))}), confidence {_f(r.get('confidence'), '{:.2f}')}"
        )
    else:
        verdict = f"<b>ok</b> {_tag('clean')} confidence {_f(r.get('confidence'), '{:.2f}')}"
    notes = "".join(f"<div>{_e(n)}</div>" for n in (r.get("notes") or []))
    if image:
        alt = f"spectrogram and window timeline of {name}"
        fig = f'<img class="fig" alt="{_e(alt)}" src="data:{_image_mime(image)};base64,{image}">'
    else:
        fig = f'<p class="nofig">(no figure: {_e(no_figure or "none was made for this file")})</p>'
    span = _link_span(r)
    link = ""
    if href:
        when = f" at {span[0]:.1f}\u2013{span[1]:.1f} s" if span else ""
        link = f'<div class="link"><a href="{_e(href)}">open the file{when}</a></div>'
    return (
        head + f'<div class="verdict">{verdict} &middot; {" &middot; ".join(facts)}</div>'
        f'<div class="cols">{_kinds_table(r)}{_measurements_table(r)}'
        f'<div class="notes">{notes}{link}{_excerpt_html(excerpt)}</div></div>{fig}</div>'
    )


def _safe_detail(r: dict, anchor: str, root, image, excerpt, no_figure) -> str:
    try:
        return _detail(r, anchor, root, image, excerpt, no_figure)
    except Exception as exc:  # noqa: BLE001 - a malformed result keeps a row and says why
        return (
            f'<div class="detail" id="{_e(anchor)}"><h3>{_e(display_name(r.get("path", "?"), root))}</h3>'
            f'<p class="nofig">(this result could not be shown: {_e(type(exc).__name__)})</p></div>'
        )


def _safe_row(r: dict, root) -> dict:
    try:
        return _row_data(r, root)
    except Exception:  # noqa: BLE001
        return {"name": str(r.get("path", "?")), "verdict": _verdict(r), "t": {}, "notes": "", "href": ""}


def render_html(
    results: list[dict],
    root: str | os.PathLike | None = None,
    model_info: dict | None = None,
    images: dict[int, str | None] | None = None,
    title: str = "Audio Distortion Validator scan",
    excerpts: dict[int, dict] | None = None,
    no_figure: dict[int, str] | None = None,
    media_notes: list[str] | None = None,
) -> str:
    """The report as one HTML string. `images` maps result indices to base64 JPEG/PNG figures,
    `excerpts` to audio excerpts (see file_media), `no_figure` to why a file has none."""
    results = _clean_results(results)
    images, excerpts, no_figure = images or {}, excerpts or {}, no_figure or {}
    info = model_info if isinstance(model_info, dict) else {}
    thresholds = info.get("kind_thresholds") if isinstance(info.get("kind_thresholds"), dict) else {}
    thr_text = ", ".join(f"{k} {_f(v, '{:g}')}" for k, v in thresholds.items()) or "?"
    meta = (
        f"folder {_e(root) if root is not None else '-'} &middot; model {_e(info.get('model_version', '?'))} "
        f"({_e(info.get('backbone', '?'))}, backend {_e(info.get('backend', '?'))}) &middot; "
        f"thresholds {_e(thr_text)} &middot; windows {_e(info.get('window_s', '?'))} s, "
        f"hop {_e(info.get('hop_s', '?'))} s"
    )
    legend = '<div class="legend">' + " ".join(_tag(k) for k in ("clean", *DISTORTION_KINDS, "error")) + "</div>"
    notes = "".join(
        f'<p class="media-note{" warn" if "left out" in n else ""}">{_e(n)}</p>' for n in (media_notes or [])
    )
    filters = _filter_options(results)
    columns = []
    for k in TABLE_MEASUREMENTS:
        label, fmt = _KEY_INFO[k]
        columns.append({"key": k, "label": label, "unit": _unit(fmt)[0]})
    data = {
        "title": title,
        "results": [embedded_result(r) for r in results],
        "rows": [_safe_row(r, root) for r in results],
        "columns": columns,
        "filters": filters,
        "colours": COLOURS,
        "kinds": list(DISTORTION_KINDS),
    }
    details = "".join(
        _safe_detail(r, f"file-{i + 1}", root, images.get(i), excerpts.get(i), no_figure.get(i))
        for i, r in enumerate(results)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{_e(title)}</title>'
        f"<style>{CSS}</style></head><body>"
        f'<pre id="js-errors" hidden></pre><script>{ERROR_TRAP}</script>'
        f'<h1>{_e(title)}</h1><div class="meta">{meta}</div>{_summary_cards(results)}{legend}{notes}'
        f"{_controls(filters)}"
        '<div class="table-wrap"><table id="files"><thead><tr id="files-head"></tr></thead>'
        '<tbody id="files-body"></tbody></table></div>'
        "<noscript><p>The table needs JavaScript; every file's details are listed below.</p></noscript>"
        f'<div id="details-holder"><h2>Files ({len(results)})</h2>{details}</div>'
        '<div id="report-check" hidden></div>'
        f'<script type="application/json" id="report-data">{_json_blob(data)}</script>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def write_html_report(
    results: list[dict],
    out_path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    model_info: dict | None = None,
    plots: bool = True,
    max_plots: int = 100,
    sample_rate: int | None = None,
    workers: int = 2,
    max_excerpts: int = MAX_EXCERPTS,
) -> Path:
    """Writes the report. Files are decoded again at their own rate, in `workers` threads, for the
    figures of the first `max_plots` files and the excerpts of the first `max_excerpts` flagged ones
    (see plan_media); `plots=False` embeds neither. `sample_rate` is accepted for compatibility and
    not used: figures go up to each file's own Nyquist frequency."""
    del sample_rate
    results = _clean_results(results)
    images: dict[int, str | None] = {}
    excerpts: dict[int, dict] = {}
    no_figure: dict[int, str] = {}
    notes: list[str] = []
    order, with_fig, with_ex = plan_media(results, max_plots, max_excerpts) if plots else ([], set(), set())
    todo = [i for i in order if i in with_fig or i in with_ex]
    if todo:
        from concurrent.futures import ThreadPoolExecutor

        def one(i: int) -> dict:
            return file_media(results[i], figure=i in with_fig, excerpt=i in with_ex)

        with ThreadPoolExecutor(max(1, int(workers or 1))) as pool:
            for i, media in zip(todo, pool.map(one, todo)):
                images[i] = media["figure"]
                if media["excerpt"]:
                    excerpts[i] = media["excerpt"]
                if media["problem"]:
                    no_figure[i] = media["problem"]
    n_analysed = sum(1 for r in results if not _is_error(r))
    n_flagged = sum(1 for r in results if not _is_error(r) and r.get("has_distortion"))
    if not plots:
        notes.append("Figures and audio excerpts were turned off for this scan.")
        for i in order or [i for i, r in enumerate(results) if not _is_error(r)]:
            no_figure[i] = "figures were turned off for this scan"
    elif n_analysed:
        drawn = sum(1 for v in images.values() if v)
        left = n_analysed - len(with_fig)
        text = f"Figures: {drawn} of {n_analysed} analysed files (flagged files first, most severe first)."
        if left > 0:
            text += f" {left} left out by the limit of {max_plots} figures."
        failed = sum(1 for i in with_fig if not images.get(i))
        if failed:
            text += f" {failed} could not be drawn (see those files)."
        notes.append(text)
        ex_text = (
            f"Audio: {len(excerpts)} of {n_flagged} flagged files carry an excerpt of at most 8 s "
            f"(the first {max_excerpts} flagged files, most severe first); every file links to itself "
            "at the interesting time."
        )
        if n_flagged > len(with_ex):
            ex_text += f" {n_flagged - len(with_ex)} flagged files left out of the excerpts."
        notes.append(ex_text)
        for i in order:
            if i not in with_fig:
                no_figure.setdefault(i, f"left out: the report draws at most {max_plots} figures, flagged files first")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        render_html(results, root, model_info, images, excerpts=excerpts, no_figure=no_figure, media_notes=notes),
        encoding="utf-8",
    )
    return out
