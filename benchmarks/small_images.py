"""Small image sets: which defaults train right on tens to a few thousand images (issue #13).

Generated sets, written as PNG class folders to a temporary folder (nothing downloaded):

  shapes   circle / square / triangle, random size, position, rotation and grey level, on
           noise; 32×32 gray; 60, 300 and 1500 labelled images
  blobs    a medical-like colour texture: blurred pink "cells" on a mottled background; the
           positive class has a few small dark dots in some cells; 48×48 RGB; 300 images
  fashion  stratified subsets of Fashion-MNIST's training set (Debian's
           /usr/share/datasets/fashion-mnist IDX files); 28×28 gray; 300 and 2000 images

Each set is ``root/train/<class>/*.png`` (the N labelled images the user has: deepfit carves
its validation split from them, 15 %) and ``root/test/<class>/*.png``: a separate, larger
test set (1000 generated images, or 2000 of Fashion-MNIST's official test images) so that
test accuracy and log-loss are measured precisely, not on a dozen images. Seeds 0-2 draw
different labelled sets (and train with that seed); the test set is fixed per set.

Arms (``--arms``), all with deepfit's other defaults (model cnn, augment auto = light,
one-cycle schedule, precise BN on short epochs), progress / plots / report / bootstrap /
explanations off:

  old        batch 128, 20 epochs, patience 8: the image defaults before this benchmark
  default    deepfit's own choice (since this benchmark: the scaled rule below)
  batch      the scaled batch (below), 20 epochs, patience 8
  scaled     the rule below, chosen before any result was seen: the batch is the power of
             two at or below training images / 16 (an epoch of at least 16 steps), from 16 to
             128; the epochs give at least 500 optimiser steps, from 20 to 200; patience is
             2/5 of the epochs, at least 8 (the 8-of-20 ratio of the old defaults)
  standard   scaled + data.augment=standard
  lenet      scaled + model lenet
  resnet9    scaled + model resnet9 (costly on a CPU: run on the small sets only)

Run: ``nice -n 10 .venv/bin/python benchmarks/small_images.py --out small.json`` (``--sets
shapes60,fashion300``, ``--seeds 1``, ``--arms old,scaled``; ``--merge A.json B.json`` prints
one table from several files). Results are in docs/benchmarks.md ("Small image sets").
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

import deepfit
from deepfit.config import image_training_values
from deepfit.data.images.idx import read_idx

FASHION = Path("/usr/share/datasets/fashion-mnist")
SETS = {"shapes60": ("shapes", 60), "shapes300": ("shapes", 300), "shapes1500": ("shapes", 1500),
        "blobs300": ("blobs", 300), "fashion300": ("fashion", 300),
        "fashion2000": ("fashion", 2000)}
TEST_IMAGES = 1000
VAL_SIZE = 0.15  # deepfit's default validation share, carved from train/


def scaled_values(train_images: int) -> dict:
    """The pre-registered rule of the ``scaled`` arm, now deepfit's image default."""
    v = image_training_values(train_images)
    return {f"train.{k}": v[k] for k in ("batch_size", "epochs", "patience")}


def arm_overrides(arm: str, n: int) -> dict:
    train_images = n - round(n * VAL_SIZE)
    scaled = scaled_values(train_images)
    if arm == "old":
        return {"train.batch_size": 128, "train.epochs": 20, "train.patience": 8}
    if arm == "batch":
        return {"train.batch_size": scaled["train.batch_size"], "train.epochs": 20,
                "train.patience": 8}
    if arm == "default":  # whatever deepfit decides by itself
        return {}
    extra = {"scaled": {}, "standard": {"data.augment": "standard"}, "lenet": {"model": "lenet"},
             "resnet9": {"model": "resnet9"},
             "min_delta0": {"train.min_delta": 0.0}}[arm]  # before the automatic 1e-4
    return {**scaled, **extra}


# -- generated images ------------------------------------------------------------------------

