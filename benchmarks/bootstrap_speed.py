"""Bootstrap speed: deepfit's vectorised intervals beside a naive loop over resamples.

The case: a binary test set (default 10,000 rows), 1,000 resamples, the headline metrics
(accuracy, balanced accuracy, precision, recall, specificity, F1, MCC, ROC-AUC).

  (a) naive    - a Python loop over resamples calling scikit-learn's metric functions
  (b) deepfit  - deepfit.evaluate.bootstrap.bootstrap_ci (all resamples with array operations)

Both draw the same number of resamples; the naive arm can run on fewer (--naive-resamples)
and is then scaled up linearly, which is exact for a loop. Run:
`.venv/bin/python benchmarks/bootstrap_speed.py --help`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np
from sklearn import metrics as skm

from deepfit.evaluate.bootstrap import DEFAULT_METRICS, bootstrap_ci


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of a middling classifier (AUC about 0.84)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    return y, np.clip(0.3 * y + rng.uniform(0, 0.7, rows), 0, 1)


def naive(y: np.ndarray, scores: np.ndarray, n_resamples: int, seed: int = 0) -> dict:
    """The loop most code writes: resample, call each scikit-learn metric, repeat."""
    rng = np.random.default_rng(seed)
    pred = (scores >= 0.5).astype(int)
    fns = {"accuracy": skm.accuracy_score, "balanced_accuracy": skm.balanced_accuracy_score,
           "precision": skm.precision_score, "recall": skm.recall_score,
           "specificity": lambda t, p: skm.recall_score(t, p, pos_label=0),
           "f1": skm.f1_score, "mcc": skm.matthews_corrcoef}
    samples: dict[str, list[float]] = {name: [] for name in DEFAULT_METRICS["binary"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n_resamples):
            i = rng.integers(0, len(y), len(y))
            for name, fn in fns.items():
                samples[name].append(fn(y[i], pred[i]))
            samples["roc_auc"].append(skm.roc_auc_score(y[i], scores[i]))
    return {name: np.percentile(v, [2.5, 97.5]) for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--naive-resamples", type=int, default=1000,
                        help="resamples for the naive arm (its time is scaled to --resamples)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of deepfit's arm")
    args = parser.parse_args()

    y, scores = make_data(args.rows)
    bootstrap_ci(y, scores, n_resamples=10)  # warm-up: imports, allocator
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = bootstrap_ci(y, scores, n_resamples=args.resamples)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    ref = naive(y, scores, args.naive_resamples)
    naive_s = (time.perf_counter() - start) * args.resamples / args.naive_resamples

    print(f"bootstrap of {args.rows:,} binary rows x {args.resamples:,} resamples, "
          f"{len(DEFAULT_METRICS['binary'])} metrics")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"numpy {np.__version__}")
    print(f"  deepfit  median {statistics.median(times):7.3f} s   best {min(times):7.3f} s "
          f"({args.repeats} runs)")
    scaled = "" if args.naive_resamples == args.resamples else \
        f"  (from {args.naive_resamples:,} resamples, scaled)"
    print(f"  naive           {naive_s:7.3f} s{scaled}")
    print(f"  ratio    naive / deepfit median = {naive_s / statistics.median(times):,.0f}x")
    print("95% intervals (deepfit | naive; they differ only by resampling noise):")
    for name, entry in ours.items():
        print(f"  {name:18s} [{entry['low']:.4f}, {entry['high']:.4f}] | "
              f"[{ref[name][0]:.4f}, {ref[name][1]:.4f}]")


if __name__ == "__main__":
    main()
