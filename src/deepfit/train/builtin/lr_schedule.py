"""Drives the trainer's ``Schedule``: warm-up and one-cycle per step, the others per epoch.
The schedule's state is part of the trainer's (``TrainState.schedule``)."""

from __future__ import annotations

from typing import Any

from deepfit.train.callbacks import Callback


class LRSchedule(Callback):
    def on_batch_begin(self, trainer: Any, step: int, **kwargs: Any) -> None:
        trainer.schedule.before_step()

    def on_batch_end(self, trainer: Any, step: int, loss: Any, **kwargs: Any) -> None:
        trainer.schedule.after_step()

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        trainer.schedule.after_epoch(logs.get("val_loss"))
