"""Headless-Chromium check of the scan's interactive HTML report.

Builds a small folder of generated audio (clean, hard-clipped, low-passed, a hostile file name, a
non-audio file), runs `adv.report.scan.scan_folder` on it, opens report.html in headless Chromium
(DOM dumps after the page script ran, and screenshots) and checks: every file's row is in the
rendered table with its name as text, every image decoded, every audio excerpt loaded, no script
error or console message, the filters, sorting and #file-N links work, and the screenshot is not
blank. Prints what it checked; exits 1 on any failure, 2 when Chromium is missing.

    .venv/bin/python scripts/report_browser_check.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import soundfile as sf

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HOSTILE = "odd <script>alert(\"x\")<script> 'quoted' & co.wav"


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _music(sr: int, seconds: float, seed: int) -> np.ndarray:
    """A stereo tone mix with harmonics, a slow envelope and a little noise: [2, n] float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    x = np.zeros_like(t)
    for f0, amp in ((110.0, 0.25), (220.0 * 1.26, 0.15), (330.0 * 1.5, 0.1)):
        for h in range(1, 12):
            if f0 * h < sr / 2.2:
                x += amp / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
    x *= 0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t)
    x += 0.01 * rng.standard_normal(t.size)
    x = 0.5 * x / np.abs(x).max()
    right = np.roll(x, 3) * 0.9 + 0.005 * rng.standard_normal(t.size)
    return np.stack([x, right]).astype(np.float32)


def _tone_mix(sr: int, seconds: float, seed: int) -> np.ndarray:
    """Two steady tones with a slow swell and a faint noise floor: [2, n] float32 (passes as clean)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    x = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t) + 0.01 * rng.standard_normal(t.size)
    x *= 0.8 + 0.2 * np.sin(2 * np.pi * 0.3 * t)
    return np.stack([x, 0.9 * x]).astype(np.float32)


def _lowpass(x: np.ndarray, sr: int, cutoff: float) -> np.ndarray:
    spec = np.fft.rfft(x, axis=1)
    spec[:, np.fft.rfftfreq(x.shape[1], 1 / sr) > cutoff] = 0
    return np.fft.irfft(spec, n=x.shape[1], axis=1).astype(np.float32)


def make_folder(root: Path) -> dict[str, str]:
    """Writes the test files; returns {file name: what it is}."""
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    sf.write(root / "clean_mix.wav", _tone_mix(44100, 12.0, 0).T, 44100, subtype="PCM_24")
    files["clean_mix.wav"] = "clean tone mix, 44.1 kHz"
    sf.write(root / "hard_clipped.flac", np.clip(_music(48000, 12.0, 1) * 5.0, -0.5, 0.5).T, 48000)
    files["hard_clipped.flac"] = "hard-clipped, 48 kHz FLAC"
    sf.write(root / "lowpassed.wav", _lowpass(_music(44100, 12.0, 2) + 0.02, 44100, 4000.0).T, 44100)
    files["lowpassed.wav"] = "low-passed at 4 kHz, 44.1 kHz"
    sf.write(root / HOSTILE, _tone_mix(48000, 6.0, 3).T, 48000)
    files[HOSTILE] = "hostile name, 48 kHz"
    (root / "lyrics.mp3").write_text("not an mp3, just words\n" * 50)
    files["lyrics.mp3"] = "not audio: an error row"
    return files


class Dom(HTMLParser):
    """Collects the table rows (index, name-cell text), #report-check's attributes, #js-errors text,
    and counts of img, audio and script elements in a DOM dump."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: dict[int, str] = {}
        self.check: dict[str, str] = {}
        self.errors = ""
        self.counts = {"img": 0, "audio": 0, "script": 0}
        self._row: int | None = None
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in self.counts:
            self.counts[tag] += 1
        cls = (a.get("class") or "").split()
        if tag == "tr" and "row" in cls and "data-index" in a:
            self._row = int(a["data-index"])
            self.rows[self._row] = ""
        elif tag == "td" and "name" in cls and self._row is not None:
            self._in = "name"
        elif a.get("id") == "report-check":
            self.check = {k[5:]: v for k, v in a.items() if k.startswith("data-")}
        elif a.get("id") == "js-errors":
            self._in = "errors"

    def handle_endtag(self, tag):
        if tag == "td" and self._in == "name":
            self._in = None
        elif tag == "pre" and self._in == "errors":
            self._in = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._in == "name" and self._row is not None:
            self.rows[self._row] += data
        elif self._in == "errors":
            self.errors += data


