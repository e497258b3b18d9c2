"""Confusion-matrix rates and score metrics: scikit-learn as the oracle where it has the metric,
hand-computed values where it does not, and undefined values always None with a reason."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from deepfit.evaluate.rates import (calibration_curve_data, confusion_rates,
                                    regression_extras, score_metrics)

RATES = ("prevalence", "accuracy", "balanced_accuracy", "tpr", "tnr", "ppv", "npv", "fpr",
         "fnr", "fdr", "for", "lr_plus", "lr_minus", "dor", "informedness", "markedness", "f1",
         "f0.5", "f2", "mcc", "fowlkes_mallows", "threat_score", "prevalence_threshold")
PROPORTIONS = ("prevalence", "accuracy", "balanced_accuracy", "tpr", "tnr", "ppv", "npv", "fpr",
               "fnr", "fdr", "for", "f1", "f0.5", "f2", "fowlkes_mallows", "threat_score",
               "prevalence_threshold")


def labels_from(cm):
    """The (y_true, y_pred) pairs a confusion matrix counts, for feeding scikit-learn."""
    k = len(cm)
    pairs = [(i, j) for i in range(k) for j in range(k) for _ in range(int(cm[i][j]))]
    y_true, y_pred = zip(*pairs)
    return np.array(y_true), np.array(y_pred)


def test_binary_table_by_hand():
    # Positive class "sick": TP 35, FN 5, FP 10, TN 50; 100 samples.
    r = confusion_rates(np.array([[50, 10], [5, 35]]), ["healthy", "sick"])
    expected = {
        "tp": 35, "fp": 10, "fn": 5, "tn": 50, "support": 40,
        "prevalence": 40 / 100, "accuracy": 85 / 100,
        "tpr": 35 / 40, "tnr": 50 / 60, "ppv": 35 / 45, "npv": 50 / 55,
        "fpr": 10 / 60, "fnr": 5 / 40, "fdr": 10 / 45, "for": 5 / 55,
        "balanced_accuracy": (0.875 + 50 / 60) / 2,   # 0.854167
        "lr_plus": 5.25,                               # 0.875 / (1/6)
        "lr_minus": 0.15,                              # 0.125 / (5/6)
        "dor": 35.0,                                   # 35 * 50 / (10 * 5)
        "informedness": 17 / 24,                       # 7/8 + 5/6 - 1
        "markedness": 68 / 99,                         # 7/9 + 10/11 - 1
        "f1": 70 / 85,                                 # 2TP / (2TP + FP + FN)
        "f0.5": 43.75 / 55,                            # 1.25 TP / (1.25 TP + 0.25 FN + FP)
        "f2": 175 / 205,                               # 5 TP / (5 TP + 4 FN + FP)
        "mcc": 0.6975184488828855,                     # 1700 / sqrt(40 * 60 * 45 * 55)
        "fowlkes_mallows": 0.8249579113843054,         # sqrt(7/9 * 7/8) = 7 / sqrt(72)
        "threat_score": 35 / 50,
        "prevalence_threshold": 0.303832434700687,     # (sqrt(7/48) - 1/6) / (17/24)
    }
    assert set(r["binary"]) == set(expected)
    for key, value in expected.items():
        assert r["binary"][key] == pytest.approx(value, rel=1e-12), key
    assert r["binary"] == r["per_class"]["sick"]
    assert r["undefined"] == {}
    assert set(r) == {"per_class", "macro", "weighted", "micro", "binary", "undefined"}
    assert set(r["micro"]) == {"tpr", "ppv", "f1", "f0.5", "f2"}
    assert set(r["macro"]) == set(RATES) == set(r["weighted"])


def test_negative_class_is_the_mirror_image():
    r = confusion_rates(np.array([[50, 10], [5, 35]]), ["healthy", "sick"])
    neg, pos = r["per_class"]["healthy"], r["binary"]
    for a, b in (("tpr", "tnr"), ("ppv", "npv"), ("fpr", "fnr"), ("fdr", "for")):
        assert neg[a] == pytest.approx(pos[b]) and neg[b] == pytest.approx(pos[a])
    assert neg["mcc"] == pytest.approx(pos["mcc"])
    assert neg["dor"] == pytest.approx(pos["dor"])
    # TPR 50/60, FPR 5/40: (sqrt(5/48) - 1/8) / (17/24)
    assert neg["prevalence_threshold"] == pytest.approx(0.2791745113185196)
    assert r["macro"]["tpr"] == pytest.approx((50 / 60 + 35 / 40) / 2)
    assert r["weighted"]["tpr"] == pytest.approx(0.85)  # weighted recall is the accuracy


@pytest.fixture
def multi_cm():
    rng = np.random.default_rng(1)
    return rng.integers(1, 40, size=(4, 4)) + np.diag([30, 20, 40, 10])


@pytest.mark.parametrize("beta, key", [(1.0, "f1"), (0.5, "f0.5"), (2.0, "f2")])
def test_precision_recall_fbeta_equal_sklearn(multi_cm, beta, key):
    names = ["a", "b", "c", "d"]
    r = confusion_rates(multi_cm, names)
    y, pred = labels_from(multi_cm)
    p, rec, f, _ = skm.precision_recall_fscore_support(y, pred, beta=beta)
    for i, name in enumerate(names):
        row = r["per_class"][name]
        assert (row["ppv"], row["tpr"], row[key]) == pytest.approx((p[i], rec[i], f[i]))
        assert row["fowlkes_mallows"] == pytest.approx(math.sqrt(p[i] * rec[i]))
    for avg in ("macro", "weighted", "micro"):
        p, rec, f, _ = skm.precision_recall_fscore_support(y, pred, beta=beta, average=avg)
        assert (r[avg]["ppv"], r[avg]["tpr"], r[avg][key]) == pytest.approx((p, rec, f)), avg
    assert r["micro"][key] == pytest.approx(skm.accuracy_score(y, pred))


def test_jaccard_balanced_accuracy_and_one_vs_rest_mcc_equal_sklearn(multi_cm):
    names = ["a", "b", "c", "d"]
    r = confusion_rates(multi_cm, names)
    y, pred = labels_from(multi_cm)
    jac = skm.jaccard_score(y, pred, average=None)
    for i, name in enumerate(names):
        row = r["per_class"][name]
        assert row["threat_score"] == pytest.approx(jac[i])
        assert row["mcc"] == pytest.approx(skm.matthews_corrcoef(y == i, pred == i))
        assert row["balanced_accuracy"] == pytest.approx(
            skm.balanced_accuracy_score(y == i, pred == i))
    for avg in ("macro", "weighted"):
        assert r[avg]["threat_score"] == pytest.approx(skm.jaccard_score(y, pred, average=avg))
    # Multi-class balanced accuracy in scikit-learn is the macro recall.
    assert r["macro"]["tpr"] == pytest.approx(skm.balanced_accuracy_score(y, pred))


def test_binary_mcc_balanced_accuracy_and_likelihood_ratios_equal_sklearn():
    cm = np.array([[70, 12], [9, 29]])
    b = confusion_rates(cm, ["no", "yes"])["binary"]
    y, pred = labels_from(cm)
    assert b["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert b["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert b["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    lr_plus, lr_minus = skm.class_likelihood_ratios(y, pred)
    assert (b["lr_plus"], b["lr_minus"]) == pytest.approx((lr_plus, lr_minus))
    assert b["dor"] == pytest.approx(lr_plus / lr_minus)


def test_never_predicted_class_has_no_ppv_and_macro_names_it():
    cm = np.array([[5, 0, 1], [2, 0, 3], [0, 0, 4]])
    r = confusion_rates(cm, ["a", "b", "c"])
    assert r["per_class"]["b"]["ppv"] is None
    assert r["undefined"]["b.ppv"] == "PPV undefined: no predicted positives (TP + FP = 0)"
    assert r["per_class"]["b"]["f1"] == 0.0  # defined: b is present, just never found
    assert r["per_class"]["b"]["markedness"] is None
    assert "no predicted positives" in r["undefined"]["b.markedness"]
    for scope in ("macro", "weighted"):
        assert r[scope]["ppv"] is None
        assert "class 'b'" in r["undefined"][f"{scope}.ppv"]
        assert "'a'" not in r["undefined"][f"{scope}.ppv"]
    assert r["macro"]["f1"] == pytest.approx(skm.f1_score(*labels_from(cm), average="macro"))
    assert r["micro"]["ppv"] == pytest.approx(9 / 15)  # micro precision = accuracy


def test_absent_class_leaves_macro_but_not_weighted_recall_undefined():
    cm = np.array([[5, 2, 0], [1, 6, 0], [0, 0, 0]])
    r = confusion_rates(cm, ["a", "b", "c"])
    assert r["per_class"]["c"]["tpr"] is None and r["per_class"]["c"]["f1"] is None
    assert "TP + FN + FP = 0" in r["undefined"]["c.f1"]
    assert r["macro"]["tpr"] is None and "class 'c'" in r["undefined"]["macro.tpr"]
    # c has support 0, so weight 0: the weighted recall is defined and equals scikit-learn's.
    y, pred = labels_from(cm)
    assert r["weighted"]["tpr"] == pytest.approx(skm.recall_score(y, pred, average="weighted"))


def test_perfect_classifier_has_no_lr_plus_or_dor():
    r = confusion_rates(np.array([[10, 0], [0, 5]]), ["no", "yes"])
    b, why = r["binary"], r["undefined"]
    assert b["lr_plus"] is None and "FPR = 0" in why["binary.lr_plus"]
    assert why["yes.lr_plus"] == why["binary.lr_plus"]
    assert b["dor"] is None and "FP and FN = 0" in why["binary.dor"]
    assert b["lr_minus"] == 0.0 and b["mcc"] == 1.0 and b["prevalence_threshold"] == 0.0


def test_constant_predictions_leave_mcc_undefined():
    r = confusion_rates(np.array([[0, 7], [0, 3]]), ["no", "yes"])
    assert r["binary"]["mcc"] is None  # scikit-learn says 0; it is 0 / 0
    assert "no predicted negatives" in r["undefined"]["binary.mcc"]
    assert r["binary"]["tnr"] == 0.0 and r["binary"]["lr_minus"] is None
    assert "TNR = 0" in r["undefined"]["binary.lr_minus"]


def test_fbeta_keys_follow_the_betas():
    r = confusion_rates(np.array([[3, 1], [1, 3]]), ["x", "y"], betas=(0.5, 3))
    assert {"f1", "f0.5", "f3"} <= set(r["binary"]) and "f2" not in r["binary"]
    with pytest.raises(ValueError):
        confusion_rates(np.array([[3, 1], [1, 3]]), ["x", "y"], betas=(0,))


@pytest.mark.parametrize("cm, names", [
    (np.array([[1, 2, 3], [4, 5, 6]]), ["a", "b"]),
    (np.array([[1, -1], [0, 2]]), ["a", "b"]),
    (np.array([[1.5, 1], [0, 2]]), ["a", "b"]),
    (np.array([[1, 1], [0, 2]]), ["a", "a"]),
    (np.array([[4]]), ["a"]),
])
def test_bad_confusion_matrices_are_refused(cm, names):
    with pytest.raises(ValueError):
        confusion_rates(cm, names)


def _check_no_nan(r):
    tables = {**{f"class {n}": row for n, row in r["per_class"].items()},
              **{s: r[s] for s in ("macro", "weighted", "micro", "binary") if s in r}}
    for table_name, table in tables.items():
        prefix = table_name[len("class "):] if table_name.startswith("class ") else table_name
        for key, value in table.items():
            reason = r["undefined"].get(f"{prefix}.{key}")
            if value is None:
                assert reason, (prefix, key)
                continue
            assert reason is None, (prefix, key)
            assert isinstance(value, (int, float)) and math.isfinite(value), (prefix, key)
            if key in PROPORTIONS:
                assert -1e-12 <= value <= 1 + 1e-12, (prefix, key, value)
            if key in ("mcc", "informedness", "markedness"):
                assert -1 - 1e-12 <= value <= 1 + 1e-12, (prefix, key, value)
    assert len(r["undefined"]) == sum(v is None for t in tables.values() for v in t.values())


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays
except ImportError:  # pragma: no cover - hypothesis is a dev extra
    def test_no_nan_or_inf_for_random_matrices():
        rng = np.random.default_rng(0)
        for _ in range(300):
            k = int(rng.integers(2, 5))
            cm = rng.integers(0, 6, size=(k, k)) * (rng.random((k, k)) < 0.6)
            _check_no_nan(confusion_rates(cm, [f"c{i}" for i in range(k)]))
else:
    @settings(max_examples=300, deadline=None)
    @given(st.integers(2, 4).flatmap(lambda k: arrays(
        np.int64, (k, k), elements=st.sampled_from([0, 0, 0, 1, 2, 7, 1000]))))
    def test_no_nan_or_inf_for_random_matrices(cm):
        _check_no_nan(confusion_rates(cm, [f"c{i}" for i in range(len(cm))]))


# ----------------------------------------------------------------------------- score metrics

@pytest.fixture
def multi_scores():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def test_binary_brier_and_auc_equal_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    m = score_metrics(y, p, ["neg", "pos"])
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert set(m) == {"n", "n_bins", "brier", "ece", "roc_auc", "undefined"}
    two_columns = score_metrics(y, np.c_[1 - p, p], ["neg", "pos"])
    assert two_columns.pop("undefined") == m.pop("undefined") == {}
    assert two_columns == pytest.approx(m)


def test_multiclass_brier_and_auc_equal_sklearn(multi_scores):
    y, probs = multi_scores
    m = score_metrics(y, probs, ["a", "b", "c"])
    onehot = np.eye(3)[y]
    assert m["brier"] == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, probs, labels=[0, 1, 2]))
    for mc in ("ovr", "ovo"):
        for avg in ("macro", "weighted"):
            expected = skm.roc_auc_score(y, probs, multi_class=mc, average=avg)
            assert m[f"roc_auc_{mc}_{avg}"] == pytest.approx(expected)
    assert m["undefined"] == {}


def test_auc_undefined_when_a_class_is_absent(multi_scores):
    y, probs = multi_scores
    keep = y != 1
    m = score_metrics(y[keep], probs[keep], ["a", "b", "c"])
    for key in ("roc_auc_ovr_macro", "roc_auc_ovr_weighted", "roc_auc_ovo_macro",
                "roc_auc_ovo_weighted"):
        assert m[key] is None and "'b'" in m["undefined"][key]
    assert m["brier"] is not None and m["ece"] is not None
    single = score_metrics(np.zeros(5, int), np.full(5, 0.3), ["neg", "pos"])
    assert single["roc_auc"] is None and "'pos'" in single["undefined"]["roc_auc"]


def test_ece_by_hand():
    # Top-class confidences 0.9, 0.9, 0.6, 0.8 (the last is p = 0.2 of a negative); with 2
    # bins all fall in (0.5, 1]: mean confidence 0.8, accuracy 3/4, so ECE = 0.05.
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.9, 0.6, 0.2])
    assert score_metrics(y, p, ["n", "p"], n_bins=2)["ece"] == pytest.approx(0.05)


def test_ece_near_zero_when_calibrated_and_large_when_overconfident():
    rng = np.random.default_rng(4)
    n = 100_000
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(int)  # P(y = 1 | p) = p: calibrated
    assert score_metrics(y, p, ["n", "p"])["ece"] < 0.01
    probs = rng.dirichlet(np.ones(4), size=n)
    y = (probs.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1)  # y ~ Categorical(probs)
    assert score_metrics(y, probs, list("abcd"))["ece"] < 0.01
    # Always 99 % sure, right half the time: ECE about 0.49.
    y = rng.integers(0, 2, n)
    sure = np.where(rng.uniform(size=n) < 0.5, 0.99, 0.01)
    assert score_metrics(y, sure, ["n", "p"])["ece"] == pytest.approx(0.49, abs=0.01)


def test_bad_scores_are_refused():
    with pytest.raises(ValueError):
        score_metrics(np.array([0, 1]), np.array([0.2, 1.3]), ["n", "p"])
    with pytest.raises(ValueError):
        score_metrics(np.array([0, 1]), np.array([[0.2, 0.2, 0.2]] * 2), ["a", "b", "c"])
    with pytest.raises(ValueError):
        score_metrics(np.array([0, 3]), np.array([[0.2, 0.3, 0.5]] * 2), ["a", "b", "c"])


def test_binary_calibration_curve_equals_sklearn():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 150)
    p = np.clip(0.4 * y + rng.uniform(0, 0.45, 150), 0, 1)
    c = calibration_curve_data(y, p, n_bins=10)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10)
    filled = [i for i, count in enumerate(c["count"]) if count]
    assert [c["observed_frequency"][i] for i in filled] == pytest.approx(prob_true)
    assert [c["mean_predicted"][i] for i in filled] == pytest.approx(prob_pred)
    assert c["kind"] == "positive_class" and sum(c["count"]) == 150
    assert c["bin_edges"] == pytest.approx(np.linspace(0, 1, 11))
    empty = [i for i, count in enumerate(c["count"]) if not count]
    assert empty  # p < 0.85 by construction, so the top bins are empty
    assert set(c["undefined"]) == {f"bin[{i}]" for i in empty}
    assert all(c["mean_predicted"][i] is None for i in empty)


def test_multiclass_calibration_curve_is_top_class_and_gives_the_ece(multi_scores):
    y, probs = multi_scores
    c = calibration_curve_data(y, probs, n_bins=10)
    assert c["kind"] == "top_class" and sum(c["count"]) == len(y)
    ece = sum(n * abs(f - m) for n, f, m in
              zip(c["count"], c["observed_frequency"], c["mean_predicted"]) if n) / len(y)
    assert ece == pytest.approx(score_metrics(y, probs, ["a", "b", "c"], n_bins=10)["ece"])


# ------------------------------------------------------------------------ regression extras

def test_regression_extras_equal_sklearn():
    rng = np.random.default_rng(6)
    y = rng.normal(5, 2, 100)
    pred = y + rng.normal(0.3, 0.5, 100)
    r = regression_extras(y, pred)
    assert r["median_ae"] == pytest.approx(skm.median_absolute_error(y, pred))
    assert r["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert r["explained_variance"] == pytest.approx(skm.explained_variance_score(y, pred))
    assert r["undefined"] == {} and r["n"] == 100


def test_regression_extras_undefined_cases():
    r = regression_extras(np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 2.5]))
    assert r["mape"] is None and r["undefined"]["mape"] == ("the target is 0 in 1 of 3 rows "
                                                            "(MAPE divides by it)")
    assert r["explained_variance"] is not None
    r = regression_extras(np.array([3.0, 3.0, 3.0]), np.array([2.0, 3.0, 4.0]))
    assert r["explained_variance"] is None and "variance 0" in r["undefined"]["explained_variance"]
    assert r["median_ae"] == 1.0


def test_mape_undefined_for_a_zero_target_that_came_back_through_float32():
    """Training stores the target as float32 z-scores: a true 0 decodes to ~1e-7, where
    scikit-learn's MAPE would be in the millions."""
    y = np.array([0.0, 0.0, 3.5, 6.76, 12.0])
    mean, std = y.mean(), y.std()
    decoded = ((y - mean) / std).astype(np.float32).astype(np.float64) * std + mean
    assert decoded[0] != 0 and skm.mean_absolute_percentage_error(decoded, decoded + 1) > 1e5
    r = regression_extras(decoded, decoded + 1)
    assert r["mape"] is None and "the target is 0 in 2 of 5 rows" in r["undefined"]["mape"]
    small = np.array([1e-3, 2e-3, 4e-3])  # small but true values keep scikit-learn's MAPE
    assert regression_extras(small, small * 1.1)["mape"] == pytest.approx(0.1)
