"""Oracle tests: every metric equals scikit-learn's on the same labels and scores."""

import numpy as np
import pytest
from sklearn import metrics as skm

from deepfit.evaluate import plots
from deepfit.evaluate.bootstrap import bootstrap_ci
from deepfit.evaluate.metrics import classification_metrics, regression_metrics
from deepfit.evaluate.predict import Predictions


@pytest.fixture
def binary():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    scores = np.clip(0.35 * y + rng.uniform(0, 0.65, 200), 0, 1)
    return y, scores


def test_binary_metrics_equal_sklearn(binary):
    y, s = binary
    pred = (s >= 0.5).astype(int)
    m = classification_metrics(y, s, ["neg", "pos"])
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, s))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, np.c_[1 - s, s]))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    report = skm.classification_report(y, pred, target_names=["neg", "pos"], output_dict=True)
    for name in ("neg", "pos"):
        assert m["per_class"][name]["precision"] == pytest.approx(report[name]["precision"])
        assert m["per_class"][name]["recall"] == pytest.approx(report[name]["recall"])
        assert m["per_class"][name]["f1"] == pytest.approx(report[name]["f1-score"])
        assert m["per_class"][name]["support"] == report[name]["support"]


def test_threshold_changes_the_predictions(binary):
    y, s = binary
    assert classification_metrics(y, s, ["n", "p"], threshold=0.9)["recall"] == pytest.approx(
        skm.recall_score(y, (s >= 0.9).astype(int)))


def test_multiclass_metrics_equal_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 150)
    logits = rng.normal(size=(150, 3)) + 2.0 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pred = p.argmax(1)
    m = classification_metrics(y, p, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert m["recall_weighted"] == pytest.approx(skm.recall_score(y, pred, average="weighted"))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    assert m["average_precision"] == pytest.approx(
        skm.average_precision_score(np.eye(3)[y], p, average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert "precision" not in m  # binary-only keys are absent, not zero


def test_undefined_values_are_none_with_a_reason():
    y = np.zeros(5, dtype=int)
    m = classification_metrics(y, np.full(5, 0.2), ["neg", "pos"])
    assert m["roc_auc"] is None and "only class 'neg'" in m["undefined"]["roc_auc"]
    assert m["precision"] is None and "precision" in m["undefined"]
    assert m["per_class"]["pos"]["recall"] is None


def test_regression_metrics_equal_sklearn():
    rng = np.random.default_rng(2)
    y = rng.normal(size=50)
    pred = y + rng.normal(scale=0.3, size=50)
    m = regression_metrics(y, pred)
    assert m["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert regression_metrics(np.ones(3), np.ones(3))["r2"] is None


def test_predictions_frame_has_names_and_probabilities(binary):
    y, s = binary
    frame = Predictions(np.arange(len(y)), s, "binary", ["neg", "pos"], y).to_frame()
    assert list(frame.columns) == ["id", "true", "predicted", "p_neg", "p_pos"]
    assert set(frame["predicted"]) <= {"neg", "pos"}
    assert np.allclose(frame["p_neg"] + frame["p_pos"], 1.0)


def test_plots_are_written_for_each_task(tmp_path, binary):
    y, s = binary
    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "train_accuracy": 0.5 + e / 20,
             "val_accuracy": 0.5 + e / 25} for e in range(1, 6)]
    m = classification_metrics(y, s, ["neg", "pos"])
    out = plots.plot_run(rows, "accuracy", 3, "binary", y, s, {"test": m}, ["neg", "pos"], tmp_path)
    assert list(out) == ["Learning curves", "Confusion matrix", "ROC curve", "Precision-recall curve"]
    assert all(p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG" for p in out.values())
    reg_rows = [{**r, "train_r2": 0.5, "val_r2": 0.4} for r in rows]
    out = plots.plot_run(reg_rows, "r2", 2, "regression", y.astype(float), s, {}, [], tmp_path / "r")
    assert list(out) == ["Learning curves", "Predicted vs true", "Residuals"]


def test_mcc_of_a_constant_prediction_is_undefined_not_zero():
    # scikit-learn's matthews_corrcoef says 0 here; the correlation is 0 / 0.
    y = np.array([0, 1, 0, 1, 1])
    m = classification_metrics(y, np.full(5, 0.9), ["n", "p"])
    assert skm.matthews_corrcoef(y, np.ones(5, int)) == 0.0
    assert m["mcc"] is None and "every prediction is class 'p'" in m["undefined"]["mcc"]
    m = classification_metrics(np.zeros(4, int), np.array([0.2, 0.7, 0.1, 0.9]), ["n", "p"])
    assert m["mcc"] is None and "every true label is class 'n'" in m["undefined"]["mcc"]
    ci = bootstrap_ci(y, np.full(5, 0.9), ["mcc"], n_resamples=20)
    assert ci["mcc"]["value"] is None and ci["mcc"]["low"] is None


def test_macro_and_weighted_means_are_undefined_where_a_class_is_0_over_0():
    """scikit-learn's zero_division=nan leaves a never-predicted class out of the mean; the
    headline must agree with the rate table (undefined) and keep scikit-learn's defined values."""
    from deepfit.evaluate.rates import confusion_rates

    names = [f"c{k}" for k in range(5)]
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    pred = np.array([0, 1, 1, 1, 0, 1, 0, 1, 1, 0])  # classes 2, 3 and 4 never predicted
    m = classification_metrics(y, np.eye(5)[pred] * 0.9 + 0.02, names)
    for key in ("precision_macro", "precision_weighted"):
        assert m[key] is None
        assert m["undefined"][key].startswith("3 of 5 classes were never predicted ('c2', 'c3',")
    rates = confusion_rates(np.array(m["confusion_matrix"]), names)
    assert rates["macro"]["ppv"] is None and rates["weighted"]["ppv"] is None
    # Defined where no class is 0 / 0: recall (every class present) and F1, as scikit-learn.
    for key, fn in (("recall_macro", skm.recall_score), ("recall_weighted", skm.recall_score),
                    ("f1_macro", skm.f1_score), ("f1_weighted", skm.f1_score)):
        assert m[key] == pytest.approx(fn(y, pred, average=key.split("_")[1]), rel=1e-12), key
    assert m["f1_macro"] == pytest.approx(rates["macro"]["f1"])
    # A class absent from the labels and never predicted: macro recall and F1 undefined,
    # weighted ones defined (weight 0), as in the rate table.
    m = classification_metrics(y[y < 4], np.eye(5)[y[y < 4]] * 0.9 + 0.02, names)
    assert m["recall_macro"] is None and m["f1_macro"] is None and m["precision_macro"] is None
    assert "1 of 5 classes were absent from the true labels ('c4')" in m["undefined"]["recall_macro"]
    assert m["recall_weighted"] == m["f1_weighted"] == m["precision_weighted"] == 1.0
    # Binary: the positive class never predicted.
    b = classification_metrics(np.array([0, 1, 1, 0]), np.full(4, 0.2), ["healthy", "sick"])
    assert b["precision"] is None
    assert b["undefined"]["precision"] == "the positive class 'sick' was never predicted (0 / 0)"
    assert b["recall"] == 0.0 and b["f1"] == 0.0
