"""A torch ``Dataset`` of a detection set in the form torchvision's detection models take.

Each item is ``(image, target)``: a float (C, H, W) tensor in [0, 1] (RGB: gray photos are
repeated to three channels) and ``{"boxes": float32 (N, 4) xyxy pixels, "labels": int64
(N,)}``. **Here, and only here, labels shift by one**: ``DetectionSet`` labels are 0-based
indices into the class names (the metrics' form), torchvision's Faster R-CNN, RetinaNet,
FCOS and SSD keep 0 for the background, so the target holds ``label + LABEL_OFFSET``;
``from_model_labels`` undoes it on predictions. A NEG image gives boxes of shape (0, 4).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from deepfit.data.detection.boxes import DetectionSet
from deepfit.data.images.decode import decode_image
from deepfit.errors import DataError

LABEL_OFFSET = 1  # torchvision detection models: class 0 is the background


def to_model_labels(labels: "np.ndarray | torch.Tensor") -> torch.Tensor:
    """0-based class indices -> torchvision's 1-based labels (int64)."""
    return torch.as_tensor(np.asarray(labels), dtype=torch.int64) + LABEL_OFFSET


def from_model_labels(labels: "np.ndarray | torch.Tensor") -> np.ndarray:
    """torchvision's 1-based predicted labels -> 0-based class indices (int64)."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    return np.asarray(labels, dtype=np.int64) - LABEL_OFFSET


def sample_seed(seed: int, epoch: int, image: int) -> int:
    """The augmentation seed of one image in one epoch: the same numbers give the same
    draws whatever ran before (a resumed run, another worker process)."""
    return int(np.random.SeedSequence([seed, epoch, image]).generate_state(1)[0])


class DetectionDataset(Dataset):
    """Images of ``data`` (those at ``indices``, default all) through ``transform``.

    Args:
        data: the detection set.
        transform: a ``box_transforms.DetectionTransform`` (or any callable
            ``(uint8 image, boxes, labels) -> (float image, boxes, labels)``); None gives the
            image as decoded, scaled to [0, 1].
        indices: the images of one split.
        seed: the transform's random draws seeded per (seed, ``epoch``, image): set
            ``epoch`` before each epoch; None: torch's global generator as it is.
    """

    def __init__(self, data: DetectionSet, transform: Optional[Callable] = None,
                 indices: Optional[Sequence[int]] = None, seed: Optional[int] = None) -> None:
        self.data = data
        self.transform = transform
        self.seed, self.epoch = seed, 0  # with a seed: draws repeatable per (seed, epoch, image)
        self.indices = list(range(len(data)) if indices is None else (int(i) for i in indices))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        i = self.indices[item]
        entry = self.data.images[i]
        image = decode_image(str(self.data.path(i)), None, 3)  # uint8 (3, H, W), EXIF applied
        if tuple(image.shape[-2:]) != entry.size:
            raise DataError(f"image '{self.data.path(i)}' is now {image.shape[-1]}x"
                            f"{image.shape[-2]} pixels but was {entry.size[1]}x{entry.size[0]} "
                            "when its boxes were read; was it replaced? read the data again")
        if self.transform is None:
            pixels = image.float() / 255
            boxes = torch.from_numpy(entry.boxes.copy())
            labels = torch.from_numpy(entry.labels.copy())
        elif self.seed is None:
            pixels, boxes, labels = self.transform(image, entry.boxes, entry.labels)
        else:  # the transform draws from torch's global generator: seeded here, restored after
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed(self.seed, self.epoch, i))
                pixels, boxes, labels = self.transform(image, entry.boxes, entry.labels)
        return pixels, {"boxes": boxes.float().reshape(-1, 4),
                        "labels": to_model_labels(labels)}


def collate_detection(batch: list) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """A DataLoader batch as torchvision's detection models take it: a list of images
    (their sizes may differ; ``torch.stack`` them when a model wants one tensor) and a list
    of targets."""
    images, targets = zip(*batch) if batch else ((), ())
    return list(images), list(targets)
