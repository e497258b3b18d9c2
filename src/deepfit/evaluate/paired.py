"""Paired tests of two models scored on the same rows.

* McNemar's test on the rows one classifier gets right and the other wrong: exact binomial
  when there are fewer than 25 such rows, chi-square with continuity correction otherwise.
* A paired bootstrap of the difference in a per-row score (correctness, squared error): the
  same resampled rows are scored for both models, giving a confidence interval of the
  difference and a two-sided p-value (twice the share of resamples whose difference has
  the other sign than the observed one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import binomtest, chi2


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, Any]:
    """McNemar's test of two classifiers on the same rows.

    Example:
        >>> r = mcnemar(np.array([1, 1, 1, 0]), np.array([1, 0, 0, 0]))
        >>> r["a_only"], r["b_only"], r["method"]
        (2, 0, 'exact binomial')
    """
    a_only = int(np.sum(correct_a & ~correct_b))
    b_only = int(np.sum(~correct_a & correct_b))
    n = a_only + b_only
    if n == 0:
        return {"a_only": 0, "b_only": 0, "p_value": 1.0, "method": "no discordant rows"}
    if n < 25:
        p = binomtest(a_only, n, 0.5).pvalue
        method = "exact binomial"
    else:
        stat = (abs(a_only - b_only) - 1) ** 2 / n
        p = float(chi2.sf(stat, df=1))
        method = "chi-square with continuity correction"
    return {"a_only": a_only, "b_only": b_only, "p_value": float(min(1.0, p)), "method": method}


def paired_bootstrap(values_a: np.ndarray, values_b: np.ndarray, reduce: str = "mean",
                     n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Difference A - B of a per-row score (correctness, squared error) under paired
    resampling. ``reduce='rmse'`` takes the square root of the resampled mean."""
    rng = np.random.default_rng(seed)
    n = len(values_a)
    idx = rng.integers(0, n, size=(n_resamples, n))
    fa, fb = values_a[idx].mean(axis=1), values_b[idx].mean(axis=1)
    obs_a, obs_b = values_a.mean(), values_b.mean()
    if reduce == "rmse":
        fa, fb, obs_a, obs_b = np.sqrt(fa), np.sqrt(fb), np.sqrt(obs_a), np.sqrt(obs_b)
    diff = fa - fb
    observed = float(obs_a - obs_b)
    alpha = (1 - level) / 2
    if observed == 0:
        p = 1.0
    else:
        p = float(min(1.0, 2 * np.mean(np.sign(diff) != np.sign(observed))))
    # With R resamples no p-value below 1/R can be resolved: report that bound, not 0.
    at_floor = p < 1.0 / n_resamples
    return {"difference": observed, "low": float(np.quantile(diff, alpha)),
            "high": float(np.quantile(diff, 1 - alpha)),
            "p_value": max(p, 1.0 / n_resamples), "p_below": at_floor,
            "resamples": n_resamples}


def format_p(result: dict[str, Any]) -> str:
    p = result["p_value"]
    return f"< {p:.2g}" if result.get("p_below") else f"{p:.3g}"
