"""Self-contained HTML report of a folder scan.

One file: inline CSS, every image a base64 PNG. A summary table lists every file; each flagged file
gets a section with its per-type verdicts and one small figure: a spectrogram of the mono mix over
the timeline of analysis windows, coloured by detected type, opacity by severity. File names and
all other text are HTML-escaped. Figures use matplotlib's Agg canvas directly (no pyplot state), so
they can be drawn from worker threads.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections import Counter
from pathlib import Path

import numpy as np

from adv import DISTORTION_KINDS
from adv.report.measurement_format import key_measurements

#: colour of each verdict in tables and timelines
COLOURS = {"clean": "#8fbf8f", "clipping": "#d62728", "mp3": "#ff7f0e", "noise": "#9467bd",
           "eq": "#1f77b4", "phase": "#17becf", "error": "#7f7f7f"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px} h3{font-size:15px;margin:0 0 6px;word-break:break-all}
.meta{color:#666;font-size:13px;margin-bottom:16px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:90px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.path{word-break:break-all;max-width:520px}
tr.error td{background:#f4f4f4;color:#555} tr.flagged td{background:#fff6f0}
.tag{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;font-size:12px;margin:1px}
.file{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;margin:12px 0}
.file img{max-width:100%;height:auto;display:block;margin-top:8px}
.notes{color:#8a5a00;font-size:13px}
.legend span{margin-right:10px;font-size:12px}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def display_name(path: str, root: str | os.PathLike | None) -> str:
    """The path relative to the scanned folder when it lies inside it."""
    if root is None:
        return path
    try:
        rel = os.path.relpath(path, root)
    except ValueError:  # other drive (Windows)
        return path
    return path if rel.startswith("..") else rel


def _tag(kind: str) -> str:
    return f'<span class="tag" style="background:{COLOURS.get(kind, "#555")}">{_e(kind)}</span>'


# ---------------------------------------------------------------------------------------------
# figures


def _spectrogram_db(mono: np.ndarray, sr: int, n_fft: int = 1024, max_frames: int = 800) -> tuple[np.ndarray, float]:
    """Power spectrogram in dB [freq, frames] of at most max_frames frames, and the frame hop in s."""
    if mono.size < n_fft:
        mono = np.pad(mono, (0, n_fft - mono.size))
    hop = max(n_fft // 2, (mono.size - n_fft) // max_frames + 1)
    frames = np.lib.stride_tricks.sliding_window_view(mono, n_fft)[::hop]
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)) ** 2
    db = 10.0 * np.log10(spec.T + 1e-12)
    return db, hop / sr


def figure_png(samples: np.ndarray, sr: int, result: dict, dpi: int = 64) -> bytes:
    """PNG bytes: spectrogram of the mono mix above the window timeline of one analysed file."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    mono = samples.mean(axis=0) if samples.ndim == 2 else samples
    db, hop_s = _spectrogram_db(np.asarray(mono, dtype=np.float32), sr)
    duration = float(result.get("duration") or mono.size / sr)
    fig = Figure(figsize=(8.0, 3.2))
    FigureCanvasAgg(fig)
    ax, axt = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top = float(db.max())
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - 90.0, vmax=top,
              extent=(0.0, db.shape[1] * hop_s, 0.0, sr / 2000.0), interpolation="nearest")
    ax.set_ylabel("kHz")
    ax.set_title("spectrogram (mono mix) and analysis windows", fontsize=9)

    segs = result.get("segments") or []
    lanes = 2 if len(segs) > 1 else 1  # 10-s windows with a 5-s hop overlap: alternate two lanes
    for i, seg in enumerate(segs):
        kind = seg["distortion_type"]
        sev = seg["severity"].get(kind, 0.0) if seg["has_distortion"] else 0.0
        alpha = 0.35 + 0.65 * min(max(sev, 0.0), 100.0) / 100.0 if seg["has_distortion"] else 0.5
        axt.add_patch(Rectangle((seg["start"], i % lanes + 0.1), seg["end"] - seg["start"], 0.8,
                                facecolor=COLOURS.get(kind, "#555"), alpha=alpha, edgecolor="white", linewidth=0.5))
    axt.set_ylim(0, lanes)
    axt.set_yticks([])
    axt.set_xlim(0, max(duration, 1e-3))
    axt.set_xlabel("time (s)")
    order = ["clean", *DISTORTION_KINDS]
    shown = sorted({s["distortion_type"] for s in segs}, key=lambda k: order.index(k) if k in order else len(order))
    axt.legend(handles=[Patch(color=COLOURS[k], label=k) for k in shown], loc="upper center", fontsize=7,
               ncol=max(1, len(shown)), bbox_to_anchor=(0.5, -0.9), frameon=False)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.9, bottom=0.3, hspace=0.08)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def file_figure(result: dict, sample_rate: int = 32000) -> str | None:
    """Base64 PNG for an analysed file (decoded again), or None when it cannot be drawn."""
    from adv.audio_io import load_audio
    from adv.errors import AdvError

    try:
        dec = load_audio(result["path"], target_sr=sample_rate)
        png = figure_png(dec.samples, sample_rate, result)
    except (AdvError, OSError, ValueError, MemoryError):
        return None
    return base64.b64encode(png).decode("ascii")


