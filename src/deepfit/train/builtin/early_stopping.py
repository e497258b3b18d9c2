"""Stops when the monitored metric has not improved for ``patience`` epochs."""

from __future__ import annotations

from typing import Any

from deepfit.train.callbacks import Callback
from deepfit.train.history import EPOCH, best_so_far


class EarlyStopping(Callback):
    """Reads the best epoch from the history with the rule ``BestModel`` uses
    (``best_so_far``), so "best" and "improved" mean the same for both, in whatever order
    they run, and nothing needs saving in a checkpoint (the history is)."""

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        history = trainer.history
        best, _ = best_so_far(history.column(EPOCH), history.column(self.monitor),
                              self.monitor, self.min_delta)
        if epoch - best >= self.patience:
            trainer.should_stop = True
            by = f" by more than {self.min_delta:g}" if self.min_delta else ""
            trainer.stop_reason = (f"early stop: {self.monitor} did not improve{by} for "
                                   f"{self.patience} epochs (best at epoch {best})")
