"""The data stage's entry, ``build_bundle``, and its table half: load a table, choose the
target and task, split (the step shared with images, ``data/stage.py``) and fit the
preprocessing on the training rows only."""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch

from deepfit.config import DataConfig
from deepfit.data.images.bundle import build_image_bundle, image_options
from deepfit.data.labels import (check_lookalikes, class_counts, feature_lookalikes, map_target,
                                 renamed_class)
from deepfit.data.source_kind import resolve_source
from deepfit.data.sources import load_table
from deepfit.data.split import SPLITS
from deepfit.data.stage import (DataBundle, DataDescription, GivenSplit, Schema,
                                Split, describe, split_rows)
from deepfit.data.table import Table
from deepfit.data.target import TargetSpec, infer_task
from deepfit.data.transforms import TabularPreprocessor, numeric_or_error
from deepfit.errors import DataError, DataWarning, did_you_mean

__all__ = ["build_bundle", "DataBundle", "DataDescription", "Schema", "Split"]


def build_bundle(cfg: DataConfig, data: Any = None, seed: int = 0,
                 split: Optional[pd.Series] = None,
                 norm_stats: Optional[tuple] = None, refit: bool = False) -> DataBundle:
    """Load, split, and preprocess (fitted on the training split only).

    ``split`` (per row ``"train" | "val" | "test"``, e.g. one cross-validation fold) replaces
    the configured split; missing validation rows are carved from the training rows.
    ``refit``: the validation rows join the training rows after the split (a tuned config's
    final fit; the validation split is then empty and the preprocessing fitted on both).

    Example:
        >>> b = build_bundle(DataConfig(source="iris"))
        >>> b.schema.task, b.train.X.shape[1]
        ('multiclass', 4)
    """
    source = resolve_source(cfg, data)
    if source.is_images:
        if split is not None:
            raise DataError("cross-validation folds of image data are not supported; use the "
                            "train / validation / test split")
        return build_image_bundle(cfg, source, seed, norm_stats, refit)
    if data is None:  # the image settings are checked for every named source, as before
        image_options(cfg)
    return _table_bundle(cfg, load_table(cfg, data, seed), seed, split, refit)


