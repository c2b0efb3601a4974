"""`adv scan`: folder tree in, CSV / JSON / self-contained HTML out, bad files reported not fatal."""

import csv
import html
import json

import numpy as np
import pytest
import soundfile as sf

from adv.cli import _exit_code, main
from adv.report.html_report import figure_png, render_html
from adv.report.scan import find_audio_files

SR = 44100
ODD_NAME = "rock & roll <live> 'take'.wav"


def _tone(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t) + 0.02 * rng.standard_normal(t.size)
    return np.stack([x, 0.8 * x]).astype(np.float32)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("music")
    (root / "sub" / "deeper").mkdir(parents=True)
    sf.write(root / "a.wav", _tone(3.0, 0).T, SR)
    sf.write(root / ODD_NAME, _tone(2.0, 1).T, SR, subtype="PCM_24")
    sf.write(root / "sub" / "b.flac", _tone(12.0, 2).T, SR)
    sf.write(root / "sub" / "deeper" / "c.WAV", _tone(2.0, 3).T, 48000)
    whole = (root / "a.wav").read_bytes()
    (root / "sub" / "corrupt.wav").write_bytes(whole[: len(whole) // 3])
    (root / "sub" / "fake.mp3").write_text("these are lyrics, not an mp3\n" * 20)
    (root / "readme.txt").write_text("not audio")
    (root / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not scanned")
    audio = {"a.wav", ODD_NAME, "sub/b.flac", "sub/deeper/c.WAV", "sub/corrupt.wav", "sub/fake.mp3"}
    return root, audio


@pytest.fixture(scope="module")
def scanned(tree, tmp_path_factory):
    root, _ = tree
    out = tmp_path_factory.mktemp("scan_out")
    code = main(["scan", str(root), "--out", str(out), "--quiet", "--workers", "2"])
    return out, code


def test_finds_audio_by_extension_recursively(tree):
    root, audio = tree
    found = {p.relative_to(root).as_posix() for p in find_audio_files(root)}
    assert found == audio


def test_csv_has_one_row_per_audio_file_and_bad_ones_are_errors(tree, scanned):
    root, audio = tree
    out, code = scanned
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["path"] for r in rows} == {str(root / a) for a in audio}
    status = {r["path"]: r for r in rows}
    for bad in ("sub/corrupt.wav", "sub/fake.mp3"):
        row = status[str(root / bad)]
        assert row["status"] == "error" and bad.split("/")[-1] in row["error"]
    for good in audio - {"sub/corrupt.wav", "sub/fake.mp3"}:
        row = status[str(root / good)]
        assert row["status"] == "ok" and row["error"] == ""
        assert row["distortion_type"] in ("clean", "clipping", "mp3", "noise", "eq", "phase")
        assert 0.0 <= float(row["severity"]) <= 100.0 and 0.0 <= float(row["confidence"]) <= 1.0
    assert code == 3  # files failed to decode (EXIT_INPUT_ERROR)


def test_json_parses_with_segments(tree, scanned):
    root, audio = tree
    out, _ = scanned
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["summary"]["files"] == len(audio) and data["summary"]["errors"] == 2
    ok = [r for r in data["results"] if "error" not in r]
    assert len(ok) == 4 and all(r["segments"] for r in ok)
    long = next(r for r in ok if r["path"].endswith("b.flac"))
    assert len(long["segments"]) >= 2 and long["segments"][-1]["end"] == pytest.approx(12.0, abs=0.01)


def test_html_is_self_contained_and_escapes_names(tree, scanned):
    out, _ = scanned
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert html.escape(ODD_NAME, quote=True) in page
    assert ODD_NAME not in page and "<live>" not in page
    for name in ("a.wav", "b.flac", "c.WAV", "corrupt.wav", "fake.mp3"):
        assert name in page
    assert "<script src" not in page and 'src="http' not in page and "<link" not in page
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    n_analysed = sum(1 for r in data["results"] if "error" not in r)
    assert page.count('<img class="fig"') == n_analysed  # every analysed file, not only flagged ones


def test_flagged_file_gets_an_embedded_figure(tmp_path):
    from adv.inference.validator import AudioDistortionValidator

    path = tmp_path / "x&y.wav"
    sf.write(path, _tone(11.0, 4).T, SR)
    r = AudioDistortionValidator().analyze(path)
    r.update(has_distortion=True, distortion_type="clipping", severity=40.0, worst_severity=55.0)
    png = figure_png(np.stack([_tone(11.0, 4)[0]] * 2), SR, r)
    assert png.startswith(b"\x89PNG") and len(png) < 200_000
    page = render_html([r], root=tmp_path, images={0: "AAAA"})
    assert "x&amp;y.wav" in page and "data:image/png;base64,AAAA" in page and 'id="file-1"' in page


def test_fail_on_uses_the_analyze_exit_codes(tmp_path):
    root = tmp_path / "good"
    root.mkdir()
    sf.write(root / "one.wav", _tone(2.0, 5).T, SR)
    out = tmp_path / "out"
    code = main(["scan", str(root), "--out", str(out), "--quiet", "--no-plots", "--fail-on", "any"])
    results = json.loads((out / "results.json").read_text())["results"]
    assert code == _exit_code(results, "any", 0.0) and code in (0, 1)
    assert (
        main(
            ["scan", str(root), "--out", str(out), "--quiet", "--no-plots", "--fail-on", "any", "--min-severity", "101"]
        )
        == 0
    )


def test_empty_folder_and_missing_folder(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["scan", str(empty), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert (tmp_path / "o" / "results.csv").read_text().count("\n") == 1  # header only
    assert main(["scan", str(tmp_path / "nope"), "--out", str(tmp_path / "o2"), "--quiet"]) == 3
    assert "nope" in capsys.readouterr().err


def test_html_detail_names_the_damaged_section():
    from adv.report.html_report import _detail

    r = {
        "path": "a.wav",
        "distortion_type": "clipping",
        "severity": 50.0,
        "worst_severity": 60.0,
        "confidence": 0.9,
        "duration": 70.0,
        "segments": [],
        "types": {},
        "section": {"start": 25.0, "end": 60.0},
    }
    assert "clearly damaged 25.0-60.0 s" in _detail(r, "f1", None, None)
    assert "clearly damaged" not in _detail({**r, "section": None}, "f1", None, None)
