"""Runs shared by the serving tests: one tiny table run and one tiny image run, trained once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import deepfit

QUICK = {"train.progress": False, "eval.plots": False, "eval.report": False,
         "eval.bootstrap": 0}


def table_rows(n: int, seed: int = 1) -> pd.DataFrame:
    """New rows for the table run: a number, a category (one unseen, 'purple'), a blank."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"patient": [f"n{i}" for i in range(n)], "x": rng.normal(size=n),
                          "dose": rng.integers(0, 5, size=n).astype(float),
                          "colour": rng.choice(["red", "blue", "green"], size=n)})
    frame.loc[0, "colour"] = "purple"
    frame.loc[1, "dose"] = np.nan
    return frame


@pytest.fixture(scope="session")
def table_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    frame = table_rows(90, seed=0).assign(colour=["red", "blue", "green"] * 30)
    frame.loc[::6, "dose"] = np.nan  # gaps in training: a blank is imputed, not news
    frame["y"] = np.where(frame["x"] + 0.3 * rng.normal(size=90) > 0, "high", "low")
    return deepfit.train(data=frame, out=tmp_path_factory.mktemp("runs"), epochs=3,
                         name="table", **QUICK, **{"data.id_column": "patient"})


@pytest.fixture(scope="session")
def image_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for cls in ("top", "bottom"):
        (root / "data" / cls).mkdir(parents=True)
        for i in range(12):
            a = rng.integers(0, 60, (8, 8)).astype(np.uint8)
            a[slice(0, 4) if cls == "top" else slice(4, 8)] += 150
            Image.fromarray(a).save(root / "data" / cls / f"{i}.png")
    return deepfit.train(data=str(root / "data"), out=root / "runs", name="images", **QUICK,
                         **{"model.name": "cnn", "model.channels": [4], "train.epochs": 1,
                            "train.batch_size": 8})
