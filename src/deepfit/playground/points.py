"""The points a playground run learns: made by deepfit's 2-D generators, read from an uploaded
CSV, or clicked on the page; split into train and test; turned into the input features.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import pandas as pd

from deepfit.data.sources.toy2d import TOY, load_toy
from deepfit.errors import DataError
from deepfit.playground.settings import MAX_POINTS, Settings

MAX_CLASSES = 10
# feature name -> its values from the inputs (x1, x2); x2 is absent for 1-D data
FEATURE_FUNCTIONS = {
    "x1": lambda a, b: a, "x2": lambda a, b: b, "x1sq": lambda a, b: a * a,
    "x2sq": lambda a, b: b * b, "x1x2": lambda a, b: a * b, "sinx1": lambda a, b: np.sin(a),
    "sinx2": lambda a, b: np.sin(b),
}


@dataclass(frozen=True)
class Points:
    """Inputs ``X`` (n, 1 or 2), targets ``y`` (class index or value), ``train`` (n,) bool."""

    X: np.ndarray
    y: np.ndarray
    train: np.ndarray
    task: str  # "binary", "multiclass" or "regression"
    class_names: tuple[str, ...] = ()

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_outputs(self) -> int:
        return 1 if self.task in ("binary", "regression") else self.n_classes

    def with_point(self, x: float, y: float, label: float) -> Points:
        """One more training point, clicked on the page (label: a class index, or the
        target's value for regression)."""
        if self.task != "regression" and not (float(label).is_integer()
                                               and 0 <= label < self.n_classes):
            raise DataError(f"point: class {label!r} is not one of 0 to {self.n_classes - 1}")
        if len(self.y) >= MAX_POINTS:
            raise DataError(f"point: the playground holds at most {MAX_POINTS} points")
        row = [x] if self.X.shape[1] == 1 else [x, y]
        value = float(label) if self.task == "regression" else int(label)
        return replace(self, X=np.vstack([self.X, np.array([row], np.float32)]),
                       y=np.append(self.y, np.array([value], self.y.dtype)),
                       train=np.append(self.train, True))

    def without_point_near(self, x: float, y: float, radius: float) -> Points:
        """The points less the one nearest to (x, y), if it is within ``radius``."""
        where = np.c_[self.X[:, 0], self.X[:, 1] if self.X.shape[1] == 2 else self.y]
        d = np.hypot(where[:, 0] - x, where[:, 1] - y)
        if len(d) <= 2 or d.min() > radius:
            return self
        nearest = int(d.argmin())
        if np.count_nonzero(self.train == self.train[nearest]) == 1:
            return self  # the last training (or test) point stays: both splits need one
        keep = np.arange(len(d)) != nearest
        return replace(self, X=self.X[keep], y=self.y[keep], train=self.train[keep])


def generate(settings: Settings, upload: Optional[Points] = None) -> Points:
    """The points of ``settings``: a generator's, or the uploaded ones, split by the seed."""
    if settings.data == "upload":
        if upload is None:
            raise DataError("data: no CSV uploaded yet; upload one, or choose a generator")
        base = upload
    else:
        table = load_toy(settings.data, settings.points, settings.noise, settings.seed)
        frame = table.frame
        X = frame.drop(columns="y").to_numpy(np.float32)
        task = TOY[settings.data][2]
        names = () if task == "regression" else ("0", "1")
        y = frame["y"].to_numpy(np.float32 if task == "regression" else np.int64)
        base = Points(X, y, np.ones(len(y), bool), task, names)
    return replace(base, train=split(len(base.y), settings.test_ratio, settings.seed))


def split(n: int, test_ratio: float, seed: int) -> np.ndarray:
    """A train mask: ``round(test_ratio * n)`` rows (at least one each side) go to test."""
    n_test = min(max(1, round(test_ratio * n)), n - 1)
    order = np.random.default_rng(seed + 1).permutation(n)
    train = np.ones(n, bool)
    train[order[:n_test]] = False
    return train


def features(X: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The network's inputs: one column per feature name, float32."""
    a = X[:, 0].astype(np.float64)
    b = X[:, 1].astype(np.float64) if X.shape[1] > 1 else np.zeros_like(a)
    return np.stack([FEATURE_FUNCTIONS[name](a, b) for name in names], 1).astype(np.float32)


def read_csv(name: str, data: bytes, max_rows: int = MAX_POINTS) -> Points:
    """An uploaded CSV: two numeric input columns and a target (a label with 2 to 10 classes,
    or a numeric value for regression), in that order. Anything else is one ``DataError``."""
    origin = f"upload '{shown_name(name)}'"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{origin}: not UTF-8 text (byte {exc.start}); save it as UTF-8 "
                        "CSV") from None
    try:
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else "empty"
        raise DataError(f"{origin}: not a CSV table ({line})") from None
    if frame.shape[1] != 3:
        raise DataError(f"{origin}: {frame.shape[1]} column(s) {list(frame.columns)[:6]}; "
                        "the playground takes 3: x1, x2 and a label or target")
    if len(frame) < 4:
        raise DataError(f"{origin}: {len(frame)} row(s); give at least 4 points")
    if len(frame) > max_rows:
        raise DataError(f"{origin}: {len(frame):,} rows; the playground takes at most "
                        f"{max_rows:,} points")
    inputs = []
    for column in frame.columns[:2]:
        values = pd.to_numeric(frame[column], errors="coerce")
        with np.errstate(over="ignore"):  # checked as stored: 1e39 is inf in float32
            stored = values.to_numpy(np.float32, na_value=np.nan)
        bad = ~np.isfinite(stored)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{origin}: column '{column}', row {row + 2}: "
                            f"'{frame[column].iloc[row]}' is not a finite number")
        inputs.append(stored)
    X = np.stack(inputs, 1)
    return _target(origin, frame[frame.columns[2]], X)


def _target(origin: str, column: pd.Series, X: np.ndarray) -> Points:
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise DataError(f"{origin}: column '{column.name}', row {row + 2} is blank; give "
                        "every point a label")
    train = np.ones(len(column), bool)
    numeric = pd.to_numeric(column, errors="coerce")
    values = numeric.to_numpy(float)
    whole = not numeric.isna().any() and bool(np.all(np.mod(values, 1) == 0))
    if not numeric.isna().any() and (not whole or column.nunique() > MAX_CLASSES):
        with np.errstate(over="ignore"):
            stored = values.astype(np.float32)
        if not np.isfinite(stored).all():
            raise DataError(f"{origin}: column '{column.name}' holds a value that is not a "
                            "finite float32 number")
        return Points(X, stored, train, "regression")
    labels = column.astype(str) if not whole else numeric.astype(np.int64).astype(str)
    names = sorted(labels.unique(), key=lambda s: (not whole, int(s) if whole else 0, s))
    if len(names) < 2:
        raise DataError(f"{origin}: column '{column.name}' has one class ({names[0]!r}); "
                        "give points of 2 to 10 classes")
    if len(names) > MAX_CLASSES:
        raise DataError(f"{origin}: column '{column.name}' has {len(names)} classes; the "
                        f"playground takes 2 to {MAX_CLASSES} (or a numeric target)")
    index = {n: i for i, n in enumerate(names)}
    y = labels.map(index).to_numpy(np.int64)
    return Points(X, y, train, "binary" if len(names) == 2 else "multiclass", tuple(names))


def shown_name(name: str) -> str:
    """A file name as it may be shown: its last part, printable, short."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in base if c.isprintable())[:80] or "upload"
