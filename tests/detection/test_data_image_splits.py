"""Detection splits: by image, by group, stratified by the classes an image holds."""

from __future__ import annotations

import numpy as np
import pytest

from deepfit.data.detection import DetectionSet, ImageBoxes, make_smears, split_images
from deepfit.data.detection.image_splits import check_classes_in_train, strata
from deepfit.errors import DataError


def _set(label_lists: list[list[int]], groups=None) -> DetectionSet:
    images = [ImageBoxes(f"i{k}.png", (20, 20), [[1, 1, 5, 5]] * len(labels), labels)
              for k, labels in enumerate(label_lists)]
    return DetectionSet(["Trophozoite", "WBC"], images, groups=groups, source="test set")


def test_every_image_in_one_split_deterministic_and_stratified():
    _, data = make_smears(60, (32, 32), seed=1)
    data.groups = None  # by image: the shares are met to the image
    parts = split_images(data, 0.2, 0.2, seed=4)
    again = split_images(data, 0.2, 0.2, seed=4)
    assert all(np.array_equal(parts[k], again[k]) for k in ("train", "val", "test"))
    every = np.concatenate(list(parts.values()))
    assert sorted(every.tolist()) == list(range(60))
    assert abs(len(parts["test"]) - 12) <= 1 and abs(len(parts["val"]) - 12) <= 1
    codes, names = strata(data)
    for code in range(len(names)):  # each combination of classes is in every split
        assert all((codes[parts[s]] == code).any() for s in parts), names[code]
    other = split_images(data, 0.2, 0.2, seed=5)
    assert not np.array_equal(other["test"], parts["test"])


def test_whole_groups_stay_in_one_split():
    _, data = make_smears(48, (32, 32), seed=2, per_slide=4)
    parts = split_images(data, 0.2, 0.2, seed=0)
    slides = {s: {data.groups[i] for i in idx} for s, idx in parts.items()}
    assert not (slides["train"] & slides["val"] or slides["train"] & slides["test"]
                or slides["val"] & slides["test"])


def test_rare_combinations_join_a_stratum_holding_their_rarest_class():
    data = _set([[]] * 5 + [[0]] * 5 + [[1]] * 4 + [[0, 1]] * 2)
    codes, names = strata(data)
    assert names == ["NEG", "Trophozoite", "WBC"]
    assert [names[c] for c in codes[-2:]] == ["WBC", "WBC"]  # WBC is the rarer class


def test_a_class_missing_from_training_is_an_honest_error():
    data = _set([[]] * 6 + [[0]] * 6 + [[1]])
    parts = {"train": np.arange(12), "val": np.array([], int), "test": np.array([12])}
    with pytest.raises(DataError, match=r"class 'WBC' has boxes in the test split but none in "
                                        r"training \(it is in 1 image\(s\) in all\); add images"):
        check_classes_in_train(data, parts)
    with pytest.raises(DataError, match="has 2 image"):
        split_images(_set([[0], [1]]), 0.2, 0.2, 0)
