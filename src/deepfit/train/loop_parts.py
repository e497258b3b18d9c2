"""Pieces of the training loop kept out of trainer.py so that the loop reads top to
bottom: the signal flag, the batch slicing, and the on-device epoch metric."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from typing import Any, Iterator

import torch

from deepfit.task import TaskHead


@contextlib.contextmanager
def stop_signals() -> Iterator[Any]:
    """While training, SIGINT (Ctrl-C) and SIGTERM only set a flag that the loop checks after
    each step: nothing is written from inside a signal handler. A second Ctrl-C stops at
    once. Off the main thread (where handlers cannot be installed) this does nothing."""
    flag = {"set": False}
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum: int, frame: Any) -> None:
        if flag["set"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["set"] = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: flag["set"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Contiguous slices over ``n`` rows. A final batch of one row is dropped (it is
    reshuffled into the next epoch): batch norm cannot train on a single sample."""
    cuts = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    if len(cuts) > 1 and cuts[-1].stop - cuts[-1].start == 1:
        cuts.pop()
    return cuts


class RunningMetric:
    """Accuracy or R² over an epoch, computed on the device."""

    def __init__(self, task: str, device: torch.device) -> None:
        self.task = task
        # float64 for exact sums; Apple MPS has no float64.
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.stats = torch.zeros(4, dtype=self.dtype, device=device)

    def update(self, scores: torch.Tensor, y: torch.Tensor) -> None:
        if self.task == "regression":
            yd, sd = y.to(self.dtype), scores.to(self.dtype)
            self.stats += torch.stack([((yd - sd) ** 2).sum(), yd.sum(), (yd ** 2).sum(),
                                       torch.tensor(float(len(y)), device=y.device,
                                                    dtype=self.dtype)])
        else:
            pred = TaskHead.predict(self.task, scores)
            self.stats[0] += (pred == y.long()).sum()
            self.stats[3] += y.numel()  # multi-label: every (row, label) cell counts

    def value(self) -> float:
        sse, s, s2, n = self.stats.tolist()
        if n == 0:
            return math.nan
        if self.task != "regression":
            return sse / n
        sst = s2 - s * s / n
        return 1.0 - sse / sst if sst > 0 else math.nan
