"""Every rate of the confusion matrix, score metrics (Brier, ECE, ROC-AUC) and regression extras.

Names follow scikit-learn where it has the metric. As in ``metrics.py``, a value that cannot be
computed is ``None`` with a reason under ``"undefined"``; nothing here returns NaN, inf or a
silent 0 in place of an undefined value.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from sklearn import metrics as skm

# Counts are reported per class but never averaged: a "mean TP" would mean nothing.
_COUNTS = ("tp", "fp", "fn", "tn", "support")
# Rates whose micro average means something (see ``confusion_rates``); F-betas are added to it.
_MICRO = ("tpr", "ppv", "f1")

_NO_SAMPLES = "no samples (the confusion matrix sums to 0)"
_NO_POS = "no actual positives (TP + FN = 0)"
_NO_NEG = "no actual negatives (FP + TN = 0)"
_NO_PRED_POS = "no predicted positives (TP + FP = 0)"
_NO_PRED_NEG = "no predicted negatives (FN + TN = 0)"
_ABSENT = "class neither present nor predicted (TP + FN + FP = 0)"


def confusion_rates(cm: np.ndarray, class_names: list[str],
                    betas: tuple[float, ...] = (0.5, 2.0)) -> dict[str, Any]:
    """All one-vs-rest rates of each class of a K x K confusion matrix (rows true, cols predicted).

    Per class: ``tp fp fn tn support prevalence accuracy balanced_accuracy tpr tnr ppv npv fpr
    fnr fdr for lr_plus lr_minus dor informedness markedness f1 f<beta>... mcc fowlkes_mallows
    threat_score prevalence_threshold``. ``f<beta>`` keys are ``f"f{beta:g}"`` ("f0.5", "f2");
    ``threat_score`` equals scikit-learn's ``jaccard_score``; ``mcc`` is the binary MCC of the
    class against the rest.

    ``macro`` is the plain mean over classes and ``weighted`` the support-weighted mean, of every
    rate (not of the counts). If a class's value is undefined, the average is undefined too and
    its reason names the class: skipping it would quietly average over fewer classes. The one
    exception: in ``weighted`` a class with support 0 has weight 0 and is left out, since its
    value (often undefined, e.g. its TPR) cannot change the mean.

    ``micro`` pools TP, FP, FN over classes and holds only ``tpr``, ``ppv``, ``f1`` and the
    F-betas. In single-label problems each error is one FP (for the predicted class) and one FN
    (for the true class), so these all equal the accuracy. The other micro rates are left out on
    purpose: the pooled TN counts each sample K - 1 times, so micro TNR, FPR, NPV, accuracy, MCC
    and the rest depend on K rather than on the classifier.

    For K == 2, ``binary`` is the row of the positive class (index 1): the usual 2 x 2 table.

    Args:
        cm: Non-negative integer counts, shape (K, K), K >= 2.
        class_names: K distinct names, in the order of ``cm``'s rows.
        betas: The F-beta scores to report besides F1; each must be positive.

    Returns:
        ``{"per_class": {name: {rate: value}}, "macro": {...}, "weighted": {...},
        "micro": {...}, "undefined": {key: reason}}`` plus ``"binary"`` when K == 2. Undefined
        keys are ``"<class>.<rate>"`` or ``"<scope>.<rate>"`` (scope: macro, weighted, micro,
        binary). Counts are ``int``, rates ``float`` or ``None``.

    Example:
        >>> r = confusion_rates(np.array([[50, 10], [5, 35]]), ["healthy", "sick"])
        >>> r["binary"]["tpr"], r["binary"]["lr_plus"], r["binary"]["dor"]
        (0.875, 5.25, 35.0)
        >>> r = confusion_rates(np.array([[5, 0], [3, 0]]), ["healthy", "sick"])
        >>> r["binary"]["ppv"], r["undefined"]["sick.ppv"]
        (None, 'PPV undefined: no predicted positives (TP + FP = 0)')
    """
    cm = _check_cm(cm, class_names)
    betas = tuple(float(b) for b in betas)
    if any(not (math.isfinite(b) and b > 0) for b in betas):
        raise ValueError(f"every beta must be positive and finite, got {betas}")
    total = int(cm.sum())
    per_class: dict[str, dict[str, Any]] = {}
    undefined: dict[str, str] = {}
    for i, name in enumerate(class_names):
        # Python ints, not numpy ones: products such as TP * TN must not overflow.
        tp = int(cm[i, i])
        fp, fn = int(cm[:, i].sum()) - tp, int(cm[i, :].sum()) - tp
        per_class[name], why = _one_vs_rest(tp, fp, fn, total - tp - fp - fn, betas)
        undefined.update({f"{name}.{key}": reason for key, reason in why.items()})
    rate_keys = [k for k in next(iter(per_class.values())) if k not in _COUNTS]
    out: dict[str, Any] = {"per_class": per_class}
    for scope in ("macro", "weighted"):
        out[scope] = {}
        for key in rate_keys:
            value, reason = _average(per_class, key, undefined, weighted=scope == "weighted")
            out[scope][key] = value
            if reason is not None:
                undefined[f"{scope}.{key}"] = reason
    pooled = [sum(row[c] for row in per_class.values()) for c in ("tp", "fp", "fn", "tn")]
    micro, why = _one_vs_rest(*pooled, betas)
    micro_keys = [*_MICRO, *(_fbeta_key(b) for b in betas)]
    out["micro"] = {key: micro[key] for key in micro_keys}
    undefined.update({f"micro.{k}": r for k, r in why.items() if k in micro_keys})
    if len(class_names) == 2:
        positive = class_names[1]
        out["binary"] = dict(per_class[positive])
        undefined.update({f"binary.{key}": undefined[f"{positive}.{key}"]
                          for key, value in out["binary"].items() if value is None})
    out["undefined"] = undefined
    return out


def _check_cm(cm: Any, class_names: list[str]) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"need a K x K matrix for {len(class_names)} classes, got {cm.shape}")
    if len(class_names) < 2 or len(set(class_names)) != len(class_names):
        raise ValueError(f"need at least 2 distinct class names, got {class_names}")
    if not np.all(np.isfinite(cm)) or np.any(cm < 0) or np.any(cm != np.round(cm)):
        raise ValueError("confusion matrix entries must be non-negative whole counts")
    return cm.astype(np.int64)


def _fbeta_key(beta: float) -> str:
    return f"f{beta:g}"


def _one_vs_rest(tp: int, fp: int, fn: int, tn: int,
                 betas: tuple[float, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """Rates of one class against the rest from its four counts; reasons for the undefined."""
    rates: dict[str, Any] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "support": tp + fn}
    causes: dict[str, str] = {}  # key -> bare cause, reused by the rates derived from it
    why: dict[str, str] = {}

    def fail(key: str, label: str, cause: str) -> None:
        rates[key] = None
        causes[key] = cause
        why[key] = f"{label} undefined: {cause}"

    def ratio(key: str, label: str, num: float, den: float, cause: str) -> None:
        if den == 0:
            fail(key, label, cause)
        else:
            rates[key] = float(num / den)

    def derived(key: str, label: str, deps: tuple[str, ...], formula: Callable[..., float],
                guard: Callable[[], str | None] = lambda: None) -> None:
        # A rate built from others is undefined for the same cause as its first undefined input;
        # ``guard`` names a further cause (e.g. a zero divisor) once the inputs exist.
        missing = [d for d in deps if rates[d] is None]
        cause = causes[missing[0]] if missing else guard()
        if cause is not None:
            fail(key, label, cause)
        else:
            rates[key] = float(formula(*(rates[d] for d in deps)))

    pos, neg, pred_pos, pred_neg = tp + fn, fp + tn, tp + fp, fn + tn
    n = pos + neg
    ratio("prevalence", "prevalence", pos, n, _NO_SAMPLES)
    ratio("accuracy", "accuracy", tp + tn, n, _NO_SAMPLES)
    ratio("tpr", "TPR", tp, pos, _NO_POS)
    ratio("tnr", "TNR", tn, neg, _NO_NEG)
    derived("balanced_accuracy", "balanced accuracy", ("tpr", "tnr"), lambda a, b: (a + b) / 2)
    ratio("ppv", "PPV", tp, pred_pos, _NO_PRED_POS)
    ratio("npv", "NPV", tn, pred_neg, _NO_PRED_NEG)
    ratio("fpr", "FPR", fp, neg, _NO_NEG)
    ratio("fnr", "FNR", fn, pos, _NO_POS)
    ratio("fdr", "FDR", fp, pred_pos, _NO_PRED_POS)
    ratio("for", "FOR", fn, pred_neg, _NO_PRED_NEG)
    derived("lr_plus", "LR+", ("tpr", "fpr"), lambda a, b: a / b,
            lambda: "FPR = 0 (no false positives)" if fp == 0 else None)
    derived("lr_minus", "LR-", ("fnr", "tnr"), lambda a, b: a / b,
            lambda: "TNR = 0 (no true negatives)" if tn == 0 else None)
    zero = [name for name, count in (("FP", fp), ("FN", fn)) if count == 0]
    if zero:
        fail("dor", "DOR", " and ".join(zero) + " = 0 (the odds ratio divides by FP * FN)")
    else:
        rates["dor"] = tp * tn / (fp * fn)
    derived("informedness", "informedness", ("tpr", "tnr"), lambda a, b: a + b - 1)
    derived("markedness", "markedness", ("ppv", "npv"), lambda a, b: a + b - 1)
    # F from the counts, not from precision and recall: it stays defined (0) when a present
    # class is never predicted, as in scikit-learn.
    for key, beta in (("f1", 1.0), *((_fbeta_key(b), b) for b in betas)):
        b2 = beta * beta
        ratio(key, key.upper(), (1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp, _ABSENT)
    margins = ((pos, _NO_POS), (neg, _NO_NEG), (pred_pos, _NO_PRED_POS), (pred_neg, _NO_PRED_NEG))
    empty = [cause for margin, cause in margins if margin == 0]
    if empty:
        # scikit-learn's matthews_corrcoef returns 0 here; the correlation is 0 / 0.
        fail("mcc", "MCC", empty[0])
    else:
        rates["mcc"] = (tp * tn - fp * fn) / math.sqrt(pos * neg * pred_pos * pred_neg)
    derived("fowlkes_mallows", "Fowlkes-Mallows", ("ppv", "tpr"), lambda a, b: math.sqrt(a * b))
    ratio("threat_score", "threat score", tp, tp + fn + fp, _ABSENT)
    # TPR - FPR = (TP * N - FP * P) / (P * N): test it for zero in exact integers.
    derived("prevalence_threshold", "prevalence threshold", ("tpr", "fpr"),
            lambda a, b: (math.sqrt(a * b) - b) / ((tp * neg - fp * pos) / (pos * neg)),
            lambda: "TPR = FPR (informedness is 0)" if tp * neg == fp * pos else None)
    return rates, why


def _average(per_class: dict[str, dict[str, Any]], key: str, undefined: dict[str, str],
             weighted: bool) -> tuple[float | None, str | None]:
    """Macro or support-weighted mean of one rate over classes, or None and a reason."""
    names = [n for n, row in per_class.items() if not weighted or row["support"] > 0]
    if not names:
        return None, f"weighted mean undefined: {_NO_SAMPLES}"
    bad = [n for n in names if per_class[n][key] is None]
    if bad:
        scope = "weighted" if weighted else "macro"
        detail = "; ".join(f"class '{n}': {undefined[f'{n}.{key}']}" for n in bad)
        return None, f"{scope} mean undefined because the value is undefined for {detail}"
    weights = [per_class[n]["support"] if weighted else 1 for n in names]
    return float(sum(w * per_class[n][key] for w, n in zip(weights, names)) / sum(weights)), None


def score_metrics(y_true: np.ndarray, scores: np.ndarray, class_names: list[str],
                  n_bins: int = 15) -> dict[str, Any]:
    """Brier score, expected calibration error and ROC-AUC from probabilities.

    ``scores`` is P(positive) with shape (N,) for a binary problem, or probabilities with shape
    (N, K) whose rows sum to 1 (to within 1e-3; they are renormalised to remove float32
    rounding). With K == 2 columns the problem is binary and column 1 is the positive class.

    ``brier``: binary, mean of (p - y)^2 (range 0-1; scikit-learn's ``brier_score_loss``);
    multi-class, Brier's original mean over rows of sum_k (p_k - onehot_k)^2 (range 0-2; the
    same as ``brier_score_loss`` on K > 2 classes). The binary value is half the two-column sum.

    ``ece``: sum over equal-width bins of (bin share) * |accuracy - mean confidence|, on the
    top-class confidence (binary: max(p, 1 - p), predicted positive when p >= 0.5). Bins are
    (lo, hi], the first [0, hi], as in scikit-learn's ``calibration_curve``.

    ROC-AUC: binary ``roc_auc``; multi-class ``roc_auc_ovr_macro``, ``roc_auc_ovr_weighted``,
    ``roc_auc_ovo_macro``, ``roc_auc_ovo_weighted`` (``roc_auc_score`` with that
    ``multi_class`` and ``average``). Undefined when a class is absent from ``y_true``.

    Returns:
        ``{"n", "n_bins", "brier", "ece", <ROC-AUC keys>, "undefined": {key: reason}}``.

    Example:
        >>> m = score_metrics(np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.6, 0.3]), ["n", "p"])
        >>> round(m["brier"], 3), m["roc_auc"]
        (0.075, 1.0)
    """
    y, probs, binary = _check_scores(y_true, scores, len(class_names), n_bins)
    auc_keys = (["roc_auc"] if binary else
                [f"roc_auc_{mc}_{avg}" for mc in ("ovr", "ovo") for avg in ("macro", "weighted")])
    out: dict[str, Any] = {"n": int(len(y)), "n_bins": int(n_bins)}
    if len(y) == 0:
        keys = ("brier", "ece", *auc_keys)
        return {**out, **dict.fromkeys(keys), "undefined": dict.fromkeys(keys, "no samples")}
    undefined: dict[str, str] = {}
    onehot = np.eye(probs.shape[1])[y]
    if binary:
        out["brier"] = float(np.mean((probs[:, 1] - y) ** 2))
    else:
        out["brier"] = float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    conf, correct = _top_class(y, probs, binary)
    _, counts, mean_conf, accuracy = _reliability(conf, correct, n_bins)
    filled = counts > 0
    out["ece"] = float(np.sum(counts[filled] * np.abs(accuracy[filled] - mean_conf[filled]))
                       / len(y))
    absent = [class_names[k] for k in range(probs.shape[1]) if not np.any(y == k)]
    if absent:
        reason = ("ROC-AUC undefined: " + ", ".join(f"'{c}'" for c in absent)
                  + " absent from y_true, so a one-vs-rest curve has no positives")
        for key in auc_keys:
            out[key], undefined[key] = None, reason
    elif binary:
        out["roc_auc"] = float(skm.roc_auc_score(y, probs[:, 1]))
    else:
        labels = list(range(probs.shape[1]))
        for key in auc_keys:
            _, _, mc, avg = key.split("_")
            try:
                out[key] = float(skm.roc_auc_score(y, probs, multi_class=mc, average=avg,
                                                   labels=labels))
            except ValueError as exc:
                out[key], undefined[key] = None, f"ROC-AUC undefined: {exc}".splitlines()[0]
    out["undefined"] = undefined
    return out


def calibration_curve_data(y_true: np.ndarray, scores: np.ndarray,
                           n_bins: int = 10) -> dict[str, Any]:
    """Points of a reliability diagram, one per equal-width bin of the predicted probability.

    Binary (``scores`` of shape (N,), or (N, 2)): the positive-class probability against the
    observed frequency of the positive class, as scikit-learn's ``calibration_curve``
    (``kind == "positive_class"``). Multi-class (N, K > 2): the top-class confidence against
    the observed accuracy (``kind == "top_class"``). Bins are (lo, hi], the first [0, hi].

    Returns:
        ``{"kind", "n", "n_bins", "bin_edges" (n_bins + 1), "mean_predicted",
        "observed_frequency", "count" (each n_bins long), "undefined"}``. An empty bin has
        ``None`` for its mean and frequency, with the reason under ``"bin[i]"``.

    Example:
        >>> c = calibration_curve_data(np.array([0, 1, 1]), np.array([0.1, 0.15, 0.9]), n_bins=2)
        >>> c["count"], c["mean_predicted"], c["observed_frequency"]
        ([2, 1], [0.125, 0.9], [0.5, 1.0])
    """
    k = 2 if np.ndim(scores) == 1 else np.shape(scores)[1]
    y, probs, binary = _check_scores(y_true, scores, k, n_bins)
    if binary:
        x, hit, kind = probs[:, 1], (y == 1).astype(float), "positive_class"
    else:
        (x, hit), kind = _top_class(y, probs, binary), "top_class"
    edges, counts, mean_pred, freq = _reliability(x, hit, n_bins)
    def per_bin(values: np.ndarray) -> list[float | None]:
        return [float(v) if c else None for v, c in zip(values, counts)]

    return {"kind": kind, "n": int(len(y)), "n_bins": int(n_bins),
            "bin_edges": [float(e) for e in edges], "mean_predicted": per_bin(mean_pred),
            "observed_frequency": per_bin(freq), "count": [int(c) for c in counts],
            "undefined": {f"bin[{i}]": f"no predictions in bin {i} ({edges[i]:g} to "
                          f"{edges[i + 1]:g})" for i in np.flatnonzero(counts == 0)}}


def _check_scores(y_true: Any, scores: Any, k: int,
                  n_bins: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Labels as ints and probabilities as an (N, K) float64 array; whether it is binary."""
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or len(y) != len(s):
        raise ValueError(f"y_true must be 1-D and as long as scores: {y.shape} vs {s.shape}")
    if len(y) and (np.any(y != np.round(y)) or y.min() < 0 or y.max() >= k):
        raise ValueError(f"y_true must hold class indices 0..{k - 1}")
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
    if not np.all(np.isfinite(s)) or np.any(s < 0) or np.any(s > 1):
        raise ValueError("scores must be probabilities in [0, 1]")
    if s.ndim == 1:
        if k != 2:
            raise ValueError(f"1-D scores are P(positive) of a binary problem, not {k} classes")
        s = np.c_[1 - s, s]
    elif s.ndim != 2 or s.shape[1] != k:
        raise ValueError(f"scores must have shape (N, {k}), got {s.shape}")
    else:
        sums = s.sum(axis=1)
        if not np.allclose(sums, 1, rtol=0, atol=1e-3):
            raise ValueError("each row of scores must sum to 1")
        s = s / sums[:, None]
    return y.astype(np.int64), s, k == 2


