"""Playground speed: frames per second of the decision map and every neuron's map while a
2-8-8-1 network trains on 1,000 points, beside the same network trained with no rendering.

  (a) train only    - ``Session.step(1)`` in a loop: training steps per second
  (b) train + frame - ``step(speed)`` then ``frame()`` (the 100 x 100 decision map, every
                      hidden neuron's 50 x 50 map, weights, metrics) and ``json.dumps``:
                      what the server does per frame; frames/s and steps/s
  (c) page          - the real server on 127.0.0.1 and the page in headless Chromium
                      (system /usr/bin/chromium, Playwright), playing: frames the page drew
                      per second (decoded, painted, curves, neuron tiles, wires), steps/s.
                      Skipped, saying so, without Playwright or Chromium.

Torch runs on one thread, as the server sets it. Each arm is repeated; medians and the
spread (min-max) are printed. Run: `.venv/bin/python benchmarks/playground.py --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time

import torch

from deepfit.playground.session import Session
from deepfit.playground.settings import Settings

SETTINGS = Settings(data="xor", points=1000, test_ratio=0.3, hidden=(8, 8), activation="tanh",
                    lr=0.03, batch_size=10, seed=0)
URL_STATE = "data=xor&points=1000&test=0.3&hidden=8,8&act=tanh&lr=0.03&batch=10&seed=0"


def train_only(seconds: float) -> float:
    session, steps, start = Session(SETTINGS), 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.step(1)
        steps += 1
    return steps / (time.perf_counter() - start)


def train_and_frame(seconds: float, speed: int) -> tuple[float, float]:
    session, frames, start = Session(SETTINGS), 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.step(speed)
        json.dumps(session.frame())
        frames += 1
    took = time.perf_counter() - start
    return frames / took, frames * speed / took


def page(seconds: float, speed: int) -> tuple[float, float] | str:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "skipped: Playwright is not installed"
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(chromium):
        return f"skipped: no Chromium at {chromium}"
    from deepfit.playground import build_server

    with tempfile.TemporaryDirectory() as out:
        server, sock = build_server("127.0.0.1", 0, out)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/#{URL_STATE}&speed={speed}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium,
                                            args=["--no-sandbox", "--disable-gpu"])
                tab = browser.new_page(viewport={"width": 1280, "height": 900})
                tab.goto(url)
                tab.wait_for_function("document.body.dataset.step === '0'")
                tab.click("#play")
                time.sleep(1.0)  # warm-up
                read = "[Number(document.body.dataset.frames), Number(document.body.dataset.step)]"
                f0, s0 = tab.evaluate(read)
                start = time.perf_counter()
                time.sleep(seconds)
                f1, s1 = tab.evaluate(read)
                took = time.perf_counter() - start
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
    return (f1 - f0) / took, (s1 - s0) / took


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):8.1f}  "
            f"(min {min(values):.1f}, max {max(values):.1f}, n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--speed", type=int, default=5, help="training steps per frame")
    parser.add_argument("--no-page", action="store_true", help="skip arm (c)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, torch {torch.__version__}; network 2-8-8-1 tanh, "
          f"1,000 xor points (700 train), batch 10, {args.speed} steps per frame")
    a = [train_only(args.seconds) for _ in range(args.repeats)]
    b = [train_and_frame(args.seconds, args.speed) for _ in range(args.repeats)]
    print(f"(a) train only     steps/s  {spread(a)}")
    print(f"(b) train + frame  frames/s {spread([f for f, _ in b])}")
    print(f"                   steps/s  {spread([s for _, s in b])}")
    if args.no_page:
        return
    c = [page(args.seconds, args.speed) for _ in range(args.repeats)]
    if isinstance(c[0], str):
        print(f"(c) page           {c[0]}")
        return
    print(f"(c) page           frames/s {spread([f for f, _ in c])}")
    print(f"                   steps/s  {spread([s for _, s in c])}")


if __name__ == "__main__":
    main()
