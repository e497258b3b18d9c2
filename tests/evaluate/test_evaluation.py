"""The evaluation stage: the threshold comes from validation only, and every part of
metrics.json is consistent."""

import json

import numpy as np
import pytest

from deepfit.config import EvalConfig
from deepfit.errors import ConfigError
from deepfit.evaluate.evaluation import check_eval_config, evaluate
from deepfit.evaluate.predict import Predictions
from deepfit.evaluate.thresholds import tune_threshold


def _binary(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scores = np.clip(0.3 * y + rng.uniform(0, 0.7, n) + shift, 0, 1)
    return Predictions(np.arange(n), scores, "binary", ["neg", "pos"], y)


def test_threshold_is_tuned_on_validation_and_never_on_test():
    val, test = _binary(200, 0), _binary(300, 1)
    cfg = EvalConfig(bootstrap=0, apply_threshold=True)
    result = evaluate(val, test, cfg)
    expected = tune_threshold(val.y_true, val.scores, "f1")["threshold"]
    assert result["threshold"] == result["tuning"]["threshold"] == expected
    # Changing every test label and score leaves the threshold untouched.
    other_test = _binary(300, 99, shift=0.2)
    assert evaluate(_binary(200, 0), other_test, cfg)["threshold"] == expected
    # The test metrics are computed at that threshold; the 0.5 view is kept beside them.
    pred = (test.scores >= expected).astype(int)
    assert result["test"]["accuracy"] == pytest.approx(np.mean(pred == test.y_true))
    assert result["test_at_other_threshold"]["threshold"] == 0.5


def test_tuned_threshold_is_reported_but_not_applied_by_default():
    val, test = _binary(200, 0), _binary(300, 1)
    result = evaluate(val, test, EvalConfig(bootstrap=0))
    assert result["threshold"] == 0.5 and not result["tuning"]["applied"]
    assert result["test_at_other_threshold"]["threshold"] == result["tuning"]["threshold"]


def test_metrics_json_is_plain_and_complete():
    val, test = _binary(200, 0), _binary(300, 1)
    result = evaluate(val, test, EvalConfig(bootstrap=200))
    json.dumps(result, allow_nan=False)
    assert result["ci"]["accuracy"]["low"] <= result["test"]["accuracy"] <= result["ci"]["accuracy"]["high"]
    rates = result["test"]["rates"]["binary"]
    for key in ("tpr", "tnr", "ppv", "npv", "lr_plus", "dor", "informedness", "markedness",
                "f0.5", "f2", "fowlkes_mallows", "threat_score", "prevalence_threshold"):
        assert key in rates
    assert {"brier", "ece"} <= set(result["test"])
    assert len(result["calibration"]["count"]) == EvalConfig().calibration_bins


def test_sensitivity_objective_needs_a_target():
    with pytest.raises(ConfigError, match="needs eval.target"):
        check_eval_config(EvalConfig(threshold_objective="sensitivity"))
    with pytest.raises(ConfigError, match="only used with"):
        check_eval_config(EvalConfig(target=0.9))
    val, test = _binary(300, 0), _binary(300, 1)
    cfg = EvalConfig(threshold_objective="sensitivity", target=0.95, bootstrap=0,
                     apply_threshold=True)
    result = evaluate(val, test, cfg)
    assert result["tuning"]["metrics"]["recall"] >= 0.95


def test_single_class_validation_cannot_be_tuned_and_says_why():
    val = Predictions(np.arange(5), np.full(5, 0.7), "binary", ["neg", "pos"], np.ones(5, int))
    result = evaluate(val, _binary(50, 1), EvalConfig(bootstrap=0))
    assert result["tuning"]["threshold"] is None and "one class" in result["tuning"]["reason"]
    assert result["threshold"] == 0.5


def test_regression_and_multiclass_get_their_extras():
    rng = np.random.default_rng(0)
    y = rng.normal(size=80)
    reg = Predictions(np.arange(80), y + rng.normal(scale=0.1, size=80), "regression", [], y)
    out = evaluate(reg, reg, EvalConfig(bootstrap=100))
    assert {"median_ae", "explained_variance", "mape"} <= set(out["test"])
    assert set(out["ci"]) == {"rmse", "mae", "r2"}
    k = rng.integers(0, 3, 90)
    p = rng.dirichlet(np.ones(3), 90)
    multi = Predictions(np.arange(90), p, "multiclass", ["a", "b", "c"], k)
    out = evaluate(multi, multi, EvalConfig(bootstrap=100))
    assert "roc_auc_ovo_weighted" in out["test"] and "tuning" not in out
    assert set(out["test"]["rates"]["per_class"]) == {"a", "b", "c"}
