"""Preprocessing fitted on the training split only, with a JSON-serialisable state.

Why not scikit-learn's ColumnTransformer: its fitted state can only be saved by pickling,
and deepfit never unpickles (a run directory must be safe to open). This class is small,
stores plain numbers, and reapplies exactly the same steps at prediction time.

Missing values (``missing='impute'``, the default): a numeric column with gaps in training
gets the training median plus a 0/1 ``<col>__missing`` indicator; a categorical gap is its own
category. ``missing='strict'`` turns any gap into an error naming the column and row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deepfit.errors import DataError

MISSING_CATEGORY = "<missing>"


def numeric_or_error(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Convert text columns that are numbers with a few stray strings into an error."""
    for col in frame.columns:
        series = frame[col]
        if _is_numeric(series):
            continue
        present = series.dropna()
        as_num = pd.to_numeric(present, errors="coerce")
        bad = present[as_num.isna()]
        if len(present) and 0 < len(bad) <= 0.1 * len(present):
            raise DataError(f"{origin}: column '{col}' is numeric except for {bad.tolist()[0]!r} at "
                            f"row {bad.index[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1
                                                     else "") + "; fix or blank those values")
        if len(present) and len(bad) == 0:
            frame[col] = pd.to_numeric(series, errors="coerce")
    return frame


class TabularPreprocessor:
    """Standardise numeric columns, one-hot encode categorical ones, handle gaps.

    Example:
        >>> pre = TabularPreprocessor().fit(pd.DataFrame({"a": [1.0, 3.0], "c": ["x", "y"]}))
        >>> pre.transform(pd.DataFrame({"a": [2.0], "c": ["y"]})).tolist()
        [[0.0, 0.0, 1.0]]
    """

    def __init__(self, missing: str = "impute", standardize: bool = True,
                 feature_transform: str = "none", max_categories: int = 50) -> None:
        self.missing = missing
        self.standardize = standardize
        self.feature_transform = feature_transform
        self.max_categories = max_categories

    # -- fitting -------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame) -> TabularPreprocessor:
        if frame.shape[1] == 0:
            raise DataError("no feature columns are left after removing the target and dropped "
                            "columns")
        self.columns_ = list(frame.columns)
        self.numeric_, self.categorical_ = [], []
        self.center_, self.scale_, self.fill_, self.indicators_ = {}, {}, {}, []
        self.categories_: dict[str, list[str]] = {}
        for col in self.columns_:
            series = frame[col]
            if self.missing == "strict":
                _refuse_gaps(series, col)
            if _is_numeric(series):
                self._fit_numeric(col, series)
            else:
                self._fit_categorical(col, series)
        self.output_names_ = self._output_names()
        return self

    def _fit_numeric(self, col: str, series: pd.Series) -> None:
        values = self._transform_values(col, series.astype(float))
        self.numeric_.append(col)
        median = float(np.nanmedian(values)) if values.notna().any() else 0.0
        self.fill_[col] = median
        if values.isna().any():
            self.indicators_.append(col)
        filled = values.fillna(median)
        std = float(filled.std(ddof=0))
        self.center_[col] = float(filled.mean()) if self.standardize else 0.0
        # A constant column gets scale 1: it becomes all zeros instead of NaN.
        self.scale_[col] = std if (self.standardize and std > 1e-12) else 1.0

    def _fit_categorical(self, col: str, series: pd.Series) -> None:
        values = series.astype("string").fillna(MISSING_CATEGORY)
        cats = sorted(values.unique().tolist())
        if len(cats) > self.max_categories:
            raise DataError(f"column '{col}' has {len(cats)} distinct text values (limit "
                            f"data.max_categories={self.max_categories}); if it is an identifier "
                            f"set data.id_column={col} or data.drop_columns=[{col}]")
        self.categorical_.append(col)
        self.categories_[col] = cats

    def _transform_values(self, col: str, values: pd.Series) -> pd.Series:
        if self.feature_transform == "log2p1":
            negative = values[values < 0]
            if len(negative):
                raise DataError(f"column '{col}' has negative value {negative.iloc[0]} at row "
                                f"{negative.index[0]}; log2(x+1) needs values >= 0")
            return np.log2(values + 1.0)
        return values

    def _output_names(self) -> list[str]:
        names = list(self.numeric_) + [f"{c}__missing" for c in self.indicators_]
        for col in self.categorical_:
            names += [f"{col}={cat}" for cat in self.categories_[col]]
        return names

    # -- applying ------------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame, origin: str = "data") -> np.ndarray:
        """Apply the fitted steps; returns float32 ``(rows, len(output_names_))``."""
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise DataError(f"{origin}: missing column(s) {missing} that the model was trained "
                            "with; add them (values may be blank)")
        out = np.empty((len(frame), len(self.output_names_)), dtype=np.float32)
        j = 0
        for col in self.numeric_:
            series = frame[col]
            if self.missing == "strict":
                _refuse_gaps(series, col, origin)
            numeric = pd.to_numeric(series, errors="coerce")
            bad = series[numeric.isna() & series.notna()]
            if len(bad):
                raise DataError(f"{origin}: column '{col}' has non-numeric value {bad.tolist()[0]!r} "
                                f"at row {bad.index[0]}; fix or blank it")
            values = self._transform_values(col, numeric.astype(float))
            values = values.fillna(self.fill_[col])
            out[:, j] = ((values - self.center_[col]) / self.scale_[col]).to_numpy()
            j += 1
        for col in self.indicators_:
            out[:, j] = frame[col].isna().to_numpy(dtype=np.float32)
            j += 1
        for col in self.categorical_:
            values = frame[col].astype("string").fillna(MISSING_CATEGORY).to_numpy()
            for cat in self.categories_[col]:  # unseen categories: all zeros
                out[:, j] = values == cat
                j += 1
        return out

    # -- persistence ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        keys = ("missing", "standardize", "feature_transform", "max_categories", "columns_",
                "numeric_", "categorical_", "center_", "scale_", "fill_", "indicators_",
                "categories_", "output_names_")
        return {k: getattr(self, k) for k in keys}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TabularPreprocessor:
        pre = cls(state["missing"], state["standardize"], state["feature_transform"],
                  state["max_categories"])
        for key, value in state.items():
            setattr(pre, key, value)
        return pre

    def describe(self) -> str:
        """One paragraph for the report."""
        parts = [f"{len(self.numeric_)} numeric column(s)"]
        if self.feature_transform == "log2p1":
            parts.append("log2(x+1) transformed")
        if self.standardize:
            parts.append("standardised with training mean and s.d.")
        if self.categorical_:
            parts.append(f"{len(self.categorical_)} categorical column(s) one-hot encoded "
                         "(unseen categories -> all zeros)")
        if self.indicators_:
            parts.append(f"missing values in {len(self.indicators_)} column(s) imputed with the "
                         "training median plus a missing-indicator column")
        return "; ".join(parts) + f"; {len(self.output_names_)} model inputs"


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _refuse_gaps(series: pd.Series, col: str, origin: str = "training data") -> None:
    gaps = series[series.isna()]
    if len(gaps):
        raise DataError(f"{origin}: column '{col}' has {len(gaps)} missing value(s), first at row "
                        f"{gaps.index[0]}, and data.missing=strict; fill them or use "
                        "data.missing=impute")
