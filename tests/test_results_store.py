"""The results store of `adv scan`: resumed scans reuse finished results, edits and other models are
analysed again, and `adv report` renders the outputs from the store at any time."""

import json
import os
import sqlite3
import time

import numpy as np
import pytest
import soundfile as sf

from adv.cli import main
from adv.errors import OutputError
from adv.report.output_dir import IN_PLACE, LEDGER
from adv.report.results_store import STORE_NAME, ResultsStore, StoreError, content_key, model_key
from adv.report.scan import report_from_store, scan_folder

SR = 44100
GOOD = ("a.wav", "b.wav", "sub/c.wav")
BAD = "zz_corrupt.wav"


def _tone(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * (220 + 50 * seed) * t) + 0.02 * rng.standard_normal(t.size)
    return np.stack([x, 0.8 * x]).T.astype(np.float32)


def _music(root, names=GOOD, corrupt=True):
    """Small WAVs of 2-3 s (and a truncated one) under ``root``."""
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / name, _tone(2.0 + (i % 2), i), SR)
    if corrupt:
        whole = (root / names[0]).read_bytes()
        (root / BAD).write_bytes(whole[: len(whole) // 3])
    return root


class Counting:
    """A validator that records the files it analyses; raises KeyboardInterrupt on call
    ``stop_at`` (1-based) and runs ``hook(call number)`` before each analysis."""

    def __init__(self, validator, stop_at=None, hook=None):
        self._v, self.stop_at, self.hook = validator, stop_at, hook
        self.calls: list[str] = []

    def __getattr__(self, name):
        return getattr(self._v, name)

    def analyze_batch(self, sources, workers=2):
        self.calls.append(os.path.basename(str(sources[0])))
        if self.stop_at is not None and len(self.calls) >= self.stop_at:
            raise KeyboardInterrupt
        if self.hook:
            self.hook(len(self.calls))
        return self._v.analyze_batch(sources, workers)


@pytest.fixture(scope="module")
def validator():
    from adv.inference.validator import AudioDistortionValidator

    return AudioDistortionValidator()


def _scan(root, out, v, **kw):
    kw.setdefault("workers", 1)
    return scan_folder(root, out, validator=v, progress=False, plots=False, **kw)


def test_second_scan_reuses_every_result_and_retries_errors(tmp_path, validator):
    root, out = _music(tmp_path / "music"), tmp_path / "out"
    first = Counting(validator)
    r1 = _scan(root, out, first)
    assert sorted(first.calls) == sorted(["a.wav", "b.wav", "c.wav", BAD])
    assert r1["summary"]["analysed_now"] == 4 and r1["summary"]["reused"] == 0
    csv1 = (out / "results.csv").read_bytes()

    again = Counting(validator)
    r2 = _scan(root, out, again)
    assert again.calls == [BAD]  # the error is tried again, the finished files are not
    assert r2["summary"]["reused"] == 3 and r2["summary"]["analysed_now"] == 1
    assert r2["summary"]["files"] == 4 and r2["summary"]["errors"] == 1
    assert (out / "results.csv").read_bytes() == csv1  # the report still covers every file
    assert json.loads((out / "results.json").read_text())["results"] == r1["results"]
    assert len((out / "results.jsonl").read_text().splitlines()) == 4

    with sqlite3.connect(out / STORE_NAME) as db:  # plain SQLite: one row per file
        rows = db.execute("SELECT path, content_key, model_key, status FROM results").fetchall()
    assert len(rows) == 4 and {r[2] for r in rows} == {model_key(validator)[0]}
    by_path = {os.path.basename(r[0]): r for r in rows}
    assert by_path[BAD][3] == "error" and by_path["a.wav"][3] == "ok"
    assert by_path["a.wav"][1] == content_key(root / "a.wav")
    assert json.loads((out / LEDGER).read_text())["files"][STORE_NAME] == IN_PLACE


def test_edited_file_is_analysed_again_and_rescan_does_all(tmp_path, validator):
    root, out = _music(tmp_path / "music", corrupt=False), tmp_path / "out"
    _scan(root, out, validator)
    sf.write(root / "b.wav", _tone(3.0, 7), SR)  # same length, new content
    edited = Counting(validator)
    r = _scan(root, out, edited)
    assert edited.calls == ["b.wav"] and r["summary"]["reused"] == 2
    every = Counting(validator)
    assert _scan(root, out, every, rescan=True)["summary"]["reused"] == 0
    assert sorted(every.calls) == ["a.wav", "b.wav", "c.wav"]


def test_content_key_sees_an_edit_that_keeps_size_and_time(tmp_path):
    p = tmp_path / "x.wav"
    sf.write(p, _tone(2.0, 1), SR)
    before, st = content_key(p), os.stat(p)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(p).st_size == st.st_size and content_key(p) != before


def test_another_model_key_analyses_again(tmp_path, validator):
    from adv.inference.validator import AudioDistortionValidator

    root, out = _music(tmp_path / "music", corrupt=False), tmp_path / "out"
    _scan(root, out, validator)
    strict = AudioDistortionValidator(threshold=0.9)
    assert model_key(strict)[0] != model_key(validator)[0]
    other = Counting(strict)
    assert _scan(root, out, other)["summary"]["reused"] == 0 and len(other.calls) == 3
    back = Counting(validator)  # the first model's rows are still there
    assert _scan(root, out, back)["summary"]["reused"] == 3 and back.calls == []


def test_interrupted_scan_keeps_finished_rows_and_resumes(tmp_path, validator):
    root, out = _music(tmp_path / "music"), tmp_path / "out"
    stopped = Counting(validator, stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        _scan(root, out, stopped)
    with ResultsStore.open(out / STORE_NAME, readonly=True) as db:
        assert db.count(status="ok") == 2 and db.latest_scan()["status"] == "interrupted"
    partial = json.loads((out / "results.json").read_text())
    assert partial["summary"]["interrupted"] and len(partial["results"]) == 2

    rest = Counting(validator)
    r = _scan(root, out, rest)
    assert stopped.calls[:2] == ["a.wav", "b.wav"] and rest.calls == ["c.wav", BAD]
    assert r["summary"]["reused"] == 2 and r["summary"]["files"] == 4


def test_adv_report_renders_the_scan_outputs(tmp_path, capsys):
    root, out, again = _music(tmp_path / "music"), tmp_path / "out", tmp_path / "again"
    code = main(["scan", str(root), "--out", str(out), "--quiet", "--no-plots", "--require", "true_peak_dbtp<=-1"])
    assert code == 3 and "4 analysed now, 0 reused from" in capsys.readouterr().out
    assert main(["report", str(out), "--out", str(again), "--no-plots"]) == 0
    assert "written:" in capsys.readouterr().out
    for name in ("results.csv", "report.html"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    lines = sorted((out / "results.jsonl").read_text().splitlines())
    assert sorted((again / "results.jsonl").read_text().splitlines()) == lines
    scan_doc, report_doc = (json.loads((d / "results.json").read_text()) for d in (out, again))
    assert report_doc["results"] == scan_doc["results"] and report_doc["rules"] == ["true_peak_dbtp<=-1"]
    assert all("checks" in r for r in report_doc["results"] if "error" not in r)
    assert report_doc["model"] == scan_doc["model"] and report_doc["root"] == scan_doc["root"]
    for k in ("files", "analysed", "errors", "flagged", "flagged_by_type", "audio_seconds", "failed_spec"):
        assert report_doc["summary"][k] == scan_doc["summary"][k], k
    only = tmp_path / "only"
    assert main(["report", str(out / STORE_NAME), "--out", str(only), "--format", "csv,jsonl"]) == 0
    assert sorted(p.name for p in only.iterdir() if p.name != LEDGER) == ["results.csv", "results.jsonl"]


@pytest.mark.parametrize("kind", ["text", "other_sqlite", "folder_without_store", "missing"])
def test_report_of_a_non_store_exits_2_with_one_line(tmp_path, capsys, kind):
    target = tmp_path / "thing"
    if kind == "text":
        target.write_text("not a database\n")
    elif kind == "other_sqlite":
        with sqlite3.connect(target) as db:
            db.execute("CREATE TABLE songs (title TEXT)")
    elif kind == "folder_without_store":
        target.mkdir()
    assert main(["report", str(target), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(target) in err
    assert not (tmp_path / "o").exists()
    if kind == "other_sqlite":
        assert "not an adv results store" in err


def test_scan_refuses_a_store_that_is_not_its_own(tmp_path, validator):
    root, out = _music(tmp_path / "music", names=("a.wav",), corrupt=False), tmp_path / "out"
    out.mkdir()
    (out / STORE_NAME).write_bytes(b"my own notes")
    idle = Counting(validator)
    with pytest.raises(OutputError, match="not written by adv scan"):
        _scan(root, out, idle)
    (out / STORE_NAME).unlink()
    _scan(root, out, idle)
    (out / STORE_NAME).unlink()
    for side in ("-wal", "-shm"):
        (out / (STORE_NAME + side)).unlink(missing_ok=True)
    (out / STORE_NAME).write_bytes(b"replaced by hand")  # listed in the ledger, but not a store
    with pytest.raises(StoreError, match="not an adv results store"):
        _scan(root, out, idle)
    assert (out / STORE_NAME).read_bytes() == b"replaced by hand" and idle.calls == ["a.wav"]


def test_store_can_be_read_while_a_scan_writes(tmp_path, validator):
    root, out, live = _music(tmp_path / "music", corrupt=False), tmp_path / "out", tmp_path / "live"
    seen: list[tuple[int, int]] = []

    def read_during_scan(call: int) -> None:
        deadline = time.monotonic() + 20
        while True:  # the results before this one are committed while the scan goes on
            with ResultsStore.open(out, readonly=True) as db:
                if db.count() >= call - 1 or time.monotonic() > deadline:
                    break
            time.sleep(0.02)
        rows = report_from_store(out, live, ("csv",), plots=False)["results"]
        seen.append((call, len(rows)))

    watched = Counting(validator, hook=read_during_scan)
    r = _scan(root, out, watched)
    assert seen == [(1, 0), (2, 1), (3, 2)]
    assert r["summary"]["analysed_now"] == 3
    with ResultsStore.open(out / STORE_NAME, readonly=True) as db:
        assert db.latest_scan()["status"] == "done" and db.count(status="ok") == 3


def test_rows_survive_a_killed_writer(tmp_path):
    import signal
    import subprocess
    import sys

    store = tmp_path / STORE_NAME
    code = (
        f"import os, signal\nfrom adv.report.results_store import ResultsStore\n"
        f"db = ResultsStore.open({str(store)!r})\n"
        "for name in ('a.wav', 'b.wav'):\n"
        "    db.put(name, 'k', 'm', {'path': name, 'has_distortion': False})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    with ResultsStore.open(store, readonly=True) as db:
        assert db.count(key="m", status="ok") == 2
