"""Choose the decision threshold of a binary classifier from validation scores.

A row is predicted positive when ``score >= threshold``, as in :mod:`deepfit.evaluate.metrics`.
The function takes arrays only, never split names: the caller decides which split it tunes
on, and that must be the validation split, because a threshold tuned on the test split makes
every test metric optimistic.
"""

from __future__ import annotations

import numpy as np

from deepfit.errors import ConfigError, did_you_mean, one_of

OBJECTIVES = ("f1", "fbeta", "youden", "sensitivity", "specificity")
"""Names accepted by :func:`tune_threshold`'s ``objective``."""

# At most this many points are kept in the returned curve: enough for a smooth plot, small
# enough to store in a run's JSON whatever the size of the validation split.
CURVE_POINTS = 200

# Objective values this close count as equal, so that fractions that are equal on paper but
# differ in the last bit (e.g. 2/6 and 3/9) are treated as a tie and broken by the rule below.
_TIE_TOL = 1e-12


def tune_threshold(y_true: np.ndarray, scores: np.ndarray, objective: str = "f1",
                   beta: float = 1.0, target: float | None = None) -> dict:
    """Pick the threshold on ``scores`` that is best for ``objective`` on these data.

    The candidates are every distinct score, plus one just above the highest score (predict
    no row positive), so the search is exact for the ``>=`` rule. All candidates are scored at
    once from cumulative counts over the sorted scores.

    Objectives:
        ``"f1"``: maximise F1. ``"fbeta"``: maximise F-beta with ``beta`` (> 1 favours recall).
        ``"youden"``: maximise Youden's J = sensitivity + specificity - 1.
        ``"sensitivity"``: the highest threshold whose sensitivity (TPR) is >= ``target``,
        i.e. the best specificity that still reaches that sensitivity.
        ``"specificity"``: the lowest threshold whose specificity (TNR) is >= ``target``,
        i.e. the best sensitivity that still reaches that specificity.

    Which threshold: every threshold between two neighbouring scores predicts the same rows
    positive, so the best value is reached on a whole interval of thresholds (for
    ``"f1"``, ``"fbeta"`` and ``"youden"`` possibly on several). If 0.5 lies in such an
    interval, these data cannot tell 0.5 from the alternatives: 0.5 itself is returned, with
    ``"undetermined": True`` and a ``"reason"`` (e.g. a validation split that the model
    separates perfectly between 0.12 and 0.93). Otherwise the middle of the optimal interval
    nearest 0.5 (the lower of two equally near) is returned, halfway between the
    neighbouring scores, not a score itself: a threshold equal to a validation score sits on
    the edge where the slightest shift of new scores changes predictions.

    Args:
        y_true: Labels, 0 (negative) or 1 (positive), shape (N,).
        scores: P(positive), shape (N,).
        objective: One of :data:`OBJECTIVES`.
        beta: Weight of recall for ``"fbeta"``; must be > 0.
        target: Required rate in (0, 1] for ``"sensitivity"`` and ``"specificity"``; must be
            None for the other objectives.

    Returns:
        ``{"threshold": float, "objective": str, "value": float, "interval": [low, high],
        "undetermined": bool, "value_at_default": float, "metrics": {...}, "curve": {...}}``
        (plus ``"reason"`` when undetermined). ``value`` is the objective on these data at
        the chosen threshold (for ``"sensitivity"``/``"specificity"`` the rate actually
        reached, >= target); ``value_at_default`` the same at 0.5. Every threshold in
        ``(low, high]`` gives the predictions of the chosen one. ``metrics`` holds precision,
        recall, specificity, f1 and youden at that threshold. ``curve`` holds lists
        ``threshold`` (ascending candidates), ``f1``, ``precision``, ``recall``,
        ``specificity``, ``youden`` (and ``fbeta`` for that objective), at most
        ``CURVE_POINTS`` points, always including the candidate with the chosen predictions
        (``high``). Precision is 0 where nothing is predicted positive, as scikit-learn's
        ``precision_score`` reports it.

    Raises:
        ConfigError: unknown objective, bad ``beta`` or ``target``, or one class only.

    Example:
        >>> y = np.array([0, 0, 1, 1, 0, 1])
        >>> s = np.array([0.1, 0.3, 0.35, 0.8, 0.4, 0.7])
        >>> r = tune_threshold(y, s, "f1")
        >>> round(r["threshold"], 4), round(r["value"], 3), r["interval"]  # in (0.3, 0.35]
        (0.325, 0.857, [0.3, 0.35])
        >>> r = tune_threshold(y, s, "specificity", target=1.0)  # any of (0.4, 0.7]
        >>> r["threshold"], r["undetermined"], r["interval"]
        (0.5, True, [0.4, 0.7])
    """
    _check_options(objective, beta, target)
    y, s = _check_arrays(y_true, scores)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        only = "positive" if n_neg == 0 else "negative"
        raise ConfigError(f"cannot tune the threshold: the tuning data hold only {only} rows; "
                          "it needs both classes")

    thr, tp, fp = _counts_per_threshold(y, s)
    recall = tp / n_pos
    specificity = 1.0 - fp / n_neg
    predicted = tp + fp
    # Nothing predicted positive (only the candidate above the top score): precision 0/0 is
    # reported as 0, like scikit-learn's default, so the curve stays numeric.
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    fn = n_pos - tp
    f1 = 2 * tp / (2 * tp + fp + fn)  # denominator >= n_pos > 0
    youden = recall + specificity - 1.0
    curves = {"f1": f1, "precision": precision, "recall": recall,
              "specificity": specificity, "youden": youden}
    if objective == "fbeta":
        b2 = beta * beta
        curves["fbeta"] = (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp)

    if objective in ("f1", "fbeta", "youden"):
        values = curves[objective]
        optimal = values >= values.max() - _TIE_TOL
    elif objective == "sensitivity":
        # Recall only falls as the threshold rises: take the last candidate still on target
        # (the best specificity). The lowest candidate predicts every row positive (recall 1),
        # so one always exists.
        values = recall
        optimal = np.zeros(len(thr), dtype=bool)
        optimal[np.flatnonzero(recall >= target - _TIE_TOL)[-1]] = True
    else:
        # Specificity only rises with the threshold; the candidate above the top score has
        # specificity 1, so a candidate on target always exists.
        values = specificity
        optimal = np.zeros(len(thr), dtype=bool)
        optimal[np.flatnonzero(specificity >= target - _TIE_TOL)[0]] = True

    low, high, best = _optimal_interval(thr, optimal)
    undetermined = low < 0.5 <= high
    at_default = _candidate_at(thr, 0.5)
    keep = _subsample(len(thr), best)
    out = {
        "threshold": 0.5 if undetermined else _middle(low, high),
        "objective": objective,
        "value": float(values[best]),
        "interval": [float(low), float(high)],
        "undetermined": bool(undetermined),
        "value_at_default": float(values[at_default]),
        "metrics": {name: float(curve[best]) for name, curve in curves.items()},
        "curve": {"threshold": thr[keep].tolist(),
                  **{name: curve[keep].tolist() for name, curve in curves.items()}},
    }
    if undetermined:
        perfect = recall[best] == 1.0 and specificity[best] == 1.0
        out["reason"] = ((f"the validation split separates the classes perfectly at every "
                          f"threshold in [{low:.4g}, {high:.4g}]" if perfect else
                          f"every threshold in [{low:.4g}, {high:.4g}] gives the same "
                          f"validation predictions and {objective} {out['value']:.4g}")
                         + ", 0.5 among them: it cannot choose one; 0.5 kept")
    return out


