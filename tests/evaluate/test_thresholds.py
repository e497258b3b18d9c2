"""Oracle tests: the tuned threshold equals a brute-force search with scikit-learn metrics."""

import doctest
import functools
import inspect
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from deepfit.errors import ConfigError
from deepfit.evaluate import thresholds
from deepfit.evaluate.thresholds import OBJECTIVES, tune_threshold


def _data(kind: str):
    rng = np.random.default_rng({"continuous": 0, "ties": 1, "small": 2}[kind])
    n = {"continuous": 150, "ties": 300, "small": 9}[kind]
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    s = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    if kind == "ties":
        s = np.round(s, 1)  # few distinct scores: many rows share each candidate
    return y, s


def _candidates(s):
    return np.r_[np.unique(s), np.nextafter(s.max(), np.inf)]


def _brute(y, s, fn):
    """Each candidate's value with scikit-learn, predicting positive when score >= t."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([fn(y, (s >= t).astype(int)) for t in _candidates(s)])


def _sens(y, p):
    return skm.recall_score(y, p)


def _spec(y, p):
    return skm.recall_score(y, p, pos_label=0)


BRUTE = {
    "f1": lambda y, p: skm.f1_score(y, p, zero_division=0),
    "fbeta": lambda y, p: skm.fbeta_score(y, p, beta=2.0, zero_division=0),
    "youden": lambda y, p: _sens(y, p) + _spec(y, p) - 1,
    "sensitivity": _sens,
    "specificity": _spec,
}


@functools.lru_cache(maxsize=None)
def _brute_cached(kind, name):
    # scikit-learn takes ~1 ms a call: score each data set's candidates once per metric.
    y, s = _data(kind)
    return _brute(y, s, BRUTE[name])


def _check_choice(result, y, s, best_mask):
    """The threshold predicts as an optimal candidate does; it is 0.5 (flagged undetermined)
    when 0.5 predicts as an optimal candidate, else halfway between the two scores around it,
    and no optimal threshold lies nearer 0.5."""
    cands = _candidates(s)
    at = lambda t: cands[min(np.searchsorted(cands, t), len(cands) - 1)]  # noqa: E731
    t = result["threshold"]
    assert at(t) in cands[best_mask]
    optimal_at_half = at(0.5) in cands[best_mask]
    assert result["undetermined"] is optimal_at_half
    if optimal_at_half:
        assert t == 0.5 and "cannot choose" in result["reason"]
        return
    below, above = s[s < t], s[s >= t]
    lo = below.max() if len(below) else 0.0
    hi = above.min() if len(above) else 1.0
    assert t == pytest.approx((lo + hi) / 2) and lo < t <= hi
    assert result["interval"][0] <= lo and result["interval"][1] >= (
        hi if len(above) else cands[-1])
    # No optimal candidate interval is nearer 0.5 than the chosen one.
    lows = np.r_[0.0, cands[:-1]]
    gaps = np.minimum(np.abs(lows - 0.5), np.abs(cands - 0.5))[best_mask]
    chosen_gap = min(abs(result["interval"][0] - 0.5), abs(result["interval"][1] - 0.5))
    assert chosen_gap <= gaps.min() + 1e-12


@pytest.mark.parametrize("kind", ["continuous", "ties", "small"])
@pytest.mark.parametrize("objective", ["f1", "fbeta", "youden"])
def test_maximising_objectives_match_brute_force(kind, objective):
    y, s = _data(kind)
    result = tune_threshold(y, s, objective, beta=2.0)
    values = _brute_cached(kind, objective)
    _check_choice(result, y, s, values >= values.max() - 1e-12)
    assert result["value"] == pytest.approx(values.max())
    assert result["value"] == pytest.approx(
        BRUTE[objective](y, (s >= result["threshold"]).astype(int)))
    cands = _candidates(s)
    at_half = cands[min(np.searchsorted(cands, 0.5), len(cands) - 1)]
    assert result["value_at_default"] == pytest.approx(values[cands == at_half][0])
    assert result["objective"] == objective


@pytest.mark.parametrize("kind", ["continuous", "ties", "small"])
@pytest.mark.parametrize("target", [0.5, 0.8, 0.95, 1.0])
def test_sensitivity_target_is_met_at_the_highest_threshold(kind, target):
    y, s = _data(kind)
    result = tune_threshold(y, s, "sensitivity", target=target)
    sens = _brute_cached(kind, "sensitivity")
    cands = _candidates(s)
    _check_choice(result, y, s, cands == cands[sens >= target].max())
    assert result["value"] == pytest.approx(_sens(y, (s >= result["threshold"]).astype(int)))
    assert result["value"] >= target
    # Of all thresholds meeting the target, it has the best specificity.
    assert result["metrics"]["specificity"] == pytest.approx(
        _brute_cached(kind, "specificity")[sens >= target].max())


@pytest.mark.parametrize("kind", ["continuous", "ties", "small"])
@pytest.mark.parametrize("target", [0.5, 0.8, 0.95, 1.0])
def test_specificity_target_is_met_at_the_lowest_threshold(kind, target):
    y, s = _data(kind)
    result = tune_threshold(y, s, "specificity", target=target)
    spec = _brute_cached(kind, "specificity")
    cands = _candidates(s)
    _check_choice(result, y, s, cands == cands[spec >= target].min())
    assert result["value"] == pytest.approx(_spec(y, (s >= result["threshold"]).astype(int)))
    assert result["value"] >= target
    assert result["metrics"]["recall"] == pytest.approx(
        _brute_cached(kind, "sensitivity")[spec >= target].max())


def test_specificity_one_when_a_negative_has_the_top_score():
    y, s = np.array([1, 0, 1, 0]), np.array([0.2, 0.4, 0.6, 0.9])
    result = tune_threshold(y, s, "specificity", target=1.0)
    assert result["threshold"] > 0.9  # above every score: nothing is predicted positive
    assert result["threshold"] == pytest.approx(0.95)  # halfway between 0.9 and 1
    assert result["metrics"]["recall"] == 0.0 and result["value"] == 1.0


def test_perfectly_separated_validation_keeps_one_half_and_says_it_cannot_choose():
    # breast_cancer's case: every threshold from the top negative (0.12) to the lowest
    # positive (0.93) is perfect; the closest score to 0.5 (0.93) is no better than 0.5.
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.01, 0.05, 0.12, 0.93, 0.97, 0.99])
    for objective in ("f1", "youden"):
        result = tune_threshold(y, s, objective)
        assert result["threshold"] == 0.5 and result["undetermined"] is True
        assert result["interval"] == [0.12, 0.93] and result["value"] == 1.0
        assert "separates the classes perfectly" in result["reason"]
        assert "[0.12, 0.93]" in result["reason"]


def test_perfect_separation_away_from_one_half_takes_the_middle_of_the_gap():
    y = np.array([0, 0, 1, 1])
    result = tune_threshold(y, np.array([0.1, 0.2, 0.3, 0.4]), "f1")
    assert result["threshold"] == pytest.approx(0.25) and result["undetermined"] is False
    assert result["interval"] == [0.2, 0.3] and "reason" not in result
    assert result["value"] == 1.0 and result["value_at_default"] == 0.0


def test_ties_go_to_the_interval_nearest_one_half():
    y = np.array([0, 1, 0, 1])
    # Youden's J is 0.5 on (0.1, 0.3] and on (0.7, 0.9], both 0.2 from 0.5 (though not in
    # floating point): the lower one, halfway between its scores.
    assert tune_threshold(y, np.array([0.1, 0.3, 0.7, 0.9]), "youden")["threshold"] == \
        pytest.approx(0.2)
    # ... on (0.05, 0.1] and (0.35, 0.6], which holds 0.5: undetermined.
    r = tune_threshold(y, np.array([0.05, 0.1, 0.35, 0.6]), "youden")
    assert r["threshold"] == 0.5 and r["undetermined"] and r["interval"] == [0.35, 0.6]
    assert "same validation predictions" in r["reason"]
    # On (0.1, 0.3] and (0.5, 0.7]: the second starts just above 0.5, so it is the nearer.
    assert tune_threshold(y, np.array([0.1, 0.3, 0.5, 0.7]), "youden")["threshold"] == \
        pytest.approx(0.6)


def test_curve_is_subsampled_sorted_and_holds_the_choice():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 5000)
    s = rng.uniform(size=5000)
    result = tune_threshold(y, s, "fbeta", beta=0.5)
    curve = result["curve"]
    assert set(curve) == {"threshold", "f1", "precision", "recall", "specificity", "youden",
                          "fbeta"}
    assert all(len(v) == len(curve["threshold"]) for v in curve.values())
    assert 150 <= len(curve["threshold"]) <= thresholds.CURVE_POINTS
    assert np.all(np.diff(curve["threshold"]) > 0)
    assert result["interval"][1] in curve["threshold"]
    i = len(curve["threshold"]) // 3
    pred = (s >= curve["threshold"][i]).astype(int)
    assert curve["precision"][i] == pytest.approx(skm.precision_score(y, pred))
    assert curve["f1"][i] == pytest.approx(skm.f1_score(y, pred))
    assert curve["youden"][i] == pytest.approx(_sens(y, pred) + _spec(y, pred) - 1)


@pytest.mark.parametrize("kwargs, match", [
    ({"objective": "f2"}, "unknown threshold objective 'f2'"),
    ({"objective": "youdens"}, "did you mean 'youden'"),
    ({"objective": "sensitivity"}, "needs a target"),
    ({"objective": "specificity", "target": 0.0}, r"in \(0, 1\]"),
    ({"objective": "sensitivity", "target": 1.5}, r"in \(0, 1\]"),
    ({"objective": "f1", "target": 0.9}, "only used with"),
    ({"objective": "fbeta", "beta": 0.0}, "beta > 0"),
])
def test_bad_options_are_config_errors(kwargs, match):
    y, s = _data("small")
    with pytest.raises(ConfigError, match=match):
        tune_threshold(y, s, **kwargs)


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_is_a_config_error(label):
    with pytest.raises(ConfigError, match="both classes"):
        tune_threshold(np.full(5, label), np.linspace(0, 1, 5))


def test_bad_arrays_are_value_errors():
    with pytest.raises(ValueError, match="same length"):
        tune_threshold(np.array([0, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="0 .negative. and 1"):
        tune_threshold(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="NaN"):
        tune_threshold(np.array([0, 1]), np.array([0.1, np.nan]))


def test_takes_arrays_not_split_names():
    # The caller picks the (validation) rows; no argument here can select a split.
    params = list(inspect.signature(tune_threshold).parameters)
    assert params == ["y_true", "scores", "objective", "beta", "target"]
    assert OBJECTIVES == ("f1", "fbeta", "youden", "sensitivity", "specificity")


def test_docstring_examples():
    assert doctest.testmod(thresholds).failed == 0
