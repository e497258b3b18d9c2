"""Drives ``Schedule``: warm-up and one-cycle per step, the others per epoch."""

from __future__ import annotations

from typing import Any

from deepfit.train.callbacks import Callback
from deepfit.train.optim import Schedule


class LRSchedule(Callback):
    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def on_batch_begin(self, trainer: Any, step: int, **kwargs: Any) -> None:
        self.schedule.before_step()

    def on_batch_end(self, trainer: Any, step: int, loss: Any, **kwargs: Any) -> None:
        self.schedule.after_step()

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        self.schedule.after_epoch(logs["val_loss"])

    def state_dict(self) -> dict:
        return self.schedule.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.schedule.load_state_dict(state)
