"""What the training diagnostics cost: training time with ``train.diagnostics`` on (the
default) and off, on the same runs.

Workloads (all on the CPU unless --device says otherwise):

  table  - breast_cancer, the default MLP [128, 64], batch 32, 12 steps an epoch (short epochs:
           the per-epoch work weighs most)
  digits - 8x8 digits as a table (64 features), MLP [128, 64], batch 32, 34 steps an epoch
  image  - a generated image folder (3 classes, 16x16 RGB), deepfit's cnn, batch 128

The two arms alternate (on, off, off, on, ...) so that drift of a shared machine falls on
both. Each run's training is timed from the trainer's first to its last callback (the fit
alone: no data loading, evaluation, plots or report), twice: wall-clock seconds, and the
CPU seconds of this process (``time.process_time``), which other programs on a busy shared
machine disturb far less. Torch runs one thread by default (``--threads``) so that CPU
time is not inflated by spinning threads. Printed: per workload and arm the median and range
of each, and the ratio of the medians. Run: ``.venv/bin/python benchmarks/inspect_cost.py
--help``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import deepfit

WORKLOADS = {
    "table": {"data": "breast_cancer", "train.epochs": 40},
    "digits": {"data": "digits", "train.epochs": 20},
    "image": {"data": None, "model": "cnn", "train.epochs": 6},  # data: the generated folder
}


def image_folder(root: Path, per_class: int = 500, size: int = 16) -> Path:
    """Three classes of noisy coloured squares, as PNG files in class folders."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(("red", "green", "blue")):
        folder = root / "images" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (size, size, 3))
            pixels[4:12, 4:12, k] += 120
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return root / "images"


class Clock(deepfit.Callback):
    """Wall and CPU seconds from on_train_begin to on_train_end."""

    def on_train_begin(self, trainer, **kwargs) -> None:
        self.start = (time.perf_counter(), time.process_time())

    def on_train_end(self, trainer, **kwargs) -> None:
        self.seconds = (time.perf_counter() - self.start[0], time.process_time() - self.start[1])


def one_run(settings: dict, diagnostics: bool, out: Path, device: str) -> tuple[float, float]:
    clock = Clock()
    run = deepfit.train(**settings, out=str(out), callbacks=[clock], **{
        "train.diagnostics": diagnostics, "train.early_stopping": False,
        "train.progress": False, "train.device": device, "eval.bootstrap": 0,
        "eval.plots": False, "eval.report": False})
    assert (run.path / "diagnostics.json").exists() == diagnostics
    return clock.seconds


def _line(name: str, arm: str, values: list[float]) -> str:
    return (f"{name:7s} {arm}: median {statistics.median(values):7.3f} s  range "
            f"{min(values):.3f}-{max(values):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per arm and workload")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, {torch.get_num_threads()} threads, device {args.device}, "
          f"{args.repeats} repeats per arm")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in args.workloads:
            settings = dict(WORKLOADS[name])
            if settings["data"] is None:
                settings["data"] = str(image_folder(root))
            one_run(settings, True, root / "warm", args.device)  # caches, imports, allocator
            times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
            for i in range(args.repeats):
                for arm in ((True, False) if i % 2 == 0 else (False, True)):
                    times[arm].append(one_run(settings, arm, root / "runs", args.device))
            for k, what in ((0, "wall"), (1, "cpu ")):
                on, off = ([t[k] for t in times[True]], [t[k] for t in times[False]])
                ratio = statistics.median(on) / statistics.median(off)
                print(f"{_line(name, what + ' on ', on)}\n{_line(name, what + ' off', off)}\n"
                      f"{name:7s} {what} on/off = {ratio:.3f} ({100 * (ratio - 1):+.1f}%)")

if __name__ == "__main__":
    main()