# ---------------------------------------------------------------------------------------------
# document


def _summary_cards(results: list[dict]) -> str:
    ok = [r for r in results if "error" not in r]
    flagged = [r for r in ok if r.get("has_distortion")]
    kinds = Counter(r["distortion_type"] for r in flagged)
    cards = [("files", len(results)), ("analysed", len(ok)), ("flagged", len(flagged)),
             ("errors", len(results) - len(ok))] + [(k, kinds[k]) for k in DISTORTION_KINDS if kinds[k]]
    return '<div class="cards">' + "".join(f'<div class="card"><b>{n}</b>{_e(k)}</div>' for k, n in cards) + "</div>"


def _row(i: int, r: dict, root, anchors: dict[int, str]) -> str:
    name = display_name(r["path"], root)
    link = f'<a href="#{anchors[i]}">{_e(name)}</a>' if i in anchors else _e(name)
    if "error" in r:
        return (f'<tr class="error"><td class="num">{i + 1}</td><td class="path" title="{_e(r["path"])}">{link}</td>'
                f'<td>error</td><td colspan="6">{_e(r.get("error_type", ""))}: {_e(r["error"])}</td><td></td></tr>')
    flagged = r["has_distortion"]
    verdict = "DAMAGED" if flagged else "ok"
    detected = " ".join(_tag(k) for k in r.get("detected_types", []))
    return (f'<tr class="{"flagged" if flagged else "ok"}"><td class="num">{i + 1}</td>'
            f'<td class="path" title="{_e(r["path"])}">{link}</td><td>{verdict}</td><td>{_tag(r["distortion_type"])}</td>'
            f'<td class="num">{r["severity"]:.1f}</td><td class="num">{r["worst_severity"]:.1f}</td>'
            f'<td class="num">{r["confidence"]:.2f}</td><td>{detected}</td>'
            f'<td class="num">{r.get("duration", 0.0):.1f}</td><td>{_e("; ".join(r.get("notes", [])))}</td></tr>')


