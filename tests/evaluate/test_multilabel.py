"""Multi-label metrics: scikit-learn as the oracle on random data made here, and undefined
values always None with a reason that names the label."""

import doctest
import json
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from deepfit.evaluate import multilabel
from deepfit.evaluate.multilabel import multilabel_metrics

NAMES = ["edema", "effusion", "nodule", "mass", "hernia"]
KEYS = ("roc_auc", "average_precision", "f1", "precision", "recall")
PRF = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}


def make_data(n=300, seed=0, prevalence=(0.4, 0.3, 0.2, 0.1, 0.05)):
    """0/1 labels of varying prevalence and probabilities that track them, with noise."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(prevalence))) < np.array(prevalence)).astype(int)
    logits = 1.5 * (2 * y - 1) + rng.normal(scale=1.5, size=y.shape)
    return y, 1 / (1 + np.exp(-logits))


def sk(fn, y, x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns on 0 / 0; the tests check values
        return fn(y, x, **kw)


def reasons_match_nones(m):
    """Every None in the output has a reason under "undefined", and every reason a None."""
    nones = set()

    def walk(value, path):
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, [*path, key])
        elif value is None:
            nones.add(".".join(path[1:] if path[0] == "per_label" else path))

    walk({k: v for k, v in m.items() if k != "undefined"}, [])
    assert nones == set(m["undefined"])
    json.dumps(m, allow_nan=False)  # no NaN or inf anywhere


def test_per_label_matches_sklearn():
    y, s = make_data()
    m = multilabel_metrics(y, s, NAMES)
    pred = (s >= 0.5).astype(int)
    auc = sk(skm.roc_auc_score, y, s, average=None)
    ap = sk(skm.average_precision_score, y, s, average=None)
    prf = {k: sk(fn, y, pred, average=None) for k, fn in PRF.items()}
    assert m["n"] == 300 and list(m["per_label"]) == NAMES
    assert set(m["undefined"]) == {"samples_f1"}  # every label has both classes
    for j, name in enumerate(NAMES):
        row = m["per_label"][name]
        assert row["roc_auc"] == pytest.approx(auc[j])
        assert row["average_precision"] == pytest.approx(ap[j])
        for key in PRF:
            assert row[key] == pytest.approx(prf[key][j])
        assert row["support"] == int(y[:, j].sum()) and isinstance(row["support"], int)
        assert row["prevalence"] == pytest.approx(y[:, j].mean())
    reasons_match_nones(m)


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_averages_match_sklearn(average):
    y, s = make_data(seed=1)
    m = multilabel_metrics(y, s, NAMES)
    pred = (s >= 0.5).astype(int)
    assert m[average]["roc_auc"] == pytest.approx(sk(skm.roc_auc_score, y, s, average=average))
    assert m[average]["average_precision"] == pytest.approx(
        sk(skm.average_precision_score, y, s, average=average))
    for key, fn in PRF.items():
        assert m[average][key] == pytest.approx(sk(fn, y, pred, average=average))
    if average == "macro":  # every label defined: both macros agree
        assert {k: m["macro_defined"][k] for k in KEYS} == m["macro"]
        assert m["macro_defined"]["labels_used"] == dict.fromkeys(KEYS, 5)


def test_subset_accuracy_hamming_and_samples_f1():
    y, s = make_data(seed=2)
    y[:, 0] = 1  # every sample has a label, so each sample's F1 is defined
    m = multilabel_metrics(y, s, NAMES)
    pred = (s >= 0.5).astype(int)
    assert m["subset_accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["hamming_loss"] == pytest.approx(skm.hamming_loss(y, pred))
    assert m["samples_f1"] == pytest.approx(sk(skm.f1_score, y, pred, average="samples"))
    assert m["samples_f1_defined"] == {"f1": m["samples_f1"], "samples_used": 300}
    reasons_match_nones(m)


def test_samples_f1_undefined_when_a_sample_is_empty_and_predicted_empty():
    y, s = make_data(seed=3)
    m = multilabel_metrics(y, s, NAMES)
    pred = (s >= 0.5).astype(int)
    empty = int(np.sum((y.sum(1) == 0) & (pred.sum(1) == 0)))
    assert empty > 0  # the data must hold the case under test
    assert m["samples_f1"] is None
    assert f"{empty} of 300 samples" in m["undefined"]["samples_f1"]
    # The mean over the other samples is scikit-learn's, with 0 / 0 as NaN (then skipped).
    assert m["samples_f1_defined"]["f1"] == pytest.approx(
        sk(skm.f1_score, y, pred, average="samples", zero_division=np.nan))
    assert m["samples_f1_defined"]["samples_used"] == 300 - empty
    reasons_match_nones(m)


def test_per_label_thresholds():
    y, s = make_data(seed=4)
    thr = np.array([0.3, 0.5, 0.6, 0.2, 0.8])
    m = multilabel_metrics(y, s, NAMES, threshold=thr)
    pred = (s >= thr).astype(int)
    for key, fn in PRF.items():
        got = [m["per_label"][name][key] for name in NAMES]
        assert got == pytest.approx(sk(fn, y, pred, average=None))
        assert m["micro"][key] == pytest.approx(sk(fn, y, pred, average="micro"))
    assert m["hamming_loss"] == pytest.approx(skm.hamming_loss(y, pred))
    assert m["subset_accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    # Threshold-free metrics do not move; a list works as well as an array.
    plain = multilabel_metrics(y, s, NAMES)
    assert m["macro"]["roc_auc"] == plain["macro"]["roc_auc"]
    assert m["macro"]["f1"] != plain["macro"]["f1"]
    assert multilabel_metrics(y, s, NAMES, threshold=list(thr)) == m
    assert multilabel_metrics(y, s, NAMES, threshold=np.full(5, 0.5)) == plain


def test_label_without_positives():
    y, s = make_data(seed=5)
    y[:, 4] = 0
    s[:, 4] = np.minimum(s[:, 4], 0.4)  # never predicted either
    m = multilabel_metrics(y, s, NAMES)
    pred = (s >= 0.5).astype(int)
    row = m["per_label"]["hernia"]
    assert row["support"] == 0 and row["prevalence"] == 0.0
    assert all(row[k] is None for k in KEYS)
    assert m["undefined"]["hernia.roc_auc"] == (
        "ROC-AUC undefined for label 'hernia': y_true has no positives")
    for key in KEYS:
        assert m["macro"][key] is None
        assert "'hernia'" in m["undefined"][f"macro.{key}"]
        assert m["macro_defined"]["labels_used"][key] == 4
    # macro_defined: the mean over the other four labels.
    assert m["macro_defined"]["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y[:, :4], s[:, :4], average="macro"))
    assert m["macro_defined"]["average_precision"] == pytest.approx(
        skm.average_precision_score(y[:, :4], s[:, :4], average="macro"))
    for key, fn in PRF.items():  # scikit-learn skips NaN labels in its macro
        assert m["macro_defined"][key] == pytest.approx(
            sk(fn, y, pred, average="macro", zero_division=np.nan))
    # A label without positives has weight 0, so the weighted mean is still defined.
    assert m["weighted"]["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y[:, :4], s[:, :4], average="weighted"))
    for key, fn in PRF.items():
        assert m["weighted"][key] == pytest.approx(sk(fn, y, pred, average="weighted"))
    assert m["micro"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s, average="micro"))
    reasons_match_nones(m)


def test_label_without_negatives_and_two_bad_labels():
    y, s = make_data(seed=6)
    y[:, 0] = 1
    y[:, 3] = 0
    m = multilabel_metrics(y, s, NAMES)
    assert m["per_label"]["edema"]["roc_auc"] is None
    assert m["undefined"]["edema.roc_auc"].endswith("y_true has no negatives")
    assert m["per_label"]["edema"]["average_precision"] == 1.0  # precision 1 at every cut
    assert "'edema', 'mass'" in m["undefined"]["macro.roc_auc"]
    assert m["macro_defined"]["labels_used"]["roc_auc"] == 3
    assert m["weighted"]["roc_auc"] is None  # edema has positives, so it counts
    assert "'edema'" in m["undefined"]["weighted.roc_auc"]
    assert "'mass'" not in m["undefined"]["weighted.roc_auc"]
    reasons_match_nones(m)


def test_nothing_positive_at_all():
    y = np.zeros((20, 3), dtype=int)
    s = np.full((20, 3), 0.1)
    m = multilabel_metrics(y, s, ["a", "b", "c"])
    assert all(m[scope][k] is None for scope in ("macro", "micro", "weighted") for k in KEYS)
    assert all(m["macro_defined"][k] is None for k in KEYS)
    assert "no label has positives" in m["undefined"]["weighted.f1"]
    assert m["samples_f1"] is None and m["samples_f1_defined"] == {"f1": None, "samples_used": 0}
    assert m["subset_accuracy"] == 1.0 and m["hamming_loss"] == 0.0
    reasons_match_nones(m)


def test_bool_labels_and_single_label():
    y, s = make_data(seed=7)
    as_int = multilabel_metrics(y[:, :1], s[:, :1], ["edema"])
    assert multilabel_metrics(y[:, :1].astype(bool), s[:, :1], ["edema"]) == as_int
    assert as_int["macro"] == as_int["weighted"] == {
        k: as_int["per_label"]["edema"][k] for k in KEYS}


@pytest.mark.parametrize("change, message", [
    (lambda y, s, n, t: (y[:, 0], s, n, t), r"shape \(N, L\)"),
    (lambda y, s, n, t: (y, s[:, :4], n, t), r"shape \(N, L\)"),
    (lambda y, s, n, t: (y, s, n[:4], t), "5 distinct label names"),
    (lambda y, s, n, t: (y, s, [*n[:4], n[0]], t), "5 distinct label names"),
    (lambda y, s, n, t: (y[:0], s[:0], n, t), "at least one sample"),
    (lambda y, s, n, t: (y * 2, s, n, t), "only 0 and 1"),
    (lambda y, s, n, t: (y, s * 2, n, t), r"probabilities in \[0, 1\]"),
    (lambda y, s, n, t: (y, np.where(s > 0.5, np.nan, s), n, t), r"probabilities in \[0, 1\]"),
    (lambda y, s, n, t: (y, s, n, [0.5] * 4), "array of 5 floats"),
    (lambda y, s, n, t: (y, s, n, np.full((5, 1), 0.5)), "array of 5 floats"),
    (lambda y, s, n, t: (y, s, n, 1.5), r"threshold must lie in \[0, 1\]"),
])
def test_bad_input_raises(change, message):
    y, s = make_data(n=30, seed=8)
    with pytest.raises(ValueError, match=message):
        multilabel_metrics(*change(y, s, NAMES, 0.5))


def test_doctest():
    assert doctest.testmod(multilabel).failed == 0