def _optimal_interval(thr: np.ndarray, optimal: np.ndarray) -> tuple[float, float, int]:
    """The interval of thresholds, (low, high], that reaches the optimum and lies nearest 0.5
    (the lower of two equally near), and the candidate whose predictions it gives.

    A candidate ``thr[k]`` stands for every threshold in ``(thr[k - 1], thr[k]]``: they all
    predict the same rows positive. Runs of consecutive optimal candidates join into one
    interval. The first candidate's interval starts at 0 (at ``thr[0]`` if that is lower) and
    the last one (above the top score) reaches 1, the range of a probability.
    """
    lows = np.r_[min(0.0, thr[0]), thr[:-1]]
    highs = thr.copy()
    highs[-1] = max(1.0, thr[-1])
    idx = np.flatnonzero(optimal)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    best_gap, best = np.inf, None
    for run in runs:
        lo, hi = lows[run[0]], highs[run[-1]]
        gap = 0.0 if lo < 0.5 <= hi else min(abs(lo - 0.5), abs(hi - 0.5))
        # Distances equal on paper can differ in the last bit, hence the tolerance; runs come
        # in ascending order, so the first of two equally near ones is the lower.
        if gap < best_gap - _TIE_TOL:
            best_gap, best = gap, (float(lo), float(hi), int(run[-1]))
    return best


