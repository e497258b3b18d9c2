"""Data-parallel scaling on CPU processes: the same training on 1 and 2 processes.

Each configuration runs under torchrun (gloo), with one torch thread per process, on a
synthetic table and an MLP large enough for its arithmetic to matter (~0.6 M parameters).
The global batch and the number of steps are the same for every process count. Reported
per process count: steps per second, rows per second, and the all-reduce's share of a step
(the time of one all-reduce of a gradient-sized buffer, measured in the same group, over
the time of one step). Process counts run interleaved, repeated; medians and ranges.

Run: ``.venv/bin/python benchmarks/scaling.py`` (on a 2-core machine, 1 and 2 processes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

FEATURES, HIDDEN, ROWS = 64, (512, 512, 256), 24_000


def worker(epochs: int, batch: int) -> None:
    import torch
    import torch.distributed as dist

    from deepfit.config import TrainConfig
    from deepfit.models import MLP
    from deepfit.task import TaskHead
    from deepfit.train.distributed import make_strategy
    from deepfit.train.trainer import Trainer

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(ROWS, FEATURES, generator=g)
    y = (X[:, :4].sum(1) > 0).float()
    torch.manual_seed(0)
    model = MLP(FEATURES, 1, hidden=HIDDEN, dropout=0.0)
    strategy = make_strategy(torch.device("cpu"))
    cfg = TrainConfig(epochs=epochs, batch_size=batch, progress=False, early_stopping=False,
                      schedule="constant", optimizer="adam", seed=0).resolved("table", "cpu")
    trainer = Trainer(model, TaskHead("binary"), cfg, task="binary", n_outputs=1,
                      strategy=strategy, select_best=False)
    start = time.perf_counter()
    trainer.fit(X[:-2000], y[:-2000], X[-2000:], y[-2000:])
    seconds = time.perf_counter() - start
    steps = trainer.steps_per_epoch * epochs
    buffer = torch.zeros(sum(p.numel() for p in model.parameters()))
    reduce_ms = 0.0
    if dist.is_initialized() and dist.get_world_size() > 1:
        for _ in range(5):
            dist.all_reduce(buffer)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(50):
            dist.all_reduce(buffer)
        reduce_ms = (time.perf_counter() - t0) / 50 * 1000
    if strategy.is_main:
        print(json.dumps({"seconds": seconds, "steps": steps, "rows": (ROWS - 2000) * epochs,
                          "reduce_ms": reduce_ms, "params": buffer.numel()}))
    strategy.close()


def launch(processes: int, epochs: int, batch: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={processes}", __file__, "--worker", "--epochs", str(epochs),
               "--batch-size", str(batch)]
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{processes} process(es) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--processes", default="1,2")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.worker:
        worker(args.epochs, args.batch_size)
        return
    counts = [int(n) for n in args.processes.split(",")]
    results: dict[int, list[dict]] = {n: [] for n in counts}
    for _ in range(args.repeats):
        for n in counts:  # interleaved: the machine's load falls on every count alike
            results[n].append(launch(n, args.epochs, args.batch_size))
    print(f"{datetime.date.today()}  {platform.machine()}  {os.cpu_count()} cores  "
          f"gloo  1 thread per process  batch {args.batch_size}  epochs {args.epochs}  "
          f"repeats {args.repeats}")
    base = None
    for n in counts:
        rates = [r["steps"] / r["seconds"] for r in results[n]]
        rate = statistics.median(rates)
        base = base or rate
        step_ms = 1000 / rate
        reduce_ms = statistics.median(r["reduce_ms"] for r in results[n])
        rows = statistics.median(r["rows"] / r["seconds"] for r in results[n])
        print(f"{n} process(es): {rate:.1f} steps/s [{min(rates):.1f}, {max(rates):.1f}]  "
              f"{rows:,.0f} rows/s  speed-up {rate / base:.2f}x  all-reduce of "
              f"{results[n][0]['params']:,} gradients {reduce_ms:.2f} ms = "
              f"{reduce_ms / step_ms:.0%} of a {step_ms:.1f} ms step")


if __name__ == "__main__":
    main()
