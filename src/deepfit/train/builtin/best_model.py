"""Tracks the best epoch by the monitored validation metric, keeps its weights, writes
``best.pt``, and puts the best weights back in the model when training ends."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Optional

from deepfit.errors import RunError
from deepfit.train.callbacks import Callback
from deepfit.train.checkpoint import save_checkpoint
from deepfit.train.history import mode_of


class BestModel(Callback):
    def __init__(self, monitor: str, min_delta: float = 0.0, path: Optional[Path] = None) -> None:
        self.monitor, self.min_delta, self.path = monitor, min_delta, path
        self.sign = 1.0 if mode_of(monitor) == "min" else -1.0
        self.best_value = self.sign * math.inf
        self.best_epoch = 0
        self.best_state: Optional[dict] = None

    def improved(self, value: float) -> bool:
        """The rule of ``deepfit.train.history.best_so_far`` (early stopping's too)."""
        return math.isfinite(value) and self.sign * value < self.sign * self.best_value - self.min_delta

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        value = logs[self.monitor]
        if value is None:
            raise RunError(f"train.monitor={self.monitor} needs a validation split, and this "
                           "fit has no validation rows")
        if self.improved(value):
            self.best_value, self.best_epoch = value, epoch
            self.best_state = {k: v.detach().cpu().clone()
                               for k, v in trainer.model.state_dict().items()}
            if self.path is not None and trainer.strategy.is_main:
                save_checkpoint({"model": self.best_state, "epoch": epoch,
                                 "monitor": self.monitor, "value": value}, self.path)

    def on_train_end(self, trainer: Any, **kwargs: Any) -> None:
        if self.best_state is not None:
            trainer.model.load_state_dict(copy.deepcopy(self.best_state))
            trainer.best_epoch = self.best_epoch

    def state_dict(self) -> dict:
        return {"best_value": self.best_value, "best_epoch": self.best_epoch,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self.best_state = state["best_state"]