def _table_bundle(cfg: DataConfig, table: Table, seed: int, split: Optional[pd.Series],
                  refit: bool = False) -> DataBundle:
    frame = table.frame
    target_cols = _resolve_targets(cfg, table)
    given = _given_split(cfg, table, split)
    drop = set(target_cols) | set(cfg.drop_columns)
    named = {**{c: "data.drop_columns" for c in cfg.drop_columns},
             **({cfg.id_column: "data.id_column"} if cfg.id_column else {}),
             **({cfg.group_column: "data.group_column"} if cfg.group_column else {})}
    for col, key in named.items():
        if col not in frame.columns:
            raise DataError(f"column '{col}' ({key}) is not in the data"
                            f"{did_you_mean(col, frame.columns)}")
    groups = _groups(frame, cfg.group_column)
    if cfg.group_column:
        drop.add(cfg.group_column)
    if cfg.split_column:
        drop.add(cfg.split_column)
    id_column = cfg.id_column or _id_like_column(frame, drop)
    ids = frame[id_column].to_numpy() if id_column else frame.index.to_numpy()
    if id_column:
        drop.add(id_column)
    if not any(c not in drop for c in frame.columns):
        where = f"'{cfg.source}'" if isinstance(cfg.source, str) and cfg.source else "the data"
        sheets = frame.attrs.get("sheets")
        check = (f"this is sheet '{frame.attrs['sheet']}' of {', '.join(sheets)}: choose "
                 "another with data.sheet" if sheets else
                 "if it has more, check its delimiter: ',', ';' or tab")
        raise DataError(f"{where} has no feature columns: only {list(frame.columns)}, used as "
                        "the target, id, split or dropped columns; a table needs at least one "
                        f"input column ({check})")

    multilabel = len(target_cols) > 1
    target = ",".join(target_cols)
    y_raw = frame[target_cols] if multilabel else frame[target]
    gaps = np.flatnonzero(y_raw.isna().to_numpy().reshape(len(frame), -1).any(axis=1))
    if len(gaps):
        what = f"label columns '{target}' have" if multilabel else f"target column '{target}' has"
        raise DataError(f"{what} {len(gaps)} missing value(s), first at row "
                        f"{frame.index[gaps[0]]}; fill or remove those rows")
    if multilabel:
        task, mapping, label_notes = "multilabel", {}, []
        if cfg.label_map:
            raise DataError("data.label_map renames or merges the classes of one target; "
                            f"data.targets names {len(target_cols)} label columns, a "
                            "multi-label task: rename the columns instead")
        if cfg.task not in ("auto", "multilabel"):
            raise DataError(f"data.targets names {len(target_cols)} columns, a multi-label task; "
                            f"data.task={cfg.task} needs a single data.target")
    else:
        y_raw, mapping, label_notes = _relabel(cfg, table, y_raw, target)
        hint = None if mapping else table.task_hint  # merged classes may be two now
        task = cfg.task if cfg.task != "auto" else (hint or infer_task(y_raw, target))
        if task == "multilabel":
            raise DataError("data.task=multilabel needs several 0/1 columns in data.targets")
        if task != "regression" and y_raw.nunique() < 2:
            infer_task(y_raw, target)  # raises the one-class error
    features = numeric_or_error(frame.drop(columns=[c for c in drop if c in frame.columns]),
                                origin=table.name)

    if multilabel:
        coarse = TargetSpec.multilabel(y_raw)
    else:
        coarse = TargetSpec.fit(y_raw, target, task, names=table.class_names,
                                positive=cfg.positive_class or renamed_class(
                                    table.positive_class, mapping, table.class_names))
        coarse.label_map = mapping
    # Classification is split stratified by class; multi-label and regression at random.
    stratify = task in ("binary", "multiclass")
    labels = coarse.encode(y_raw).astype(np.int64) if stratify else None
    # Whole numbers read as classes (infer_task): a count or a score may be meant.
    counted = (task == "multiclass" and cfg.task == "auto" and not table.task_hint
               and not table.class_names
               and pd.api.types.is_numeric_dtype(y_raw) and not pd.api.types.is_bool_dtype(y_raw))
    try:
        partition = split_rows(cfg, len(frame), seed, given, labels, coarse.class_names, groups,
                               refit=refit)
    except DataError as exc:
        if counted:
            raise DataError(f"{exc}; or, if '{target}' is a quantity (a count, a score), set "
                            "data.task=regression") from None
        raise
    parts, notes = partition.rows, partition.notes + label_notes
    if counted:
        notes.append(f"The target '{target}' holds {y_raw.nunique()} different whole numbers, "
                     "read as that many classes; if it is a quantity (a count, a score, an "
                     "age), set data.task=regression.")

    spec = coarse if task != "regression" else TargetSpec.fit(
        y_raw, target, task, train_rows=parts["train"], scale=cfg.scale_target)
    pre = TabularPreprocessor(cfg.missing, cfg.standardize, cfg.feature_transform,
                              cfg.max_categories).fit(features.iloc[parts["train"]])
    for line, note in feature_lookalikes(features.iloc[parts["train"]], pre.categorical_,
                                         table.name):
        warnings.warn(line, DataWarning, stacklevel=2)  # on the console before training
        notes.append(note)
    if id_column and not cfg.id_column:
        notes.append(f"Column '{id_column}' was taken as the row identifier (its name says so "
                     "and every value is different) and kept out of the features; set "
                     "data.id_column to name another one.")
    schema = Schema(task=task, target=spec, preprocessor=pre, id_column=id_column,
                    input_shape=(len(pre.output_names_),))
    splits = {}
    for split in SPLITS:
        rows = parts[split]
        X = pre.transform(features.iloc[rows], origin=f"{split} split")
        if split != "train":  # e.g. a category only the test rows hold: said in the report
            notes += [f"The {split} split, {x}." for x in pre.unfamiliar(features.iloc[rows])]
        y = spec.encode(y_raw.iloc[rows], origin=f"{split} split")
        splits[split] = Split(torch.from_numpy(X), torch.from_numpy(y), ids[rows])
    description = describe(partition, splits, schema, name=table.name,
                           description=table.description, target=target,
                           columns=len(pre.columns_), inputs=len(pre.output_names_),
                           preprocessing=pre.describe(), notes=notes)
    return DataBundle(splits["train"], splits["val"], splits["test"], schema, description)


def _resolve_targets(cfg: DataConfig, table: Table) -> list[str]:
    """The target column, or the label columns of a multi-label task."""
    columns = list(cfg.targets) or ([] if cfg.target else list(table.targets))
    if cfg.targets and cfg.target:
        raise DataError("set data.target (one column) or data.targets (several 0/1 label "
                        "columns), not both")
    if columns:
        for col in columns:
            if col not in table.frame.columns:
                raise DataError(f"label column '{col}' (in data.targets) is not in "
                                f"{table.name}{did_you_mean(col, table.frame.columns)}")
        return columns  # one listed column is simply the target
    return [_resolve_target(cfg, table)]


