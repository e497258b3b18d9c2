"""Train / validation / test splits of a detection set: by image (every box of an image in
one split), by group when the images come several per slide or patient, stratified by the
set of classes each image holds.

Stratification: scikit-learn has no multi-label stratifier, and a box count per class is
not a label. Each image gets one stratum, the combination of classes it holds ("NEG",
"WBC", "Trophozoite+WBC", ...: the label powerset), which is exact for the few classes of
a detection task such as the malaria challenge (2 classes, 4 combinations). Combinations
held by fewer than ``MIN_STRATUM`` images join the stratum of their rarest class's most
common combination, else the largest stratum. The strata then go to
``deepfit.data.split.random_split``, the tables' splitter: ``train_test_split`` stratified,
or with groups one fold of ``StratifiedGroupKFold`` (whole groups, strata as far as they
allow). Iterative stratification (Sechidis et al.) would balance rare combinations
better but needs another dependency; the powerset is exact here and deterministic from
the seed.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np

from deepfit.data.detection.boxes import NEG, DetectionSet
from deepfit.data.split import SPLITS, random_split
from deepfit.errors import DataError

MIN_STRATUM = 3  # one image each for train, validation and test


def strata(data: DetectionSet) -> tuple[np.ndarray, list[str]]:
    """(stratum code per image, stratum names): each image's combination of classes, rare
    combinations merged as the module docstring says."""
    keys = ["+".join(data.class_names[c] for c in np.unique(im.labels)) or NEG
            for im in data.images]
    counts = Counter(keys)
    class_images = Counter(part for key in keys for part in key.split("+"))
    merged = {}
    for key, n in counts.items():
        if n >= MIN_STRATUM:
            continue
        rarest = min(key.split("+"), key=lambda c: class_images[c])
        hosts = [k for k, m in counts.most_common() if m >= MIN_STRATUM
                 and rarest in k.split("+")]
        merged[key] = hosts[0] if hosts else counts.most_common(1)[0][0]
    keys = [merged.get(k, k) for k in keys]
    names = sorted(set(keys))
    return np.array([names.index(k) for k in keys], dtype=np.int64), names


def split_images(data: DetectionSet, val_size: float, test_size: float, seed: int
                 ) -> dict[str, np.ndarray]:
    """Image indices per split ("train", "val", "test"), sorted; deterministic from
    ``seed``. With ``data.groups``, no group is in two splits.

    Raises:
        DataError: shares that leave no training images, too few images or groups, or a
            class whose boxes would all miss the training split.
    """
    n = len(data)
    if n < 3:
        raise DataError(f"{data.source or 'the data'} has {n} image(s); a train/validation/"
                        "test split needs at least 3")
    codes, names = strata(data)
    if len(names) > 1 and min(np.bincount(codes)) < MIN_STRATUM:
        codes = None  # even merged, a stratum is too small: the split is random
    groups = np.asarray(data.groups) if data.groups is not None else None
    with warnings.catch_warnings():  # sklearn's note that a stratum is smaller than its
        # folds: whole groups meet the strata only approximately, as the docstring says
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        parts = random_split(n, codes, val_size, test_size, seed, names, groups=groups)
    check_classes_in_train(data, parts)
    return parts


def check_classes_in_train(data: DetectionSet, parts: dict[str, np.ndarray]) -> None:
    """Stop when a class has boxes in validation or test but none in training: the model
    could never find it, and its AP would be 0 by construction."""
    def classes(split: str) -> set[int]:
        return {int(c) for i in parts[split] for c in data.images[i].labels}

    train = classes("train")
    for split in SPLITS[1:]:
        missing = sorted(classes(split) - train)
        if missing:
            name = data.class_names[missing[0]]
            held = data.image_counts()[name]
            raise DataError(f"class '{name}' has boxes in the {split} split but none in training "
                            f"(it is in {held} image(s) in all); add images of it, try another "
                            "data.seed, or merge or drop it with data.label_map")
