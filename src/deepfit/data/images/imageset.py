"""``ImageSet``: what every image source hands to the rest of the data stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

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

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ImageFiles:
    """Image files decoded lazily, for sets too large to hold in memory as one tensor.

    ``decode(i)`` of the data stage turns ``paths[i]`` into a uint8 (C, H, W) tensor of
    ``size`` with ``channels`` channels.
    """

    paths: Sequence[str]
    size: tuple[int, int]
    channels: int

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
    return ImageFiles([images.paths[i] for i in rows], images.size, images.channels)
