"""Fashion-MNIST, the same CNN, batch size and epochs, trained two ways and timed side by side.

  (a) lectures - torchvision ``datasets.FashionMNIST`` + ``ToTensor()`` + ``Normalize`` +
                 ``DataLoader(shuffle=True)``, a plain fp32 eager loop (as in the
                 lectures "Deep Learning I" and "Deep Learning in Python, Lecture 1")
  (b) deepfit  - ``deepfit.train(data="fashion-mnist", model="cnn", ...)``: IDX decoded once
                 to a uint8 tensor on the device, batches normalised (and augmented) there,
                 bf16 autocast and channels-last on CUDA

Both arms: deepfit's ``cnn`` (the same initial weights), AdamW with the same one-cycle
schedule, the same batch size and epochs, one validation pass over 9,000 images per
epoch, and the official 10,000 test images at the end. Neither arm augments by default
(``--augment auto`` gives deepfit its own default, pad-and-crop); arm (b) uses deepfit's
defaults otherwise.
Also printed: (b)'s full one-command wall time (``deepfit train`` in a fresh process:
import, data load, training, evaluation, report) beside its training time.

Run: ``.venv/bin/python benchmarks/images.py`` (``--help`` for sizes; ``--root`` for the IDX
files, default the Debian location). Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")


def lectures_way(root: Path, args: argparse.Namespace, device: torch.device) -> dict:
    """(a): torchvision's dataset and transforms, a DataLoader, and a plain loop."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from deepfit.config import ModelConfig, TrainConfig
    from deepfit.models import build_model
    from deepfit.train.optim import Schedule, build_optimizer

    with tempfile.TemporaryDirectory() as tmp:  # torchvision's layout: FashionMNIST/raw/*
        raw = Path(tmp) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for name in FILES:
            with gzip.open(root / f"{name}.gz") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])
        full = datasets.FashionMNIST(tmp, train=True, transform=tf, download=False)
        test = datasets.FashionMNIST(tmp, train=False, transform=tf, download=False)
        order = torch.randperm(len(full), generator=torch.Generator().manual_seed(0))
        n_val = round(0.15 * len(full))  # deepfit's default validation share of the training set
        train, val = Subset(full, order[n_val:].tolist()), Subset(full, order[:n_val].tolist())
        loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
        torch.manual_seed(0)
        model = build_model(ModelConfig(name=args.model), (1, 28, 28), 10).to(device)
        cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, schedule="onecycle",
                          lr=args.lr).resolved("table")
        opt = build_optimizer(cfg, model)
        schedule = Schedule(cfg, opt, len(loader))
        loss_fn = nn.CrossEntropyLoss()
        epoch_times = []
        for _ in range(args.lecture_epochs):
            started = time.perf_counter()
            model.train()
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                schedule.after_step()
            _accuracy(model, DataLoader(val, batch_size=1024), device)
            _sync(device)
            epoch_times.append(time.perf_counter() - started)
        accuracy = _accuracy(model, DataLoader(test, batch_size=1024), device)
    per_epoch = min(epoch_times)
    return {"epoch_s": per_epoch, "images_per_s": len(train) / per_epoch,
            "test_accuracy": accuracy, "epochs_run": args.lecture_epochs}


@torch.no_grad()
def _accuracy(model: nn.Module, loader, device: torch.device) -> float:
    model.eval()
    right = total = 0
    for x, y in loader:
        right += int((model(x.to(device)).argmax(1).cpu() == y).sum())
        total += len(y)
    return right / total


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def deepfit_way(root: Path, args: argparse.Namespace, out: Path) -> dict:
    """(b): the one command, in a fresh process, timed from the outside."""
    cmd = [sys.executable, "-m", "deepfit", "train", "--data", "fashion-mnist", "--root",
           str(root), "--model", args.model, "--epochs", str(args.epochs), "--batch-size",
           str(args.batch_size), "--lr", str(args.lr), "--device", args.device, "--out",
           str(out), "--name", "bench", "--quiet", "train.early_stopping=false",
           "eval.bootstrap=0", f"train.compile={str(args.compile).lower()}",
           f"train.cuda_graphs={str(args.cuda_graphs).lower()}",
           f"data.augment={args.augment}"]
    env = {**os.environ, "DEEPFIT_CACHE": str(out / "cache")}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"deepfit failed:\n{proc.stderr[-3000:]}")
    summary = json.loads((out / "bench" / "summary.json").read_text())
    rows = [r for r in _history(out / "bench" / "history.csv")]
    epoch_s = min(float(r["time"]) for r in rows[1:] or rows)  # epoch 1 holds compile/warm-up
    n_train = summary["data"]["split_sizes"]["train"]
    return {"epoch_s": epoch_s, "images_per_s": n_train / epoch_s,
            "test_accuracy": summary["metrics"]["test"]["accuracy"],
            "train_s": summary["training"]["seconds"], "wall_s": wall,
            "precision": summary["training"]["precision"], "epochs_run": len(rows),
            "cuda_graphs": bool((summary["training"].get("cuda_graphs") or {}).get("used")),
            "first_epoch_s": float(rows[0]["time"])}


def _history(path: Path) -> list[dict]:
    import csv
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3, help="deepfit's epochs (default 3)")
    parser.add_argument("--lecture-epochs", type=int, default=None,
                        help="epochs of (a) (default: --epochs); its best epoch time is used")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--compile", action="store_true", help="deepfit: train.compile=true")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="deepfit: train.cuda_graphs=true (CUDA only)")
    parser.add_argument("--augment", default="none",
                        help="deepfit's data.augment (default none, like the lectures' arm; "
                             "'auto' is deepfit's own default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-lectures", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    args.lecture_epochs = args.lecture_epochs or args.epochs
    from deepfit.train.device import resolve_device
    device = resolve_device(args.device)
    root = Path(args.root)
    if not all((root / f"{n}.gz").is_file() for n in FILES):
        raise SystemExit(f"Fashion-MNIST IDX files not found in {root} (apt-get install "
                         "dataset-fashion-mnist, or --root)")
    print(f"# images benchmark {datetime.date.today()} | {platform.processor() or platform.machine()}"
          f" | {torch.get_num_threads()} threads | device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f" | torch {torch.__version__} | batch {args.batch_size}, epochs {args.epochs}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["deepfit"] = deepfit_way(root, args, Path(tmp))
    if not args.skip_lectures:
        results["lectures"] = lectures_way(root, args, device)
    for arm, r in results.items():
        extra = (f" | training {r['train_s']:.1f} s, one command {r['wall_s']:.1f} s wall, "
                 f"{r['precision']}{', CUDA graphs' if r['cuda_graphs'] else ''}, "
                 f"first epoch {r['first_epoch_s']:.2f} s"
                 if arm == "deepfit" else "")
        print(f"{arm:9s} {r['images_per_s']:>10,.0f} images/s | epoch {r['epoch_s']:.2f} s | "
              f"test accuracy {r['test_accuracy']:.4f} after {r['epochs_run']} epoch(s){extra}")
    if "lectures" in results:
        ratio = results["deepfit"]["images_per_s"] / results["lectures"]["images_per_s"]
        print(f"deepfit / lectures: {ratio:.2f}x images/s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
