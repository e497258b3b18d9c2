"""Preprocessing fitted on the training split only, with a JSON-serialisable state.

Why not scikit-learn's ColumnTransformer: its fitted state can only be saved by pickling,
and deepfit never unpickles (a run directory must be safe to open). This class is small,
stores plain numbers, and reapplies exactly the same steps at prediction time.

Missing values (``missing='impute'``, the default): a numeric column with gaps in training
gets the training median plus a 0/1 ``<col>__missing`` indicator; a categorical gap is its own
category. ``missing='strict'`` turns any gap into an error naming the column and row.

Numeric scaling (``standardize``): ``z`` (the default) subtracts the training mean and divides
by the training s.d.; ``robust`` is RealMLP-TD's (Holzmueller et al., 2024): subtract the
training median, divide by the interquartile range q75 - q25 (where that is 0, by half the
range (max - min) / 2), then clip smoothly, x / sqrt(1 + (x / 3)^2), so that no input leaves
(-3, 3) however far an outlier lies; ``none`` passes the values on. A column constant in
training gets scale 1 (it becomes 0). True / False (older runs and configs) mean z / none.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd

from deepfit.errors import DataError

MISSING_CATEGORY = "<missing>"
SCALINGS = ("z", "robust", "none")
CLIP = 3.0  # robust scaling's smooth clipping: x / sqrt(1 + (x / CLIP)^2) stays in (-3, 3)


def scaling_name(standardize: Any) -> str:
    """``data.standardize`` as one of SCALINGS: the booleans of older configs and runs (true:
    z-score, false: none) are read as their names."""
    if isinstance(standardize, bool):
        return "z" if standardize else "none"
    return standardize


def smooth_clip(x: Any) -> Any:
    """RealMLP-TD's smooth clipping, x / sqrt(1 + (x / 3)^2), on NumPy arrays and torch
    tensors alike (so deepfit and the exported graph compute the same formula)."""
    return x / (1.0 + (x / CLIP) ** 2) ** 0.5


def numeric_or_error(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Convert text columns that are numbers with a few stray strings into an error."""
    for col, dtype in frame.dtypes.items():  # dtypes only: wide numeric tables cost nothing
        if _is_numeric_dtype(dtype):
            continue
        series = frame[col]
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

    def __init__(self, missing: str = "impute", standardize: str | bool = "z",
                 feature_transform: str = "none", max_categories: int = 50) -> None:
        self.missing = missing
        self.standardize = scaling_name(standardize)
        self.feature_transform = feature_transform
        self.max_categories = max_categories
        # Columns of a run saved before whole numbers were named alike whose categories hold
        # both "2" and "2.0": matched as written (derived on loading, never saved).
        self.literal_: list[str] = []

    # -- fitting -------------------------------------------------------------------------
    # Numeric columns are handled as one float matrix (a 5,000-column omics table took
    # seconds column by column); categorical columns one by one, as there are few.
    def fit(self, frame: pd.DataFrame) -> TabularPreprocessor:
        if frame.shape[1] == 0:
            raise DataError("no feature columns are left after removing the target and dropped "
                            "columns")
        self.columns_ = list(frame.columns)
        if self.missing == "strict":
            _refuse_gaps(frame)
        self.numeric_ = [c for c, t in frame.dtypes.items() if _is_numeric_dtype(t)]
        numeric = set(self.numeric_)
        self.categorical_ = [c for c in self.columns_ if c not in numeric]
        self._fit_numeric(frame)
        self.categories_: dict[str, list[str]] = {}
        for col in self.categorical_:
            self._fit_categorical(col, frame[col])
        self.output_names_ = self._output_names()
        return self

    def _fit_numeric(self, frame: pd.DataFrame) -> None:
        values = self._transform_values(_as_matrix(frame, self.numeric_), frame, "training data")
        gaps = np.isnan(values)
        present = ~gaps.all(axis=0)
        median = np.zeros(values.shape[1])
        if present.any():
            median[present] = np.nanmedian(values[:, present], axis=0)
        filled = np.where(gaps, median, values)
        center, scale = _center_and_scale(filled, self.standardize)
        self.fill_ = dict(zip(self.numeric_, median.tolist()))
        self.center_ = dict(zip(self.numeric_, center.tolist()))
        self.scale_ = dict(zip(self.numeric_, scale.tolist()))
        self.indicators_ = [c for c, gap in zip(self.numeric_, gaps.any(axis=0)) if gap]

    def _fit_categorical(self, col: str, series: pd.Series) -> None:
        values = _categories_of(series)
        cats = sorted(values.unique().tolist())
        if len(cats) > self.max_categories:
            raise DataError(f"column '{col}' has {len(cats)} distinct text values (limit "
                            f"data.max_categories={self.max_categories}); if it is an identifier "
                            f"set data.id_column={col} or data.drop_columns=[{col}]")
        self.categories_[col] = cats

    def _transform_values(self, values: np.ndarray, frame: pd.DataFrame,
                          origin: str) -> np.ndarray:
        """``values``: the numeric columns as float64 (rows, columns), NaN for gaps."""
        if self.feature_transform != "log2p1":
            return values
        negative = values < 0
        if negative.any():
            j = int(np.argmax(negative.any(axis=0)))  # the first such column, as listed
            i = int(np.argmax(negative[:, j]))
            raise DataError(f"{origin}: column '{self.numeric_[j]}' has negative value "
                            f"{float(values[i, j])} at row {frame.index[i]}; log2(x+1) "
                            "(data.feature_transform=log2p1) needs values >= 0: drop the "
                            "column (data.drop_columns) or set data.feature_transform=none")
        return np.log2(values + 1.0)

    def _output_names(self) -> list[str]:
        names = list(self.numeric_) + [f"{c}__missing" for c in self.indicators_]
        for col in self.categorical_:
            names += [f"{col}={cat}" for cat in self.categories_[col]]
        return names

    # -- applying ------------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame, origin: str = "data",
                  texts: Optional[dict[str, np.ndarray]] = None) -> np.ndarray:
        """Apply the fitted steps; returns float32 ``(rows, len(output_names_))``.
        ``texts``: a dict shared with ``unfamiliar_counts`` for the same frame, so each
        categorical column is converted to text once (filled by whichever call is first)."""
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise DataError(f"{origin}: missing column(s) {missing} that the model was trained "
                            "with; add them (values may be blank)")
        if self.missing == "strict":
            _refuse_gaps(frame[self.columns_], origin)
        out = np.empty((len(frame), len(self.output_names_)), dtype=np.float32)
        k = len(self.numeric_)
        values = self._transform_values(_as_matrix(frame, self.numeric_, origin), frame, origin)
        fill = np.array([self.fill_[c] for c in self.numeric_], dtype=np.float64)
        center = np.array([self.center_[c] for c in self.numeric_], dtype=np.float64)
        scale = np.array([self.scale_[c] for c in self.numeric_], dtype=np.float64)
        scaled = (np.where(np.isnan(values), fill, values) - center) / scale
        out[:, :k] = smooth_clip(scaled) if self.standardize == "robust" else scaled
        j = k + len(self.indicators_)
        if self.indicators_:
            out[:, k:j] = frame[self.indicators_].isna().to_numpy(dtype=np.float32)
        for col in self.categorical_:
            values = _texts_of(frame, col, texts, col in self.literal_)
            for cat in self.categories_[col]:  # unseen categories: all zeros
                out[:, j] = values == cat
                j += 1
        return out

    def unfamiliar(self, frame: pd.DataFrame) -> list[str]:
        """One line per column of new data (prediction, evaluation, a validation or test
        split) that holds what training never saw: a category outside the training ones,
        or a gap in a column that had none. ``transform`` encodes a categorical one as 'no
        known category' (all zeros in the column's one-hot inputs) and fills a numeric gap
        with the training median; this says so, with the count of rows and examples.
        Text in a numeric column is refused by ``transform`` itself."""
        return self.unfamiliar_lines(self.unfamiliar_counts(frame))

    def unfamiliar_counts(self, frame: pd.DataFrame, into: Optional[dict[str, dict]] = None,
                          texts: Optional[dict[str, np.ndarray]] = None) -> dict[str, dict]:
        """What ``unfamiliar`` says, as counts added to ``into`` (new data read in chunks
        are said once, for all chunks): ``{column: {unseen value: rows}}`` for categorical
        columns (values in order of first appearance), ``{column: rows}`` for gaps."""
        into = into if into is not None else {"categories": {}, "gaps": {}}
        for col in self.categorical_:
            values = pd.Series(_texts_of(frame, col, texts, col in self.literal_), dtype=object)
            new = values[~values.isin(self.categories_[col])]
            if len(new):
                counts = into["categories"].setdefault(col, {})
                for value, count in new.value_counts(sort=False).items():
                    counts[value] = counts.get(value, 0) + int(count)
        indicated = set(self.indicators_)
        plain = [c for c in self.numeric_ if c not in indicated]
        if plain:
            gaps = frame[plain].isna().sum()
            for col, count in gaps[gaps > 0].items():
                into["gaps"][col] = into["gaps"].get(col, 0) + int(count)
        return into

    def unfamiliar_lines(self, counts: dict[str, dict]) -> list[str]:
        """The lines of ``unfamiliar`` from ``unfamiliar_counts``: the columns in training
        order, the three most frequent unseen values of each (ties: first seen first)."""
        lines = []
        for col in self.categorical_:
            new = counts["categories"].get(col)
            if not new:
                continue
            examples = sorted(new, key=lambda v: -new[v])[:3]  # stable: ties keep order
            shown = ", ".join("a missing value" if v == MISSING_CATEGORY else repr(v)
                              for v in examples)
            lines.append(f"column '{col}': {sum(new.values())} row(s) hold a category not "
                         f"seen in training ({shown}{', ...' if len(new) > 3 else ''}), "
                         "encoded as 'no known category' (all zeros in its one-hot inputs)")
        for col in self.numeric_:
            if counts["gaps"].get(col):
                lines.append(f"column '{col}': {counts['gaps'][col]} row(s) are missing a value, "
                             "which training never had in this column; filled with the "
                             "training median")
        return lines

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
        pre.standardize = scaling_name(pre.standardize)  # a run saved before 'robust'
        renamed, pre.literal_ = _whole_numbers_named_alike(pre.categories_)
        if renamed != pre.categories_:
            pre.categories_ = renamed
            pre.output_names_ = pre._output_names()
        return pre

    def describe(self) -> str:
        """One paragraph for the report."""
        parts = [f"{len(self.numeric_)} numeric column(s)"]
        if self.feature_transform == "log2p1":
            parts.append("log2(x+1) transformed")
        if self.standardize != "none":
            parts.append(SCALING_WORDS[self.standardize])
        if self.categorical_:
            parts.append(f"{len(self.categorical_)} categorical column(s) one-hot encoded "
                         "(unseen categories -> 'no known category': all zeros)")
        if self.indicators_:
            parts.append(f"missing values in {len(self.indicators_)} column(s) imputed with the "
                         "training median plus a missing-indicator column")
        return "; ".join(parts) + f"; {len(self.output_names_)} model inputs"


