"""Metrics from true labels and scores, named as in scikit-learn.

Values that cannot be computed (e.g. ROC-AUC when the split holds one class) are ``None``
with the reason under ``"undefined"``; they are never reported as a silent 0.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn import metrics as skm


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, class_names: list[str],
                           threshold: float = 0.5) -> dict[str, Any]:
    """Metrics for binary (``scores`` = P(positive), shape (N,)) or multi-class
    (``scores`` = probabilities, shape (N, K)) predictions.

    Example:
        >>> m = classification_metrics(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.4]), ["n", "p"])
        >>> round(m["accuracy"], 3), m["confusion_matrix"]
        (0.667, [[1, 0], [1, 1]])
    """
    y_true = np.asarray(y_true).astype(int)
    binary = scores.ndim == 1
    labels = list(range(len(class_names)))
    y_pred = (scores >= threshold).astype(int) if binary else scores.argmax(axis=1)
    undefined: dict[str, str] = {}
    out: dict[str, Any] = {"n": int(len(y_true))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero_division is handled explicitly below
        out["accuracy"] = float(skm.accuracy_score(y_true, y_pred))
        out["balanced_accuracy"] = _defined(
            lambda: skm.balanced_accuracy_score(y_true, y_pred), "balanced_accuracy", undefined)
        if binary:
            for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                             ("f1", skm.f1_score)):
                out[name] = _prf(fn, y_true, y_pred, name, undefined, "binary", labels,
                                 class_names)
        for avg in ("macro", "weighted"):
            for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                             ("f1", skm.f1_score)):
                out[f"{name}_{avg}"] = _prf(fn, y_true, y_pred, f"{name}_{avg}", undefined,
                                            avg, labels, class_names)
        out["mcc"] = _mcc(y_true, y_pred, class_names, undefined)
        present = np.unique(y_true)
        if len(present) < 2:
            reason = f"only class '{class_names[present[0]]}' is present"
            undefined.update(roc_auc=reason, average_precision=reason)
            out["roc_auc"] = out["average_precision"] = None
        elif binary:
            out["roc_auc"] = float(skm.roc_auc_score(y_true, scores))
            out["average_precision"] = float(skm.average_precision_score(y_true, scores))
        else:
            out["roc_auc"] = _defined(lambda: skm.roc_auc_score(
                y_true, scores, multi_class="ovr", average="macro", labels=labels),
                "roc_auc", undefined)
            onehot = np.eye(len(labels))[y_true]
            out["average_precision"] = _defined(lambda: skm.average_precision_score(
                onehot, scores, average="macro"), "average_precision", undefined)
        probs = np.c_[1 - scores, scores] if binary else scores
        out["log_loss"] = float(skm.log_loss(y_true, np.clip(probs, 1e-15, 1.0), labels=labels))
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    out["confusion_matrix"] = cm.tolist()
    out["per_class"] = _per_class(cm, class_names)
    out["undefined"] = undefined
    return out


def _mcc(y_true: np.ndarray, y_pred: np.ndarray, names: list[str],
         undefined: dict) -> float | None:
    """scikit-learn's MCC, or None where it is 0 / 0 (scikit-learn reports 0 there): all
    true labels, or all predictions, in one class."""
    for what, values in (("true label", y_true), ("prediction", y_pred)):
        present = np.unique(values)
        if len(present) < 2:
            undefined["mcc"] = (f"every {what} is class "
                                f"'{names[present[0]] if len(present) else '-'}', so the "
                                "correlation is 0 / 0 (scikit-learn reports 0)")
            return None
    return float(skm.matthews_corrcoef(y_true, y_pred))


# What leaves one class's value 0 / 0, per metric (F1 = 2TP / (2TP + FP + FN), as in
# scikit-learn, is 0 / 0 only for a class neither present nor predicted).
_CLASS_UNDEFINED = {"precision": "never predicted", "recall": "absent from the true labels",
                    "f1": "neither present in the true labels nor predicted"}


def _prf(fn: Any, y_true: np.ndarray, y_pred: np.ndarray, name: str, undefined: dict,
         average: str, labels: list[int], names: list[str]) -> float | None:
    """scikit-learn's precision / recall / F1, or None where a class's value is 0 / 0.

    With ``zero_division=np.nan`` scikit-learn leaves such classes out of the macro and
    weighted means, which would average over fewer classes than the name says (and disagree
    with the rate table). Here the mean is undefined instead, as in ``rates.py``; a class
    with no true rows has weight 0 in ``weighted`` and cannot make it undefined. Where the
    value is defined it is scikit-learn's.
    """
    metric = name.split("_")[0]
    per_class = fn(y_true, y_pred, zero_division=np.nan, average=None, labels=labels)
    if average == "binary":
        bad = [1] if math.isnan(per_class[1]) else []
    else:
        support = np.bincount(y_true, minlength=len(labels))
        bad = [k for k in labels if math.isnan(per_class[k])
               and (average == "macro" or support[k] > 0)]
    if bad:
        which = ", ".join(f"'{names[k]}'" for k in bad[:5]) + (", ..." if len(bad) > 5 else "")
        if average == "binary":
            undefined[name] = (f"the positive class {which} was "
                               f"{_CLASS_UNDEFINED[metric]} (0 / 0)")
        else:
            undefined[name] = (f"{len(bad)} of {len(labels)} classes were "
                               f"{_CLASS_UNDEFINED[metric]} ({which}), so their {metric} is "
                               f"0 / 0 and the {average} mean is undefined")
        return None
    return float(fn(y_true, y_pred, zero_division=np.nan, average=average, labels=labels))


def _defined(compute: Any, name: str, undefined: dict) -> float | None:
    try:
        value = float(compute())
    except ValueError as exc:
        undefined[name] = str(exc).splitlines()[0]
        return None
    if math.isnan(value):
        undefined[name] = "not defined for these labels"
        return None
    return value


def _per_class(cm: np.ndarray, names: list[str]) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support for each class, from the confusion matrix."""
    rows = {}
    for i, name in enumerate(names):
        tp = cm[i, i]
        predicted, actual = cm[:, i].sum(), cm[i, :].sum()
        precision = tp / predicted if predicted else None
        recall = tp / actual if actual else None
        f1 = (2 * precision * recall / (precision + recall)
              if precision is not None and recall is not None and precision + recall > 0
              else (0.0 if precision == 0 or recall == 0 else None))
        rows[name] = {"precision": _f(precision), "recall": _f(recall), "f1": _f(f1),
                      "support": int(actual)}
    return rows


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """MSE, RMSE, MAE and R², in the target's own units."""
    mse = float(skm.mean_squared_error(y_true, y_pred))
    out: dict[str, Any] = {"n": int(len(y_true)), "mse": mse, "rmse": math.sqrt(mse),
                           "mae": float(skm.mean_absolute_error(y_true, y_pred)), "undefined": {}}
    if len(y_true) >= 2 and np.var(y_true) > 0:
        out["r2"] = float(skm.r2_score(y_true, y_pred))
    else:
        out["r2"] = None
        out["undefined"]["r2"] = "the true values do not vary"
    return out


# The headline metrics shown first in tables, per task.
HEADLINE = {
    "binary": ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc", "roc_auc",
               "average_precision", "log_loss", "brier", "ece"],
    "multiclass": ["accuracy", "balanced_accuracy", "precision_macro", "recall_macro",
                   "f1_macro", "f1_weighted", "mcc", "roc_auc", "roc_auc_ovo_macro",
                   "average_precision", "log_loss", "brier", "ece"],
    "regression": ["rmse", "mae", "median_ae", "mse", "r2", "explained_variance", "mape"],
    "multilabel": ["roc_auc_macro", "roc_auc_macro_defined", "roc_auc_micro",
                   "average_precision_macro", "average_precision_micro", "f1_macro", "f1_micro",
                   "f1_weighted", "samples_f1", "samples_f1_defined", "subset_accuracy",
                   "hamming_loss"],
}
