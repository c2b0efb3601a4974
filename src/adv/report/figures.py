"""The report's per-file figure: a full-band spectrogram (0 Hz to the file's own Nyquist) above the
timeline of analysis windows coloured by kind.

The spectrogram is accumulated block by block from a decode stream into a bounded number of
columns (each the mean power of the FFT frames it spans), so an hour-long file costs the same
memory as a short one. Drawing uses matplotlib's Agg canvas directly (no pyplot state), so figures
can be made from worker threads.
"""

from __future__ import annotations

import io
import math

import numpy as np

from adv import DISTORTION_KINDS

#: colour of each verdict in tables and timelines
COLOURS = {
    "clean": "#8fbf8f",
    "clipping": "#d62728",
    "mp3": "#ff7f0e",
    "noise": "#9467bd",
    "eq": "#1f77b4",
    "phase": "#17becf",
    "error": "#7f7f7f",
    "silent": "#d0d0d0",
}

N_FFT = 2048
MAX_COLUMNS = 600
FIG_SIZE = (9.6, 4.2)  # inches; at 100 dpi 960 x 420 px
DPI = 100
MAX_IMAGE_BYTES = 120_000


class SpectrogramAccumulator:
    """Mean-power spectrogram of a mono mix fed in blocks, kept to at most ``2 * max_columns``
    columns: when full, neighbouring columns are averaged in pairs and each new column spans
    twice as many frames. ``expected_frames`` (samples per channel, when known) sets the span up
    front so that no merge is needed."""

    def __init__(
        self, sample_rate: int, n_fft: int = N_FFT, max_columns: int = MAX_COLUMNS, expected_frames: int | None = None
    ):
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.max_columns = max(1, int(max_columns))
        fft_frames = (expected_frames or 0) // self.n_fft
        self.frames_per_column = max(1, math.ceil(fft_frames / self.max_columns))
        win = np.hanning(self.n_fft).astype(np.float32)
        self._window = win
        self._scale = float((win.sum() / 2.0) ** 2)  # a full-scale sine peaks at 0 dB
        self._carry = np.zeros(0, np.float32)
        self._columns: list[np.ndarray] = []
        self._sum = np.zeros(self.n_fft // 2 + 1, np.float64)
        self._count = 0
        self.samples_seen = 0

    def feed(self, block: np.ndarray) -> None:
        """Adds a block [channels, n] (or mono [n]) of float samples."""
        mono = block.mean(axis=0) if block.ndim == 2 else block
        mono = np.asarray(mono, dtype=np.float32)
        self.samples_seen += mono.size
        buf = np.concatenate([self._carry, mono]) if self._carry.size else mono
        k = buf.size // self.n_fft
        self._carry = buf[k * self.n_fft :].copy()
        if k == 0:
            return
        frames = buf[: k * self.n_fft].reshape(k, self.n_fft)
        power = np.abs(np.fft.rfft(frames * self._window, axis=1)) ** 2
        self._add_power(power)

    def _add_power(self, power: np.ndarray) -> None:
        idx = 0
        while idx < power.shape[0]:
            take = min(self.frames_per_column - self._count, power.shape[0] - idx)
            self._sum += power[idx : idx + take].sum(axis=0)
            self._count += take
            idx += take
            if self._count == self.frames_per_column:
                self._push()

    def _push(self) -> None:
        self._columns.append((self._sum / self._count).astype(np.float32))
        self._sum = np.zeros_like(self._sum)
        self._count = 0
        if len(self._columns) >= 2 * self.max_columns:
            cols = self._columns
            self._columns = [(cols[j] + cols[j + 1]) / 2.0 for j in range(0, len(cols) - 1, 2)]
            self.frames_per_column *= 2

    def result(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(dB [freq bins, columns], bin frequencies in Hz from 0 to Nyquist, seconds per column)."""
        cols = list(self._columns)
        if self._count:
            cols.append((self._sum / self._count).astype(np.float32))
        if not cols and self._carry.size:  # shorter than one FFT frame
            frame = np.pad(self._carry, (0, self.n_fft - self._carry.size))
            cols.append((np.abs(np.fft.rfft(frame * self._window)) ** 2).astype(np.float32))
        if not cols:
            cols.append(np.zeros(self.n_fft // 2 + 1, np.float32))
        power = np.stack(cols, axis=1) / self._scale
        db = 10.0 * np.log10(power + 1e-14)
        freqs = np.fft.rfftfreq(self.n_fft, 1.0 / self.sample_rate)
        return db.astype(np.float32), freqs, self.frames_per_column * self.n_fft / self.sample_rate


def spectrogram_db(
    samples: np.ndarray, sample_rate: int, n_fft: int = N_FFT, max_columns: int = MAX_COLUMNS
) -> tuple[np.ndarray, np.ndarray, float]:
    """Spectrogram of a whole array [channels, n] or [n]; same output as SpectrogramAccumulator."""
    n = samples.shape[-1]
    acc = SpectrogramAccumulator(sample_rate, n_fft, max_columns, expected_frames=n)
    acc.feed(samples)
    return acc.result()


def _time_axis(axis, duration: float) -> None:
    """Seconds up to two minutes, else min:s at a round step."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    if duration <= 120:
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        return
    step = next((s for s in (30, 60, 120, 300, 600, 900, 1800, 3600) if duration / s <= 10), 7200)
    axis.set_major_locator(MultipleLocator(step))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v // 60)}:{int(v % 60):02d}"))


def _freq_ticks(nyquist_khz: float) -> list[float]:
    step = next(s for s in (0.5, 1, 2, 4, 5, 10, 20, 50, 100, 200) if nyquist_khz / s <= 7)
    ticks = list(np.arange(0.0, nyquist_khz + 1e-9, step))
    if nyquist_khz - ticks[-1] < 0.6 * step:
        ticks = ticks[:-1]
    return [float(t) for t in ticks] + [nyquist_khz]


def draw_figure(
    db: np.ndarray,
    freqs: np.ndarray,
    column_s: float,
    result: dict,
    *,
    fmt: str = "jpeg",
    dpi: int = DPI,
    max_bytes: int = MAX_IMAGE_BYTES,
) -> bytes:
    """Image bytes (JPEG or PNG) of the spectrogram over the window timeline of one result."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    nyq_khz = float(freqs[-1]) / 1000.0
    span = db.shape[1] * column_s
    duration = float(result.get("duration") or span or 1.0)
    fig = Figure(figsize=FIG_SIZE, layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(2, 2, height_ratios=[3.2, 1], width_ratios=[60, 1])
    ax = fig.add_subplot(gs[0, 0])
    cax = fig.add_subplot(gs[0, 1])
    axt = fig.add_subplot(gs[1, 0], sharex=ax)

    top = float(np.ceil(max(float(db.max()), -100.0) / 10.0) * 10.0)
    im = ax.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=top - 110.0,
        vmax=top,
        extent=(0.0, span, 0.0, nyq_khz),
        interpolation="antialiased",
    )
    cb = fig.colorbar(im, cax=cax)
    cb.set_label("dBFS", fontsize=9)
    cb.ax.tick_params(labelsize=9)
    ax.set_ylim(0.0, nyq_khz)
    ax.set_yticks(_freq_ticks(nyq_khz))
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.set_ylabel("frequency (kHz)", fontsize=10)
    ax.tick_params(labelsize=9, labelbottom=False)
    sr = result.get("sample_rate")
    head = f"{sr / 1000:g} kHz file, spectrum to {nyq_khz:g} kHz" if sr else f"spectrum to {nyq_khz:g} kHz"
    ax.set_title(f"spectrogram of the mono mix ({head}) and analysis windows", fontsize=10)

    segs = [s for s in (result.get("segments") or []) if isinstance(s, dict)]
    lanes = 2 if len(segs) > 1 else 1  # windows overlap (hop < window): alternate two lanes
    shown: list[str] = []
    edge = 0.6 if len(segs) <= 120 else 0.0  # many windows: edges would hide the colours
    for i, seg in enumerate(segs):
        kind = "silent" if seg.get("silent") else str(seg.get("distortion_type", "clean"))
        flagged = bool(seg.get("has_distortion"))
        sev = seg.get("severity")
        sev = sev.get(kind, 0.0) if isinstance(sev, dict) else 0.0
        alpha = 0.45 + 0.55 * min(max(float(sev or 0.0), 0.0), 100.0) / 100.0 if flagged else 0.7
        try:
            start, end = float(seg["start"]), float(seg["end"])
        except (KeyError, TypeError, ValueError):
            continue
        axt.add_patch(
            Rectangle(
                (start, i % lanes + 0.1),
                max(end - start, 0.0),
                0.8,
                facecolor=COLOURS.get(kind, "#555555"),
                alpha=alpha,
                edgecolor="white",
                linewidth=edge,
            )
        )
        if kind not in shown:
            shown.append(kind)
    handles = []
    order = ["clean", *DISTORTION_KINDS, "silent"]
    for k in sorted(shown, key=lambda k: order.index(k) if k in order else len(order)):
        handles.append(Patch(color=COLOURS.get(k, "#555555"), label=k))
    section = result.get("section")
    lane_top = lanes
    if isinstance(section, dict) and "start" in section and "end" in section:
        s0, s1 = float(section["start"]), float(section["end"])
        axt.add_patch(Rectangle((s0, lanes + 0.15), s1 - s0, 0.5, facecolor="#222222", edgecolor="none"))
        for x in (s0, s1):
            ax.axvline(x, color="white", linestyle="--", linewidth=0.9, alpha=0.8)
        handles.append(Patch(color="#222222", label="damaged section"))
        lane_top = lanes + 0.8
    axt.set_ylim(0, lane_top)
    axt.set_yticks([])
    axt.set_ylabel("windows", fontsize=9)
    axt.set_xlim(0.0, max(duration, 1e-3))
    _time_axis(axt.xaxis, duration)
    axt.set_xlabel("time (s)" if duration <= 120 else "time (min:s)", fontsize=10)
    axt.tick_params(labelsize=9)
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    return _save(fig, fmt, dpi, max_bytes)


def _save(fig, fmt: str, dpi: int, max_bytes: int) -> bytes:
    """Encodes the figure; JPEG quality is lowered until it fits ``max_bytes``."""
    if fmt == "png":  # 256-colour palette: a spectrogram keeps its look at a third of the size
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        try:
            from PIL import Image
        except ImportError:
            return buf.getvalue()
        buf.seek(0)
        with Image.open(buf) as im:
            out = io.BytesIO()
            im.convert("RGB").quantize(256).save(out, format="PNG", optimize=True)
        return out.getvalue()
    data = b""
    for quality in (82, 70, 55, 40):
        buf = io.BytesIO()
        fig.savefig(buf, format="jpeg", dpi=dpi, pil_kwargs={"quality": quality, "optimize": True})
        data = buf.getvalue()
        if len(data) <= max_bytes:
            break
    return data


def figure_from_samples(samples: np.ndarray, sample_rate: int, result: dict, fmt: str = "png", dpi: int = DPI) -> bytes:
    """Figure of an in-memory signal [channels, n] at ``sample_rate``."""
    db, freqs, column_s = spectrogram_db(np.asarray(samples, dtype=np.float32), sample_rate)
    return draw_figure(db, freqs, column_s, result, fmt=fmt, dpi=dpi)
