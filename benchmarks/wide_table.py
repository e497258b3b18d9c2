"""Preprocessing a wide table (an omics-style matrix): deepfit's TabularPreprocessor against
the scikit-learn pipeline that computes the same thing, side by side in one run.

Both fit on the training rows and transform train, validation and test: numeric columns get
the training median for gaps plus a 0/1 missing indicator, then the training mean and
standard deviation; text columns are one-hot encoded with unseen categories as all zeros.
The reference is ``ColumnTransformer([SimpleImputer(median) + StandardScaler,
MissingIndicator, OneHotEncoder(handle_unknown="ignore")])``; the outputs are checked to
agree before timing.

Run: ``python benchmarks/wide_table.py [--rows 300] [--columns 5000] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from deepfit.data.transforms import TabularPreprocessor


def make_table(rows: int, columns: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.lognormal(size=(rows, columns)),
                         columns=[f"gene{i}" for i in range(columns)])
    gaps = rng.random((rows, columns)) < 0.01  # 1 % missing, scattered
    frame = frame.mask(gaps)
    for name, levels in (("sex", ["f", "m"]), ("site", ["a", "b", "c"]),
                         ("stage", ["I", "II", "III", "IV"])):
        frame[name] = rng.choice(levels, size=rows)
    return frame


def reference(frame: pd.DataFrame) -> ColumnTransformer:
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    text = [c for c in frame.columns if c not in numeric]
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("gaps", MissingIndicator(features="missing-only", error_on_new=False), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), text)])


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--columns", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    frame = make_table(args.rows, args.columns)
    cut1, cut2 = int(0.7 * len(frame)), int(0.85 * len(frame))
    train, val, test = frame.iloc[:cut1], frame.iloc[cut1:cut2], frame.iloc[cut2:]

    def ours() -> list[np.ndarray]:
        pre = TabularPreprocessor().fit(train)
        return [pre.transform(part) for part in (train, val, test)]

    def theirs() -> list[np.ndarray]:
        ct = reference(train).fit(train)
        return [ct.transform(part) for part in (train, val, test)]

    # The same columns in the same order: values, missing indicators, one-hot categories.
    for a, b in zip(ours(), theirs()):
        assert a.shape == b.shape, (a.shape, b.shape)
        assert np.allclose(a, b, atol=1e-4), float(np.abs(a - b).max())
    t_ours, t_ref = best_of(args.repeats, ours), best_of(args.repeats, theirs)
    print(f"# wide-table preprocessing {datetime.date.today()} | {platform.machine()} | "
          f"{args.rows} rows x {args.columns} numeric + 3 text columns, 1 % gaps | "
          f"fit on 70 %, transform train/val/test | best of {args.repeats}")
    print(f"deepfit       {t_ours:7.3f} s")
    print(f"scikit-learn  {t_ref:7.3f} s  (ColumnTransformer: SimpleImputer + StandardScaler, "
          "MissingIndicator, OneHotEncoder)")
    print(f"scikit-learn / deepfit: {t_ref / t_ours:.2f}x")


if __name__ == "__main__":
    main()
