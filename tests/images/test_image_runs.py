"""Images end to end: the pipeline, the CLI, resume, streaming and the report on tiny image
sets written by the test (and Fashion-MNIST from Debian when it is installed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from interrupts import SignalAtStep
from PIL import Image

import deepfit
from deepfit.cli import main
from deepfit.errors import DataError, TrainingInterrupted
from deepfit.train.checkpoint import load_checkpoint
from deepfit.train.export import load_weights

FMNIST = Path("/usr/share/datasets/fashion-mnist")
# A small CNN, no early stop: every epoch runs, so runs can be compared step by step.
SMALL = {"train.progress": False, "eval.plots": False, "eval.report": False,
         "eval.bootstrap": 0, "model.name": "cnn", "model.channels": [8, 16],
         "train.batch_size": 16, "train.epochs": 6, "train.early_stopping": False,
         "train.lr": 0.01}


def bright_side_folder(root: Path, n: int = 40, size: int = 16, color: bool = True) -> Path:
    """Two classes: the bright half of the image is the top or the bottom (horizontal flips,
    in the default augmentation of colour images, keep the class)."""
    rng = np.random.default_rng(0)
    for cls in ("top", "bottom"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size, size, 3) if color else (size, size)
            a = rng.integers(0, 60, shape).astype(np.uint8)
            half = slice(0, size // 2) if cls == "top" else slice(size // 2, size)
            a[half] += 150
            Image.fromarray(a).save(root / cls / f"{cls}{i:03d}.png")
    return root


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFIT_CACHE", str(tmp_path / "cache"))


def _weights(run_path: Path) -> dict:
    return load_checkpoint(run_path / "checkpoints" / "last.pt")["model"]


def test_a_cnn_learns_an_image_folder_and_reports_it(tmp_path):
    folder = bright_side_folder(tmp_path / "sides")
    run = deepfit.train(data=folder, out=tmp_path / "runs", name="cnn",
                        **{**SMALL, "eval.plots": True, "eval.report": True})
    assert run.metrics["test"]["accuracy"] >= 0.9
    summary = json.loads((run.path / "summary.json").read_text())
    data = summary["data"]
    assert data["kind"] == "image" and data["inputs"] == "3×16×16 images"
    assert "pad 2 px" in data["preprocessing"] and "horizontal flip" in data["preprocessing"]
    assert data["split_sizes"] == {"train": 52, "val": 12, "test": 16}
    assert "Test images" in summary["plots"]
    html = (run.path / "report.html").read_text()
    assert "Test images" in html and "3×16×16 images" in html
    # The exported weights are the best checkpoint's, in safetensors.
    exported = load_weights(run.path / "model.safetensors")
    best = load_checkpoint(run.path / "checkpoints" / "best.pt")["model"]
    assert exported.keys() == best.keys()
    assert all(torch.equal(exported[k], best[k].cpu()) for k in best)
    # Loaded back, the run predicts new images: a loose folder has no labels, class folders do.
    loaded = deepfit.load(run.path)
    loose = tmp_path / "new"
    loose.mkdir()
    for name in ("bottom000.png", "top000.png"):
        (loose / name).write_bytes((folder / name[:-7] / name).read_bytes())
    assert list(loaded.predict(loose)) == ["bottom", "top"]
    assert loaded.evaluate(folder)["accuracy"] >= 0.9
    with pytest.raises(DataError, match="carry no labels"):
        loaded.evaluate(loose)


def test_cli_trains_predicts_and_evaluates_an_image_folder(tmp_path, monkeypatch, capsys):
    folder = bright_side_folder(tmp_path / "sides", n=24, color=False)
    env = {**os.environ, "DEEPFIT_CACHE": str(tmp_path / "cache")}
    # Training through the real console entry point, as a user runs it ...
    res = subprocess.run([sys.executable, "-m", "deepfit", "train", "--data", str(folder),
                          "--name", "img", "--quiet", "--epochs", "3", "model.channels=[8]",
                          "train.batch_size=16", "eval.bootstrap=0"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    run = tmp_path / "runs" / "img"
    assert (run / "plots" / "test_images.png").is_file() and (run / "report.html").is_file()
    config = (run / "config.yaml").read_text()
    assert "name: cnn" in config and "batch_size: 16" in config and "schedule: onecycle" in config

    # ... the other commands through main() in this process (a subprocess each would pay
    # PyTorch's import again), with the same cache folder and working directory.
    monkeypatch.setenv("DEEPFIT_CACHE", env["DEEPFIT_CACHE"])
    monkeypatch.chdir(tmp_path)

    def cli(*args):
        try:
            code = main(list(args))
        except SystemExit as stop:
            code = stop.code
        return code, capsys.readouterr()

    code, got = cli("predict", str(run), str(folder / "top"), "-o", str(tmp_path / "p.csv"))
    assert code == 0, got.err
    preds = pd.read_csv(tmp_path / "p.csv")
    assert len(preds) == 24 and list(preds.columns) == ["image", "predicted", "p_bottom", "p_top"]
    code, got = cli("evaluate", str(run), "--data", str(folder))
    assert code == 0 and "Accuracy" in got.out, got.err
    (folder / "up").mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "up" / "u.png")
    code, got = cli("evaluate", str(run), "--data", str(folder))
    assert code == 2 and "class 'up', which the model was not trained on" in got.err
    assert "Traceback" not in got.err


def test_an_interrupted_image_run_resumes_bit_identically_with_augmentation(tmp_path):
    folder = bright_side_folder(tmp_path / "sides", n=30)
    settings = {**SMALL, "data.augment": ["strong"], "train.epochs": 3}
    whole = deepfit.train(data=folder, out=tmp_path, name="whole", **settings)
    with pytest.raises(TrainingInterrupted):  # inside epoch 2: augmentation RNG mid-stream
        deepfit.train(data=folder, out=tmp_path, name="cut", callbacks=[SignalAtStep(5)],
                      **settings)
    resumed = deepfit.resume(tmp_path / "cut")
    a, b = _weights(whole.path), _weights(resumed.path)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history.column("train_loss") == whole.history.column("train_loss")


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_images_train_like_images_in_memory(tmp_path, workers):
    """Whatever the number of decoding workers (0: in the training process)."""
    folder = bright_side_folder(tmp_path / "sides", n=20)
    memory = deepfit.train(data=folder, out=tmp_path, name="memory", **SMALL)
    streamed = deepfit.train(data=folder, out=tmp_path, name="streamed",
                             **{**SMALL, "data.max_memory_gb": 1e-9, "data.workers": workers})
    info = json.loads((streamed.path / "summary.json").read_text())["data"]["images"]
    assert info["streamed"] is True
    a, b = _weights(memory.path), _weights(streamed.path)
    # Same order, same augmentation stream, same statistics (the sample is every training
    # image here): the same weights, bit for bit.
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_label_map_merges_classes_into_a_binary_task(tmp_path):
    root = tmp_path / "tumours"
    rng = np.random.default_rng(1)
    for cls, level in (("glioma", 200), ("meningioma", 180), ("pituitary", 220), ("none", 30)):
        (root / cls).mkdir(parents=True)
        for i in range(12):
            a = np.clip(rng.normal(level, 20, (12, 12)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / cls / f"{i}.png")
    mapping = {"glioma": "tumour", "meningioma": "tumour", "pituitary": "tumour",
               "none": "no tumour"}
    run = deepfit.train(data=root, out=tmp_path, label_map=mapping, positive_class="tumour",
                        **SMALL)
    assert run.task == "binary" and run.schema.class_names == ["no tumour", "tumour"]
    counts = json.loads((run.path / "summary.json").read_text())["data"]["class_counts"]
    tumour = sum(counts[split]["tumour"] for split in counts)
    no_tumour = sum(counts[split]["no tumour"] for split in counts)
    assert (tumour, no_tumour) == (36, 12)
    with pytest.raises(DataError, match="names class 'glyoma'.*did you mean 'glioma'"):
        deepfit.train(data=root, out=tmp_path, label_map={"glyoma": "tumour"}, **SMALL)


@pytest.mark.skipif(not FMNIST.is_dir(), reason="Fashion-MNIST not installed (apt-get install "
                    "dataset-fashion-mnist)")
def test_cli_on_fashion_mnist_from_debian(tmp_path):
    env = {**os.environ, "DEEPFIT_CACHE": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-m", "deepfit", "train", "--data", "fashion-mnist",
                          "--model", "mlp", "--epochs", "1", "--name", "fm", "--quiet",
                          "model.hidden=[64]", "eval.bootstrap=0", "eval.plots=false"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    metrics = json.loads((tmp_path / "runs" / "fm" / "metrics.json").read_text())
    assert metrics["test"]["n"] == 10000  # the official test split is kept
    assert metrics["test"]["accuracy"] > 0.78