def _relabel(cfg: DataConfig, table: Table, y: pd.Series, target: str
             ) -> tuple[pd.Series, dict, list[str]]:
    """``data.label_map`` applied to a class target (before its task and split), and the
    stop for text classes that look like one class written differently."""
    mapping: dict = {}
    if cfg.label_map:
        if cfg.task == "regression" or (cfg.task == "auto" and (
                table.task_hint or infer_task(y, target)) == "regression"):
            raise DataError(f"data.label_map renames or merges classes, but target '{target}' is "
                            "a regression target (numbers); remove data.label_map, or set "
                            "data.task=multiclass if its values are classes")
        y, mapping = map_target(y, cfg.label_map, f"target column '{target}'",
                                table.class_names)
    text = not (pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y))
    if not text or cfg.task == "regression":
        return y, mapping, []
    return y, mapping, check_lookalikes(class_counts(y), f"target '{target}'", "rows",
                                        cfg.label_map)


def _groups(frame: pd.DataFrame, column: Optional[str]) -> Optional[np.ndarray]:
    """The data.group_column values as text (a patient id per row), checked for gaps."""
    if not column:
        return None
    values = frame[column]
    gaps = np.flatnonzero(values.isna().to_numpy())
    if len(gaps):
        raise DataError(f"group column '{column}' (data.group_column) has {len(gaps)} missing "
                        f"value(s), first at row {frame.index[gaps[0]]}; every row needs its "
                        "group")
    return values.astype(str).to_numpy()


def _id_like_column(frame: pd.DataFrame, taken: set) -> Optional[str]:
    """A column named as an identifier ('id', 'patient_id', 'Sample ID', ...) whose values are
    all present and all different: a model must not learn from it (a number that only names
    a row is noise, or worse, a leak of the collection order)."""
    for col in frame.columns:
        name = str(col).strip().lower()
        if col in taken or not (name == "id" or name.endswith(("_id", " id", "-id"))):
            continue
        values = frame[col]
        if values.notna().all() and values.is_unique:
            return col
    return None


# Column names that usually hold the target: with one of them present, taking the last column
# by default would most likely train on the wrong one.
TARGET_NAMES = ("label", "labels", "target", "class", "y", "outcome", "diagnosis")


def _resolve_target(cfg: DataConfig, table: Table) -> str:
    if cfg.target is None:
        roles = {cfg.split_column: "data.split_column", cfg.id_column: "data.id_column",
                 cfg.group_column: "data.group_column",
                 **{c: "data.drop_columns" for c in cfg.drop_columns}}
        if table.target in roles:  # the default (last) column is not the target here
            raise DataError(f"the last column '{table.target}' is {roles[table.target]}, so it "
                            "cannot be the target; set data.target to the target column")
        if table.target_guessed and table.target.lower() not in TARGET_NAMES:
            likely = [c for c in table.frame.columns
                      if c.lower() in TARGET_NAMES and c != table.target and c not in roles]
            if likely:  # e.g. Kaggle's breast cancer CSV: id, diagnosis, 30 measurements
                raise DataError(f"no target given: the last column '{table.target}' would be "
                                f"the target, but column '{likely[0]}' looks like it; pass "
                                f"--target {likely[0]} (data.target), or --target "
                                f"{table.target} to use the last column")
        return table.target
    if cfg.target not in table.frame.columns:
        cols = list(table.frame.columns)
        shown = ", ".join(cols[:12]) + (", ..." if len(cols) > 12 else "")
        raise DataError(f"target column '{cfg.target}' is not in {table.name}"
                        f"{did_you_mean(cfg.target, cols)}; columns are: {shown}")
    return cfg.target


def _given_split(cfg: DataConfig, table: Table, fold: Optional[pd.Series]
                 ) -> Optional[GivenSplit]:
    """The split fixed per row: a cross-validation fold, data.split_column, or the rows of
    data.val_file / data.test_file; None for a random split."""
    if fold is not None:
        return GivenSplit(fold.reset_index(drop=True), "cross-validation fold",
                          "by the cross-validation fold")
    if cfg.split_column:
        if cfg.split_column not in table.frame.columns:
            raise DataError(f"split column '{cfg.split_column}' is not in the data"
                            f"{did_you_mean(cfg.split_column, table.frame.columns)}")
        return GivenSplit(table.frame[cfg.split_column], cfg.split_column,
                          f"by column '{cfg.split_column}'")
    if table.split is not None:
        return GivenSplit(table.split, "split file", "by the given files")
    return None
