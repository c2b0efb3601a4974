"""The CLI's machine-readable and terminal output: --version, one --json shape for any number of
files, --jsonl lines, full paths off a terminal, no colour off a terminal, and a documented schema."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from adv import RESULT_SCHEMA_VERSION, __version__
from adv.cli import main
from adv.report.console import fit_path, print_table

DOC = Path(__file__).resolve().parent.parent / "docs" / "output_format.md"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("a_rather_long_folder_name_that_would_not_fit_in_forty_characters")
    sr = 48000
    t = np.arange(3 * sr) / sr
    out = []
    for i, f in enumerate((330.0, 440.0)):
        x = 0.4 * np.sin(2 * np.pi * f * t) + 0.05 * np.sin(2 * np.pi * 3 * f * t)
        p = d / f"song_{i}.flac"
        sf.write(p, np.stack([x, x], 1), sr)
        out.append(str(p))
    return out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"adv {__version__} (result schema {RESULT_SCHEMA_VERSION})"


def test_json_has_one_shape_for_one_file_and_for_several(files, capsys):
    main(["analyze", files[0], "--json"])
    one = json.loads(capsys.readouterr().out)
    main(["analyze", *files, str(Path(files[0]).with_name("missing.wav")), "--json"])
    many = json.loads(capsys.readouterr().out)
    for doc in (one, many):
        assert list(doc) == ["schema_version", "adv_version", "model", "rules", "summary", "results"]
        assert doc["schema_version"] == RESULT_SCHEMA_VERSION and isinstance(doc["results"], list)
        assert doc["model"]["kind_thresholds"]
    assert len(one["results"]) == 1 and len(many["results"]) == 3
    assert many["summary"] == {"files": 3, "analysed": 2, "errors": 1, "flagged": many["summary"]["flagged"]}
    assert [r["path"] for r in many["results"][:2]] == files  # input order
    assert many["results"][2]["error_type"] == "FileMissingError"


def test_jsonl_prints_one_result_per_line(files, capsys):
    main(["analyze", *files, "--jsonl"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    assert [r["path"] for r in rows] == files and all(r["schema_version"] == RESULT_SCHEMA_VERSION for r in rows)


def test_table_shows_full_paths_and_no_colour_off_a_terminal(files, capsys):
    main(["analyze", *files])
    out = capsys.readouterr().out
    assert all(f in out for f in files) and "\033[" not in out


def test_table_on_a_terminal_fits_and_colours():
    buf = io.StringIO()
    r = {"path": "/very/long/" + "x" * 80 + "/song.flac", "error": "boom", "error_type": "NotAudioError"}
    print_table([r], buf, colour=True, width=40)
    first = buf.getvalue().splitlines()[2]
    assert "\033[33m" in first and "song.flac" in first and "…" in first
    assert len(fit_path(r["path"], 40)) == 40 and fit_path("short", 40) == "short"


def _documented_keys() -> set[str]:
    return set(re.findall(r"^\| `([a-z_.]+)`", DOC.read_text(encoding="utf-8"), flags=re.M)) | set(
        k
        for cell in re.findall(r"^\| `([a-z_]+)`, `([a-z_]+)`(?:, `([a-z_]+)`)?", DOC.read_text(), flags=re.M)
        for k in cell
        if k
    )


def test_every_key_of_a_result_is_documented(files, capsys):
    main(["analyze", files[0], "--json", "--segments", "--require", "true_peak_dbtp <= -1"])
    doc = json.loads(capsys.readouterr().out)
    r = doc["results"][0]
    documented = _documented_keys()
    keys = set(doc) | set(r) | set(r["measurements"])
    missing = sorted(k for k in keys if k not in documented)
    assert not missing, f"keys missing from {DOC.name}: {missing}"
