"""Stops training, naming where and the likely cause, when the loss stops being finite."""

from __future__ import annotations

import math
from typing import Any

from deepfit.errors import DeepfitError
from deepfit.train.callbacks import Callback


class TrainingDiverged(DeepfitError):
    """The loss became NaN or infinite."""


class NanGuard(Callback):
    """Checks every step on CPU (free there); on accelerators, once an epoch to avoid a
    device sync per step. Under the ``skip`` policy the trainer has already skipped a
    non-finite step (its loss is NaN), so only a whole epoch without a good step stops."""

    def __init__(self, every_step: bool, skip: bool = False) -> None:
        self.every_step, self.skip = every_step, skip

    def on_batch_end(self, trainer: Any, step: int, loss: Any, **kwargs: Any) -> None:
        if self.every_step and not self.skip:
            value = loss.item()
            if not math.isfinite(value):
                self._fail(trainer, value, f"step {step + 1} of epoch {trainer.epoch}")

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        if not math.isfinite(logs["train_loss"]):
            self._fail(trainer, logs["train_loss"], f"epoch {epoch}")

    @staticmethod
    def _fail(trainer: Any, value: float, where: str) -> None:
        raise diverged(trainer, value, where)


def diverged(trainer: Any, value: float, where: str) -> TrainingDiverged:
    """The error for a non-finite loss: where, the learning rate, and what to try."""
    lr = trainer.optimizer.param_groups[0]["lr"]
    return TrainingDiverged(f"training diverged: the loss became {value} at {where} "
                            f"(learning rate {lr:g}); lower train.lr, standardise the inputs "
                            "(data.standardize=true), or set train.grad_clip=1.0")