SCALING_WORDS = {"z": "standardised with training mean and s.d.",
                 "robust": "robust-scaled (training median and interquartile range) and "
                           "smoothly clipped to (-3, 3) (RealMLP-TD)"}


def _center_and_scale(filled: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    """Per column of the (gap-filled) training values: what to subtract and divide by."""
    columns = filled.shape[1]
    if scaling == "none":
        return np.zeros(columns), np.ones(columns)
    if scaling == "z":
        center, scale = filled.mean(axis=0), filled.std(axis=0)  # ddof=0
    elif columns and len(filled):
        center = np.median(filled, axis=0)
        q25, q75 = np.quantile(filled, [0.25, 0.75], axis=0)
        scale = np.where(q75 > q25, q75 - q25, (filled.max(axis=0) - filled.min(axis=0)) / 2)
    else:
        center, scale = np.zeros(columns), np.ones(columns)
    # A constant column gets scale 1: it becomes all zeros instead of NaN.
    return center, np.where(scale > 1e-12, scale, 1.0)


# A whole number written as a decimal: "3.0", "-12.00".
_WHOLE_DECIMAL, _WHOLE = r"^([+-]?\d+)\.0+$", r"\1"


def _categories_of(series: pd.Series, literal: bool = False) -> pd.Series:
    """A categorical column as the text its categories are named by; a gap is a category.
    A whole number is named the same however it was read: 3, 3.0 and "3.0" are all "3"
    (pandas reads a column of numbers with a blank as floats, and a JSON request may send
    3.0; as text they would be categories training never saw). ``literal``: as written
    (a run saved before, whose categories hold both "2" and "2.0")."""
    text = series.astype("string").fillna(MISSING_CATEGORY)
    return text if literal else text.str.replace(_WHOLE_DECIMAL, _WHOLE, regex=True)


def _whole_numbers_named_alike(categories: dict[str, list[str]]
                               ) -> tuple[dict[str, list[str]], list[str]]:
    """The category lists of a run saved before ``_categories_of`` named "3.0" as "3", in
    today's names, each at its own position (the one-hot inputs keep their order), and the
    columns whose new names would collide: those keep their lists and are read literally,
    as when the run was trained."""
    out, literal = {}, []
    for col, cats in categories.items():
        renamed = _categories_of(pd.Series(cats, dtype="string")).tolist()
        if len(set(renamed)) == len(renamed):
            out[col] = renamed
        else:
            out[col] = list(cats)
            literal.append(col)
    return out, literal


def _texts_of(frame: pd.DataFrame, col: str, texts: Optional[dict[str, np.ndarray]],
              literal: bool = False) -> np.ndarray:
    """``_categories_of(frame[col])`` as an array, kept in ``texts`` (when given) for reuse."""
    if texts is not None and col in texts:
        return texts[col]
    values = _categories_of(frame[col], literal).to_numpy()
    if texts is not None:
        texts[col] = values
    return values


def _is_numeric_dtype(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def _as_matrix(frame: pd.DataFrame, columns: list[str], origin: str = "data") -> np.ndarray:
    """``frame[columns]`` as float64, NaN for gaps; a column that is text at prediction time
    must hold numbers (or blanks), else an error naming the column, value and row."""
    sub = frame[columns]
    for col, dtype in sub.dtypes.items():
        if _is_numeric_dtype(dtype):
            continue
        series = sub[col]
        numeric = pd.to_numeric(series, errors="coerce")
        bad = series[numeric.isna() & series.notna()]
        if len(bad):
            raise DataError(f"{origin}: column '{col}' has non-numeric value {bad.tolist()[0]!r} "
                            f"at row {bad.index[0]}; fix or blank it")
        sub = sub.assign(**{col: numeric})
    return sub.to_numpy(dtype=np.float64, na_value=np.nan)


def _refuse_gaps(frame: pd.DataFrame, origin: str = "training data") -> None:
    """data.missing=strict: the first column (as listed) with a gap is an error."""
    gaps = frame.isna()
    columns = gaps.any(axis=0)
    if columns.any():
        col = columns.index[int(np.argmax(columns.to_numpy()))]
        rows = gaps[col]
        raise DataError(f"{origin}: column '{col}' has {int(rows.sum())} missing value(s), "
                        f"first at row {rows.index[int(np.argmax(rows.to_numpy()))]}, and "
                        "data.missing=strict; fill them or use data.missing=impute")
