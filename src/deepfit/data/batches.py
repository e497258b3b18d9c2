"""Mini-batches for training and prediction.

Data that fits in memory is one tensor on the training device: an epoch gathers it once in
the epoch's order and its batches are views (no per-sample Python work, no DataLoader).
Image sets too large for memory (``ImageFiles``) stream through a DataLoader whose worker
processes decode the files; batches arrive in pinned memory and are copied to the device
without blocking. Either way the trainer sees the same thing: uint8 or float batches on
its device, in exactly the given order, so resuming and determinism do not depend on how
the batches were made.
"""

from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from deepfit.data.images.imageset import ImageFiles

Inputs = "torch.Tensor | ImageFiles"


def on_device(X: Inputs, device: torch.device) -> Inputs:
    """``X`` moved to ``device`` once (a tensor); streamed files stay where they are."""
    return X.to(device) if isinstance(X, torch.Tensor) else X


def epoch_batches(X: Inputs, order: torch.Tensor, cuts: Sequence[slice], first: int,
                  device: torch.device, workers: Optional[int] = None) -> Iterator[torch.Tensor]:
    """The batches ``X[order[cut]]`` for ``cuts[first:]``, on ``device``."""
    if isinstance(X, torch.Tensor):
        Xs = X[order]  # one gather per epoch; the batches are views
        for cut in cuts[first:]:
            yield Xs[cut]
        return
    index = order.cpu()
    batches = [index[cut].tolist() for cut in cuts[first:]]
    yield from _stream(X, batches, device, workers)


def eval_batches(X: Inputs, batch_size: int, device: torch.device,
                 workers: Optional[int] = None) -> Iterator[torch.Tensor]:
    """``X`` in order, ``batch_size`` rows at a time, on ``device``."""
    n = len(X)
    if isinstance(X, torch.Tensor):
        for start in range(0, n, batch_size):
            yield X[start:start + batch_size].to(device, non_blocking=True)
        return
    batches = [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]
    yield from _stream(X, batches, device, workers)


def default_workers() -> int:
    """Decoding processes for streamed images: the cores, less one for the training loop."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class _DecodedFiles(Dataset):
    """Index -> uint8 (C, H, W); runs in the DataLoader's worker processes."""

    def __init__(self, files: ImageFiles) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        from deepfit.data.images.decode import decode_image  # PIL only in the workers
        return decode_image(self.files.paths[i], self.files.size, self.files.channels,
                            self.files.resize)


def _stream(files: ImageFiles, batches: list[list[int]], device: torch.device,
            workers: Optional[int]) -> Iterator[torch.Tensor]:
    workers = default_workers() if workers is None else workers
    # Its own generator: a DataLoader otherwise draws its workers' base seed from the global
    # torch RNG, which would shift dropout's random stream against an in-memory run.
    loader = DataLoader(_DecodedFiles(files), batch_sampler=batches, num_workers=workers,
                        pin_memory=device.type == "cuda",
                        prefetch_factor=4 if workers else None,
                        generator=torch.Generator().manual_seed(0))
    for xb in loader:  # (B, C, H, W) uint8, in the sampler's order whatever the workers
        yield xb.to(device, non_blocking=True)


def images_at(X: Inputs, rows: Sequence[int]) -> "np.ndarray":
    """uint8 (n, C, H, W) of the images at ``rows`` on the CPU (decoded here, a few at a
    time, when ``X`` is streamed from files)."""
    import numpy as np

    from deepfit.data.images.imageset import take_rows

    rows = np.asarray(rows, dtype=np.int64)
    batches = list(eval_batches(take_rows(X, rows), 64, torch.device("cpu"), workers=0))
    return torch.cat(batches).numpy() if batches else np.empty((0, *X.shape[1:]), np.uint8)
