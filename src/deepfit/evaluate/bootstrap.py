"""Percentile bootstrap confidence intervals for test-set metrics, vectorised over resamples.

A block of resamples' draws becomes counts (confusion cells, or how often each row was drawn)
and each metric is computed for the whole block with array operations, not once per resample.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from deepfit.errors import ConfigError, did_you_mean, one_of

Metric = Callable[[np.ndarray, np.ndarray], float]
# Built-in metric names per task ("sensitivity" is another name for binary "recall").
METRICS = {"binary": ("accuracy", "balanced_accuracy", "precision", "recall", "sensitivity",
                      "specificity", "f1", "mcc", "roc_auc"),
           "multiclass": ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro",
                          "f1_macro", "mcc"),
           "regression": ("rmse", "mae", "mse", "r2")}
# By default, all but those that repeat another (recall, RMSE squared). Macro recall is kept:
# it is undefined when a class is absent, where balanced accuracy leaves that class out.
DEFAULT_METRICS = {task: tuple(m for m in names if m not in ("sensitivity", "mse"))
                   for task, names in METRICS.items()}

MAX_DROPPED = 0.10  # above this share of undefined resamples, an interval would mislead
# Resamples go in blocks of about this many drawn rows: per-block arrays of a few MB stay in
# cache (several times faster than all R x N draws at once) and memory stays bounded.
_BLOCK = 2 ** 18
_WHY = {"balanced_accuracy": "one class only", "roc_auc": "one class only", "r2": "constant y",
        "recall": "no positives", "sensitivity": "no positives", "specificity": "no negatives",
        "precision": "no predicted positive", "f1": "no true or predicted positive",
        "precision_macro": "a class never predicted", "recall_macro": "a class absent",
        "f1_macro": "a class neither present nor predicted",
        "mcc": "one class only, or one predicted class"}


def bootstrap_ci(y_true: np.ndarray, y_pred_or_scores: np.ndarray,
                 metrics: dict[str, str | Metric] | list[str] | tuple[str, ...] | None = None,
                 n_resamples: int = 1000, level: float = 0.95, seed: int = 0, task: str = "binary",
                 threshold: float = 0.5, return_samples: bool = False) -> dict[str, dict]:
    """Point value and percentile bootstrap interval of each metric.

    Args:
        y_true: True labels (0/1 binary, 0..K-1 multi-class) or values, shape (N,).
        y_pred_or_scores: Binary: P(positive) (N,). Multi-class: probabilities (N, K) or
            labels (N,). Regression: predicted values (N,).
        metrics: Names from ``METRICS[task]`` (default ``DEFAULT_METRICS[task]``), or a dict
            of name -> such a name or ``fn(y_true, y_pred_or_scores) -> float`` (run once
            per resample in Python, so slow; NaN, None or ValueError: undefined there).
        n_resamples, level, seed: Resamples; interval coverage; numpy Generator seed.
        task, threshold: "binary", "multiclass" or "regression"; binary decision threshold.
        return_samples: Add the per-resample values (NaN where undefined) as ``"samples"``.

    Returns:
        ``{name: {"value", "low", "high", "dropped", "reason"}}``: the metric on all rows
        (None if undefined), the interval, and how many resamples were left out as undefined
        (e.g. recall with no positives); over 10%, the interval is None and ``reason`` says
        why. MCC is undefined where its denominator is 0 (scikit-learn: 0).

    Raises:
        ConfigError: unknown task or metric, ``level`` outside (0, 1), ``n_resamples`` < 1.

    Example:
        >>> ci = bootstrap_ci(np.r_[np.ones(80), np.zeros(20)], np.full(100, 0.9), ["accuracy"])
        >>> format_ci(ci["accuracy"])  # 80 of 100 right
        '0.800 [0.720, 0.880]'
    """
    if not (0.0 < level < 1.0):
        raise ConfigError(f"bootstrap level must be between 0 and 1 (e.g. 0.95), got {level}")
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ConfigError(f"bootstrap n_resamples must be a positive integer, got {n_resamples}")
    builtin, custom = _resolve(metrics, task)
    data = _Data(y_true, y_pred_or_scores, task, threshold, "roc_auc" in builtin.values())
    values = {k: v[0] for k, v in data.compute(np.arange(data.n)[None], builtin).items()}
    values.update({name: _call(fn, data.y, data.x) for name, fn in custom.items()})
    rng = np.random.default_rng(seed)
    rows = max(1, _BLOCK // max(data.n, data.k * data.k))  # K x K cells per resample count
    samples = {name: np.empty(n_resamples) for name in values}
    for start in range(0, n_resamples, rows):
        idx = rng.integers(0, data.n, size=(min(rows, n_resamples - start), data.n))
        block = slice(start, start + len(idx))
        for name, v in data.compute(idx, builtin).items():
            samples[name][block] = v
        for name, fn in custom.items():
            samples[name][block] = [_call(fn, data.y[i], data.x[i]) for i in idx]

    out = {}
    for name, value in values.items():
        why = _WHY.get(builtin.get(name, ""), "no number from the metric")
        out[name] = entry = interval(value, samples[name], level, why)
        if return_samples:
            entry["samples"] = samples[name]
    return out


def interval(value: float, samples: np.ndarray, level: float, why: str) -> dict[str, Any]:
    """``{"value", "low", "high", "dropped", "reason"}`` from the value on all rows (NaN:
    undefined) and the per-resample values (NaN where undefined): the percentile interval, or
    none with the reason when over ``MAX_DROPPED`` of the resamples are undefined (``why``
    says what those resamples have, e.g. "no positives"). Shared by every bootstrap."""
    ok = samples[~np.isnan(samples)]
    dropped = int(len(samples) - len(ok))
    entry = {"value": None if math.isnan(value) else float(value), "low": None, "high": None,
             "dropped": dropped, "reason": None}
    if dropped > MAX_DROPPED * len(samples):
        entry["reason"] = (f"undefined in {dropped} of {len(samples)} resamples (over "
                           f"{MAX_DROPPED:.0%}), which have {why}")
    else:
        tail = 100 * (1 - level) / 2
        entry["low"], entry["high"] = map(float, np.percentile(ok, [tail, 100 - tail]))
    return entry


def resample_values(y_true: np.ndarray, y_pred_or_scores: np.ndarray, idx: np.ndarray,
                    metrics: Any = None, task: str = "binary", threshold: float = 0.5) -> dict:
    """Built-in metrics of the resamples given as row indices ``idx`` (R, N), by the same
    vectorised code as :func:`bootstrap_ci`; NaN where undefined. For checks and studies."""
    builtin, _ = _resolve(metrics, task)
    data = _Data(y_true, y_pred_or_scores, task, threshold, "roc_auc" in builtin.values())
    return data.compute(data.rank[np.asarray(idx)], builtin)  # rows -> positions in data


def format_ci(entry: dict[str, Any], digits: int = 3) -> str:
    """``"0.962 [0.941, 0.979]"``; ``"n/a"`` for no value, ``"0.962 [n/a]"`` for no interval.

    >>> format_ci({"value": 0.9621, "low": 0.9412, "high": 0.979})
    '0.962 [0.941, 0.979]'
    """
    value, low, high = (entry.get(k) for k in ("value", "low", "high"))
    if value is None:
        return "n/a"
    ci = "n/a" if low is None or high is None else f"{low:.{digits}f}, {high:.{digits}f}"
    return f"{value:.{digits}f} [{ci}]"


def _resolve(metrics: Any, task: str) -> tuple[dict[str, str], dict[str, Metric]]:
    if task not in METRICS:
        raise ConfigError(f"unknown task '{task}' for bootstrap; use one of {one_of(METRICS)}")
    metrics = DEFAULT_METRICS[task] if metrics is None else metrics
    builtin, custom = {}, {}
    for name, spec in (metrics.items() if isinstance(metrics, dict) else zip(metrics, metrics)):
        if not callable(spec) and spec not in METRICS[task]:
            raise ConfigError(f"unknown {task} bootstrap metric '{spec}'"
                              f"{did_you_mean(spec, METRICS[task])}; use one of "
                              f"{one_of(METRICS[task])} or pass a function")
        (custom if callable(spec) else builtin)[name] = spec
    return builtin, custom


def _call(fn: Metric, y: np.ndarray, x: np.ndarray) -> float:
    try:
        value = fn(y, x)
    except ValueError:  # e.g. scikit-learn's ROC-AUC on one class: undefined, not a bug
        return math.nan
    return math.nan if value is None else float(value)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b as floats, NaN where b == 0 (the metric is undefined on that resample)."""
    return np.divide(a, b, out=np.full(np.shape(a), np.nan), where=b != 0)


