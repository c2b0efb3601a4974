"""The interactive scan report: embedded data, escaping, figures to the file's Nyquist, excerpts,
and bad inputs that must not break the writer. No browser needed (scripts/report_browser_check.py
does the headless-Chromium check)."""

import base64
import io
import json
import re

import numpy as np
import pytest
import soundfile as sf

from adv.report.excerpts import ExcerptCollector, excerpt_span
from adv.report.figures import SpectrogramAccumulator, spectrogram_db
from adv.report.html_report import COLOURS, _detail, display_name, embedded_result, render_html, write_html_report

KINDS = ("clipping", "mp3", "noise", "eq", "phase")
BLOB = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.S)


def _result(path, *, kind="clean", duration=10.0, sr=48000, hop=5.0, window=10.0, section=None):
    """A result shaped like the validator's, with full per-window data."""
    flagged = kind != "clean"
    types = {
        k: {
            "probability": 0.9 if k == kind else 0.05,
            "threshold": 0.5,
            "detected": k == kind,
            "severity": 40.0 if k == kind else 80.6,
            "worst_severity": 55.0 if k == kind else 81.6,
            "flagged_windows": 1 if k == kind else 0,
        }
        for k in KINDS
    }
    segs, start = [], 0.0
    while True:
        end = min(start + window, duration)
        segs.append(
            {
                "start": start,
                "end": end,
                "has_distortion": flagged,
                "distortion_type": kind,
                "confidence": 0.9,
                "probabilities": {"clean": 0.1, **{k: 0.05 for k in KINDS}},
                "severity": {k: 30.0 + start for k in KINDS},
                "measurements": {"snr_db": 40.0},
            }
        )
        if end >= duration:
            break
        start += hop
    return {
        "path": str(path),
        "has_distortion": flagged,
        "distortion_type": kind,
        "severity": 40.0 if flagged else 0.0,
        "worst_severity": 55.0 if flagged else 0.0,
        "confidence": 0.9,
        "types": types,
        "detected_types": [kind] if flagged else [],
        "section": section,
        "segments": segs,
        "measurements": {
            "sample_peak_dbfs": -1.0,
            "true_peak_dbtp": -0.5,
            "integrated_lufs": -14.2,
            "clipped_fraction": 0.0123,
            "cutoff_hz": 16000.0,
            "snr_db": 41.0,
            "lr_correlation": 0.93,
            "hum_hz": None,
        },
        "notes": ["a <note> & more"],
        "duration": duration,
        "sample_rate": sr,
        "channels": 2,
        "format": "wav",
    }


def _blob(page: str) -> str:
    m = BLOB.search(page)
    assert m, "no JSON blob"
    return m.group(1)


def _stereo(sr, seconds, freqs=(440.0, 3000.0)):
    t = np.arange(int(sr * seconds)) / sr
    x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in freqs)
    return np.stack([x, 0.8 * x]).astype(np.float32)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    sf.write(root / "hit.wav", _stereo(48000, 20.0).T, 48000)
    sf.write(root / "fine.flac", _stereo(44100, 6.0).T, 44100)
    return root


def test_embedded_json_round_trips_every_result(tmp_path):
    results = [
        _result(tmp_path / "a.wav", kind="clipping", section={"start": 0.0, "end": 10.0, "kind": "clipping"}),
        _result(tmp_path / "b.wav"),
        {"path": str(tmp_path / "c.mp3"), "error": "bad", "error_type": "X"},
    ]
    page = render_html(results, root=tmp_path)
    data = json.loads(_blob(page))
    assert len(data["results"]) == len(results) == len(data["rows"])
    for got, want in zip(data["results"], results):
        assert {k: v for k, v in got.items() if k != "segments"} == {k: v for k, v in want.items() if k != "segments"}
        for gs, ws in zip(got.get("segments", []), want.get("segments", [])):
            assert gs == {k: ws[k] for k in ("start", "end", "has_distortion", "distortion_type", "confidence")}
        assert got == embedded_result(want)
    assert [r["name"] for r in data["rows"]] == ["a.wav", "b.wav", "c.mp3"]
    assert [r["verdict"] for r in data["rows"]] == ["damaged", "ok", "error"]
    assert data["rows"][0]["t"]["clipped_fraction"] == "1.23%" and data["rows"][0]["t"]["true_peak_dbtp"] == "-0.5"


def test_hostile_names_are_escaped_everywhere(tmp_path):
    evil = str(tmp_path / "x</script><script>alert('1')</script> \"q\" &amp; <b>.wav")
    page = render_html(
        [_result(evil, kind="mp3"), {"path": evil + ".mp3", "error": "<i>no</i>", "error_type": "E"}],
        root=tmp_path,
        model_info={"model_version": "<script>"},
    )
    blob = _blob(page)
    assert "</" not in blob and "<" not in blob and ">" not in blob
    assert json.loads(blob)["rows"][0]["name"] == display_name(evil, tmp_path)
    outside = page.replace(blob, "")
    assert "<script>alert" not in outside
    assert "<b>.wav" not in outside and "<i>no</i>" not in outside
    assert outside.count("<script") == 3  # the error trap, the JSON blob, the page script
    assert "x&lt;/script&gt;&lt;script&gt;alert(&#x27;1&#x27;)" in outside
    assert "a &lt;note&gt; &amp; more" in outside


def test_severities_only_for_detected_kinds():
    r = _result("/m/a.wav", kind="clipping")
    detail = _detail(r, "file-1", None, None)
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr><td><span class="tag"[^>]*>(\w+)</span>.*?</tr>', detail)}
    assert set(rows) == set(KINDS)
    assert "40.0" in rows["clipping"] and "55.0" in rows["clipping"]
    for k in KINDS[1:]:
        assert "80.6" not in rows[k] and "81.6" not in rows[k] and rows[k].count("\u2013") == 2
    assert "80.6" not in detail


