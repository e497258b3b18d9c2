"""The boxes of one image, checked: true boxes from the data, predicted boxes from a model.

The representation agreed with the data side: per image an ``image_id``, ``boxes`` float
(N, 4) absolute pixel ``x1, y1, x2, y2``, ``labels`` int (N,) indexing the list of class
names (there is no class for "nothing here": an image without objects has N = 0), and for
predictions ``scores`` (N,). Each entry is a mapping or an object with those attributes,
holding numpy arrays, torch tensors or lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from deepfit.errors import DataError, ModelError


@dataclass(frozen=True)
class ImageBoxes:
    """One image's boxes as float64 / int64 numpy arrays; ``scores`` is None for the truth."""

    image_id: Any
    boxes: np.ndarray    # (N, 4) xyxy
    labels: np.ndarray   # (N,)
    scores: Optional[np.ndarray] = None

    @property
    def areas(self) -> np.ndarray:
        return (self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])


def read_truths(truths: Sequence[Any], class_names: Sequence[str]) -> list[ImageBoxes]:
    """The true boxes per image, checked; DataError names the image and what is wrong."""
    if len(truths) == 0:
        raise DataError("detection metrics: no images with true boxes were given; "
                        "evaluate on at least one image")
    out, seen = [], set()
    for entry in truths:
        image = read_image(entry, class_names, False)
        if image.image_id in seen:
            raise DataError(f"detection truth: image id {image.image_id!r} appears twice; "
                            "give each image once, with all its boxes")
        seen.add(image.image_id)
        out.append(image)
    return out


def read_predictions(predictions: Sequence[Any], truths: list[ImageBoxes],
                     class_names: Sequence[str]) -> list[ImageBoxes]:
    """The predicted boxes, in the order of ``truths``; ModelError when an image has no entry
    or two (an image where the model found nothing needs an entry with N = 0) or one names
    an image that is not among the true ones."""
    by_id: dict[Any, ImageBoxes] = {}
    for entry in predictions:
        image = read_image(entry, class_names, True)
        if image.image_id in by_id:
            raise ModelError(f"detection predictions: image id {image.image_id!r} appears "
                             "twice; give each image's detections in one entry")
        by_id[image.image_id] = image
    known = {t.image_id for t in truths}
    extra = [i for i in by_id if i not in known]
    if extra:
        raise ModelError(f"detection predictions: {len(extra)} image id(s) have no true boxes "
                         f"entry (first: {extra[0]!r}); predict on the evaluated images only")
    missing = [t.image_id for t in truths if t.image_id not in by_id]
    if missing:
        raise ModelError(f"detection predictions: {len(missing)} of {len(truths)} images have "
                         f"no entry (first: {missing[0]!r}); an image where the model found "
                         "nothing needs an entry with empty boxes, labels and scores")
    return [by_id[t.image_id] for t in truths]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each box of ``a`` (N, 4) with each of ``b`` (M, 4), xyxy, shape (N, M), as
    pycocotools computes it (no +1 pixel; 0 where the union is 0)."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, on any device
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _field(entry: Any, name: str, where: str, error: type) -> Any:
    if isinstance(entry, dict):
        if name not in entry:
            raise error(f"{where}: no '{name}' key (it has {', '.join(map(str, entry))})")
        return entry[name]
    if not hasattr(entry, name):
        raise error(f"{where}: no '{name}' (give a dict or an object with image_id, boxes, "
                    "labels" + (", scores" if name == "scores" else "") + ")")
    return getattr(entry, name)


def read_image(entry: Any, class_names: Sequence[str], predicted: bool) -> ImageBoxes:
    """One image's entry, checked (``predicted``: it needs scores; a fault is a ModelError
    rather than a DataError)."""
    kind, error = ("detection predictions", ModelError) if predicted else ("detection truth",
                                                                          DataError)
    image_id = _field(entry, "image_id", kind, error)
    if hasattr(image_id, "item"):  # a 0-d tensor or numpy scalar
        image_id = image_id.item()
    where = f"{kind}, image {image_id!r}"
    boxes = _array(_field(entry, "boxes", where, error))
    labels = _array(_field(entry, "labels", where, error))
    n = len(labels) if labels.ndim == 1 else -1
    if boxes.size == 0 and n == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or n != len(boxes):
        raise error(f"{where}: boxes must be (N, 4) x1, y1, x2, y2 with N labels; got boxes "
                    f"{boxes.shape} and labels {labels.shape}")
    if not np.issubdtype(boxes.dtype, np.number) or not np.isfinite(boxes).all():
        raise error(f"{where}: boxes must be finite numbers; found {_first_bad(boxes)}")
    boxes = boxes.astype(np.float64)
    flipped = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if flipped.any():
        i = int(np.flatnonzero(flipped)[0])
        raise error(f"{where}: box {i} {boxes[i].tolist()} has x2 < x1 or y2 < y1; boxes are "
                    "absolute pixel x1, y1, x2, y2 (convert x, y, width, height first)")
    if n and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0
              or labels.max() >= len(class_names)):
        raise error(f"{where}: labels must be integers 0 to {len(class_names) - 1} indexing "
                    f"the classes {list(class_names)}; got {_first_bad(labels, len(class_names))}")
    scores = None
    if predicted:
        scores = _array(_field(entry, "scores", where, error)).astype(np.float64)
        if scores.shape != (n,) or not np.isfinite(scores).all():
            raise error(f"{where}: scores must be {n} finite numbers, one per box; got shape "
                        f"{scores.shape}" + ("" if scores.shape != (n,) else " with "
                                             f"{_first_bad(scores)}"))
    return ImageBoxes(image_id, boxes, labels.astype(np.int64), scores)


def _first_bad(values: np.ndarray, classes: Optional[int] = None) -> str:
    if not np.issubdtype(values.dtype, np.number):
        return f"values of type {values.dtype}"
    flat = values.reshape(-1)
    if classes is None:
        bad = flat[~np.isfinite(flat)]
    elif not np.issubdtype(values.dtype, np.integer):
        return f"values of type {values.dtype} (e.g. {flat[0].item()})"
    else:
        bad = flat[(flat < 0) | (flat >= classes)]
    return str(bad[0].item()) if len(bad) else "none"
