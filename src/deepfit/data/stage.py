"""What the data stage hands on, and the step tables and images share: split the rows
(random, by a given split column / files / fold / a source's official split, whole groups),
check the split, and describe the result for the report.

The table half (``data/bundle.py``) and the image half (``data/images/bundle.py``) load,
label and preprocess their own way, then both call ``split_rows`` and ``describe``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch

from deepfit.config import DataConfig
from deepfit.data.images.imageset import ImageFiles
from deepfit.data.images.inputs import ImageSpec
from deepfit.data.split import (SPLITS, check_classes_in_train, column_split, drawn_splits,
                                random_split, whole_groups)
from deepfit.data.target import TargetSpec
from deepfit.data.transforms import TabularPreprocessor
from deepfit.errors import DataError


@dataclass
class Split:
    """One split: ``X`` (N, F) float32 (tables) or (N, C, H, W) uint8 / ``ImageFiles``
    (images), ``y`` (N,) float32 or int64 ((N, L) float32 multi-label), and row ids."""

    X: "torch.Tensor | ImageFiles"
    y: torch.Tensor
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Schema:
    """What a model and a new input must agree on. Saved as JSON in the run directory."""

    task: str
    target: TargetSpec
    preprocessor: Optional[TabularPreprocessor]  # tables
    id_column: Optional[str] = None
    input_shape: tuple = ()
    image: Optional[ImageSpec] = None  # images: size, channels, normalisation, augmentation

    @property
    def kind(self) -> str:
        """"image" or "table"."""
        return "image" if self.image is not None else "table"

    @property
    def class_names(self) -> list[str]:
        return self.target.class_names

    @property
    def target_columns(self) -> list[str]:
        """The column(s) holding the target: one, or the labels of a multi-label task."""
        return list(self.target.classes) if self.task == "multilabel" else [self.target.column]

    @property
    def n_outputs(self) -> int:
        return len(self.target.classes) if self.task in ("multiclass", "multilabel") else 1

    def transform(self, frame: pd.DataFrame, origin: str,
                  texts: Optional[dict] = None) -> torch.Tensor:
        if self.preprocessor is None:
            raise DataError(f"{origin}: this model takes images, not a table of columns; give "
                            "an image folder, a CSV of image paths or an image file")
        return torch.from_numpy(self.preprocessor.transform(frame, origin, texts))

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "target": self.target.to_dict(), "id_column": self.id_column,
                "input_shape": list(self.input_shape),
                "preprocessor": self.preprocessor.state_dict() if self.preprocessor else None,
                "image": self.image.to_dict() if self.image else None}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Schema:
        pre, image = state.get("preprocessor"), state.get("image")
        return cls(task=state["task"], target=TargetSpec(**state["target"]),
                   preprocessor=TabularPreprocessor.from_state(pre) if pre else None,
                   id_column=state.get("id_column"), input_shape=tuple(state["input_shape"]),
                   image=ImageSpec.from_dict(image) if image else None)


# DataDescription fields that only some data have: left out of ``to_dict`` when None.
_OPTIONAL = ("class_counts", "label_counts", "positive_class", "image_shape",
             "preprocessing_steps", "images")


@dataclass
class DataDescription:
    """The data as the report, ``deepfit runs`` and the config scope see them.

    ``to_dict`` is what summary.json holds under "data"; its key names are read by older
    runs' readers and must not change.
    """

    name: str
    description: str
    target: str  # the target column ("label" for images; "a,b" for multi-label columns)
    task: str
    kind: str  # "table" or "image"
    rows: int
    columns: int
    inputs: "int | str"  # the number of network inputs, or "C×H×W images"
    split_sizes: dict[str, int]
    preprocessing: str
    notes: list[str]
    split_method: str  # how the rows were split, one line for the report
    drawn_splits: list[str]  # splits drawn with data.val_size / data.test_size
    class_counts: Optional[dict[str, dict[str, int]]] = None  # per split, per class
    label_counts: Optional[dict[str, dict[str, int]]] = None  # multi-label: per split, label
    positive_class: Optional[str] = None  # binary tasks
    image_shape: Optional[list[int]] = None
    preprocessing_steps: Optional[list[str]] = None
    images: Optional[dict[str, Any]] = None  # origin, skipped files, streaming, resizing

    def to_dict(self) -> dict[str, Any]:
        """A new plain dict (summary.json's "data"); changing it changes nothing here."""
        return {key: value for key, value in dataclasses.asdict(self).items()
                if value is not None or key not in _OPTIONAL}


@dataclass
class DataBundle:
    """Train / val / test splits, the schema, and the description for the report."""

    train: Split
    val: Split
    test: Split
    schema: Schema
    description: DataDescription

    @property
    def info(self) -> dict[str, Any]:
        """The description as plain values (summary.json's "data")."""
        return self.description.to_dict()

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}


