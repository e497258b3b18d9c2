"""The automatic training values: a table's batch scales with its training rows
(``deepfit.config.table_batch_size``, chosen with benchmarks/tabular_suite.py); an image
set's batch, epochs and patience scale with its training images
(``deepfit.config.image_training_values``, chosen with benchmarks/small_images.py); an
explicit value is kept, and the run records the values it used."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import deepfit
from deepfit.config import TrainConfig, image_training_values, table_batch_size
from image_samples import class_folders


@pytest.mark.parametrize("rows, batch", [(0, 32), (97, 32), (1168, 32), (2048, 32),
                                         (2049, 64), (4138, 128), (6500, 128),
                                         (13_123, 256), (32_500, 512), (10**6, 512)])
def test_table_batch_grows_with_the_training_rows(rows, batch):
    assert table_batch_size(rows) == batch


def test_an_epoch_has_at_most_64_steps_up_to_the_cap():
    for rows in range(1, 32_769, 37):
        assert math.ceil(rows / table_batch_size(rows)) <= 64


def test_resolved_uses_the_rows_and_keeps_what_is_set():
    assert TrainConfig().resolved("table", "cpu").batch_size == 32  # rows unknown
    assert TrainConfig().resolved("table", "cpu", train_rows=20_000).batch_size == 512
    assert TrainConfig(batch_size=16).resolved("table", "cpu", train_rows=20_000).batch_size == 16
    auto = TrainConfig().resolved("table", "cpu", train_rows=20_000)
    assert (auto.epochs, auto.patience) == (200, 20)


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": np.where(x[:, 0] > 0, "p", "q")})


def test_a_run_takes_its_batch_from_its_training_rows(quick, tmp_path):
    run = deepfit.train(data=_frame(3400), target="y", epochs=1, out=str(tmp_path), **quick)
    assert run.config.train.batch_size == 64  # 2210 training rows
    saved = deepfit.load(run.path)  # config.yaml holds the number: a resume uses the same
    assert saved.config.train.batch_size == 64


def test_an_explicit_batch_is_kept(quick, tmp_path):
    run = deepfit.train(data=_frame(3400), target="y", epochs=1, batch_size=16,
                        out=str(tmp_path), **quick)
    assert run.config.train.batch_size == 16


@pytest.mark.parametrize("images, batch, epochs, patience", [
    (0, 128, 20, 8),  # unknown (before the data are read): a large set's values
    (10, 16, 200, 80), (51, 16, 125, 50), (255, 16, 32, 13), (1275, 64, 25, 10),
    (1700, 64, 20, 8), (2048, 128, 32, 13), (20_000, 128, 20, 8), (60_000, 128, 20, 8)])
def test_image_values_scale_with_the_training_images(images, batch, epochs, patience):
    assert image_training_values(images) == {"batch_size": batch, "epochs": epochs,
                                             "patience": patience}
    auto = TrainConfig().resolved("image", "cpu", train_rows=images or None)
    assert (auto.batch_size, auto.epochs, auto.patience) == (batch, epochs, patience)


def test_a_small_image_set_trains_at_least_500_steps_in_epochs_of_16_steps():
    for n in range(1, 40_000, 29):
        v = image_training_values(n)
        steps = math.ceil(n / v["batch_size"])
        assert steps * v["epochs"] >= 500 or v["epochs"] == 200
        assert steps >= 16 or v["batch_size"] == 16
        assert v["patience"] >= 0.4 * v["epochs"] and v["patience"] >= 8


def test_image_epochs_and_patience_follow_what_the_user_set():
    # a batch given: the epochs still give 500 steps with it; epochs given: patience 2/5
    assert TrainConfig(batch_size=64).resolved("image", "cpu", train_rows=255).epochs == 125
    given = TrainConfig(epochs=50).resolved("image", "cpu", train_rows=255)
    assert (given.batch_size, given.epochs, given.patience) == (16, 50, 20)
    kept = TrainConfig(batch_size=8, epochs=3, patience=2).resolved("image", "cpu", train_rows=255)
    assert (kept.batch_size, kept.epochs, kept.patience) == (8, 3, 2)


def test_an_image_run_takes_its_values_from_its_training_images(quick, tmp_path):
    data = class_folders(tmp_path / "img", {"a": 20, "b": 20})  # 26 training images
    run = deepfit.train(data=str(data), model="lenet", epochs=1, out=str(tmp_path / "runs"),
                        **quick)
    t = run.config.train
    assert (t.batch_size, t.epochs, t.patience) == (16, 1, 8)
    saved = deepfit.load(run.path)
    assert (saved.config.train.batch_size, saved.config.train.patience) == (16, 8)
    kept = deepfit.train(data=str(data), model="lenet", epochs=1, batch_size=4,
                         out=str(tmp_path / "runs"), **quick)
    assert kept.config.train.batch_size == 4
