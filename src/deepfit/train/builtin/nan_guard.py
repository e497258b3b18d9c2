"""Stops training, naming where and the likely cause, when the loss stops being finite."""

from __future__ import annotations

import math
from typing import Any

from deepfit.errors import DeepfitError
from deepfit.train.callbacks import Callback


class TrainingDiverged(DeepfitError):
    """The loss became NaN or infinite."""


class NanGuard(Callback):
    """Stops training at a non-finite loss, naming the step.

    On CPU every step is checked at once (reading the loss is free there; the trainer has
    already refused the update). On an accelerator reading a loss waits for the device, so
    each step's loss is read one step later, while the device already runs the next step:
    training stops within one step, without stalling the device's queue more than a step.
    Under the ``skip`` policy the trainer skips non-finite steps itself, so only a whole
    epoch without a good step stops. Mixed fp16 leaves overflowing steps to the grad scaler.
    """

    def __init__(self, every_step: bool, skip: bool = False, lagged: bool = False) -> None:
        self.every_step, self.skip, self.lagged = every_step, skip, lagged
        self._previous: Any = None  # (loss, step, epoch) of the step before, unread

    def on_batch_end(self, trainer: Any, step: int, loss: Any, **kwargs: Any) -> None:
        if self.skip:
            return
        if self.every_step:
            self._check(trainer, loss, step, trainer.epoch)
        elif self.lagged:
            previous, self._previous = self._previous, (loss, step, trainer.epoch)
            if previous is not None:
                self._check(trainer, *previous)

    def _check(self, trainer: Any, loss: Any, step: int, epoch: int) -> None:
        value = loss.item()
        if not math.isfinite(value):
            self._fail(trainer, value, f"step {step + 1} of epoch {epoch}")

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        if self._previous is not None:  # the epoch's last step
            previous, self._previous = self._previous, None
            if not self.skip:
                self._check(trainer, *previous)
        if not math.isfinite(logs["train_loss"]):
            self._fail(trainer, logs["train_loss"], f"epoch {epoch}")

    @staticmethod
    def _fail(trainer: Any, value: float, where: str) -> None:
        raise diverged(trainer, value, where)


def checks_every_step(cfg: Any, device: Any) -> bool:
    """Whether each step's loss and gradient norm are read at once (the trainer's check
    before the update, and the guard's): free on the CPU, a device sync elsewhere, so only
    there or when asked to skip bad steps; never under fp16, whose grad scaler skips them."""
    return cfg.precision != "fp16" and (device.type == "cpu" or cfg.on_nonfinite == "skip")


def diverged(trainer: Any, value: float, where: str) -> TrainingDiverged:
    """The error for a non-finite loss: where, the learning rate, and what to try."""
    lr = trainer.optimizer.param_groups[0]["lr"]
    return TrainingDiverged(f"training diverged: the loss became {value} at {where} "
                            f"(learning rate {lr:g}); lower train.lr, standardise the inputs "
                            "(data.standardize=z or robust), or set train.grad_clip=1.0")
