"""``ImageSet``: what every image source hands to the rest of the data stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import torch


@dataclass
class ImageSet:
    """A loaded image dataset before splitting and normalisation.

    Attributes:
        images: uint8 tensor (N, C, H, W), C = 1 or 3, all images one size; or an
            ``ImageFiles`` (files decoded batch by batch) when the set is too large for memory.
        labels: (N,) int64 class codes indexing ``class_names``; or (N, L) uint8 0/1 for a
            multi-label set (then ``class_names`` names the L labels).
        class_names: display name of each class code (or label), in code order.
        name: short dataset name used in run names and reports.
        description: one line for the report (source, what it is).
        ids: (N,) str, one per image: its file path relative to the source root, or
            ``"<split>/<index>"`` for array sources.
        split: optional (N,) str of ``"train" | "val" | "test"`` fixed by the source (official
            splits, or a train/val/test folder layout).
        groups: optional (N,) str, e.g. the patient of each image (``data.group_column`` of
            an image CSV): a group's images stay in one split.
        task_hint: ``"multilabel"`` for a multi-label set, else None (inferred from classes).
        skipped: ``(file, reason)`` of every unreadable image left out under the ``skip`` policy.
        origin: how the images were read, for the report (e.g. "decoded 1,204 PNG files",
            "from cache").
        aspects: the stored images' shapes against the size they were given (for the
            report's preprocessing line), or None when not known.
        other_files: files in the class folders that are not images by their name
            ('notes.txt', 'x.jpeg2'), left out; relative to the source root.
    """

    images: "torch.Tensor | ImageFiles"
    labels: np.ndarray
    class_names: list[str]
    name: str
    description: str
    ids: np.ndarray
    split: Optional[np.ndarray] = None
    groups: Optional[np.ndarray] = None
    task_hint: Optional[str] = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    origin: str = ""
    aspects: Optional[Aspects] = None
    other_files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


# An image whose aspect ratio is within 1 % of the target's counts as the same shape
# (rounding in the stored sizes, e.g. 101x75 against 4:3).
_SAME_SHAPE = 1.01


# Stretching that changes an image's aspect ratio by more than this factor is said (report
# note at training, a warning at prediction): a circle visibly becomes an ellipse.
STRETCH_NOTE_FACTOR = 1.05


@dataclass
class Aspects:
    """How the stored images' aspect ratios (width / height, as displayed) relate to the
    target size's: what the report says about stretching or letterboxing.

    Attributes:
        images: images measured.
        other: how many of them have another aspect ratio than the target (beyond 1 %).
        lo, hi: the smallest and largest width / height among the images.
        target: the target's width / height.
        sampled: measured on a sample of headers (a streamed set), not every image.
    """

    images: int
    other: int
    lo: float
    hi: float
    target: float
    sampled: bool = False

    @property
    def change(self) -> float:
        """The largest factor by which stretching to the target changes an image's aspect
        ratio (1.0: none; 2.0: one image is twice as wide or tall, relatively, as stored)."""
        if not self.images:
            return 1.0
        return max(self.hi / self.target, self.target / self.lo)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_aspects(sizes: Iterable[Optional[tuple[int, int]]], target: tuple[int, int],
                    sampled: bool = False) -> Aspects:
    """``Aspects`` of images of the displayed ``sizes`` (H, W; None entries are left out)
    against ``target`` (H, W)."""
    ratios = np.asarray([w / h for h, w in (s for s in sizes if s) if h and w], dtype=float)
    goal = target[1] / target[0]
    if not len(ratios):
        return Aspects(0, 0, goal, goal, goal, sampled)
    factor = np.maximum(ratios / goal, goal / ratios)
    return Aspects(images=len(ratios), other=int((factor > _SAME_SHAPE).sum()),
                   lo=float(ratios.min()), hi=float(ratios.max()), target=goal, sampled=sampled)


@dataclass
class ImageFiles:
    """Image files decoded lazily, for sets too large to hold in memory as one tensor.

    ``decode(i)`` of the data stage turns ``paths[i]`` into a uint8 (C, H, W) tensor of
    ``size`` with ``channels`` channels, stretched or letterboxed to it (``resize``).
    """

    paths: Sequence[str]
    size: tuple[int, int]
    channels: int
    resize: str = "stretch"

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.channels, *self.size)


def take_rows(images: Union[torch.Tensor, ImageFiles],
              rows: np.ndarray) -> Union[torch.Tensor, ImageFiles]:
    """The images at ``rows``: a tensor of them, or the files to decode."""
    if isinstance(images, torch.Tensor):
        return images[torch.as_tensor(rows, dtype=torch.long)]
    return ImageFiles([images.paths[i] for i in rows], images.size, images.channels,
                      images.resize)
