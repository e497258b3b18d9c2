"""Latency of ``deepfit serve`` under concurrent requests (the numbers in docs/benchmarks.md).

Starts ``python -m deepfit serve RUN --port 0`` as its own process on 127.0.0.1 (a tiny
breast_cancer MLP trained here unless --run is given), then fires --requests concurrent
POST /predict requests of one row each, --repeats times; prints p50 / p99 latency and
throughput per repeat, and their median and spread (min-max). Each repeat also sends the
same requests one after another from one client (one keep-alive connection, the next request
once the last reply is in): the single-request latency, without a queue. Every reply must
be 200; the load average is printed before and after.

    nice -n 5 .venv/bin/python benchmarks/serve_load.py [--run RUN] [--requests 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np


def tiny_run(out: Path) -> Path:
    import deepfit

    run = deepfit.train(data="breast_cancer", out=out, epochs=3, progress=False, bootstrap=0,
                        eval={"plots": False, "report": False})
    return run.path


def start(run: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "deepfit", "serve", str(run), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()  # "serving RUN (...) on http://127.0.0.1:PORT: ..."
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    url = line.split(" on ", 1)[1].split(": POST", 1)[0]
    # uvicorn writes an access line per request to stdout: read them all, or the pipe fills
    # (about 1,000 requests) and the server blocks on its next write
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not answer /health within 30 s")


async def fire(url: str, bodies: list[dict]) -> tuple[np.ndarray, float]:
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        async def one(body: dict) -> float:
            t = time.perf_counter()
            reply = await client.post("/predict", json=body)
            if reply.status_code != 200:
                raise SystemExit(f"reply {reply.status_code}: {reply.text}")
            return time.perf_counter() - t
        start_time = time.perf_counter()
        latencies = await asyncio.gather(*(one(b) for b in bodies))
        return np.array(latencies) * 1000, time.perf_counter() - start_time


def sequential(url: str, bodies: list[dict]) -> np.ndarray:
    """Latencies (ms) of ``bodies`` sent one at a time by one client."""
    latencies = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for body in bodies:
            t = time.perf_counter()
            reply = client.post("/predict", json=body)
            latencies.append(time.perf_counter() - t)
            if reply.status_code != 200:
                raise SystemExit(f"reply {reply.status_code}: {reply.text}")
    return np.array(latencies) * 1000


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished table run (default: train a tiny one)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else tiny_run(Path(tmp))
        import deepfit

        loaded = deepfit.load(run)
        columns = loaded.schema.preprocessor.columns_
        rng = np.random.default_rng(0)
        bodies = [{"rows": [{c: float(rng.normal()) for c in columns}]}
                  for _ in range(args.requests)]
        proc, url = start(run)
        before = load_average()
        try:
            asyncio.run(fire(url, bodies[:20]))  # warm-up
            sequential(url, bodies[:20])
            rows = []
            for i in range(args.repeats):
                latency, wall = asyncio.run(fire(url, bodies))
                alone = sequential(url, bodies)
                rows.append((np.percentile(latency, 50), np.percentile(latency, 99),
                             args.requests / wall, np.percentile(alone, 50),
                             np.percentile(alone, 99)))
                print(f"repeat {i + 1}: concurrent p50 {rows[-1][0]:.0f} ms, p99 "
                      f"{rows[-1][1]:.0f} ms, {rows[-1][2]:.0f} requests/s; one at a time "
                      f"p50 {rows[-1][3]:.1f} ms, p99 {rows[-1][4]:.1f} ms")
        finally:
            proc.terminate()
            proc.wait(10)
    table = np.array(rows)
    print(f"\n{datetime.date.today()} {platform.machine()} {platform.processor() or ''} "
          f"{os.cpu_count()} CPU(s), Python {platform.python_version()}; {args.requests} "
          f"concurrent one-row requests x {args.repeats} repeats; load average (1, 5, 15 "
          f"min) {before} before, {load_average()} after")
    names = ("concurrent p50 latency (ms)", "concurrent p99 latency (ms)", "requests/s",
             "one at a time p50 latency (ms)", "one at a time p99 latency (ms)")
    for j, name in enumerate(names):
        digits = 1 if j >= 3 else 0
        print(f"{name}: median {np.median(table[:, j]):.{digits}f} (min "
              f"{table[:, j].min():.{digits}f}, max {table[:, j].max():.{digits}f})")


if __name__ == "__main__":
    main()
