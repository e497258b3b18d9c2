"""Metrics of multi-label predictions: each sample carries any subset of L labels.

Names follow scikit-learn. As in ``metrics.py`` and ``rates.py``, a value that cannot be
computed is ``None`` with the reason under ``"undefined"``; nothing here returns NaN, inf or a
silent 0 in its place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

# The metrics reported per label and averaged; support and prevalence are per label only.
_KEYS = ("roc_auc", "average_precision", "f1", "precision", "recall")
_LABELS = {"roc_auc": "ROC-AUC", "average_precision": "average precision", "f1": "F1",
           "precision": "precision", "recall": "recall"}


def multilabel_metrics(y_true: np.ndarray, scores: np.ndarray, label_names: list[str],
                       threshold: float | np.ndarray = 0.5) -> dict[str, Any]:
    """ROC-AUC, average precision, F1, precision and recall of each label, and their averages.

    A label is predicted when its score is ``>= threshold`` (as in ``metrics.py``);
    ``threshold`` is one float for every label or an array with one per label.

    Per label (one-vs-rest on its column): ROC-AUC is undefined when the column has no
    positives or no negatives; average precision and recall when it has no positives;
    precision when the label is never predicted; F1 (``2TP / (2TP + FP + FN)``, as in
    scikit-learn) only when the label is neither present nor predicted.

    ``macro`` is the plain mean over all labels. If one label's value is undefined, the macro
    value is undefined too and its reason names the labels: a mean over fewer labels would be
    reported as if it covered them all. With rare labels (typical of medical data) that makes
    the macro ROC-AUC undefined on most small splits, so ``macro_defined`` gives the mean over
    only the labels where the value is defined, and ``macro_defined["labels_used"][key]`` says
    how many those were; it equals scikit-learn's macro with ``zero_division=np.nan``.
    ``weighted`` weights each label by its support; a label without positives has weight 0
    and is left out, since its value cannot change the mean. ``micro`` pools every
    (sample, label) cell, as scikit-learn's ``average="micro"``.

    ``samples_f1`` is the mean over samples of each sample's F1 between its true and predicted
    label sets (scikit-learn's ``average="samples"``). A sample with no true and no predicted
    labels has F1 = 0 / 0, so ``samples_f1`` is then undefined; ``samples_f1_defined`` holds
    the mean over the other samples and how many they were. ``subset_accuracy`` is the share
    of samples whose whole label set is right; ``hamming_loss`` the share of wrong cells.

    Args:
        y_true: 0/1 (or bool) array of shape (N, L), N >= 1.
        scores: Probabilities in [0, 1], shape (N, L).
        label_names: L distinct names, in the order of the columns.
        threshold: A float in [0, 1], or an array of L such floats (one per label).

    Returns:
        ``{"n", "per_label": {name: {"roc_auc", "average_precision", "f1", "precision",
        "recall", "support", "prevalence"}}, "macro", "macro_defined", "micro", "weighted",
        "samples_f1", "samples_f1_defined": {"f1", "samples_used"}, "subset_accuracy",
        "hamming_loss", "undefined": {key: reason}}``. The averages hold the five metrics;
        ``macro_defined`` also holds ``"labels_used": {metric: count}``. Undefined keys are
        ``"<label>.<metric>"``, ``"<scope>.<metric>"`` or ``"samples_f1"``.

    Raises:
        ValueError: On mismatched shapes, non-binary ``y_true``, scores or thresholds outside
            [0, 1], or no samples.

    Example:
        >>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
        >>> s = np.array([[0.9, 0.2], [0.3, 0.6], [0.8, 0.4], [0.1, 0.7]])
        >>> m = multilabel_metrics(y, s, ["edema", "effusion"])
        >>> m["per_label"]["edema"]["roc_auc"], m["subset_accuracy"], m["hamming_loss"]
        (1.0, 0.5, 0.25)
        >>> m = multilabel_metrics(y * [1, 0], s, ["edema", "rare"])  # no "rare" positives
        >>> m["macro"]["roc_auc"], m["macro_defined"]["roc_auc"]
        (None, 1.0)
        >>> m["macro_defined"]["labels_used"]["roc_auc"], m["undefined"]["rare.roc_auc"]
        (1, "ROC-AUC undefined for label 'rare': y_true has no positives")
    """
    y, s, thr, names = _check(y_true, scores, label_names, threshold)
    pred, n = s >= thr, y.shape[0]  # a per-label threshold broadcasts over the columns
    undefined: dict[str, str] = {}
    per_label: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(names):
        row, why = _binary(y[:, j], s[:, j], pred[:, j])
        per_label[name] = {**row, "prevalence": row["support"] / n}
        undefined.update({f"{name}.{k}": f"{_LABELS[k]} undefined for label '{name}': {cause}"
                          for k, cause in why.items()})
    out: dict[str, Any] = {"n": int(n), "per_label": per_label,
                           "macro": {}, "macro_defined": {"labels_used": {}}}
    for key in _KEYS:
        values = {name: row[key] for name, row in per_label.items()}
        bad = [name for name, v in values.items() if v is None]
        good = [v for v in values.values() if v is not None]
        out["macro"][key] = None if bad else sum(good) / len(good)
        if bad:
            undefined[f"macro.{key}"] = (f"macro {_LABELS[key]} undefined: undefined for label(s) "
                                         + ", ".join(map(repr, bad)) + " (see macro_defined)")
        out["macro_defined"][key] = sum(good) / len(good) if good else None
        out["macro_defined"]["labels_used"][key] = len(good)
        if not good:
            undefined[f"macro_defined.{key}"] = f"{_LABELS[key]} is undefined for every label"
    # Micro: the same one-vs-rest metrics on all cells pooled, which is what scikit-learn does.
    micro, why = _binary(y.ravel(), s.ravel(), pred.ravel())
    out["micro"] = {key: micro[key] for key in _KEYS}
    undefined.update({f"micro.{k}": f"micro {_LABELS[k]} undefined: {cause} (all labels pooled)"
                      for k, cause in why.items()})
    out["weighted"] = {}
    for key in _KEYS:
        out["weighted"][key], reason = _weighted(per_label, key)
        if reason is not None:
            undefined[f"weighted.{key}"] = reason
    inter = np.sum(y & pred, axis=1)
    size = np.sum(y, axis=1) + np.sum(pred, axis=1)
    ok = size > 0  # an empty true set predicted empty is 0 / 0, not a perfect (or a zero) F1
    f1 = float(np.mean(2 * inter[ok] / size[ok])) if ok.any() else None
    out["samples_f1"] = f1 if ok.all() else None
    out["samples_f1_defined"] = {"f1": f1, "samples_used": int(ok.sum())}
    if not ok.all():
        undefined["samples_f1"] = (f"samples F1 undefined: {int(n - ok.sum())} of {n} samples "
                                   "have no true and no predicted labels (F1 = 0 / 0); see "
                                   "samples_f1_defined")
    if not ok.any():
        undefined["samples_f1_defined.f1"] = "no sample has a true or a predicted label"
    out["subset_accuracy"] = float(np.mean(np.all(y == pred, axis=1)))
    out["hamming_loss"] = float(np.mean(y != pred))
    out["undefined"] = undefined
    return out


def _check(y_true: Any, scores: Any, label_names: list[str],
           threshold: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Labels as bool, scores and thresholds as float64, after checking shapes and ranges."""
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    names = list(label_names)
    if y.ndim != 2 or s.shape != y.shape:
        raise ValueError("y_true and scores must both have shape (N, L); got "
                         f"{y.shape} and {s.shape}")
    n, n_labels = y.shape
    if n_labels != len(names) or len(set(names)) != len(names):
        raise ValueError(f"need {n_labels} distinct label names, one per column, got {names}")
    if n == 0 or n_labels == 0:
        raise ValueError(f"need at least one sample and one label, got shape {y.shape}")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("y_true must hold only 0 and 1 (or False and True)")
    if not np.all(np.isfinite(s)) or np.any(s < 0) or np.any(s > 1):
        raise ValueError("scores must be probabilities in [0, 1]")
    t = np.asarray(threshold, dtype=np.float64)
    if t.ndim > 1 or (t.ndim == 1 and t.shape != (n_labels,)):
        raise ValueError(f"threshold must be a float or an array of {n_labels} floats (one per "
                         f"label), got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(t > 1):
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    return y.astype(bool), s, t, names


def _binary(y: np.ndarray, s: np.ndarray, pred: np.ndarray) -> tuple[dict, dict[str, str]]:
    """One-vs-rest metrics of one label (or of all cells pooled) and causes of the undefined."""
    # Python ints: exact zero tests below, and no numpy scalars in the output.
    tp, fp, fn = int(np.sum(y & pred)), int(np.sum(~y & pred)), int(np.sum(y & ~pred))
    pos, neg = int(y.sum()), int(y.size - y.sum())
    why: dict[str, str] = {}
    out: dict[str, Any] = dict.fromkeys(_KEYS)  # None until computed
    if pos and neg:
        out["roc_auc"] = float(skm.roc_auc_score(y, s))
    else:
        why["roc_auc"] = "y_true has no " + ("positives" if not pos else "negatives")
    if pos:
        out["average_precision"] = float(skm.average_precision_score(y, s))
        out["recall"] = tp / pos
    else:
        # scikit-learn reports AP 0 here (with a warning); recall is 0 / 0.
        why["average_precision"] = why["recall"] = "y_true has no positives"
    if 2 * tp + fp + fn:
        out["f1"] = 2 * tp / (2 * tp + fp + fn)
    else:
        why["f1"] = "no positives in y_true and none predicted"
    if tp + fp:
        out["precision"] = tp / (tp + fp)
    else:
        why["precision"] = "never predicted (TP + FP = 0)"
    out["support"] = pos
    return out, why


def _weighted(per_label: dict[str, dict[str, Any]], key: str) -> tuple[float | None, str | None]:
    """Support-weighted mean of one metric, or None and the reason."""
    used = [name for name, row in per_label.items() if row["support"] > 0]
    if not used:
        return None, f"weighted {_LABELS[key]} undefined: no label has positives (all weights 0)"
    bad = [name for name in used if per_label[name][key] is None]
    if bad:
        return None, (f"weighted {_LABELS[key]} undefined: undefined for label(s) "
                      + ", ".join(map(repr, bad)) + ", which have positives")
    total = sum(per_label[name]["support"] for name in used)
    return sum(per_label[name]["support"] * per_label[name][key] for name in used) / total, None
