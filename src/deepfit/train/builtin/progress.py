"""Live progress: a bar with loss and the main metric in a terminal, a few plain lines in
logs (CI, notebooks' captured output)."""

from __future__ import annotations

import sys
from typing import Any, Optional

from deepfit.train.callbacks import Callback


# Epochs with at least this many steps also get a bar of the steps inside the epoch (an
# epoch of images on a CPU can take minutes).
STEP_BAR_MIN_STEPS = 50


class Progress(Callback):
    """Epochs done, loss and the main metric; in a terminal also the steps of a long epoch."""

    def __init__(self, main_metric: str, total_epochs: int, stream: Any = None) -> None:
        self.main, self.total = main_metric, total_epochs
        self.stream = stream or sys.stderr
        self.bar: Optional[Any] = None
        self.steps: Optional[Any] = None  # the rich task of the running epoch's steps
        self.every = 1

    def on_train_begin(self, trainer: Any, **kwargs: Any) -> None:
        if getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, TextColumn,
                                       TimeElapsedColumn)
            from rich.progress import Progress as RichProgress
            self.bar = RichProgress(TextColumn("{task.description}"), MofNCompleteColumn(),
                                    BarColumn(), TextColumn("{task.fields[status]}"),
                                    TimeElapsedColumn(), transient=False,
                                    console=Console(file=self.stream))
            self.bar.start()
            # A resumed run starts its bar at the epoch it continues from.
            self.task = self.bar.add_task("epoch", total=self.total, status="",
                                          completed=trainer.epoch)

    def on_epoch_begin(self, trainer: Any, epoch: int, **kwargs: Any) -> None:
        total = getattr(trainer, "steps_per_epoch", 0)
        if self.bar is None or total < STEP_BAR_MIN_STEPS:
            return
        self.every = max(1, total // 100)  # about 100 updates an epoch, whatever its length
        if self.steps is None:
            self.steps = self.bar.add_task("step ", total=total, status="")
        self.bar.reset(self.steps, total=total, completed=trainer.steps_done_in_epoch)

    def on_batch_end(self, trainer: Any, step: int, loss: Any, **kwargs: Any) -> None:
        if self.steps is not None and (step + 1) % self.every == 0:
            self.bar.update(self.steps, completed=step + 1)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        status = f"loss {logs['train_loss']:.4f}"
        if logs["val_loss"] is not None:  # None: a fit without validation rows
            status += (f"  val_loss {logs['val_loss']:.4f}  "
                       f"val_{self.main} {logs[f'val_{self.main}']:.4f}")
        if self.bar is not None:
            self.bar.update(self.task, completed=epoch, status=status)
        elif epoch == 1 or epoch % max(1, self.total // 10) == 0:
            print(f"epoch {epoch:>4}/{self.total}  {status}", file=self.stream, flush=True)

    def on_train_end(self, trainer: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            if self.steps is not None:
                self.bar.remove_task(self.steps)
            self.bar.stop()
        reason = getattr(trainer, "stop_reason", None)
        if reason:
            print(reason, file=self.stream, flush=True)
