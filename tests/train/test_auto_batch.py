"""The automatic training values of a table: the batch scales with the training rows
(``deepfit.config.table_batch_size``, chosen with benchmarks/tabular_suite.py), an explicit
batch is kept, images keep theirs, and the run records the batch it used."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import deepfit
from deepfit.config import TrainConfig, table_batch_size


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
    assert TrainConfig().resolved("image", "cpu", train_rows=20_000).batch_size == 128
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