def test_spectrogram_reaches_the_files_nyquist():
    sr = 48000
    t = np.arange(sr * 3) / sr
    x = np.stack([0.5 * np.sin(2 * np.pi * 20000 * t)] * 2).astype(np.float32)
    acc = SpectrogramAccumulator(sr, expected_frames=x.shape[1])
    for a in range(0, x.shape[1], 4096):  # fed in blocks as from a decode stream
        acc.feed(x[:, a : a + 4096])
    db, freqs, column_s = acc.result()
    assert freqs[-1] == pytest.approx(24000.0) and db.shape[0] == freqs.size
    assert abs(freqs[int(np.argmax(db.mean(axis=1)))] - 20000.0) < 50.0
    assert db.max() == pytest.approx(-6.0, abs=1.0)  # a 0.5 sine is -6 dBFS
    whole, freqs2, _ = spectrogram_db(x, sr)
    assert freqs2[-1] == pytest.approx(24000.0) and whole.shape == db.shape


def test_spectrogram_columns_stay_bounded_without_a_length():
    acc = SpectrogramAccumulator(8000, n_fft=256, max_columns=20)
    block = np.zeros((2, 1000), np.float32)
    for _ in range(400):  # 50 s, length not declared
        acc.feed(block)
    db, _, column_s = acc.result()
    assert db.shape[1] <= 41 and db.shape[1] * column_s == pytest.approx(50.0, rel=0.05)


def test_figures_for_every_file_and_excerpt_for_flagged(audio, tmp_path):
    hit = _result(
        audio / "hit.wav", kind="clipping", duration=20.0, section={"start": 5.0, "end": 20.0, "kind": "clipping"}
    )
    fine = _result(audio / "fine.flac", duration=6.0, sr=44100)
    out = write_html_report([hit, fine], tmp_path / "r" / "report.html", root=audio, workers=2)
    page = out.read_text(encoding="utf-8")
    imgs = re.findall(r'<img class="fig" alt="[^"]*" src="data:image/jpeg;base64,([^"]+)"', page)
    assert len(imgs) == 2
    for b64 in imgs:
        raw = base64.b64decode(b64)
        assert raw.startswith(b"\xff\xd8") and len(raw) <= 120_000
    clips = re.findall(r'src="data:audio/flac;base64,([^"]+)"', page)
    assert len(clips) == 1  # only the flagged file
    x, sr = sf.read(io.BytesIO(base64.b64decode(clips[0])))
    assert sr == 48000 and x.ndim == 2 and x.shape[1] == 2 and 7.9 <= x.shape[0] / sr <= 8.01
    assert "#t=5.0,20.0" in page and "fine.flac#t=0.0,6.0" in page
    assert "Figures: 2 of 2 analysed files" in page


def test_excerpt_is_centred_on_the_worst_window_of_the_section():
    r = _result("/m/a.wav", kind="clipping", duration=60.0, section={"start": 20.0, "end": 45.0, "kind": "clipping"})
    a, b, why = excerpt_span(r)
    assert b - a == pytest.approx(8.0) and (a + b) / 2 == pytest.approx(45.0) and "section" in why  # window 40-50 s
    short = _result("/m/b.wav", kind="clipping", duration=5.0)
    assert excerpt_span(short)[:2] == (0.0, 5.0)
    col = ExcerptCollector(10, 1.0, 2.5)
    for _ in range(4):
        col.feed(np.arange(30, dtype=np.float32).reshape(3, 10))
    got = col.samples()
    assert got.shape == (2, 15) and col.complete


def test_bad_path_gives_no_figure_and_no_exception(tmp_path):
    gone = _result(tmp_path / "gone.wav", kind="noise")
    garbage = {
        "path": str(tmp_path / "odd.wav"),
        "has_distortion": True,
        "distortion_type": "eq",
        "severity": float("nan"),
        "types": {"eq": "nonsense"},
        "segments": [{"start": "x"}, 3],
        "measurements": {"true_peak_dbtp": float("inf"), "cutoff_hz": "high"},
        "duration": None,
    }
    out = write_html_report([gone, garbage, "not a dict", {"no": "path"}], tmp_path / "report.html", max_plots=5)
    page = out.read_text(encoding="utf-8")
    assert page.count("no figure: the file could not be decoded again") == 2
    data = json.loads(_blob(page))
    assert len(data["rows"]) == 4 and data["results"][1]["severity"] is None
    assert data["rows"][2]["verdict"] == data["rows"][3]["verdict"] == "error"


def test_max_plots_leaves_files_out_with_a_note(audio, tmp_path):
    hit = _result(audio / "hit.wav", kind="clipping", duration=20.0)
    fine = _result(audio / "fine.flac", duration=6.0, sr=44100)
    page = write_html_report([fine, hit], tmp_path / "report.html", max_plots=1, max_excerpts=0).read_text()
    assert page.count('<img class="fig"') == 1 and "data:audio/flac" not in page
    assert "1 left out by the limit of 1 figures" in page and "left out: the report draws at most 1" in page
    detail_hit = page[page.index('id="file-2"') :]
    assert detail_hit.index('<img class="fig"') < detail_hit.index('id="report-check"')  # flagged file drawn
    off = write_html_report([hit], tmp_path / "off.html", plots=False).read_text()
    assert "<img" not in off and "turned off" in off
    assert set(COLOURS) >= {"clean", *KINDS, "error"}
