"""Live progress: a bar with loss and the main metric in a terminal, a few plain lines in
logs (CI, notebooks' captured output)."""

from __future__ import annotations

import sys
from typing import Any, Optional

from deepfit.train.callbacks import Callback


class Progress(Callback):
    def __init__(self, main_metric: str, total_epochs: int, stream: Any = None) -> None:
        self.main, self.total = main_metric, total_epochs
        self.stream = stream or sys.stderr
        self.bar: Optional[Any] = None

    def on_train_begin(self, trainer: Any, **kwargs: Any) -> None:
        if getattr(self.stream, "isatty", lambda: False)():
            from rich.progress import (BarColumn, MofNCompleteColumn, TextColumn,
                                       TimeElapsedColumn)
            from rich.progress import Progress as RichProgress
            self.bar = RichProgress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(),
                                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                    transient=False)
            self.bar.start()
            # A resumed run starts its bar at the epoch it continues from.
            self.task = self.bar.add_task("train", total=self.total, status="",
                                          completed=trainer.epoch)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        status = (f"loss {logs['train_loss']:.4f}  val_loss {logs['val_loss']:.4f}  "
                  f"val_{self.main} {logs[f'val_{self.main}']:.4f}")
        if self.bar is not None:
            self.bar.update(self.task, completed=epoch, status=status)
        elif epoch == 1 or epoch % max(1, self.total // 10) == 0:
            print(f"epoch {epoch:>4}/{self.total}  {status}", file=self.stream, flush=True)

    def on_train_end(self, trainer: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
        reason = getattr(trainer, "stop_reason", None)
        if reason:
            print(reason, file=self.stream, flush=True)
