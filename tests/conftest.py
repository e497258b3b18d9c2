"""Shared fixtures: tiny, deterministic data made in the test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from postgres_server import postgres_url  # noqa: F401 (a fixture: a real PostgreSQL server, started once, on demand)

torch.set_num_threads(1)  # tiny models: threads cost more than they give, and CI has 2 cores


@pytest.fixture
def quick() -> dict:
    """Overrides for a fast run that writes nothing optional."""
    return {"train.progress": False, "eval.plots": False, "eval.report": False}


@pytest.fixture
def tabular_csv(tmp_path):
    """A small mixed-type binary CSV: numeric, categorical, a gap, and a target."""
    rng = np.random.default_rng(0)
    n = 120
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    y = np.where(x1 + 0.5 * (colour == "red") > 0.2, "sick", "healthy")
    frame = pd.DataFrame({"patient": [f"p{i}" for i in range(n)], "x1": x1, "x2": x2,
                          "colour": colour, "diagnosis": y})
    frame.loc[3, "x2"] = np.nan
    path = tmp_path / "patients.csv"
    frame.to_csv(path, index=False)
    return path
