"""The trainer at this commit against the trainer at another commit, side by side.

Both versions train the same model on the same data in fresh processes, interleaved
(base, current, base, current, ...) so that the machine's load falls on both alike; each
process times ``Trainer.fit`` alone. Two arms: a table (an MLP on 20,000 synthetic rows)
and images (the small CNN on 2,000 synthetic 28x28 uint8 images through ``ImageInputs``).
The base version's source is taken with ``git archive`` into a temporary folder.

Run: ``.venv/bin/python benchmarks/trainer_before_after.py --base HEAD~1``.
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
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs inside each process, against whichever deepfit is on PYTHONPATH. Older trainers
# resolve the config themselves and know no select_best: only what they accept is passed.
CHILD = r"""
import inspect, json, sys, time
import torch
torch.set_num_threads(1)
from deepfit.config import ModelConfig, TrainConfig
from deepfit.models import MLP, build_model
from deepfit.task import TaskHead
from deepfit.train.trainer import Trainer

arm, epochs, device = sys.argv[1], int(sys.argv[2]), sys.argv[3]
g = torch.Generator().manual_seed(0)
kwargs = {}
if "select_best" in inspect.signature(Trainer.__init__).parameters:
    kwargs["select_best"] = False  # the old trainer had no built-in best model
if arm == "table":
    X = torch.randn(20000, 20, generator=g)
    y = (X[:, :3].sum(1) > 0).float()
    kind, model, inputs = "table", None, None
    torch.manual_seed(0)
    model = MLP(20, 1, hidden=(64, 32))
    batch = 32
else:
    from deepfit.data.images.inputs import ImageInputs, ImageSpec
    X = torch.randint(0, 256, (2000, 1, 28, 28), generator=g, dtype=torch.uint8)
    y = (X.float().mean((1, 2, 3)) > 127.5).float()
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="cnn", channels=(8, 16)), (1, 28, 28), 1)
    spec = ImageSpec(size=(28, 28), channels=1, mean=[0.5], std=[0.25], augment=[],
                     channel_mode="gray", resized=False)
    inputs = ImageInputs(spec, torch.device(device), seed=1, channels_last=False)
    kind, batch = "image", 128
cfg = TrainConfig(epochs=epochs, batch_size=batch, progress=False, early_stopping=False,
                  schedule="constant", optimizer="adam", seed=0,
                  channels_last=False).resolved(kind, device)
trainer = Trainer(model, TaskHead("binary"), cfg, task="binary", n_outputs=1, inputs=inputs,
                  device=device, **kwargs)
start = time.perf_counter()
history = trainer.fit(X[:-400], y[:-400], X[-400:], y[-400:])
if device == "cuda":
    torch.cuda.synchronize()
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "val_loss": history.rows[-1]["val_loss"]}))
"""


def base_source(rev: str, folder: Path) -> Path:
    archive = folder / "base.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive),
                    rev, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def run(src: Path, arm: str, epochs: int, device: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, arm, str(epochs), device], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"the {arm} arm failed with deepfit from {src}:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default="HEAD~1", help="the commit to compare with")
    p.add_argument("--base-src", help="or: a folder holding that commit's src/deepfit (where "
                   "there is no git history, e.g. a copy of the tree on another machine)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--arms", default="table,image")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.base_src:
            rev, base = Path(args.base_src).name, Path(args.base_src)
        else:
            rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
                                 capture_output=True, text=True, check=True).stdout.strip()
            base = base_source(args.base, Path(tmp))
        sides = {f"base {rev}": base, "current": ROOT / "src"}
        print(f"{datetime.date.today()}  {platform.processor() or platform.machine()}  "
              f"{os.cpu_count()} cores  torch threads 1  {args.device}  "
              f"repeats {args.repeats}")
        for arm in args.arms.split(","):
            times: dict[str, list[float]] = {name: [] for name in sides}
            losses = {}
            for _ in range(args.repeats):
                for name, src in sides.items():  # interleaved: load hits both alike
                    result = run(src, arm, args.epochs, args.device)
                    times[name].append(result["seconds"])
                    losses[name] = result["val_loss"]
            med = {name: statistics.median(t) for name, t in times.items()}
            for name, t in times.items():
                print(f"{arm:6s} {name:12s} median {med[name]:.3f} s  "
                      f"[{min(t):.3f}, {max(t):.3f}]  val_loss {losses[name]:.6f}")
            print(f"{arm:6s} current / base = {med['current'] / med[f'base {rev}']:.3f}")


if __name__ == "__main__":
    main()
