"""The key measurements of a result as short labelled texts, for the CLI table, the CSV and the
HTML report (one formatter, so every view shows the same numbers)."""

from __future__ import annotations

#: (key in result["measurements"], label, format); a None value is shown as "-"
KEY_MEASUREMENTS = (
    ("sample_peak_dbfs", "peak", "{:+.1f} dBFS"),
    ("true_peak_dbtp", "true peak", "{:+.1f} dBTP"),
    ("integrated_lufs", "loudness", "{:.1f} LUFS"),
    ("loudness_range_lu", "LRA", "{:.1f} LU"),
    ("clipped_fraction", "clipped", "{:.2%}"),
    ("intersample_overs", "overs", "{:d}"),
    ("cutoff_hz", "cut-off", "{:.0f} Hz"),
    ("snr_db", "SNR", "{:.0f} dB"),
    ("hum_hz", "hum", "{:.0f} Hz"),
    ("lr_correlation", "L/R corr", "{:.2f}"),
    ("channel_delay_ms", "L/R delay", "{:.2f} ms"),
    ("mono_downmix_loss_db", "mono loss", "{:.1f} dB"),
    ("spectral_deviation_db", "spectrum dev.", "{:.1f} dB"),
)

#: scalar measurements written as CSV columns (prefixed "m_")
CSV_MEASUREMENTS = (
    "sample_peak_dbfs",
    "true_peak_dbtp",
    "integrated_lufs",
    "loudness_range_lu",
    "dc_offset",
    "clipped_samples",
    "clipped_fraction",
    "longest_clip_run",
    "intersample_overs",
    "cutoff_hz",
    "snr_db",
    "hum_hz",
    "spectral_deviation_db",
    "most_deviant_band_hz",
    "lr_correlation",
    "channel_delay_ms",
    "polarity_inverted",
    "mono_downmix_loss_db",
)


def key_measurements(m: dict | None) -> list[tuple[str, str]]:
    """(label, text) for each key measurement present in ``m``; hum only when found."""
    out = []
    for key, label, fmt in KEY_MEASUREMENTS:
        if not m or key not in m or (key == "hum_hz" and m[key] is None):
            continue
        v = m[key]
        out.append((label, "-" if v is None else fmt.format(v)))
    if m and m.get("polarity_inverted"):
        out.append(("polarity", "inverted"))
    return out


def one_line(m: dict | None) -> str:
    return " · ".join(f"{label} {text}" for label, text in key_measurements(m))
