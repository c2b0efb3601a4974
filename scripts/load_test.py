#!/usr/bin/env python
"""Load test of the HTTP service on this machine.

Starts the real server (`python -m adv.cli serve`) on 127.0.0.1 with a free port, waits for
/health, fires a fixed number of concurrent uploads of a generated 10-s stereo 44.1 kHz WAV,
then prints request/failure counts, status codes, latencies, throughput and the server's peak
memory (VmHWM) before and after. The server is always stopped at the end.

    python scripts/load_test.py --requests 60 --concurrency 50 --time-limit 300
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
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


async def fire(base: str, payload: bytes, n: int, concurrency: int, time_limit: float,
               api_key: str | None) -> tuple[list[tuple[int | str, float]], float]:
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
                    r = await client.post("/analyze", params={"segments": "false"},
                                          files={"file": (f"load-{i}.wav", payload, "audio/wav")})
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds for all requests together")
    ap.add_argument("--startup-timeout", type=float, default=120.0)
    ap.add_argument("--max-concurrent", type=int, default=None, help="server's analyses at once (default 2)")
    args = ap.parse_args(argv)

    payload = make_wav()
    port = free_port()
    base = f"http://{HOST}:{port}"
    api_key = "load-test-key"
    env = {**os.environ, "ADV_API_KEY": api_key}
    cmd = [sys.executable, "-m", "adv.cli", "serve", "--host", HOST, "--port", str(port)]
    if args.max_concurrent:
        cmd += ["--max-concurrent", str(args.max_concurrent)]
    log = tempfile.NamedTemporaryFile(prefix="adv-load-server-", suffix=".log", delete=False)
    print(f"server: {' '.join(cmd[1:])}  (log {log.name})")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    code = 1
    try:
        startup = wait_healthy(base, proc, args.startup_timeout)
        mem0 = proc_memory(proc.pid)
        print(f"server pid {proc.pid} healthy after {startup:.1f} s; "
              f"peak RSS {mem0.get('VmHWM', 0) / 1024:.0f} MB (RSS {mem0.get('VmRSS', 0) / 1024:.0f} MB)")
        print(f"payload: 10-s stereo 44.1 kHz WAV, {len(payload) / 1e6:.2f} MB; "
              f"{args.requests} requests, concurrency {args.concurrency}, time limit {args.time_limit:.0f} s")

        results, wall = asyncio.run(fire(base, payload, args.requests, args.concurrency, args.time_limit, api_key))
        mem1 = proc_memory(proc.pid)
        alive = proc.poll() is None and httpx.get(f"{base}/health", timeout=5).status_code == 200

        codes = Counter(str(c) for c, _ in results)
        ok = [t for c, t in results if c == 200]
        lat = [t for c, t in results if isinstance(c, int)]
        failures = len(results) - len(ok)
        print(f"requests:   {len(results)}")
        print(f"failures:   {failures}")
        print(f"status:     {dict(sorted(codes.items()))}")
        print(f"latency s:  p50 {pct(lat, 50):.2f}  p95 {pct(lat, 95):.2f}  max {max(lat, default=float('nan')):.2f}")
        print(f"wall time:  {wall:.1f} s")
        print(f"throughput: {len(ok) / wall:.2f} successful requests/s "
              f"({len(ok) * len(payload) / 1e6 / wall:.1f} MB/s uploaded)")
        print(f"server peak RSS (VmHWM): before {mem0.get('VmHWM', 0) / 1024:.0f} MB, "
              f"after {mem1.get('VmHWM', 0) / 1024:.0f} MB; RSS now {mem1.get('VmRSS', 0) / 1024:.0f} MB")
        print(f"server healthy after the run: {alive}")
        code = 0 if failures == 0 and alive else 1
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
    return code


if __name__ == "__main__":
    sys.exit(main())
