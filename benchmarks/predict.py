"""Prediction at scale: rows/s and images/s of ``deepfit predict`` (``predict_file``, the
function the command line calls: read, preprocess, predict, write CSV; on the run loaded
from its folder, as the command line loads it, and in its default parts: 100,000 rows,
256 images) against a plain script a careful user would write for the same job, end to end:

- table: ``pd.read_csv`` of the same file, the run's fitted preprocessing redone with numpy
  from its ``schema.json`` (median imputation + missing indicators, standardisation, one-hot),
  the model's forward in batches under ``torch.no_grad``, sigmoid / softmax, and
  ``DataFrame.to_csv`` of ids + predicted class + probabilities;
- images: the same files listed (sorted, recursively), PIL decode, the same grayscale / RGB
  conversion and bilinear resize, scaling to [0, 1] and the run's normalisation, the same
  forward and CSV.

The plain script runs the model object that training returned (for images, in training's
channels-last layout, the fastest on a CPU); deepfit the same weights loaded from disk.

The plain script's CSV must hold the same ids, classes and probabilities as deepfit's (checked
each time: the same work is compared). Also, as a second line, the forward pass alone: deepfit's
forward loop (``predict_outputs``) against ``model(X[s:s+256])`` on the same preprocessed
tensors. The arms interleaved and repeated, one torch thread. Then peak memory of ``deepfit
predict`` in a fresh subprocess (ru_maxrss) on an input 1x, 10x and 100x its part size.
``--profile``: cProfile of one ``predict_file`` call per case, the top costs.

    nice -n 5 .venv/bin/python benchmarks/predict.py [--repeats 5] [--profile]
        [--part table|images|both] [--table-rows 10000]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
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
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


# -- the plain script (what a careful user writes; only numpy, pandas, PIL and torch) --------
def plain_table(run_dir: Path, model: torch.nn.Module, source: Path, out: Path,
                batch: int) -> None:
    schema = json.loads((run_dir / "schema.json").read_text())
    pre = schema["preprocessor"]
    assert pre["feature_transform"] == "none" and schema["task"] in ("binary", "multiclass")
    frame = pd.read_csv(source)
    num = pre["numeric_"]
    values = frame[num].to_numpy(np.float64, na_value=np.nan)
    fill = np.array([pre["fill_"][c] for c in num])
    center = np.array([pre["center_"][c] for c in num])
    scale = np.array([pre["scale_"][c] for c in num])
    parts = [((np.where(np.isnan(values), fill, values) - center) / scale).astype(np.float32)]
    if pre["indicators_"]:
        parts.append(frame[pre["indicators_"]].isna().to_numpy(np.float32))
    for col in pre["categorical_"]:
        text = frame[col].astype("string").fillna("<missing>").to_numpy()
        parts.append((text[:, None] == np.array(pre["categories_"][col], dtype=object)
                      ).astype(np.float32))
    X = torch.from_numpy(np.ascontiguousarray(np.hstack(parts)))
    ids = np.arange(len(frame))
    write(schema, forward(model, X, batch), ids, "row", out)


def plain_images(run_dir: Path, model: torch.nn.Module, folder: Path, out: Path,
                 batch: int) -> None:
    from PIL import Image
    schema = json.loads((run_dir / "schema.json").read_text())
    spec = schema["image"]
    assert spec["resize"] == "stretch"
    height, width = spec["size"]
    mode = "L" if spec["channels"] == 1 else "RGB"
    mean = torch.tensor(spec["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(spec["std"]).view(1, -1, 1, 1)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    ids = [p.relative_to(folder).as_posix() for p in files]
    outs = []
    model.eval()
    with torch.no_grad():
        for s in range(0, len(files), batch):
            arrays = []
            for p in files[s:s + batch]:
                with Image.open(p) as img:
                    img = img.convert(mode)
                    if img.size != (width, height):
                        img = img.resize((width, height), Image.Resampling.BILINEAR)
                    arrays.append(np.asarray(img, dtype=np.uint8).reshape(height, width, -1))
            x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)
            outs.append(model((x - mean) / std))
    write(schema, torch.cat(outs), np.array(ids, dtype=object), "image", out)


def forward(model: torch.nn.Module, X: torch.Tensor, batch: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(X[s:s + batch]) for s in range(0, len(X), batch)])


def write(schema: dict, logits: torch.Tensor, ids: np.ndarray, id_name: str,
          out: Path) -> None:
    names = schema["target"]["class_names"]
    if schema["task"] == "binary":
        p = torch.sigmoid(logits.reshape(-1)).numpy().astype(np.float64)
        probs, predicted = np.c_[1 - p, p], (p >= 0.5).astype(int)
    else:
        probs = torch.softmax(logits, dim=1).numpy().astype(np.float64)
        predicted = probs.argmax(axis=1)
    frame = pd.DataFrame({id_name: ids, "predicted": np.asarray(names, dtype=object)[predicted]})
    for j, name in enumerate(names):
        frame[f"p_{name}"] = probs[:, j]
    frame.to_csv(out, index=False)


def same_output(ours: Path, plain: Path) -> str:
    """The two CSVs side by side: same ids, classes, and probabilities (max abs difference)."""
    a, b = pd.read_csv(ours), pd.read_csv(plain)
    assert list(a.columns) == list(b.columns), (a.columns, b.columns)
    assert (a.iloc[:, 0].astype(str) == b.iloc[:, 0].astype(str)).all(), "ids differ"
    assert (a["predicted"] == b["predicted"]).all(), "predicted classes differ"
    p = [c for c in a.columns if c.startswith("p_")]
    diff = float(np.abs(a[p].to_numpy() - b[p].to_numpy()).max())
    assert diff <= 1e-6, f"probabilities differ by {diff}"
    return f"same ids and classes, probabilities max |diff| {diff:.1e}"


# -- the cases --------------------------------------------------------------------------------
def plain_loop(model, X, batch):
    with torch.no_grad():
        model.eval()
        for s in range(0, len(X), batch):
            model(X[s:s + batch])


def table_case(work: Path):
    """20 numeric columns (two with 1 % gaps: imputation + indicators) and a categorical one
    (one-hot), so that the plain script does every step of deepfit's preprocessing."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(ROWS, FEATURES)), columns=[f"f{i}" for i in
                                                                        range(FEATURES)])
    for col in ("f1", "f2"):
        frame.loc[rng.random(ROWS) < 0.01, col] = np.nan
    frame["kind"] = rng.choice(["a", "b", "c", "d"], ROWS)
    frame["y"] = (frame["f0"] > 0).map({True: "yes", False: "no"})
    run = deepfit.train(data=frame.iloc[:2000], out=work / "runs", epochs=1, bootstrap=0,
                        progress=False, eval={"plots": False, "report": False})
    new = frame.drop(columns="y")
    new.to_csv(work / "new.csv", index=False)
    X = run.schema.transform(new, "bench")
    forward_batch = run.config.eval.batch_size or 4096  # what predict_file runs the model on
    return run, work / "new.csv", X, ROWS, "rows", None, plain_table, forward_batch


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
    return run, work / "new", X, IMAGES, "images", None, plain_images, BATCH


