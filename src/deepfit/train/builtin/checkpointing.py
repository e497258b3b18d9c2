"""Writes ``last.pt``: everything needed to resume, at epoch ends and optionally every N
steps (then a resumed run continues inside the epoch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from deepfit.train.callbacks import Callback
from deepfit.train.checkpoint import save_checkpoint


class LastCheckpoint(Callback):
    """At every epoch end, and every ``every_steps`` optimiser steps when that is > 0."""

    def __init__(self, path: Path, every_steps: int = 0,
                 extra: Optional[dict[str, Any]] = None) -> None:
        self.path, self.every_steps = Path(path), every_steps
        self.extra = dict(extra or {})  # e.g. the resolved config and library versions

    def on_batch_end(self, trainer: Any, step: int, loss: Any, **kwargs: Any) -> None:
        if self.every_steps and trainer.global_step % self.every_steps == 0:
            self.save(trainer)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        self.save(trainer)

    def save(self, trainer: Any) -> None:
        if trainer.strategy.is_main:  # one process writes; every process holds the same state
            save_checkpoint({**trainer.state_dict(), **self.extra}, self.path,
                            keep_previous=True)