@dataclass(frozen=True)
class GivenSplit:
    """Per row ``train`` / ``val`` / ``test`` fixed by the data: a split column, separate
    files, a cross-validation fold, or an image source's official split.

    Attributes:
        values: one split name per row (any spelling of ``SPLIT_ALIASES``).
        column: what the values are, named in their errors ("split column 'fold' has ...").
        method: how the rows were split, for the report.
        where: where the values come from, in the notes on carved rows (default: the column).
        carved: added to ``method`` when missing splits were carved from training rows.
    """

    values: pd.Series
    column: str
    method: str
    where: Optional[str] = None
    carved: str = ""


@dataclass
class Partition:
    """Row indices per split and how they were made."""

    rows: dict[str, np.ndarray]
    notes: list[str]  # splits carved from the training rows
    method: str
    drawn: list[str]


def split_rows(cfg: DataConfig, n: int, seed: int, given: Optional[GivenSplit] = None,
               labels: Optional[np.ndarray] = None, class_names: Optional[list[str]] = None,
               groups: Optional[np.ndarray] = None, of: str = "", unit: str = "data",
               refit: bool = False) -> Partition:
    """Split ``n`` rows into train / validation / test, the one way tables and images do.

    ``labels`` (class codes, classification only) stratify the split and are checked: every
    class must be seen in training. ``groups`` (a patient per row) keep each group in one
    split. ``of`` and ``unit`` word the empty-split error ("the test split of cats is
    empty; use more images ..."). ``refit``: the same split, then the validation rows join
    the training rows (the final fit of a tuned config; nothing is left to validate on).

    Example:
        >>> p = split_rows(DataConfig(), 20, seed=0)
        >>> {k: len(v) for k, v in p.rows.items()}, p.method
        ({'train': 13, 'val': 3, 'test': 4}, 'at random (seed 0)')
    """
    notes: list[str] = []
    if given is not None:
        rows, notes = column_split(given.values, given.column, labels, cfg.val_size,
                                   cfg.test_size, seed, given.where, groups=groups)
        method = given.method + (given.carved if notes else "")
    else:
        rows = random_split(n, labels, cfg.val_size, cfg.test_size, seed, class_names,
                            groups=groups)
        method = f"at random{', stratified by class' if labels is not None else ''} (seed {seed})"
    if groups is not None:
        method += whole_groups(cfg.group_column, groups)
    if labels is not None:
        check_classes_in_train(labels, rows, class_names)
    for split in SPLITS:
        if len(rows[split]) == 0:
            raise DataError(f"the {split} split{of} is empty; use more {unit} or other split "
                            "sizes")
    if refit:
        rows = {**rows, "train": np.sort(np.concatenate([rows["train"], rows["val"]])),
                "val": rows["val"][:0]}
        method += "; for this final fit the validation rows joined the training rows"
    return Partition(rows, notes, method, drawn_splits(None if given is None else given.values))


def describe(partition: Partition, splits: dict[str, Split], schema: Schema, *, name: str,
             description: str, target: str, columns: int, inputs: "int | str",
             preprocessing: str, notes: list[str], **extra: Any) -> DataDescription:
    """The description of split data; ``extra`` are the image-only fields."""
    sizes = {split: len(s) for split, s in splits.items()}
    task, names = schema.task, schema.class_names
    counts: dict[str, Any] = {}
    if task == "multilabel":
        counts["label_counts"] = {split: dict(zip(names, s.y.sum(0).int().tolist()))
                                  for split, s in splits.items()}
    elif task != "regression":
        counts["class_counts"] = {
            split: {names[c]: int(k) for c, k in zip(*np.unique(s.y.numpy().astype(int),
                                                                 return_counts=True))}
            for split, s in splits.items()}
        if task == "binary":
            counts["positive_class"] = names[1]
    return DataDescription(name=name, description=description, target=target, task=task,
                           kind=schema.kind, rows=sum(sizes.values()), columns=columns,
                           inputs=inputs, split_sizes=sizes, preprocessing=preprocessing,
                           notes=notes, split_method=partition.method,
                           drawn_splits=partition.drawn, **counts, **extra)