def _detail(r: dict, anchor: str, root, image: str | None) -> str:
    rows = "".join(
        f'<tr><td>{_tag(k)}</td><td class="num">{t["probability"]:.3f}</td>'
        f'<td class="num">{t.get("threshold", float("nan")):.3f}</td><td>{"yes" if t["detected"] else ""}</td>'
        f'<td class="num">{t["severity"]:.1f}</td><td class="num">{t["worst_severity"]:.1f}</td>'
        f'<td class="num">{t["flagged_windows"]}</td></tr>'
        for k, t in r.get("types", {}).items())
    notes = "".join(f'<div class="notes">{_e(n)}</div>' for n in r.get("notes", []))
    measured = key_measurements(r.get("measurements"))
    if measured:
        notes += ('<table class="measurements" style="margin-top:6px"><tr>'
                  + "".join(f"<th>{_e(label)}</th>" for label, _ in measured) + "</tr><tr>"
                  + "".join(f'<td class="num">{_e(text)}</td>' for _, text in measured) + "</tr></table>")
    img = (f'<img alt="spectrogram and timeline of {_e(display_name(r["path"], root))}" '
           f'src="data:image/png;base64,{image}">' if image else "<p><i>(no figure: the file could not be decoded again)</i></p>")
    return (f'<div class="file" id="{anchor}"><h3>{_e(display_name(r["path"], root))}</h3>'
            f'<div>{_tag(r["distortion_type"])} severity {r["severity"]:.1f} (worst window {r["worst_severity"]:.1f}), '
            f'confidence {r["confidence"]:.2f}, {r.get("duration", 0.0):.1f} s, {len(r.get("segments", []))} windows'
            + (f', clearly damaged {r["section"]["start"]:.1f}-{r["section"]["end"]:.1f} s' if r.get("section") else "")
            + '</div>'
            f'{notes}<table style="margin-top:6px"><tr><th>type</th><th>probability</th><th>threshold</th><th>detected</th>'
            f'<th>severity</th><th>worst</th><th>flagged windows</th></tr>{rows}</table>{img}</div>')


def render_html(results: list[dict], root: str | os.PathLike | None = None, model_info: dict | None = None,
                images: dict[int, str | None] | None = None, title: str = "Audio Distortion Validator scan") -> str:
    """The report as one HTML string; `images` maps result indices of flagged files to base64 PNGs."""
    images = images or {}
    anchors = {i: f"file-{i + 1}" for i, r in enumerate(results) if "error" not in r and r.get("has_distortion")}
    info = model_info or {}
    meta = (f'folder {_e(root) if root is not None else "-"} &middot; model {_e(info.get("model_version", "?"))} '
            f'({_e(info.get("backbone", "?"))}, backend {_e(info.get("backend", "?"))}) &middot; '
            f'thresholds {_e(", ".join(f"{k} {v:g}" for k, v in (info.get("kind_thresholds") or {}).items()) or "?")} &middot; windows {_e(info.get("window_s", "?"))} s, '
            f'hop {_e(info.get("hop_s", "?"))} s')
    legend = '<div class="legend">' + "".join(f'<span>{_tag(k)}</span>' for k in ("clean", *DISTORTION_KINDS)) + "</div>"
    head = ("<tr><th>#</th><th>file</th><th>status</th><th>type</th><th>severity</th><th>worst</th>"
            "<th>confidence</th><th>detected types</th><th>duration s</th><th>notes</th></tr>")
    table = "".join(_row(i, r, root, anchors) for i, r in enumerate(results))
    details = "".join(_detail(results[i], a, root, images.get(i)) for i, a in anchors.items())
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{_e(title)}</h1><div class=\"meta\">{meta}</div>{_summary_cards(results)}{legend}"
            f"<h2>All files</h2><table>{head}{table}</table>"
            f"<h2>Flagged files ({len(anchors)})</h2>{details or '<p>none</p>'}</body></html>\n")


def write_html_report(results: list[dict], out_path: str | os.PathLike, root: str | os.PathLike | None = None,
                      model_info: dict | None = None, plots: bool = True, max_plots: int = 100,
                      sample_rate: int = 32000, workers: int = 2) -> Path:
    """Writes the report; figures for the first `max_plots` flagged files (decoded again, in threads)."""
    images: dict[int, str | None] = {}
    if plots:
        flagged = [i for i, r in enumerate(results) if "error" not in r and r.get("has_distortion")][:max_plots]
        if flagged:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max(1, workers)) as pool:
                for i, img in zip(flagged, pool.map(lambda j: file_figure(results[j], sample_rate), flagged)):
                    images[i] = img
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(results, root, model_info, images), encoding="utf-8")
    return out
