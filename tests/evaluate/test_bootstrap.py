"""Bootstrap intervals: oracle tests against scikit-learn, seeding, coverage, dropped resamples."""

import doctest
import json
import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from deepfit.errors import ConfigError
from deepfit.evaluate import bootstrap
from deepfit.evaluate.bootstrap import bootstrap_ci, format_ci, resample_values
from deepfit.evaluate.metrics import classification_metrics, regression_metrics

NAN = np.nan


def _binary(n=200, seed=0, decimals=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    return y, (s if decimals is None else np.round(s, decimals))


def _multiclass(n=150, k=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.choice(k, n, p=[0.45, 0.3, 0.2, 0.05][:k])  # a rare class: often absent
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    return y, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _ref_binary(y, s, threshold=0.5):
    """One resample, the slow way; NaN where deepfit calls the metric undefined."""
    p = (s >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {"accuracy": skm.accuracy_score(y, p),
            "balanced_accuracy": skm.balanced_accuracy_score(y, p) if both else NAN,
            "precision": skm.precision_score(y, p, zero_division=NAN),
            "recall": skm.recall_score(y, p, zero_division=NAN),
            "specificity": skm.recall_score(y, p, pos_label=0, zero_division=NAN),
            "f1": skm.f1_score(y, p, zero_division=NAN),
            "mcc": _ref_mcc(y, p),
            "roc_auc": skm.roc_auc_score(y, s) if both else NAN}


def _ref_mcc(y, p):
    """scikit-learn's MCC, NaN where it is 0 / 0 (one true or one predicted class)."""
    return skm.matthews_corrcoef(y, p) if min(len(np.unique(y)), len(np.unique(p))) > 1 else NAN


def _ref_multiclass(y, scores, k):
    p, labels = scores.argmax(axis=1), list(range(k))

    def macro(fn):  # scikit-learn's macro mean, NaN (undefined) if a class's value is 0 / 0
        per_class = fn(y, p, labels=labels, average=None, zero_division=NAN)
        return NAN if np.isnan(per_class).any() else fn(y, p, labels=labels, average="macro")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        return {"accuracy": skm.accuracy_score(y, p),
                "balanced_accuracy": skm.balanced_accuracy_score(y, p),
                "precision_macro": macro(skm.precision_score),
                "recall_macro": macro(skm.recall_score),
                "f1_macro": macro(skm.f1_score), "mcc": _ref_mcc(y, p)}


def _ref_regression(y, pred):
    return {"mse": skm.mean_squared_error(y, pred),
            "rmse": math.sqrt(skm.mean_squared_error(y, pred)),
            "mae": skm.mean_absolute_error(y, pred),
            "r2": skm.r2_score(y, pred) if np.var(y) > 0 else NAN}


def _assert_same(got, expected):
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("decimals", [None, 1])  # 1 decimal: many tied scores
def test_binary_point_values_equal_sklearn_and_metrics_py(decimals):
    y, s = _binary(decimals=decimals)
    ci = bootstrap_ci(y, s, list(bootstrap.METRICS["binary"]), n_resamples=50)
    ref = _ref_binary(y, s)
    _assert_same({k: v["value"] for k, v in ci.items()}, ref)
    assert ci["sensitivity"]["value"] == ci["recall"]["value"]
    m = classification_metrics(y, s, ["n", "p"])
    for name in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc", "roc_auc"):
        assert ci[name]["value"] == pytest.approx(m[name], rel=1e-12)


def test_multiclass_point_values_equal_sklearn_and_metrics_py():
    y, scores = _multiclass()
    ci = bootstrap_ci(y, scores, list(bootstrap.METRICS["multiclass"]), n_resamples=50,
                      task="multiclass")
    _assert_same({k: v["value"] for k, v in ci.items()}, _ref_multiclass(y, scores, 4))
    m = classification_metrics(y, scores, list("abcd"))
    for name in ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro",
                 "f1_macro", "mcc"):
        assert ci[name]["value"] == pytest.approx(m[name], rel=1e-12)
    # Labels instead of probabilities give the same answer.
    labels = bootstrap_ci(y, scores.argmax(axis=1), task="multiclass", n_resamples=50)
    assert labels == bootstrap_ci(y, scores, task="multiclass", n_resamples=50)


def test_regression_point_values_equal_sklearn():
    rng = np.random.default_rng(0)
    y = 1000 + rng.normal(size=300)  # a large mean: the variance must not cancel
    pred = y + rng.normal(scale=0.5, size=300)
    ci = bootstrap_ci(y, pred, list(bootstrap.METRICS["regression"]), task="regression",
                      n_resamples=50)
    _assert_same({k: v["value"] for k, v in ci.items()}, _ref_regression(y, pred))
    assert ci["r2"]["value"] == pytest.approx(regression_metrics(y, pred)["r2"], rel=1e-9)


@pytest.mark.parametrize("n, decimals", [(200, None), (200, 1), (12, 1)])
def test_binary_resamples_equal_slow_reference(n, decimals):
    y, s = _binary(n, seed=4, decimals=decimals)
    if n == 12:
        y = (np.arange(12) < 2).astype(int)  # 2 positives: some resamples have none
    idx = np.random.default_rng(9).integers(0, n, size=(30, n))
    got = resample_values(y, s, idx, list(bootstrap.METRICS["binary"]), threshold=0.45)
    for r in range(30):
        _assert_same({k: v[r] for k, v in got.items()}, _ref_binary(y[idx[r]], s[idx[r]], 0.45))
    if n == 12:  # undefined resamples occur and are NaN, as in the reference
        assert np.isnan(got["recall"]).any() and np.isnan(got["roc_auc"]).any()


def test_multiclass_and_regression_resamples_equal_slow_reference():
    y, scores = _multiclass(n=40)
    idx = np.random.default_rng(1).integers(0, 40, size=(40, 40))
    got = resample_values(y, scores, idx, list(bootstrap.METRICS["multiclass"]),
                          task="multiclass")
    for r in range(40):
        _assert_same({k: v[r] for k, v in got.items()},
                     _ref_multiclass(y[idx[r]], scores[idx[r]], 4))
    assert any(3 not in y[i] for i in idx)  # the rare class is missing from some resamples

    y = np.array([1.0, 1, 1, 1, 1, 5])
    pred = np.array([1.2, 0.9, 1.0, 1.4, 0.8, 4.0])
    idx = np.random.default_rng(2).integers(0, 6, size=(30, 6))
    got = resample_values(y, pred, idx, ["mse", "rmse", "mae", "r2"], task="regression")
    for r in range(30):
        _assert_same({k: v[r] for k, v in got.items()}, _ref_regression(y[idx[r]], pred[idx[r]]))
    assert np.isnan(got["r2"]).any()


@pytest.mark.parametrize("metrics", [["accuracy", "mcc"], None])
def test_returned_samples_are_those_of_the_drawn_indices(metrics):
    y, s = _binary(150, decimals=2)
    ci = bootstrap_ci(y, s, metrics, n_resamples=40, seed=5, return_samples=True)
    draws = np.random.default_rng(5).integers(0, 150, size=(40, 150))
    if metrics is None:  # with ROC-AUC the draws index the rows in ascending score order
        draws = np.argsort(s, kind="stable")[draws]
    got = resample_values(y, s, draws, list(ci))
    for name, entry in ci.items():
        np.testing.assert_allclose(entry["samples"], got[name], rtol=1e-12)
        assert [entry["low"], entry["high"]] == pytest.approx(
            np.percentile(got[name], [2.5, 97.5]), rel=1e-12)


def test_result_is_plain_json():
    y, s = _binary(50)
    ci = bootstrap_ci(y, s, n_resamples=np.int64(20))
    assert json.loads(json.dumps(ci)) == ci


def test_same_seed_same_interval_other_seed_other_interval():
    y, s = _binary(300)
    a = bootstrap_ci(y, s, n_resamples=200, seed=1)
    assert a == bootstrap_ci(y, s, n_resamples=200, seed=1)
    b = bootstrap_ci(y, s, n_resamples=200, seed=2)
    assert all(a[k]["value"] == b[k]["value"] for k in a)
    assert all((a[k]["low"], a[k]["high"]) != (b[k]["low"], b[k]["high"]) for k in a)


def test_custom_function_sees_the_same_resamples():
    y, s = _binary(100)
    ci = bootstrap_ci(y, s, {"acc": "accuracy",
                             "mine": lambda t, p: skm.accuracy_score(t, p >= 0.5)},
                      n_resamples=100, return_samples=True)
    np.testing.assert_allclose(ci["mine"]["samples"], ci["acc"]["samples"])
    assert ci["mine"]["low"] == ci["acc"]["low"] and ci["mine"]["value"] == ci["acc"]["value"]


def test_coverage_of_a_known_accuracy():
    # Each prediction is right with probability 0.8: the 95% interval of accuracy should
    # hold 0.8 in about 95% of simulated test sets.
    rng = np.random.default_rng(2024)
    hits = 0
    for sim in range(200):
        y = rng.integers(0, 2, 400)
        right = rng.random(400) < 0.8
        scores = np.where(right, y, 1 - y).astype(float)
        ci = bootstrap_ci(y, scores, ["accuracy"], n_resamples=500, seed=sim)["accuracy"]
        hits += ci["low"] <= 0.8 <= ci["high"]
    assert 0.88 <= hits / 200 <= 0.99


def test_undefined_resamples_are_dropped_and_reported():
    y = np.zeros(40, int)
    y[:4] = 1  # 4 positives in 40: (36/40)^40, ~1.5% of resamples have none
    s = np.where(np.arange(40) < 6, 0.9, 0.1)
    ci = bootstrap_ci(y, s, n_resamples=1000, seed=0, return_samples=True)
    draws = np.argsort(s, kind="stable")[np.random.default_rng(0).integers(0, 40, (1000, 40))]
    no_pos = int((y[draws].sum(axis=1) == 0).sum())
    assert 0 < no_pos < 100
    assert ci["recall"]["dropped"] == ci["roc_auc"]["dropped"] == no_pos
    assert ci["recall"]["low"] is not None and ci["recall"]["reason"] is None
    assert ci["accuracy"]["dropped"] == 0
    assert np.isnan(ci["recall"]["samples"]).sum() == no_pos

    y = np.zeros(20, int)
    y[0] = 1  # 1 positive in 20: a third of resamples have none
    ci = bootstrap_ci(y, np.linspace(0, 1, 20), n_resamples=300)
    assert ci["recall"]["dropped"] > 30
    assert ci["recall"]["low"] is None and ci["recall"]["high"] is None
    assert "no positives" in ci["recall"]["reason"]
    assert ci["accuracy"]["low"] is not None
    assert format_ci(ci["recall"]) == f"{ci['recall']['value']:.3f} [n/a]"


def test_undefined_on_all_rows_gives_no_value():
    ci = bootstrap_ci(np.zeros(30, int), np.linspace(0, 1, 30), ["recall", "accuracy"],
                      n_resamples=20)
    assert ci["recall"]["value"] is None and ci["recall"]["dropped"] == 20
    assert format_ci(ci["recall"]) == "n/a"


def test_format_ci():
    assert format_ci({"value": 0.9621, "low": 0.9412, "high": 0.979}) == "0.962 [0.941, 0.979]"
    assert format_ci({"value": 12.345, "low": 11.0, "high": 13.5}, digits=1) == \
        "12.3 [11.0, 13.5]"


@pytest.mark.parametrize("kwargs, match", [
    ({"metrics": ["acuracy"]}, "did you mean 'accuracy'"),
    ({"metrics": ["roc_auc"], "task": "multiclass"}, "unknown multiclass bootstrap metric"),
    ({"task": "ranking"}, "unknown task"),
    ({"level": 95}, "between 0 and 1"),
    ({"n_resamples": 0}, "positive integer"),
])
def test_bad_options_are_config_errors(kwargs, match):
    y, s = _binary(20)
    with pytest.raises(ConfigError, match=match):
        bootstrap_ci(y, s, **kwargs)


def test_docstring_examples():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert doctest.testmod(bootstrap).failed == 0