def speed(case, repeats):
    run, source, X, n, unit, batch, plain_script, forward_batch = case
    out, plain_out = source.parent / "out.csv", source.parent / "plain.csv"
    loaded = deepfit.load(run.path)  # what ``deepfit predict RUN`` works with
    ours, script, inner, plain = [], [], [], []
    for _ in range(repeats):  # interleaved: all see the same machine load
        t = time.perf_counter()
        predict_file(loaded, source, out, batch=batch, stream=open(os.devnull, "w"))
        ours.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        plain_script(run.path, run.model, source, plain_out, forward_batch)
        script.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        predict_outputs(run.model, X, BATCH)  # deepfit's forward loop on the same tensors
        inner.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        plain_loop(run.model, X, BATCH)
        plain.append(n / (time.perf_counter() - t))
    return ours, script, inner, plain, same_output(out, plain_out)


def profile(case, top: int = 12) -> None:
    run, source, _, _, _, batch, _, _ = case
    prof = cProfile.Profile()
    prof.enable()
    predict_file(deepfit.load(run.path), source, source.parent / "out.csv", batch=batch,
                 stream=open(os.devnull, "w"))
    prof.disable()
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)
    # deepfit's own steps by cumulative time (image decoding runs in a thread pool that
    # cProfile does not see: its time shows as decode_list's wait on the pool's locks)
    stats.sort_stats("cumulative").print_stats("src/deepfit", top)


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
    pre = run.schema.preprocessor
    rng = np.random.default_rng(1)
    sizes = {}
    for factor in (1, 10, 100):
        path = work / f"mem{factor}.csv"
        frame = pd.DataFrame(rng.normal(size=(batch * factor, len(pre.numeric_))),
                             columns=pre.numeric_)
        for col in pre.categorical_:
            frame[col] = rng.choice(pre.categories_[col], len(frame))
        frame[pre.columns_].to_csv(path, index=False)
        sizes[factor] = peak_rss_mib(run.path, path, batch)
    return sizes


def fmt(values):
    med = statistics.median(values)
    return f"{med:,.0f}/s (min {min(values):,.0f}, max {max(values):,.0f})"


def ratio(a, b):
    r = [x / y for x, y in zip(a, b)]
    return f"{statistics.median(r):.2f}x (min {min(r):.2f}, max {max(r):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one deepfit predict "
                        "call per case (after the timings)")
    parser.add_argument("--part", choices=("table", "images", "both"), default="both")
    parser.add_argument("--table-rows", type=int, default=None, help="rows per part of the "
                        "table (default: deepfit predict's, 100,000)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared machine: one core each, comparable runs
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in (("table", table_case), ("images", image_case)):
            if args.part not in (name, "both"):
                continue
            work = Path(tmp) / name
            work.mkdir()
            case = build(work)
            if name == "table" and args.table_rows:
                case = (*case[:5], args.table_rows, *case[6:])
            ours, script, inner, plain, same = speed(case, args.repeats)
            unit = case[4]
            print(f"{name} ({args.repeats} repeats interleaved, median (min, max)):\n"
                  f"  deepfit predict end to end  {fmt(ours)} {unit}\n"
                  f"  plain script end to end     {fmt(script)} {unit}  ({same})\n"
                  f"  END TO END deepfit / plain  {ratio(ours, script)}\n"
                  f"  deepfit forward loop        {fmt(inner)} {unit}\n"
                  f"  plain forward loop          {fmt(plain)} {unit}\n"
                  f"  forward only deepfit/plain  {ratio(inner, plain)}")
            if name == "table":
                batch = 2_000
                sizes = memory(work, case[0], batch)
                print("  peak RSS of deepfit predict, part size %d rows: " % batch
                      + ", ".join(f"{k}x: {v:,.0f} MiB" for k, v in sizes.items()))
            if args.profile:
                profile(case)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
