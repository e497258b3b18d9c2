"""Stops when the monitored metric has not improved for ``patience`` epochs."""

from __future__ import annotations

from typing import Any

from deepfit.train.builtin.best_model import BestModel
from deepfit.train.callbacks import Callback


class EarlyStopping(Callback):
    """Reads the best epoch from ``BestModel`` (which must come first in the list), so
    "best" and "improved" mean exactly the same thing for both."""

    def __init__(self, best: BestModel, patience: int) -> None:
        self.best, self.patience = best, patience
        self.stopped_epoch = 0

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        if epoch - self.best.best_epoch >= self.patience:
            trainer.should_stop = True
            self.stopped_epoch = epoch
            trainer.stop_reason = (f"early stop: {self.best.monitor} did not improve for "
                                   f"{self.patience} epochs (best at epoch {self.best.best_epoch})")
