"""Object detection on synthetic smears, on a CPU: does one ``deepfit train`` reach
mAP@0.5 >= 0.90 within 10 minutes (issue #18)?

Runs ``deepfit train --data synthetic-smear`` (400 smears, 5 epochs, everything else
deepfit's automatic values unless a flag sets it) in a fresh process, and measures that process from start to finish (import, writing the
smears, training, evaluation, plots, report): wall seconds and CPU seconds (user + sys of
the child, as ``time`` reports them). Prints the test mAP@0.5 with its bootstrap interval,
mAP@[.5:.95] and AP50 per class, the machine, torch's threads and the load average before
and after (on a shared machine the wall time says little: the CPU time is the cost), and
writes everything as JSON (``--json``).

``--threads 1`` runs torch on one thread (``OMP_NUM_THREADS=1``): then the CPU seconds
are what one idle core would need, an upper bound for the wall time on two idle cores.

Run: ``nice -n 5 .venv/bin/python benchmarks/detection_smear.py`` (``--help`` for the
settings). Results go in docs/benchmarks.md ("Detection on synthetic smears").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model.name (default deepfit's: the "
                   "ResNet-50 Faster R-CNN)")
    p.add_argument("--image-size", type=int, default=None,
                   help="data.image_size in pixels (default deepfit's: the smears' 128)")
    p.add_argument("--n-samples", type=int, default=400, help="data.n_samples (images)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=None, help="train.lr (default deepfit's "
                   "automatic value for detectors, 3e-4; 1e-3 diverged: docs/benchmarks.md)")
    p.add_argument("--grad-clip", type=float, default=None,
                   help="train.grad_clip (default deepfit's for detectors, 10)")
    p.add_argument("--batch-size", type=int, default=None, help="default deepfit's")
    p.add_argument("--kwargs", default=None, help="model.kwargs as JSON (default deepfit's: "
                   "fewer proposals and regions on images up to 320 px)")
    p.add_argument("--seed", type=int, default=0, help="train.seed (and the smears' seed)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (OMP_NUM_THREADS); default torch's (the cores)")
    p.add_argument("--bootstrap", type=int, default=1000, help="eval.bootstrap")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other deepfit key (repeatable)")
    p.add_argument("--root", default=None, help="data.root (default: a temporary folder, "
                   "so that writing the smears is timed)")
    p.add_argument("--out", default=None, help="runs folder (default: a temporary folder)")
    p.add_argument("--json", default=None, help="write the results here")
    return p.parse_args()


def command(args: argparse.Namespace, root: str, out: str) -> list[str]:
    cmd = [sys.executable, "-m", "deepfit", "train", "--data", "synthetic-smear",
           "--epochs", str(args.epochs), "--seed", str(args.seed),
           "--out", out, "--name", "smear", "--root", root,
           f"data.n_samples={args.n_samples}", f"eval.bootstrap={args.bootstrap}",
           "train.progress=false"]
    given = {"--model": args.model, "--lr": args.lr, "--batch-size": args.batch_size}
    cmd += [part for flag, value in given.items() if value is not None
            for part in (flag, str(value))]
    keys = {"data.image_size": None if args.image_size is None else f"[{args.image_size}]",
            "train.grad_clip": args.grad_clip, "model.kwargs": args.kwargs}
    cmd += [f"{key}={value}" for key, value in keys.items() if value is not None]
    return cmd + list(args.set)


def machine() -> dict:
    import torch

    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def main() -> None:
    args = parse()
    with tempfile.TemporaryDirectory() as tmp:
        root, out = args.root or f"{tmp}/data", args.out or f"{tmp}/runs"
        cmd = command(args, root, out)
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        if args.threads:
            env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        load_before = os.getloadavg()
        started = time.perf_counter()
        done = subprocess.run(cmd, env=env, cwd=ROOT)
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_after = os.getloadavg()
        if done.returncode:
            sys.exit(f"deepfit train failed (exit {done.returncode}): {' '.join(cmd)}")
        run = Path(out) / "smear"
        metrics = json.loads((run / "metrics.json").read_text())
        summary = json.loads((run / "summary.json").read_text())
    test = metrics["test"]
    ci = test["ci"].get("map50", {})
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(), "threads": args.threads,
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in load_after],
        "command": " ".join(cmd[1:]),
        "wall_s": round(wall, 1), "cpu_user_s": round(usage.ru_utime, 1),
        "cpu_sys_s": round(usage.ru_stime, 1),
        "training_s": summary["training"]["seconds"],
        "epochs_run": summary["training"]["epochs_run"],
        "best_epoch": summary["training"]["best_epoch"],
        "test_images": test["n_images"], "map50": test["map50"],
        "map50_ci": [ci.get("low"), ci.get("high")], "map50_95": test["map50_95"],
        "ap50": {c: v["ap50"] for c, v in test["per_class"].items()},
        "val_map50": [r["val_map50"] for r in summary["training"]["history"]],
    }
    show(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def show(r: dict) -> None:
    def f(v: object) -> str:
        return "undefined" if v is None else f"{v:.3f}"
    cpu = r["cpu_user_s"] + r["cpu_sys_s"]
    low, high = r["map50_ci"]
    print(f"test mAP@0.5 {f(r['map50'])} (95% bootstrap interval {f(low)}-{f(high)}, "
          f"{r['test_images']} images), mAP@[.5:.95] {f(r['map50_95'])}")
    print("AP50 per class: " + ", ".join(f"{c} {f(v)}" for c, v in r["ap50"].items()))
    print("validation mAP@0.5 per epoch: " + " ".join(f(v) for v in r["val_map50"]))
    print(f"wall {r['wall_s']:.0f} s, CPU {cpu:.0f} s (user {r['cpu_user_s']:.0f} + sys "
          f"{r['cpu_sys_s']:.0f}), training {r['training_s']:.0f} s; threads "
          f"{r['threads'] or r['machine']['torch_threads']}; load average before "
          f"{r['load_before'][0]}, after {r['load_after'][0]}; {r['machine']['cpus']} CPUs")


if __name__ == "__main__":
    main()