class Browser:
    def __init__(self, exe: str, work: Path):
        self.exe, self.work = exe, work
        self.console: list[str] = []
        self.runs = 0

    def _run(self, url: str, *extra: str, window: str = "1400,2000") -> str:
        self.runs += 1
        profile = self.work / f"profile{self.runs}"
        cmd = [
            self.exe,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--mute-audio",
            f"--user-data-dir={profile}",
            f"--window-size={window}",
            "--virtual-time-budget=5000",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        self.console += [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
        if proc.returncode != 0:
            raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-800:]}")
        return proc.stdout

    def dom(self, url: str) -> Dom:
        d = Dom()
        d.feed(self._run(url, "--dump-dom"))
        return d

    def screenshot(self, url: str, path: Path) -> None:
        self._run(url, f"--screenshot={path}")


def _screenshot_ok(path: Path) -> tuple[bool, str]:
    if not path.is_file():
        return False, "missing"
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG") or len(data) < 20_000:
        return False, f"{len(data)} bytes, not a non-trivial PNG"
    try:
        from PIL import Image
    except ImportError:
        return True, f"{len(data) // 1024} kB"
    with Image.open(path) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        n = len(colours) if colours else 1 << 20
        return n > 200, f"{len(data) // 1024} kB, {im.size[0]}x{im.size[1]}, {n} colours"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="keep the folder, the report and the screenshots here")
    args = ap.parse_args(argv)
    exe = find_browser()
    if exe is None:
        print(
            "Chromium not found (looked for " + ", ".join(BROWSERS) + "); install it, e.g. "
            "`apt-get install -y chromium`, and run again.",
            file=sys.stderr,
        )
        return 2

    from adv.report.excerpts import EXCERPT_SECONDS
    from adv.report.html_report import MAX_EXCERPTS, display_name
    from adv.report.scan import scan_folder

    work = args.out or Path(tempfile.mkdtemp(prefix="adv_report_check_"))
    if args.out and (work / "music").exists():
        shutil.rmtree(work / "music")
    shutil.rmtree(work / "scan", ignore_errors=True)
    root = work / "music"
    made = make_folder(root)
    print(f"folder {root}: {len(made)} files")
    for name, what in made.items():
        print(f"  {name!r}: {what}")
    scan = scan_folder(root, work / "scan", progress=False, workers=2)
    results = scan["results"]
    page_path = Path(scan["outputs"]["html"])
    page = page_path.read_text(encoding="utf-8")
    url = page_path.resolve().as_uri()
    for r in results:
        print(
            f"  result {display_name(r['path'], root)!r}: "
            + (
                f"error {r.get('error_type')}"
                if "error" in r
                else f"{'DAMAGED ' + r['distortion_type'] if r['has_distortion'] else 'ok'}"
            )
        )

    failures: list[str] = []

    def expect(ok: bool, what: str) -> None:
        print(("  ok    " if ok else "  FAIL  ") + what)
        if not ok:
            failures.append(what)

    n = len(results)
    analysed = [i for i, r in enumerate(results) if "error" not in r]
    flagged = [i for i in analysed if results[i].get("has_distortion")]
    names = [display_name(r["path"], root) for r in results]
    print(
        f"page {page_path}: {len(page.encode('utf-8')) / 1024:.0f} kB, {n} results "
        f"({len(analysed)} analysed, {len(flagged)} flagged)"
    )

    print("static page:")
    blob = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    expect(blob is not None, "one JSON blob in the page")
    outside = page.replace(blob.group(1), "") if blob else page
    expect(outside.count("<script") == 3, f"exactly 3 script elements in the source ({outside.count('<script')})")
    expect("</" not in blob.group(1) if blob else False, "no '</' inside the JSON blob")
    expect(not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page, "no network references")
    expect(
        json.loads(blob.group(1))["results"][0]["path"] == results[0]["path"] if blob else False,
        "the blob parses and holds the results",
    )

    browser = Browser(exe, work)
    print("rendered page (chromium --dump-dom):")
    dom = browser.dom(url)
    expect(dom.check.get("ready") == "1", "the page script finished (report-check data-ready=1)")
    expect(set(dom.rows) == set(range(n)), f"every file has a row: {len(dom.rows)} rows of {n}")
    wrong = [i for i in range(n) if dom.rows.get(i, "").strip() != names[i]]
    expect(not wrong, "every row shows its file name as text" + (f" (wrong: {wrong})" if wrong else ""))
    expect(dom.check.get("rows") == str(n), f"the counter shows all rows ({dom.check.get('rows')})")
    n_img = dom.counts["img"]
    expect(n_img == len(analysed), f"one figure per analysed file: {n_img} images for {len(analysed)} files")
    expect(
        dom.check.get("images-total") == str(n_img)
        and dom.check.get("images-decoded") == str(n_img)
        and dom.check.get("images-failed") == "0",
        f"images decoded: {dom.check.get('images-decoded')} of {dom.check.get('images-total')}, "
        f"failed {dom.check.get('images-failed')}",
    )
    n_audio = dom.counts["audio"]
    expect(n_audio == min(len(flagged), MAX_EXCERPTS), f"one excerpt per flagged file: {n_audio}")
    expect(
        dom.check.get("audio-ok") == str(n_audio) and dom.check.get("audio-failed") == "0",
        f"audio excerpts loaded: {dom.check.get('audio-ok')} of {n_audio}",
    )
    expect(dom.counts["script"] == 3, f"no script elements added by file names ({dom.counts['script']} in the DOM)")
    expect(not dom.errors.strip(), "no script errors on the page" + (f": {dom.errors.strip()}" if dom.errors else ""))
    hostile = [i for i in range(n) if names[i] == HOSTILE]
    expect(
        len(hostile) == 1 and dom.rows.get(hostile[0], "").strip() == HOSTILE,
        "the hostile file name is shown as plain text",
    )

    print("filters and sorting (query parameters):")
    errors = [i for i in range(n) if "error" in results[i]]
    d = browser.dom(url + "?verdict=error")
    expect(sorted(d.rows) == errors, f"verdict=error shows the {len(errors)} error rows ({sorted(d.rows)})")
    d = browser.dom(url + "?q=" + "%3Cscript")
    expect(sorted(d.rows) == hostile, f"search '<script' finds the hostile name only ({sorted(d.rows)})")
    d = browser.dom(url + "?verdict=damaged")
    expect(sorted(d.rows) == flagged, f"verdict=damaged shows the {len(flagged)} flagged files")
    d = browser.dom(url + "?sort=m.true_peak_dbtp&desc=1")
    peaks = [
        results[int(i)]["measurements"]["true_peak_dbtp"]
        for i in (d.check.get("order") or "").split(",")
        if i and "measurements" in results[int(i)]
    ]
    expect(
        len(peaks) == len(analysed) and peaks == sorted(peaks, reverse=True),
        f"sorting by true peak, descending: {peaks}",
    )
    d = browser.dom(url + "?m=cutoff_hz&mmax=8000")
    low = [i for i in analysed if (results[i]["measurements"].get("cutoff_hz") or 1e9) <= 8000]
    expect(sorted(d.rows) == low, f"measurement filter cut-off <= 8000 Hz: rows {sorted(d.rows)}, expected {low}")

    print("screenshots:")
    shot = work / "report.png"
    browser.screenshot(url, shot)
    ok, what = _screenshot_ok(shot)
    expect(ok, f"table screenshot {shot}: {what}")
    target = max(flagged, key=lambda i: results[i]["severity"]) if flagged else (analysed or [0])[0]
    d = browser.dom(url + f"#file-{target + 1}")
    expect(d.check.get("open") == str(target), f"#file-{target + 1} opens that file's details")
    shot2 = work / "report_detail.png"
    browser.screenshot(url + f"#file-{target + 1}", shot2)
    ok, what = _screenshot_ok(shot2)
    expect(ok, f"detail screenshot {shot2}: {what}")

    expect(
        not browser.console,
        f"no console messages in {browser.runs} chromium runs"
        + ("".join("\n        " + line[-300:] for line in browser.console[:5]) if browser.console else ""),
    )
    print(
        f"summary: {n} rows, {dom.check.get('images-decoded')}/{n_img} images decoded, "
        f"{dom.check.get('audio-ok')}/{n_audio} excerpts (<= {EXCERPT_SECONDS:g} s) loaded, "
        f"{len(browser.console)} console messages, page {len(page.encode('utf-8')) / 1024:.0f} kB"
    )
    if failures:
        print(f"FAILED: {len(failures)} check(s)")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
