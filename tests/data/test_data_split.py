"""Tests for deepfit.data.split: random (stratified) splits, split columns, class checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepfit.data.split import SPLITS, check_classes_in_train, column_split, random_split
from deepfit.errors import DataError


def _assert_partition(parts, n):
    joined = np.concatenate([parts[s] for s in SPLITS])
    assert sorted(joined.tolist()) == list(range(n))  # every row exactly once


# -- random_split ------------------------------------------------------------------------

def test_random_split_sizes_and_partition():
    parts = random_split(200, None, val_size=0.15, test_size=0.2, seed=0)
    assert {s: len(parts[s]) for s in SPLITS} == {"train": 130, "val": 30, "test": 40}
    _assert_partition(parts, 200)
    for s in SPLITS:
        assert np.all(np.diff(parts[s]) > 0)  # sorted, no repeats


@pytest.mark.parametrize("n,val,test,expected", [
    (100, 0.2, 0.3, (50, 20, 30)),
    (20, 0.1, 0.3, (12, 2, 6)),
    (1000, 0.1, 0.1, (800, 100, 100)),
])
def test_random_split_validation_share_is_of_the_whole_dataset(n, val, test, expected):
    # val_size / (1 - test_size) is inexact in floating point; it must not add a row to val
    parts = random_split(n, None, val_size=val, test_size=test, seed=0)
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == expected


def test_random_split_is_stratified():
    labels = np.array([0] * 300 + [1] * 100)  # 75% / 25%
    parts = random_split(len(labels), labels, val_size=0.2, test_size=0.2, seed=1)
    _assert_partition(parts, len(labels))
    for s in SPLITS:
        share = labels[parts[s]].mean()
        assert share == pytest.approx(0.25, abs=0.01), s


def test_random_split_stratified_three_classes_counts():
    labels = np.repeat([0, 1, 2], [60, 30, 10])
    parts = random_split(100, labels, val_size=0.2, test_size=0.3, seed=5)
    test_counts = np.bincount(labels[parts["test"]], minlength=3)
    val_counts = np.bincount(labels[parts["val"]], minlength=3)
    np.testing.assert_array_equal(test_counts, [18, 9, 3])
    np.testing.assert_array_equal(val_counts, [12, 6, 2])


def test_random_split_is_reproducible_with_seed():
    labels = np.array([0, 1] * 50)
    a = random_split(100, labels, 0.2, 0.2, seed=42)
    b = random_split(100, labels, 0.2, 0.2, seed=42)
    c = random_split(100, labels, 0.2, 0.2, seed=43)
    for s in SPLITS:
        np.testing.assert_array_equal(a[s], b[s])
    assert any(not np.array_equal(a[s], c[s]) for s in SPLITS)


def test_random_split_class_with_too_few_rows_names_class():
    labels = np.array([0] * 20 + [1] * 20 + [2] * 2)
    with pytest.raises(DataError, match=r"class 'rare' has only 2 row\(s\).*at least 3"):
        random_split(len(labels), labels, 0.2, 0.2, seed=0,
                     class_names=["common", "usual", "rare"])


def test_random_split_class_with_one_row_without_names_uses_code():
    labels = np.array([0] * 20 + [1])
    with pytest.raises(DataError, match=r"class '1' has only 1 row"):
        random_split(len(labels), labels, 0.2, 0.2, seed=0)


@pytest.mark.parametrize("val,test", [(0.5, 0.5), (0.6, 0.5), (0.9, 0.1)])
def test_random_split_sizes_summing_to_one_or_more_are_refused(val, test):
    with pytest.raises(DataError, match=r"val_size .* \+ data.test_size .* must be below 1"):
        random_split(100, None, val, test, seed=0)


def test_random_split_too_few_rows_is_a_data_error():
    with pytest.raises(DataError, match="cannot split 2 rows"):
        random_split(2, None, 0.1, 0.1, seed=0)


def test_random_split_regression_without_labels():
    parts = random_split(50, None, 0.2, 0.2, seed=3)
    _assert_partition(parts, 50)
    assert len(parts["test"]) == 10 and len(parts["val"]) == 10


# -- column_split ------------------------------------------------------------------------

def test_column_split_reads_values_and_aliases():
    values = pd.Series(["train", "Training", " valid ", "VALIDATION", "dev", "test", "Testing",
                        "val", "train"])
    parts, notes = column_split(values, "fold", None, 0.2, 0.2, seed=0)
    assert parts["train"].tolist() == [0, 1, 8]
    assert parts["val"].tolist() == [2, 3, 4, 7]
    assert parts["test"].tolist() == [5, 6]
    assert notes == []


def test_column_split_bad_value_names_column_value_and_row():
    values = pd.Series(["train", "val", "tset", "test"])
    with pytest.raises(DataError, match=r"split column 'fold' has value 'tset' at row 2; "
                                        r"use train, val or test"):
        column_split(values, "fold", None, 0.2, 0.2, seed=0)


def test_column_split_missing_value_is_refused():
    values = pd.Series(["train", None, "test"])
    with pytest.raises(DataError, match=r"split column 'fold' has value \S+ at row 1"):
        column_split(values, "fold", None, 0.2, 0.2, seed=0)


def test_column_split_without_train_rows_is_refused():
    with pytest.raises(DataError, match="marks no row as 'train'"):
        column_split(pd.Series(["val", "test"]), "fold", None, 0.2, 0.2, seed=0)


def test_column_split_carves_missing_val_from_train():
    values = pd.Series(["train"] * 40 + ["test"] * 10)
    parts, notes = column_split(values, "fold", None, val_size=0.25, test_size=0.2, seed=0)
    assert len(parts["val"]) == 10 and len(parts["train"]) == 30
    assert parts["test"].tolist() == list(range(40, 50))
    assert set(parts["val"]) <= set(range(40))
    _assert_partition(parts, 50)
    assert notes == ["no 'val' rows in column 'fold': 10 carved from training rows"]


def test_column_split_carves_val_and_test_stratified():
    labels = np.array([0, 0, 0, 1] * 25)
    values = pd.Series(["train"] * 100)
    parts, notes = column_split(values, "fold", labels, val_size=0.2, test_size=0.2, seed=0)
    _assert_partition(parts, 100)
    assert len(notes) == 2
    for s in ("val", "test"):
        assert labels[parts[s]].mean() == pytest.approx(0.25, abs=0.05)


def test_column_split_carving_is_reproducible():
    values = pd.Series(["train"] * 30 + ["test"] * 5)
    a, _ = column_split(values, "fold", None, 0.2, 0.2, seed=9)
    b, _ = column_split(values, "fold", None, 0.2, 0.2, seed=9)
    np.testing.assert_array_equal(a["val"], b["val"])


def test_column_split_carving_impossible_is_a_data_error():
    labels = np.array([0, 1, 1, 1])
    values = pd.Series(["train"] * 4)
    with pytest.raises(DataError, match="has no 'test' rows and the training rows cannot"):
        column_split(values, "fold", labels, 0.2, 0.2, seed=0)


# -- check_classes_in_train --------------------------------------------------------------

def test_class_only_in_test_is_refused_with_name():
    labels = np.array([0, 1, 0, 1, 2])
    parts = {"train": np.array([0, 1]), "val": np.array([2, 3]), "test": np.array([4])}
    with pytest.raises(DataError, match=r"class 'bird' appears in the test split but not in "
                                        r"training"):
        check_classes_in_train(labels, parts, ["cat", "dog", "bird"])


def test_class_only_in_val_is_refused_with_name():
    labels = np.array([0, 0, 1, 0])
    parts = {"train": np.array([0, 1]), "val": np.array([2]), "test": np.array([3])}
    with pytest.raises(DataError, match="class 'dog' appears in the val split"):
        check_classes_in_train(labels, parts, ["cat", "dog"])


def test_all_classes_in_train_passes():
    labels = np.array([0, 1, 0, 1])
    parts = {"train": np.array([0, 1]), "val": np.array([2]), "test": np.array([3])}
    check_classes_in_train(labels, parts, ["cat", "dog"])  # no error


def _patients(n_patients: int = 60, per: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"P{i}" for i in range(n_patients)], per)
    sick = rng.random(n_patients) < 0.4
    labels = np.repeat(sick.astype(int), per)
    return groups, labels


@pytest.mark.parametrize("stratified", [True, False])
def test_grouped_split_keeps_every_group_in_one_split_at_about_the_shares(stratified):
    groups, labels = _patients()
    parts = random_split(len(groups), labels if stratified else None, 0.15, 0.2, seed=0,
                         groups=groups)
    seen = [set(groups[parts[s]]) for s in ("train", "val", "test")]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(groups)))
    n = len(groups)
    assert abs(len(parts["test"]) / n - 0.2) <= 0.05
    assert abs(len(parts["val"]) / n - 0.15) <= 0.05
    if stratified:  # each split holds both classes, near the overall 40 % sick
        for s in ("train", "val", "test"):
            assert 0.2 < labels[parts[s]].mean() < 0.6
    again = random_split(len(groups), labels if stratified else None, 0.15, 0.2, seed=0,
                         groups=groups)
    assert all(np.array_equal(parts[s], again[s]) for s in parts)


def test_too_few_groups_is_one_clear_line():
    groups, labels = _patients(n_patients=3, per=10)
    with pytest.raises(DataError, match=r"cannot take a test split of whole groups from 3 "
                       r"groups \(data.group_column\): .*; a grouped split needs several "
                       r"groups per split"):
        random_split(len(groups), labels, 0.15, 0.2, seed=0, groups=groups)


def test_carving_validation_rows_from_a_split_column_keeps_groups_whole():
    groups, labels = _patients()
    values = pd.Series(np.where(np.isin(groups, [f"P{i}" for i in range(12)]), "test", "train"))
    parts, notes = column_split(values, "split", labels, 0.15, 0.2, seed=0, groups=groups)
    assert notes and "carved" in notes[0]
    assert not set(groups[parts["train"]]) & set(groups[parts["val"]])
