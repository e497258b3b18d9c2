"""The real server (uvicorn on a free 127.0.0.1 port, in a thread) under 200 concurrent
requests: none lost, every answer the run's own prediction for its row. Loopback only, a few
seconds; the latency numbers of docs/benchmarks.md come from benchmarks/serve_load.py."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import table_rows

import deepfit
from deepfit.serve import build_server

CONCURRENT = 200
PATTERNS = 20  # distinct feature rows among the requests


@pytest.fixture(scope="module")
def live(table_run):
    server, sock = build_server(deepfit.load(table_run.path), "127.0.0.1", 0, max_rows=50,
                                log_level="warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start within 10 s"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    assert not thread.is_alive()


async def _fire(url: str, bodies: list[dict]) -> list[tuple[httpx.Response, float]]:
    limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        async def one(body: dict) -> tuple[httpx.Response, float]:
            start = time.perf_counter()
            reply = await client.post("/predict", json=body)
            return reply, time.perf_counter() - start
        return await asyncio.gather(*(one(b) for b in bodies))


def test_200_concurrent_requests_none_lost_each_its_own_prediction(live, table_run):
    patterns = table_rows(PATTERNS, seed=7).assign(colour="red")  # no unseen values
    patterns.loc[1, "dose"] = 2.0
    run = deepfit.load(table_run.path)
    # each row alone, as its request holds it: float32 sums differ in the last bits with the
    # batch's size, and the server never mixes requests into one batch
    alone = [run.predictions(patterns.iloc[[k]]).to_frame() for k in range(PATTERNS)]
    frame = patterns.iloc[np.arange(CONCURRENT) % PATTERNS].assign(
        patient=[f"r{i}" for i in range(CONCURRENT)])  # every request its own id
    expected = pd.concat([alone[i % PATTERNS] for i in range(CONCURRENT)])
    bodies = [{"rows": [row]} for row in frame.to_dict("records")]
    start = time.perf_counter()
    results = asyncio.run(_fire(live, bodies))
    wall = time.perf_counter() - start
    assert [r.status_code for r, _ in results] == [200] * CONCURRENT
    served = [r.json()["predictions"][0] for r, _ in results]
    assert [s["id"] for s in served] == frame["patient"].tolist()  # each reply its own row
    assert [s["predicted"] for s in served] == expected["predicted"].tolist()
    assert [s["probabilities"]["high"] for s in served] == expected["p_high"].tolist()
    latency = np.array([t for _, t in results]) * 1000
    print(f"\n{CONCURRENT} concurrent requests in {wall:.2f} s: latency p50 "
          f"{np.percentile(latency, 50):.0f} ms, p99 {np.percentile(latency, 99):.0f} ms")
    assert wall < 30


def test_the_real_server_refuses_too_many_rows_with_413(live):
    rows = [{"patient": f"p{i}", "x": 0.0, "dose": 1.0, "colour": "red"} for i in range(51)]
    reply = httpx.post(f"{live}/predict", json={"rows": rows}, timeout=10)
    assert reply.status_code == 413 and "at most 50 per request" in reply.json()["detail"]
    assert httpx.get(f"{live}/health", timeout=10).json()["status"] == "ok"