def _top_class(y: np.ndarray, probs: np.ndarray, binary: bool) -> tuple[np.ndarray, np.ndarray]:
    """Confidence in the predicted class and whether the prediction was right (1.0 or 0.0)."""
    # Binary ties at 0.5 go to the positive class, as the 0.5 threshold of ``metrics.py`` does.
    pred = (probs[:, 1] >= 0.5).astype(np.int64) if binary else probs.argmax(axis=1)
    return probs[np.arange(len(y)), pred], (pred == y).astype(float)


def _reliability(x: np.ndarray, target: np.ndarray,
                 n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Edges, counts, mean of x and mean of target per bin (0 where a bin is empty)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # searchsorted on the inner edges, as scikit-learn's calibration_curve: bins are (lo, hi].
    ids = np.searchsorted(edges[1:-1], x)
    counts = np.bincount(ids, minlength=n_bins)
    safe = np.maximum(counts, 1)  # empty bins get 0 / 1; callers check counts first
    mean_x = np.bincount(ids, weights=x, minlength=n_bins) / safe
    mean_target = np.bincount(ids, weights=target, minlength=n_bins) / safe
    return edges, counts, mean_x, mean_target


def regression_extras(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Median absolute error, MAPE and explained variance (scikit-learn's definitions).

    ``mape`` is a fraction as in scikit-learn (0.1 means 10 %) and is undefined if any true
    value is 0 (to float32 rounding at the target's scale: a 0 trained as float32 comes back
    as ~1e-7), where scikit-learn would divide by machine epsilon and report a huge number.
    ``explained_variance`` is undefined when the true values do not vary.

    Returns:
        ``{"n", "median_ae", "mape", "explained_variance", "undefined": {key: reason}}``.

    Example:
        >>> r = regression_extras(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
        >>> r["median_ae"], round(r["mape"], 4)
        (0.5, 0.25)
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y.shape} vs {p.shape}")
    if len(y) == 0:
        keys = ("median_ae", "mape", "explained_variance")
        return {"n": 0, **dict.fromkeys(keys), "undefined": dict.fromkeys(keys, "no samples")}
    out: dict[str, Any] = {"n": int(len(y))}
    undefined: dict[str, str] = {}
    out["median_ae"] = float(skm.median_absolute_error(y, p))
    zeros = int(np.sum(np.abs(y) <= 16 * np.finfo(np.float32).eps * np.max(np.abs(y))))
    if zeros:
        out["mape"], undefined["mape"] = None, (f"the target is 0 in {zeros} of {len(y)} rows "
                                                "(MAPE divides by it)")
    else:
        out["mape"] = float(skm.mean_absolute_percentage_error(y, p))
    if len(y) < 2 or np.any(np.var(y, axis=0) == 0):
        out["explained_variance"] = None
        undefined["explained_variance"] = "explained variance undefined: y_true has variance 0"
    else:
        out["explained_variance"] = float(skm.explained_variance_score(y, p))
    out["undefined"] = undefined
    return out