def _middle(low: float, high: float) -> float:
    """The middle of (low, high]: as far as possible from the scores on either side, so that
    a small shift of the scores on new data does not move rows across it."""
    mid = (low + high) / 2
    return float(mid if low < mid <= high else high)


def _candidate_at(thr: np.ndarray, t: float) -> int:
    """The candidate that predicts as threshold ``t`` does: the lowest one >= t."""
    return int(min(np.searchsorted(thr, t, side="left"), len(thr) - 1))


def _check_options(objective: str, beta: float, target: float | None) -> None:
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown threshold objective '{objective}'"
                          f"{did_you_mean(objective, OBJECTIVES)}; use one of "
                          f"{one_of(OBJECTIVES)}")
    if objective == "fbeta" and not (np.isfinite(beta) and beta > 0):
        raise ConfigError(f"threshold objective 'fbeta' needs beta > 0, got {beta}")
    if objective in ("sensitivity", "specificity"):
        if target is None:
            raise ConfigError(f"threshold objective '{objective}' needs a target rate in "
                              "(0, 1], e.g. target=0.9")
        if not (0.0 < float(target) <= 1.0):
            raise ConfigError(f"threshold target must be in (0, 1], got {target}")
    elif target is not None:
        # A target silently ignored would make the user believe it constrained the result.
        raise ConfigError(f"threshold target is only used with objective 'sensitivity' or "
                          f"'specificity', not '{objective}'")


def _check_arrays(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Shape and value problems here come from the calling code, not from the user's config.
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"y_true and scores must be 1-D of the same length, got shapes "
                         f"{y.shape} and {s.shape} (binary tasks only)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold 0 (negative) and 1 (positive) only")
    return y.astype(np.float64), s


def _counts_per_threshold(y: np.ndarray, s: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates (ascending) with their true and false positive counts under ``>=``."""
    order = np.argsort(-s, kind="stable")
    s_desc, y_desc = s[order], y[order]
    tp_cum = np.cumsum(y_desc)
    fp_cum = np.arange(1, len(y) + 1) - tp_cum
    # The last row of each run of equal scores: thresholding at that score predicts every row
    # up to and including it positive, so the cumulative counts there are the ones we need.
    last = np.r_[np.flatnonzero(s_desc[1:] != s_desc[:-1]), len(s_desc) - 1]
    above_top = np.nextafter(s_desc[0], np.inf)
    thr = np.r_[above_top, s_desc[last]][::-1]
    tp = np.r_[0.0, tp_cum[last]][::-1]
    fp = np.r_[0.0, fp_cum[last]][::-1]
    return thr, tp, fp


def _subsample(n: int, chosen: int) -> np.ndarray:
    """Indices of at most CURVE_POINTS evenly spread candidates, the chosen one included."""
    if n <= CURVE_POINTS:
        return np.arange(n)
    spread = np.linspace(0, n - 1, CURVE_POINTS - 1).round().astype(int)
    return np.unique(np.r_[spread, chosen])
