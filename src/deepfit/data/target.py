"""The target: task inference, class coding and regression scaling (fitted on train)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd

from deepfit.data.labels import class_key, relabel
from deepfit.errors import DataError, did_you_mean

# An integer-valued target with at most this many distinct values is read as classes.
MAX_INTEGER_CLASSES = 20


def infer_task(y: pd.Series, column: str) -> str:
    """'binary', 'multiclass' or 'regression' from the target's values."""
    values = y.dropna()
    n_unique = values.nunique()
    if n_unique < 2:
        only = _plain(values.iloc[0]) if len(values) else "nothing"
        raise DataError(f"target column '{column}' has a single value ({only!r}); a model needs "
                        "at least two classes or varying numbers")
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "binary" if n_unique == 2 else "multiclass"
    as_float = values.astype(float)
    integral = bool(np.all(np.isclose(as_float, np.round(as_float))))
    if n_unique == 2:
        return "binary"
    if integral and n_unique <= MAX_INTEGER_CLASSES:
        return "multiclass"
    return "regression"


@dataclass
class TargetSpec:
    """How target values become training labels and back. JSON-serialisable."""

    column: str
    task: str
    classes: list = field(default_factory=list)       # raw values, in code order
    class_names: list = field(default_factory=list)   # display names, in code order
    mean: float = 0.0
    std: float = 1.0
    label_map: dict = field(default_factory=dict)     # data.label_map: {class_key(old): new}

    @classmethod
    def multilabel(cls, y: pd.DataFrame) -> TargetSpec:
        """Several 0/1 (or true/false) label columns; each row may have any number of them."""
        names = [str(c) for c in y.columns]
        spec = cls(",".join(names), "multilabel", classes=names, class_names=names)
        spec.encode(y)  # validates the values now, before any split or training
        return spec

    @classmethod
    def fit(cls, y: pd.Series, column: str, task: str, train_rows: Optional[np.ndarray] = None,
            names: Optional[dict] = None, positive: Optional[str] = None,
            scale: bool = True) -> TargetSpec:
        if task == "regression":
            numeric = pd.to_numeric(y, errors="coerce")
            bad = y[numeric.isna()]
            if len(bad):
                raise DataError(f"target column '{column}' has non-numeric value {bad.tolist()[0]!r} "
                                f"at row {bad.index[0]}; a regression target must be numbers")
            train = numeric.to_numpy(float)[train_rows] if train_rows is not None else numeric
            std = float(np.std(train)) if scale else 1.0
            return cls(column, task, mean=float(np.mean(train)) if scale else 0.0,
                       std=std if std > 1e-12 else 1.0)
        classes = sorted(y.unique().tolist(), key=_sort_key)
        if task == "binary" and len(classes) != 2:
            raise DataError(f"data.task=binary but target column '{column}' has {len(classes)} "
                            "classes; use data.task=multiclass")
        names = names or {}
        display = [str(names.get(c, c)) for c in classes]
        if positive is not None and task == "binary":
            if positive not in display:
                raise DataError(f"positive class '{positive}' is not a class of '{column}'"
                                f"{did_you_mean(positive, display)}; classes are {display}")
            if display.index(positive) == 0:
                classes.reverse()
                display.reverse()
        return cls(column, task, classes=[_plain(c) for c in classes], class_names=display)

    def encode(self, y: pd.Series | pd.DataFrame, origin: str = "data") -> np.ndarray:
        """Raw target values -> float32 (binary, regression; multi-label (N, L)) or int64
        codes (multiclass)."""
        if self.task == "multilabel":
            return _encode_multilabel(y, origin)
        if self.task == "regression":
            return ((pd.to_numeric(y).to_numpy(float) - self.mean) / self.std).astype(np.float32)
        lookup = {class_key(c): i for i, c in enumerate(self.classes)}
        codes = np.array([lookup.get(class_key(v), -1) for v in y], dtype=np.int64)
        unknown = np.flatnonzero(codes < 0)
        if len(unknown):
            raise DataError(f"{origin}: target '{self.column}' has value {y.tolist()[unknown[0]]!r} at "
                            f"row {y.index[unknown[0]]} that is not a known class "
                            f"{self.class_names}")
        return codes.astype(np.float32) if self.task == "binary" else codes

    def relabel(self, y: pd.Series) -> pd.Series:
        """Raw target values renamed and merged by the run's ``data.label_map``, as in
        training (new labelled data may use the old spellings)."""
        return relabel(y, self.label_map)

    def decode_regression(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _encode_multilabel(y: pd.DataFrame, origin: str) -> np.ndarray:
    out = np.empty(y.shape, dtype=np.float32)
    for j, col in enumerate(y.columns):
        values = y[col]
        numeric = pd.to_numeric(values.map(lambda v: float(v) if isinstance(v, bool) else v),
                                errors="coerce")
        bad = values[~numeric.isin([0, 1])]
        if len(bad):
            raise DataError(f"{origin}: label column '{col}' has value {bad.tolist()[0]!r} at row "
                            f"{bad.index[0]}; multi-label targets must be 0 or 1 (or true/false)")
        out[:, j] = numeric.to_numpy(np.float32)
    return out


def _sort_key(value: Any) -> tuple:
    return (0, float(value), "") if isinstance(value, (int, float, np.number)) else (1, 0.0, str(value))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
