"""Honest train / validation / test splits: stratified, seeded, checked."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

from deepfit.errors import DataError

SPLITS = ("train", "val", "test")
# Spellings of the three splits (column values, folder and file names), lower case.
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "dev": "val", "test": "test", "testing": "test"}


def random_split(n: int, labels: Optional[np.ndarray], val_size: float, test_size: float,
                 seed: int, class_names: list[str] | None = None,
                 groups: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """Row indices per split; stratified on ``labels`` when given (classification).

    The validation share is taken from the whole dataset, so ``val_size=0.15,
    test_size=0.2`` leaves 65% for training. With ``groups`` (e.g. a patient id per row),
    all rows of a group go to one split and the shares are met approximately.
    """
    if val_size + test_size >= 1.0:
        raise DataError(f"data.val_size ({val_size}) + data.test_size ({test_size}) must be "
                        "below 1 to leave rows for training")
    index = np.arange(n)
    if labels is not None:
        _check_class_sizes(labels, class_names)
    if groups is not None:
        rest, test = grouped_split(index, labels, groups, test_size, seed, "test")
        train, val = grouped_split(rest, labels, groups, val_size / (1 - test_size), seed + 1,
                                   "validation")
        return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    try:
        rest, test = train_test_split(index, test_size=test_size, random_state=seed,
                                      stratify=labels)
        inner_labels = labels[rest] if labels is not None else None
        # A row count, not the fraction val_size / (1 - test_size) of the rest: that fraction
        # is inexact in floating point (0.2 / 0.7 * 70 = 20.000000000000004) and sklearn
        # rounds it up, giving one validation row too many.
        n_val = math.ceil(round(val_size * n, 6))
        train, val = train_test_split(rest, test_size=n_val, random_state=seed + 1,
                                      stratify=inner_labels)
    except ValueError as exc:
        raise DataError(f"cannot split {n} rows into train/val/test with val_size={val_size} "
                        f"and test_size={test_size}: {exc}; use more data or other sizes") from None
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def whole_groups(column: str, groups: np.ndarray) -> str:
    """How a grouped split was made, for the report's split line."""
    return f"; whole groups of '{column}' ({len(np.unique(groups))} groups): none is in two splits"


def grouped_split(index: np.ndarray, labels: Optional[np.ndarray], groups: np.ndarray,
                  share: float, seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``index`` cut into (rest, part) with about ``share`` of its rows in ``part`` and no
    group on both sides; stratified by ``labels`` as far as whole groups allow (one fold of
    scikit-learn's StratifiedGroupKFold), else GroupShuffleSplit."""
    sub_groups = groups[index]
    n_groups = len(np.unique(sub_groups))
    try:
        if labels is not None:
            folds = max(2, round(1 / share))
            splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
            keep, part = next(splitter.split(index, labels[index], sub_groups))
        else:
            splitter = GroupShuffleSplit(n_splits=1, test_size=share, random_state=seed)
            keep, part = next(splitter.split(index, groups=sub_groups))
    except ValueError as exc:
        raise DataError(f"cannot take a {what} split of whole groups from {n_groups} groups "
                        f"(data.group_column): {str(exc).rstrip('.')}; a grouped split needs "
                        "several groups per split") from None
    if len(part) == 0 or len(keep) == 0:
        raise DataError(f"{n_groups} groups (data.group_column) are too few for a {what} "
                        "split of whole groups; a grouped split needs several groups per split")
    return index[keep], index[part]


def _check_class_sizes(labels: np.ndarray, class_names: list[str] | None) -> None:
    codes, counts = np.unique(labels, return_counts=True)
    for code, count in zip(codes, counts):
        if count < 3:
            name = class_names[code] if class_names else code
            raise DataError(f"class '{name}' has only {count} row(s); a stratified split needs "
                            "at least 3 (one each for train, validation and test); add rows, "
                            "drop the class, or merge it with another")


def column_split(values: pd.Series, column: str, labels: Optional[np.ndarray], val_size: float,
                 test_size: float, seed: int, where: Optional[str] = None,
                 groups: Optional[np.ndarray] = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Indices from a user's split column; a missing val or test part is carved from train.

    Returns the indices and notes describing what was carved, for the report. ``where``
    names the split's origin in those notes (default: "column '<column>'").
    """
    where = where or f"column '{column}'"
    norm = values.astype(str).str.strip().str.lower().map(SPLIT_ALIASES)
    bad = values[norm.isna()]
    if len(bad):
        raise DataError(f"split column '{column}' has value {bad.tolist()[0]!r} at row "
                        f"{bad.index[0]}; use train, val or test")
    parts = {s: np.flatnonzero(norm.to_numpy() == s) for s in SPLITS}
    notes = []
    if len(parts["train"]) == 0:
        raise DataError(f"split column '{column}' marks no row as 'train'")
    for split, share in (("test", test_size), ("val", val_size)):
        if len(parts[split]) == 0:
            train = parts["train"]
            strat = labels[train] if labels is not None else None
            try:
                if groups is not None:  # whole groups, as in random_split
                    keep, carved = grouped_split(train, labels, groups, share, seed, split)
                else:
                    keep, carved = train_test_split(train, test_size=share, random_state=seed,
                                                    stratify=strat)
            except ValueError as exc:
                raise DataError(f"split column '{column}' has no '{split}' rows and the "
                                f"training rows cannot provide them: {exc}") from None
            parts["train"], parts[split] = np.sort(keep), np.sort(carved)
            notes.append(f"no '{split}' rows in {where}: {len(carved)} carved from "
                         "training rows")
    return parts, notes


def drawn_splits(values: "pd.Series | None") -> list[str]:
    """The splits whose rows are drawn with data.val_size / data.test_size: both for a random
    split (``values`` None), else those a split column leaves empty (``column_split`` carves
    them from the training rows)."""
    if values is None:
        return ["val", "test"]
    present = set(values.astype(str).str.strip().str.lower().map(SPLIT_ALIASES).dropna())
    return [s for s in ("val", "test") if s not in present]


def check_classes_in_train(labels: np.ndarray, parts: dict[str, np.ndarray],
                           class_names: list[str]) -> None:
    """Every class must be seen in training; otherwise the model can never predict it."""
    seen = set(np.unique(labels[parts["train"]]).tolist())
    for split in ("val", "test"):
        for code in np.unique(labels[parts[split]]):
            if code not in seen:
                raise DataError(f"class '{class_names[code]}' appears in the {split} split but "
                                "not in training; change the split or add training rows")
