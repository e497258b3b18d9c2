"""The data stage for images: load an ``ImageSet``, merge or rename classes, split honestly,
and fit the normalisation on the training split only. The images stay uint8 (4x smaller
than float32); ``ImageInputs`` turns each batch into network input on the device."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pandas as pd
import torch

from deepfit.config import DataConfig
from deepfit.data.batches import eval_batches
from deepfit.data.images.augment import resolve_augment
from deepfit.data.images.decode import IMAGE_SUFFIXES
from deepfit.data.images.imageset import (STRETCH_NOTE_FACTOR, Aspects, ImageFiles, ImageSet,
                                          take_rows)
from deepfit.data.images.inputs import STATS_SAMPLE, ImageSpec, channel_stats
from deepfit.data.images.options import cache_dir, image_options
from deepfit.data.labels import check_lookalikes, renamed
from deepfit.data.split import SPLITS
from deepfit.data.stage import DataBundle, GivenSplit, Schema, Split, describe, split_rows
from deepfit.data.target import TargetSpec
from deepfit.errors import DataError

if TYPE_CHECKING:
    from deepfit.data.source_kind import Source

__all__ = ["build_image_bundle", "cache_dir", "image_options"]


def build_image_bundle(cfg: DataConfig, source: Source, seed: int,
                       norm_stats: Optional[tuple] = None, refit: bool = False) -> DataBundle:
    """The data stage for an image source (``resolve_source``'s ``source``).

    ``norm_stats`` (mean, std) replace the training split's statistics (e.g. the
    statistics pretrained weights expect). ``refit``: see ``split_rows``.
    """
    opts = image_options(cfg)  # checks the settings even for images given in memory
    data = source.data if source.data is not None else source.images.load(opts)
    if cfg.group_column and data.groups is None:
        raise DataError(f"data.group_column={cfg.group_column} needs a column of an image CSV "
                        "(or a table); for this source keep each patient's images together "
                        "with train/ val/ test/ folders")
    labels, names = _merge_classes(data, cfg.label_map)
    task = _task(data, names, cfg)
    stratify = task in ("binary", "multiclass")
    codes = labels if stratify else None
    notes: list[str] = []
    if stratify:  # class folders 'Cat' and 'cat' are one class written differently
        counts = np.bincount(labels, minlength=len(names)).tolist()
        notes = check_lookalikes(dict(zip(names, counts)), data.name, "images", cfg.label_map)
    given = None if data.split is None else GivenSplit(
        pd.Series(data.split), "official split", "by the source's own split",
        "the source's split", " (validation carved from training)")
    partition = split_rows(cfg, len(data), seed, given, codes, names, data.groups,
                           of=f" of {data.name}", unit="images", refit=refit)
    parts = partition.rows
    notes += partition.notes
    target = _target(names, task, cfg.positive_class)
    if task == "binary" and target.classes[0] == 1:  # the positive class was swapped to code 1
        labels = 1 - labels
    y = (torch.from_numpy(labels.astype(np.float32)) if task in ("binary", "multilabel")
         else torch.from_numpy(labels.astype(np.int64)))

    n, channels, height, width = data.images.shape
    if norm_stats is not None:
        mean, std = [float(v) for v in norm_stats[0]], [float(v) for v in norm_stats[1]]
        if len(mean) != channels:  # one value for every channel; RGB ones averaged for gray
            mean, std = [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
    elif cfg.normalize == "none":
        mean, std = [0.0] * channels, [1.0] * channels
    else:
        mean, std = channel_stats(data.images, parts["train"], _sample(data.images, parts))
    spec = ImageSpec(size=(height, width), channels=channels, mean=mean, std=std,
                     augment=resolve_augment(cfg.augment if len(cfg.augment) != 1
                                             else cfg.augment[0], channels, (height, width)),
                     channel_mode=cfg.color, resized=bool(cfg.image_size),
                     resize=cfg.resize)
    schema = Schema(task=task, target=target, preprocessor=None,
                    input_shape=(channels, height, width), image=spec)
    splits = {split: Split(take_rows(data.images, parts[split]), y[parts[split]],
                           np.asarray(data.ids)[parts[split]]) for split in SPLITS}
    steps = spec.describe(data.aspects)
    if data.skipped:
        first = data.skipped[0]
        notes = notes + [f"{len(data.skipped)} unreadable image(s) skipped "
                         f"(data.bad_images=skip), e.g. {first[0]}: {first[1]}"]
    if data.other_files:
        notes = notes + [_other_files_note(data.other_files)]
    description = describe(
        partition, splits, schema, name=data.name, description=data.description,
        target="label", columns=1, inputs=f"{channels}×{height}×{width} images",
        preprocessing="; ".join(steps), notes=notes + _stretch_note(spec, data.aspects),
        image_shape=[channels, height, width], preprocessing_steps=steps,
        images={"origin": data.origin, "skipped": [list(s) for s in data.skipped],
                "streamed": isinstance(data.images, ImageFiles), "resize": spec.resize,
                "aspects": data.aspects.to_dict() if data.aspects else None})
    return DataBundle(splits["train"], splits["val"], splits["test"], schema, description)


def _other_files_note(files: list[str]) -> str:
    """The files of the class folders that were left out as not images, by extension."""
    kinds = sorted({os.path.splitext(f)[1].lower() or "no extension" for f in files})
    shown = ", ".join(kinds[:5]) + (", ..." if len(kinds) > 5 else "")
    return (f"{len(files):,} file(s) in the class folders are not images by their name "
            f"({shown}; e.g. {files[0]}) and were left out; deepfit reads "
            f"{' '.join(IMAGE_SUFFIXES)}.")


def _merge_classes(data: ImageSet, label_map: dict) -> tuple[np.ndarray, list[str]]:
    """Apply ``data.label_map`` ({old name: new name}); unnamed classes keep their name."""
    labels, names = np.asarray(data.labels), list(data.class_names)
    if not label_map:
        return labels, names
    if data.task_hint == "multilabel":
        raise DataError("data.label_map works on single-label classes; this dataset is "
                        "multi-label")
    new = [str(name) for name in renamed(names, label_map, data.name)]
    merged = sorted(set(new), key=new.index)  # first-seen order of the new names
    code_of = np.array([merged.index(r) for r in new], dtype=np.int64)
    return code_of[labels], merged


def _task(data: ImageSet, names: list[str], cfg: DataConfig) -> str:
    if data.task_hint == "multilabel":
        if cfg.task not in ("auto", "multilabel"):
            raise DataError(f"{data.name} is a multi-label dataset; data.task={cfg.task} "
                            "cannot apply")
        return "multilabel"
    present = len(np.unique(data.labels))
    if present < 2:
        raise DataError(f"{data.name} has images of a single class ({names[0]!r}); a model "
                        "needs at least two")
    task = "binary" if len(names) == 2 else "multiclass"
    if cfg.task == "regression" or cfg.task == "multilabel":
        raise DataError(f"data.task={cfg.task} does not fit {data.name}, whose labels are "
                        f"{len(names)} classes; use data.task=auto")
    if cfg.task == "binary" and task != "binary":
        raise DataError(f"data.task=binary but {data.name} has {len(names)} classes; merge "
                        "them with data.label_map or use data.task=multiclass")
    return task


def _target(names: list[str], task: str, positive: Optional[str]) -> TargetSpec:
    """Class codes 0..K-1 named ``names``; a binary task puts ``positive`` at code 1."""
    if task == "multilabel":
        return TargetSpec(",".join(names), task, classes=list(names), class_names=list(names))
    return TargetSpec.fit(pd.Series(range(len(names))), "label", task,
                          names=dict(enumerate(names)), positive=positive)


def _sample(images: torch.Tensor | ImageFiles, parts: dict) -> Optional[Any]:
    """A streamed set's statistics come from a seeded sample of training images."""
    if isinstance(images, torch.Tensor):
        return None
    rng = np.random.default_rng(0)
    train = parts["train"]
    rows = np.sort(rng.choice(train, size=min(STATS_SAMPLE, len(train)), replace=False))
    return eval_batches(take_rows(images, rows), 256, torch.device("cpu"))


def _stretch_note(spec: ImageSpec, aspects: Optional[Aspects]) -> list[str]:
    """A note when stretching to data.image_size changed some image's aspect ratio by more
    than 5 %: circles became ellipses, and data.resize=pad would keep the shapes."""
    if (not spec.resized or spec.resize != "stretch" or aspects is None
            or aspects.change <= STRETCH_NOTE_FACTOR):
        return []
    h, w = spec.size
    factor = f"{aspects.change:.2f}".rstrip("0").rstrip(".")
    return [f"data.image_size stretched {aspects.other:,} of {aspects.images:,}"
            f"{' sampled' if aspects.sampled else ''} images to {h}×{w}, changing their aspect "
            f"ratio by a factor of up to {factor} (a circle becomes an ellipse; new images are "
            "stretched the same way at prediction); data.resize=pad keeps the aspect ratio and "
            "pads the rest with black (letterboxing)"]
