"""Engine overhead: the same MLP trained three ways on CPU, timed side by side.

  (a) lectures   - a Dataset returning one sample per __getitem__ + DataLoader(shuffle=True)
  (b) tensor     - a hand-written loop: randperm per epoch, batches sliced from tensors
  (c) deepfit    - deepfit.train.trainer.Trainer.fit

Every arm sees the same data, initial weights, batch size, epochs, optimiser (Adam, lr 1e-3,
no weight decay) and does one validation pass per epoch, so what differs between arms is
engine overhead (feeding batches, per-step bookkeeping), not the maths. Run: `make bench` or
`.venv/bin/python benchmarks/engine_overhead.py --help`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from deepfit.config import TrainConfig
from deepfit.models import MLP
from deepfit.task import TaskHead
from deepfit.train.trainer import Trainer

HIDDEN = (64, 32)
LR = 1e-3


# -- data --------------------------------------------------------------------------------
def make_data(name: str, rows: int, seed: int = 0):
    """Train/val tensors (80/20), z-scored with train statistics, float32."""
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer
        X, y = load_breast_cancer(return_X_y=True)
    else:
        from sklearn.datasets import make_classification
        X, y = make_classification(n_samples=rows, n_features=32, n_informative=16,
                                   n_redundant=8, random_state=seed)
    idx = np.random.default_rng(seed).permutation(len(X))
    cut = int(0.8 * len(X))
    tr, va = idx[:cut], idx[cut:]
    mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-8
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return t((X[tr] - mu) / sd), t(y[tr]), t((X[va] - mu) / sd), t(y[va])


def fresh_model(n_features: int, seed: int) -> nn.Module:
    # Same seed -> identical initial weights in every arm.
    torch.manual_seed(seed)
    return MLP(n_features, 1, hidden=HIDDEN, dropout=0.0)


# -- (a) the lectures' way ---------------------------------------------------------------
class TableDataset(Dataset):
    """One row per __getitem__, as taught; the tensors are prebuilt, which favours (a)."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int):
        return self.X[i], self.y[i]


def run_lectures(X, y, Xv, yv, epochs, bs, seed) -> float:
    model = fresh_model(X.shape[1], seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.BCEWithLogitsLoss()
    train_dl = DataLoader(TableDataset(X, y), batch_size=bs, shuffle=True,
                          generator=torch.Generator().manual_seed(seed))
    val_dl = DataLoader(TableDataset(Xv, yv), batch_size=bs, shuffle=False)
    for _ in range(epochs):
        model.train()
        for xb, yb in train_dl:
            opt.zero_grad()
            loss = loss_fn(model(xb).squeeze(1), yb)
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for xb, yb in val_dl:
                correct += int(((model(xb).squeeze(1) >= 0).float() == yb).sum())
        acc = correct / len(Xv)
    return acc


# -- (b) hand-written tensor loop --------------------------------------------------------
def run_tensor(X, y, Xv, yv, epochs, bs, seed) -> float:
    model = fresh_model(X.shape[1], seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    n = len(X)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        Xs, ys = X[order], y[order]  # one gather, then batches are views
        for i in range(0, n, bs):
            xb, yb = Xs[i:i + bs], ys[i:i + bs]
            opt.zero_grad()
            loss = loss_fn(model(xb).squeeze(1), yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = float(((model(Xv).squeeze(1) >= 0).float() == yv).float().mean())
    return acc


# -- (c) deepfit ---------------------------------------------------------------------------
def run_deepfit(X, y, Xv, yv, epochs, bs, seed) -> float:
    model = fresh_model(X.shape[1], seed)
    cfg = TrainConfig(epochs=epochs, batch_size=bs, progress=False, early_stopping=False,
                      schedule="constant", optimizer="adam", lr=LR, weight_decay=0.0,
                      seed=seed).resolved("table", "cpu")
    # Like the other arms: no best-epoch selection, the last epoch's weights.
    trainer = Trainer(model, TaskHead("binary"), cfg, task="binary", n_outputs=1,
                      select_best=False)
    history = trainer.fit(X, y, Xv, yv)
    return float(history.rows[-1]["val_accuracy"])


ARMS = {"(a) lectures": run_lectures, "(b) tensor": run_tensor, "(c) deepfit": run_deepfit}


# -- measurement ---------------------------------------------------------------------------
def machine_info() -> list[str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return [f"date      {datetime.date.today().isoformat()}",
            f"cpu       {cpu} ({os.cpu_count()} logical cores)",
            f"python    {platform.python_version()}  torch {torch.__version__}  "
            f"threads {torch.get_num_threads()}",
            f"platform  {platform.platform()}",
            # Other processes inflate wall time; the load average says how busy the box was.
            f"load avg  {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min) at start"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=("synthetic", "breast_cancer"), default="synthetic")
    p.add_argument("--rows", type=int, default=20_000, help="synthetic rows (80%% train)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5, help="timed runs per arm")
    # Best by default: noise on a shared machine only ever adds time, never removes it.
    p.add_argument("--stat", choices=("best", "median"), default="best")
    # CPU time of this process ignores time lost to other processes (one thread only).
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    # One thread by default: 32-row matmuls are too small to gain from intra-op threads,
    # and a single thread makes timings far more stable on a shared 2-core box.
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    X, y, Xv, yv = make_data(args.data, args.rows, args.seed)
    print("\n".join(machine_info()))
    print(f"data      {args.data}: train {tuple(X.shape)}, val {tuple(Xv.shape)}; MLP "
          f"{X.shape[1]}-{'-'.join(map(str, HIDDEN))}-1, Adam lr {LR:g}, batch "
          f"{args.batch_size}, {args.epochs} epochs; {args.stat} of {args.repeats} runs, "
          f"{args.clock} clock\n")

    # Warm-up: first calls pay for lazy init (kernels, allocator, imports) - not engine cost.
    for fn in ARMS.values():
        fn(X, y, Xv, yv, 1, args.batch_size, args.seed)

    times = {name: [] for name in ARMS}
    accs = {}
    # Interleave arms within each repeat so slow drift (thermal, neighbours) hits all alike.
    for _ in range(args.repeats):
        for name, fn in ARMS.items():
            start = clock()
            accs[name] = fn(X, y, Xv, yv, args.epochs, args.batch_size, args.seed)
            times[name].append(clock() - start)

    pick = min if args.stat == "best" else statistics.median
    secs = {name: pick(t) for name, t in times.items()}
    sps = {name: args.epochs * len(X) / s for name, s in secs.items()}
    a, b, c = (sps[k] for k in ARMS)

    head = f"{'arm':<14}{'samples/s':>12}{'epoch (s)':>11}{'val acc':>9}{'vs (a)':>9}{'vs (b)':>9}"
    print(head)
    print("-" * len(head))
    for name in ARMS:
        print(f"{name:<14}{sps[name]:>12,.0f}{secs[name] / args.epochs:>11.3f}"
              f"{accs[name]:>9.4f}{sps[name] / a:>8.2f}x{sps[name] / b:>8.2f}x")
    print()
    checks = [(f"deepfit >= 3x (a)       : {c / a:.2f}x", c >= 3 * a),
              (f"deepfit >= 0.9x (b)     : {c / b:.2f}x", c >= 0.9 * b)]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")


if __name__ == "__main__":
    main()