def shape_image(kind: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """One gray ``size``² image: a circle (0), square (1) or triangle (2) on noise."""
    background = rng.uniform(0.15, 0.45)
    img = Image.fromarray(np.clip(rng.normal(background, 0.12, (size, size)) * 255, 0, 255)
                          .astype(np.uint8))
    r = rng.uniform(5, 12)
    cx, cy = rng.uniform(r, size - r, 2)
    level = int(255 * np.clip(background + rng.choice([-1, 1]) * rng.uniform(0.25, 0.5), 0, 1))
    draw = ImageDraw.Draw(img)
    if kind == 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=level)
    else:
        corners = 4 if kind == 1 else 3
        turn = rng.uniform(0, 2 * np.pi)
        angles = turn + 2 * np.pi * np.arange(corners) / corners
        draw.polygon([(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles], fill=level)
    noisy = np.asarray(img, np.float32) + rng.normal(0, 12, (size, size))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def blob_image(dots: bool, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """One RGB ``size``² tissue-like image: blurred cells; ``dots``: small dark dots in some."""
    mottle = np.kron(rng.normal(0, 1, (size // 8, size // 8, 1)), np.ones((8, 8, 1)))
    base = np.array([215.0, 180.0, 200.0]) + 18 * mottle
    img = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    cells = []
    for _ in range(rng.integers(3, 7)):
        r = rng.uniform(4, 9)
        cx, cy = rng.uniform(r, size - r, 2)
        cells.append((cx, cy, r))
        tone = (int(rng.uniform(150, 200)), int(rng.uniform(70, 120)), int(rng.uniform(140, 190)))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tone)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 1.6)))
    if dots:
        draw = ImageDraw.Draw(img)
        for cx, cy, r in [cells[i] for i in rng.choice(len(cells), rng.integers(1, 3), replace=False)]:
            for _ in range(rng.integers(1, 4)):
                dx, dy = rng.uniform(-r / 2, r / 2, 2)
                d = rng.uniform(0.8, 1.5)
                shade = int(rng.uniform(40, 90))
                draw.ellipse([cx + dx - d, cy + dy - d, cx + dx + d, cy + dy + d],
                             fill=(shade, shade // 2, shade))
    arr = np.asarray(img, np.float32) + rng.normal(0, 6, (size, size, 3))
    return np.clip(arr, 0, 255).astype(np.uint8)


def fashion_arrays() -> tuple:
    def read(name: str) -> np.ndarray:
        return read_idx(FASHION / f"{name}.gz")
    return (read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte"),
            read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte"))


def save(folder: Path, images: list, labels: list, names: list) -> None:
    for i, (image, label) in enumerate(zip(images, labels)):
        target = folder / names[int(label)]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target / f"{i:05d}.png")


def make_set(name: str, seed: int, root: Path, fashion: tuple | None) -> Path:
    """Write set ``name`` (labelled images drawn with ``seed``, the fixed test set) under
    ``root``; returns the folder to train on."""
    family, n = SETS[name]
    folder = root / f"{name}-seed{seed}"
    if family == "fashion":
        names = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                 "bag", "boot"]
        x, y, xt, yt = fashion
        rng = np.random.default_rng(seed)
        pick = np.concatenate([rng.choice(np.flatnonzero(y == c), n // 10, replace=False)
                               for c in range(10)])
        test = np.random.default_rng(1000).choice(len(yt), 2000, replace=False)
        save(folder / "train", list(x[pick]), list(y[pick]), names)
        save(folder / "test", list(xt[test]), list(yt[test]), names)
        return folder
    make, names = ((shape_image, ["circle", "square", "triangle"]) if family == "shapes"
                   else (lambda k, r: blob_image(bool(k), r), ["clear", "dots"]))
    for part, count, rng in (("train", n, np.random.default_rng(seed)),
                             ("test", TEST_IMAGES, np.random.default_rng(1000))):
        labels = np.arange(count) % len(names)
        save(folder / part, [make(int(k), rng) for k in labels], list(labels), names)
    return folder


# -- runs --------------------------------------------------------------------------------------

def fit(folder: Path, arm: str, n: int, seed: int, out: str) -> dict:
    overrides = arm_overrides(arm, n)
    model = overrides.pop("model", "auto")
    start = time.perf_counter()
    run = deepfit.train(data=str(folder), model=model, out=out,
                        **{"train.seed": seed, "train.progress": False, "eval.plots": False,
                           "eval.report": False, "eval.bootstrap": 0,
                           "train.diagnostics": False, "data.cache": False}, **overrides)
    seconds = time.perf_counter() - start
    test, t = run.metrics["test"], run.config.train
    return {"accuracy": test["accuracy"], "log_loss": test["log_loss"], "seconds": seconds,
            "batch_size": t.batch_size, "epochs": t.epochs, "patience": t.patience,
            "epochs_run": len(run.history), "augment": list(run.config.data.augment),
            "model": run.config.model.name}


def table(results: list) -> str:
    rows = ["| set | arm | model | batch | epochs (run) | seeds | accuracy | log-loss | s / fit |",
            "|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["set"], r["arm"]) for r in results},
                  key=lambda k: (list(SETS).index(k[0]) if k[0] in SETS else 99, k[1]))
    for s, arm in keys:
        rs = [r for r in results if (r["set"], r["arm"]) == (s, arm)]
        def ms(key: str, digits: int = 3) -> str:
            v = np.array([r[key] for r in rs], float)
            sd = f" ({v.std(ddof=1):.{digits}f})" if len(v) > 1 else ""
            return f"{v.mean():.{digits}f}{sd}"
        run = f"{rs[0]['epochs']} ({np.mean([r['epochs_run'] for r in rs]):.0f})"
        rows.append(f"| {s} | {arm} | {rs[0]['model']} | {rs[0]['batch_size']} | {run} | {len(rs)} | "
                    f"{ms('accuracy')} | {ms('log_loss')} | {np.mean([r['seconds'] for r in rs]):.0f} |")
    return "\n".join(rows) + f"\n\n{len(results)} fits; mean (sd) over the seeds"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--arms", default="old,scaled")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--merge", nargs="*")
    a = p.parse_args()
    if a.merge:
        print(table([r for f in a.merge for r in json.loads(Path(f).read_text())["results"]]))
        return
    torch.set_num_threads(1)
    load = open("/proc/loadavg").read().split()[:3] if Path("/proc/loadavg").exists() else "?"
    head = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine":
            f"{platform.machine()} {torch.get_num_threads()} torch thread(s)",
            "torch": torch.__version__, "load_start": load}
    print("# small images", head)
    fashion = fashion_arrays() if any(SETS[s][0] == "fashion" for s in a.sets.split(",")) else None
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in a.sets.split(","):
            for seed in range(a.first_seed, a.first_seed + a.seeds):
                folder = make_set(s, seed, Path(tmp), fashion)
                for arm in a.arms.split(","):
                    r = {"set": s, "arm": arm, "seed": seed,
                         **fit(folder, arm, SETS[s][1], seed, str(Path(tmp) / "runs"))}
                    results.append(r)
                    print(json.dumps(r), flush=True)
                    if a.out:
                        head["load_end"] = open("/proc/loadavg").read().split()[:3]
                        Path(a.out).write_text(json.dumps({**head, "results": results}, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
