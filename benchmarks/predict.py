"""Prediction at scale: rows/s and images/s of ``deepfit predict`` (``predict_file``, the
function the command line calls: read, preprocess, predict, write CSV) against a plain
PyTorch loop over the same model on the same already preprocessed tensors (forward pass
only), interleaved and repeated; then peak memory of ``deepfit predict`` in a fresh
subprocess (ru_maxrss) on an input 1x and 10x its part size.

    nice -n 10 .venv/bin/python benchmarks/predict.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import deepfit
from deepfit.models.inference import predict_outputs
from deepfit.predict_files import predict_file

ROWS, FEATURES, IMAGES, BATCH = 200_000, 20, 2_000, 256


def plain_loop(model, X, batch):
    with torch.no_grad():
        model.eval()
        for s in range(0, len(X), batch):
            model(X[s:s + batch])


def table_case(work: Path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(ROWS, FEATURES)), columns=[f"f{i}" for i in
                                                                        range(FEATURES)])
    frame["y"] = (frame["f0"] > 0).map({True: "yes", False: "no"})
    run = deepfit.train(data=frame.iloc[:2000], out=work / "runs", epochs=1, bootstrap=0,
                        progress=False, eval={"plots": False, "report": False})
    new = frame.drop(columns="y")
    new.to_csv(work / "new.csv", index=False)
    X = run.schema.transform(new, "bench")
    return run, work / "new.csv", X, ROWS, "rows", 10_000


def image_case(work: Path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        for i in range(40):
            (work / "train" / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (28, 28), np.uint8)).save(
                work / "train" / cls / f"{i}.png")
    run = deepfit.train(data=str(work / "train"), out=work / "runs", model="cnn", epochs=1,
                        bootstrap=0, progress=False, eval={"plots": False, "report": False})
    arrays = rng.integers(0, 256, (IMAGES, 28, 28), np.uint8)
    for i, a in enumerate(arrays):
        (work / "new" / f"{i // 500}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(work / "new" / f"{i // 500}" / f"{i}.png")
    from deepfit.data.images.inputs import ImageInputs
    inputs = ImageInputs(run.schema.image, torch.device("cpu"), seed=0)
    X = inputs(torch.from_numpy(arrays[:, None]), train=False)  # the network's input
    return run, work / "new", X, IMAGES, "images", BATCH


def speed(case, repeats):
    run, source, X, n, unit, batch = case
    out = source.parent / "out.csv"
    ours, inner, plain = [], [], []
    for _ in range(repeats):  # interleaved: all see the same machine load
        t = time.perf_counter()
        predict_file(run, source, out, batch=batch, stream=open("/dev/null", "w"))
        ours.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        predict_outputs(run.model, X, batch)  # deepfit's forward loop on the same tensors
        inner.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        plain_loop(run.model, X, batch)
        plain.append(n / (time.perf_counter() - t))
    return ours, inner, plain


def peak_rss_mib(run_dir: Path, source: Path, batch: int) -> float:
    code = ("import resource, sys, warnings; warnings.simplefilter('ignore');"
            "from deepfit.result import load; from deepfit.predict_files import predict_file;"
            f"predict_file(load(r'{run_dir}'), r'{source}', r'{source}.out.csv', batch={batch},"
            " stream=open('/dev/null', 'w'));"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.split()[-1]) / 1024


def memory(work: Path, run, batch: int) -> dict:
    cols = run.schema.preprocessor.columns_
    rng = np.random.default_rng(1)
    sizes = {}
    for factor in (1, 10, 100):
        path = work / f"mem{factor}.csv"
        pd.DataFrame(rng.normal(size=(batch * factor, len(cols))), columns=cols).to_csv(
            path, index=False)
        sizes[factor] = peak_rss_mib(run.path, path, batch)
    return sizes


def fmt(values):
    med = statistics.median(values)
    return f"{med:,.0f}/s (min {min(values):,.0f}, max {max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared machine: one core each, comparable runs
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in (("table", table_case), ("images", image_case)):
            work = Path(tmp) / name
            work.mkdir()
            case = build(work)
            ours, inner, plain = speed(case, args.repeats)
            ratio = statistics.median(o / p for o, p in zip(ours, plain))
            forward = statistics.median(o / p for o, p in zip(inner, plain))
            print(f"{name}: deepfit predict end to end {fmt(ours)} {case[4]}; its forward "
                  f"loop on the preprocessed tensors {fmt(inner)}; plain PyTorch loop "
                  f"{fmt(plain)}; end to end / plain {ratio:.2f}x, forward loop / plain "
                  f"{forward:.2f}x (median of {args.repeats} interleaved)")
            if name == "table":
                batch = 2_000
                sizes = memory(work, case[0], batch)
                print("peak RSS of deepfit predict, part size %d rows: " % batch
                      + ", ".join(f"{k}x: {v:,.0f} MiB" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
