"""The defaults do what a careful expert would: with no flag but the data, a regression
table beats the mean predictor by a margin (issue: diabetes once got R² 0.34 where a linear
model gets about 0.45; benchmarks/tabular_suite.py has the full comparison)."""

import pandas as pd
import pytest

import deepfit


def test_diabetes_with_defaults_beats_the_mean_predictor_by_a_margin(tmp_path, quick):
    run = deepfit.train(data="diabetes", out=tmp_path, **quick, bootstrap=0)
    test = pd.read_csv(run.path / "predictions.csv")
    truth, predicted = test["true"], test["predicted"]
    sse = float(((truth - predicted) ** 2).sum())
    sse_mean = float(((truth - truth.mean()) ** 2).sum())  # the best constant, even in hindsight
    assert sse < 0.7 * sse_mean  # R² above 0.3 on the test rows
    assert run.metrics["test"]["r2"] == pytest.approx(1 - sse / sse_mean, rel=1e-6)