class _Data:
    """Checked inputs. For ROC-AUC the rows are sorted by score, so that draws count straight
    into the order the AUC needs, with no gather per draw; ``rank``: row -> position here."""

    def __init__(self, y: Any, x: Any, task: str, threshold: float, auc: bool):
        y, x = np.asarray(y), np.asarray(x)
        if y.ndim != 1 or len(y) == 0 or len(x) != len(y) or (x.ndim != 1 and task != (
                "multiclass")) or (task == "binary" and not np.isin(y, (0, 1)).all()):
            raise ValueError(f"{task} bootstrap: y_true must be 1-D (0/1 if binary), as long "
                             f"as the predictions; got shapes {y.shape} and {x.shape}")
        self.task, self.n, self.k, self.auc, self.rank = task, len(y), 1, auc, np.arange(len(y))
        if task == "regression":
            resid = x.astype(np.float64) - y
            yc = y - y.mean()  # centred, so the per-resample variance does not cancel badly
            self.y, self.x, self.cols = y, x, np.c_[resid ** 2, np.abs(resid), yc, yc ** 2]
            return
        if task == "binary" and auc:
            order = np.argsort(x, kind="stable")
            self.rank[order] = np.arange(self.n)
            y, x = y[order], x[order]
            self.neg = (1 - y).astype(np.int64)
            self.cut = int(np.searchsorted(x, threshold))  # first row predicted positive
            self.starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
        if task == "binary":
            pred, self.k = (x >= threshold).astype(np.int64), 2
        else:
            pred = x.argmax(axis=1) if x.ndim == 2 else x.astype(np.int64)
            self.k = int(max(y.max(), pred.max(), x.shape[1] - 1 if x.ndim == 2 else 0)) + 1
        self.y, self.x = y, x
        self.codes = y.astype(np.int64) * self.k + pred  # confusion cell of each row

    def compute(self, idx: np.ndarray, names: dict[str, str]) -> dict[str, np.ndarray]:
        """Each metric for each resample (row of ``idx``, positions in this order)."""
        r = len(idx)
        if self.task == "regression" or self.auc:  # how often each row was drawn: (r, n)
            counts = np.bincount((idx + (np.arange(r) * self.n)[:, None]).ravel(),
                                 minlength=r * self.n).reshape(r, self.n)
        if self.task == "regression":
            sums = counts.astype(np.float64) @ self.cols / self.n
            mse, sst = sums[:, 0], sums[:, 3] - sums[:, 2] ** 2
            found = {"mse": mse, "rmse": np.sqrt(mse), "mae": sums[:, 1],
                     "r2": 1 - _div(mse, np.where(sst > 1e-12 * sums[:, 3], sst, 0.0))}
        elif self.auc:
            found = self._binary_by_score(counts)
        else:
            kk = self.k * self.k
            cells = self.codes[idx] + (np.arange(r) * kk)[:, None]
            cm = np.bincount(cells.ravel(), minlength=r * kk).reshape(r, self.k, self.k)
            found = (_binary if self.task == "binary" else _multiclass)(cm.astype(np.float64))
        return {name: found[m] for name, m in names.items()}

    def _binary_by_score(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Binary metrics and exact (integer) Mann-Whitney AUC from counts in score order."""
        neg = counts * self.neg
        pos = counts - neg
        n_pos = pos.sum(axis=1)
        # Rows at or above the threshold are predicted positive: a suffix in score order.
        tp, fp = pos[:, self.cut:].sum(axis=1), neg[:, self.cut:].sum(axis=1)
        cm = np.stack([self.n - n_pos - fp, fp, n_pos - tp, tp], axis=1).reshape(-1, 2, 2)
        if len(self.starts) < self.n:  # tied scores: pool each run of equal scores
            pos = np.add.reduceat(pos, self.starts, axis=1)
            neg = np.add.reduceat(neg, self.starts, axis=1)
        # Twice the negatives scored below each score, plus once those tied with it.
        below2 = np.cumsum(neg, axis=1)
        below2 *= 2  # in place: these (r, n) passes are the bulk of the time
        below2 -= neg
        found = _binary(cm.astype(np.float64))
        found["roc_auc"] = _div(np.einsum("rg,rg->r", pos, below2),
                                2.0 * n_pos * (self.n - n_pos))
        return found


def _binary(cm: np.ndarray) -> dict[str, np.ndarray]:
    tn, fp, fn, tp = cm[:, 0, 0], cm[:, 0, 1], cm[:, 1, 0], cm[:, 1, 1]
    recall, specificity = _div(tp, tp + fn), _div(tn, tn + fp)
    return {"accuracy": (tp + tn) / cm.sum(axis=(1, 2)), "recall": recall, "sensitivity": recall,
            "specificity": specificity, "balanced_accuracy": (recall + specificity) / 2,
            "precision": _div(tp, tp + fp), "f1": _div(2 * tp, 2 * tp + fp + fn), "mcc": _mcc(cm)}


def _multiclass(cm: np.ndarray) -> dict[str, np.ndarray]:
    tp = np.diagonal(cm, axis1=1, axis2=2)
    actual, predicted = cm.sum(axis=2), cm.sum(axis=1)
    # Balanced accuracy as scikit-learn: the mean recall over the classes present (a class
    # absent from a resample's labels is left out). The macro means, as metrics.py, are NaN
    # (undefined on that resample) when any class's value is 0 / 0.
    per_recall = _div(tp, actual)
    recall = np.nanmean(per_recall, axis=1)
    return {"accuracy": tp.sum(axis=1) / cm.sum(axis=(1, 2)), "balanced_accuracy": recall,
            "recall_macro": per_recall.mean(axis=1),
            "precision_macro": _div(tp, predicted).mean(axis=1),
            "f1_macro": _div(2 * tp, actual + predicted).mean(axis=1), "mcc": _mcc(cm)}


def _mcc(cm: np.ndarray) -> np.ndarray:
    """Multi-class MCC as scikit-learn computes it; NaN (undefined) where the denominator is 0
    (scikit-learn: 0), as ``metrics.py`` reports it."""
    actual, predicted, total = cm.sum(axis=2), cm.sum(axis=1), cm.sum(axis=(1, 2))
    cov_tp = np.trace(cm, axis1=1, axis2=2) * total - (actual * predicted).sum(axis=1)
    denom = (total ** 2 - (predicted ** 2).sum(axis=1)) * (total ** 2 - (actual ** 2).sum(axis=1))
    return _div(cov_tp, np.sqrt(denom))
