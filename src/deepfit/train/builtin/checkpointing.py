"""Writes ``last.pt`` at the end of every epoch: everything needed to resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepfit.train.callbacks import Callback
from deepfit.train.checkpoint import save_checkpoint


class LastCheckpoint(Callback):
    def __init__(self, path: Path, every: int = 1) -> None:
        self.path, self.every = Path(path), every

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        if epoch % self.every == 0 or trainer.should_stop:
            save_checkpoint(trainer.state_dict(), self.path, keep_previous=True)
