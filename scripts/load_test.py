#!/usr/bin/env python
"""Load test of the HTTP service on this machine (loopback only; bounded in count and time).

Starts the real server (`python -m adv.cli serve`) on 127.0.0.1 with a free port and its own
upload folder, waits for /health, then runs three phases with a generated 10-s stereo 44.1 kHz WAV:
a burst of concurrent uploads, a run of sequential ones, and one decompression bomb (a FLAC of two
hours of silence). It prints per phase the request/failure counts, status codes, p50/p95 latency,
throughput and the server's RSS, then the server's peak RSS, whether its memory stayed flat, and
the temporary files left in its upload folder. The server is always stopped at the end.

    python scripts/load_test.py --concurrent 50 --sequential 450 --time-limit 600
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

HOST = "127.0.0.1"  # loopback only


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def make_wav(seconds: float = 10.0, sr: int = 44100) -> bytes:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    chord = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 2.0 * t) ** 2
    left = chord * env + 0.01 * rng.standard_normal(t.size)
    right = np.roll(chord, 40) * env + 0.01 * rng.standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, np.stack([left, right], axis=1).astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def proc_memory(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of a process in kB, from /proc/PID/status."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, val = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(val.split()[0])
    except OSError:
        pass
    return out


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before becoming healthy")
        try:
            r = httpx.get(f"{base}/health", timeout=2.0)
            if r.status_code == 200 and r.json().get("model_loaded"):
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server not healthy after {timeout:.0f} s")


async def fire(
    base: str, payload: bytes, n: int, concurrency: int, time_limit: float, api_key: str | None
) -> tuple[list[tuple[int | str, float]], float]:
    """n uploads, at most `concurrency` in flight; requests not done by the time limit count as failures."""
    sem = asyncio.Semaphore(concurrency)
    headers = {"X-API-Key": api_key} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(time_limit, connect=30.0)
    results: list[tuple[int | str, float]] = []

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout, headers=headers) as client:

        async def one(i: int) -> None:
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await client.post(
                        "/analyze",
                        params={"segments": "false"},
                        files={"file": (f"load-{i}.wav", payload, "audio/wav")},
                    )
                    results.append((r.status_code, time.perf_counter() - t0))
                except httpx.HTTPError as exc:
                    results.append((type(exc).__name__, time.perf_counter() - t0))

        t_start = time.perf_counter()
        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        done, pending = await asyncio.wait(tasks, timeout=time_limit)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        wall = time.perf_counter() - t_start
    results.extend([("time-limit", wall)] * (n - len(results)))
    return results, wall


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def make_bomb(seconds: int = 7200, sr: int = 44100) -> bytes:
    """A stereo FLAC of digital silence: about 1 MB that decodes to gigabytes."""
    buf = io.BytesIO()
    block = np.zeros((sr * 60, 2), np.float32)
    with sf.SoundFile(buf, "w", sr, 2, format="FLAC", subtype="PCM_16") as f:
        for _ in range(seconds // 60):
            f.write(block)
    return buf.getvalue()


def report_phase(
    name: str, results: list[tuple[int | str, float]], wall: float, payload_bytes: int, mem: dict[str, int]
) -> int:
    codes = Counter(str(c) for c, _ in results)
    ok = [t for c, t in results if c == 200]
    lat = [t for c, t in results if isinstance(c, int)]
    failures = len(results) - len(ok)
    print(f"[{name}] requests {len(results)}, failures {failures}, status {dict(sorted(codes.items()))}")
    print(
        f"[{name}] latency s: p50 {pct(lat, 50):.3f}  p95 {pct(lat, 95):.3f}  max {max(lat, default=float('nan')):.3f}"
        f"; wall {wall:.1f} s; {len(ok) / wall:.2f} ok requests/s ({len(ok) * payload_bytes / 1e6 / wall:.1f} MB/s)"
    )
    print(f"[{name}] server RSS {mem.get('VmRSS', 0) / 1024:.0f} MB, peak {mem.get('VmHWM', 0) / 1024:.0f} MB")
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrent", type=int, default=50, help="uploads in the concurrent burst (all at once)")
    ap.add_argument("--sequential", type=int, default=450, help="uploads one after the other")
    ap.add_argument("--no-bomb", action="store_true", help="skip the decompression-bomb upload")
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds for each phase")
    ap.add_argument("--startup-timeout", type=float, default=120.0)
    ap.add_argument("--max-concurrent", type=int, default=None, help="server's analyses at once (default 2)")
    args = ap.parse_args(argv)

    payload = make_wav()
    port = free_port()
    base = f"http://{HOST}:{port}"
    api_key = "load-test-key"
    spool = tempfile.mkdtemp(prefix="adv-load-uploads-")
    env = {**os.environ, "ADV_API_KEY": api_key, "ADV_TMP_DIR": spool}
    cmd = [sys.executable, "-m", "adv.cli", "serve", "--host", HOST, "--port", str(port)]
    if args.max_concurrent:
        cmd += ["--max-concurrent", str(args.max_concurrent)]
    log = tempfile.NamedTemporaryFile(prefix="adv-load-server-", suffix=".log", delete=False)
    print(f"server: {' '.join(cmd[1:])}  (log {log.name}, uploads in {spool})")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    code = 1
    try:
        startup = wait_healthy(base, proc, args.startup_timeout)
        mem0 = proc_memory(proc.pid)
        print(f"server pid {proc.pid} healthy after {startup:.1f} s; RSS {mem0.get('VmRSS', 0) / 1024:.0f} MB")
        print(f"payload: 10-s stereo 44.1 kHz WAV, {len(payload) / 1e6:.2f} MB")
        failures = 0
        rss = []
        for name, n, conc in (
            ("concurrent", args.concurrent, max(1, args.concurrent)),
            ("sequential", args.sequential, 1),
        ):
            if n <= 0:
                continue
            results, wall = asyncio.run(fire(base, payload, n, conc, args.time_limit, api_key))
            mem = proc_memory(proc.pid)
            rss.append(mem.get("VmRSS", 0))
            failures += report_phase(name, results, wall, len(payload), mem)
        bomb_ok = True
        if not args.no_bomb:
            bomb = make_bomb()
            before = proc_memory(proc.pid).get("VmHWM", 0)
            t0 = time.perf_counter()
            r = httpx.post(
                f"{base}/analyze",
                headers={"X-API-Key": api_key},
                timeout=args.time_limit,
                files={"file": ("bomb.flac", bomb, "audio/flac")},
            )
            took = time.perf_counter() - t0
            after = proc_memory(proc.pid).get("VmHWM", 0)
            bomb_ok = r.status_code == 413 and took < 10 and after < 1024 * 1024
            print(
                f"[bomb] {len(bomb) / 1e6:.2f} MB FLAC of 2 h silence: {r.status_code} {r.json().get('error')} "
                f"in {took:.2f} s; server peak RSS {before / 1024:.0f} -> {after / 1024:.0f} MB"
            )
        mem1 = proc_memory(proc.pid)
        alive = proc.poll() is None and httpx.get(f"{base}/health", timeout=5).status_code == 200
        growth = (rss[-1] - rss[0]) / 1024 if len(rss) > 1 else 0.0
        left = os.listdir(spool)
        print(
            f"server peak RSS (VmHWM) {mem1.get('VmHWM', 0) / 1024:.0f} MB; RSS after the burst "
            f"{rss[0] / 1024 if rss else 0:.0f} MB, after all {mem1.get('VmRSS', 0) / 1024:.0f} MB "
            f"(growth over the sequential run {growth:+.0f} MB)"
        )
        print(f"temporary files left in the upload folder: {len(left)}")
        print(f"server healthy after the run: {alive}")
        code = 0 if failures == 0 and alive and bomb_ok and not left else 1
    except Exception as exc:  # noqa: BLE001 - report, then stop the server
        print(f"load test failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        log.close()
        if code != 0:
            tail = Path(log.name).read_text(errors="replace").splitlines()[-20:]
            print("server log tail:\n  " + "\n  ".join(tail), file=sys.stderr)
        Path(log.name).unlink(missing_ok=True)
        shutil.rmtree(spool, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
