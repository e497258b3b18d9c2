"""Tests for deepfit.data.stage: the split-and-describe step tables and images share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from image_samples import class_folders
from deepfit.config import DataConfig
from deepfit.data.bundle import build_bundle
from deepfit.data.images.imageset import ImageSet
from deepfit.data.split import SPLITS
from deepfit.data.stage import DataDescription, GivenSplit, split_rows
from deepfit.errors import DataError

CLASSES = ["a", "b", "c"]


def _labels(n=60):
    return np.arange(n) % 3


def _table(labels, **columns):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=len(labels)), **columns,
                         "label": [CLASSES[k] for k in labels]})


def _images(labels, **fields):
    n = len(labels)
    return ImageSet(images=torch.zeros(n, 1, 4, 4, dtype=torch.uint8), labels=labels,
                    class_names=list(CLASSES), name="mem", description="in memory",
                    ids=np.arange(n), **fields)


def _rows(bundle):
    return {split: [int(i) for i in s.ids] for split, s in bundle.splits().items()}


@pytest.mark.parametrize("seed", [0, 5])
def test_a_table_and_an_image_set_with_the_same_labels_split_the_same_rows(seed):
    labels = _labels()
    cfg = DataConfig(normalize="none", augment=("none",))
    table = build_bundle(cfg, _table(labels), seed=seed)
    images = build_bundle(cfg, _images(labels), seed=seed)
    assert _rows(table) == _rows(images)
    expected = split_rows(cfg, len(labels), seed, labels=labels, class_names=CLASSES).rows
    assert _rows(table) == {s: expected[s].tolist() for s in SPLITS}
    for bundle in (table, images):
        info = bundle.info
        assert info["split_method"] == f"at random, stratified by class (seed {seed})"
        assert info["drawn_splits"] == ["val", "test"]
        assert info["class_counts"] == table.info["class_counts"]
        assert info["kind"] == bundle.schema.kind


def test_groups_stay_whole_for_tables_and_images_alike():
    labels = _labels()
    groups = np.array([f"p{i // 4}" for i in range(len(labels))])
    table = build_bundle(DataConfig(group_column="patient"), _table(labels, patient=groups))
    images = build_bundle(DataConfig(group_column="patient", normalize="none"),
                          _images(labels, groups=groups))
    assert _rows(table) == _rows(images)
    for bundle in (table, images):
        seen = [set(groups[bundle.splits()[s].ids.astype(int)]) for s in SPLITS]
        assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
        assert "whole groups of 'patient' (15 groups)" in bundle.info["split_method"]


def test_a_class_missing_from_training_is_refused_for_both_kinds(tmp_path):
    labels = np.array([0, 1] * 10 + [2, 2])
    split = np.array(["train"] * 20 + ["test", "test"])
    message = "class 'c' appears in the test split but not in training"
    with pytest.raises(DataError, match=message):
        build_bundle(DataConfig(split_column="fold"), _table(labels, fold=split))
    with pytest.raises(DataError, match=message):
        build_bundle(DataConfig(), _images(labels, split=split))


def test_a_given_split_carves_what_is_missing_and_says_so():
    labels = _labels()
    split = pd.Series(np.where(np.arange(60) < 45, "train", "test"))
    given = GivenSplit(split, "official split", "by the source's own split",
                       "the source's split", " (validation carved from training)")
    part = split_rows(DataConfig(), 60, 0, given, labels, CLASSES)
    assert part.method == "by the source's own split (validation carved from training)"
    assert part.drawn == ["val"]
    assert part.notes == [f"no 'val' rows in the source's split: {len(part.rows['val'])} "
                          "carved from training rows"]
    assert set(part.rows["test"]) == set(range(45, 60))
    # The image half uses exactly this step for a source's official split.
    images = build_bundle(DataConfig(normalize="none"), _images(labels, split=split.to_numpy()))
    assert images.info["split_method"] == part.method
    assert images.info["notes"] == part.notes
    assert _rows(images) == {s: part.rows[s].tolist() for s in SPLITS}


def test_a_split_column_names_its_bad_value_in_one_line():
    given = GivenSplit(pd.Series(["train", "tset"]), "fold", "by column 'fold'")
    with pytest.raises(DataError, match=r"^split column 'fold' has value 'tset' at row 1; use "
                                        "train, val or test$"):
        split_rows(DataConfig(), 2, 0, given)


def test_the_description_serialises_to_summary_jsons_plain_keys(tmp_path):
    folder = class_folders(tmp_path / "pets", {"cat": 12, "dog": 12})
    images = build_bundle(DataConfig(source=str(folder)))
    regression = build_bundle(DataConfig(), pd.DataFrame({"x": np.arange(40.0),
                                                           "y": np.arange(40.0) * 2}))
    multilabel = build_bundle(DataConfig(source="multilabel"))
    common = {"name", "description", "target", "task", "kind", "rows", "columns", "inputs",
              "split_sizes", "preprocessing", "notes", "split_method", "drawn_splits"}
    assert set(images.info) == common | {"class_counts", "positive_class", "image_shape",
                                         "preprocessing_steps", "images"}
    assert set(regression.info) == common
    assert set(multilabel.info) == common | {"label_counts"}
    assert isinstance(images.description, DataDescription)
    assert images.info["positive_class"] == images.description.positive_class == "dog"
    assert sum(images.info["class_counts"]["train"].values()) == len(images.train)
    # info is a copy: changing it changes nothing in the bundle
    images.info["notes"].append("x")
    assert "x" not in images.description.notes
