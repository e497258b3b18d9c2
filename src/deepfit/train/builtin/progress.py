"""Live progress: a bar with loss and the main metric in a terminal, plain lines in logs (CI,
notebooks' captured output, a piped run); and, once the first steps are timed, what the run
will take.

In a terminal the bar shows the epochs (and the steps of a long epoch). Elsewhere a line is
printed after the first epoch, every tenth of the run, and at least every ``every_s`` seconds
(inside a long epoch too), so a piped run is never silent for minutes.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

from deepfit.train.callbacks import Callback


# Epochs with at least this many steps also get a bar of the steps inside the epoch (an
# epoch of images on a CPU can take minutes).
STEP_BAR_MIN_STEPS = 50
PLAIN_EVERY_S = 30.0  # a plain line at least this often when the output is not a terminal
ESTIMATE_STEPS = 10  # steps timed (after the first, which pays for warm-up) for the estimate
ESTIMATE_MIN_S = 20.0  # a run estimated shorter than this gets no estimate line
LONG_CPU_S = 600.0  # an image run on a CPU estimated longer than this names faster choices


def duration(seconds: float) -> str:
    """``42 s``, ``7 min 10 s``, ``2 h 23 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress(Callback):
    """Epochs done, loss and the main metric; in a terminal also the steps of a long epoch."""

    def __init__(self, main_metric: str, total_epochs: int, stream: Any = None,
                 every_s: float = PLAIN_EVERY_S) -> None:
        self.main, self.total = main_metric, total_epochs
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.bar: Optional[Any] = None
        self.steps: Optional[Any] = None  # the rich task of the running epoch's steps
        self.every = 1
        self.last_line = 0.0  # when the last plain line was printed
        self.timed: Optional[tuple[int, float]] = None  # (step, time) after the first step
        self.estimated = False

    def on_train_begin(self, trainer: Any, **kwargs: Any) -> None:
        self.last_line = time.perf_counter()
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
        self.epoch_started = time.perf_counter()
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
        now = time.perf_counter()
        if not self.estimated:
            if self.timed is None:
                self.timed = (step, now)  # from the end of the first step: warm-up left out
            elif step - self.timed[0] >= ESTIMATE_STEPS:
                self._estimate(trainer, (now - self.timed[1]) / (step - self.timed[0]))
        if self.bar is None and now - self.last_line >= self.every_s:
            total = getattr(trainer, "steps_per_epoch", 0)
            self._say(f"epoch {trainer.epoch:>4}/{self.total}  step {step + 1}/{total}  "
                      f"{duration(now - self.epoch_started)} into the epoch")

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        if not self.estimated:  # an epoch too short to time its steps: time the whole epoch
            self._estimate(trainer, (time.perf_counter() - self.epoch_started)
                           / max(1, getattr(trainer, "steps_per_epoch", 1)))
        status = f"loss {logs['train_loss']:.4f}"
        if logs.get("val_loss") is not None:  # None: a fit without validation rows
            status += f"  val_loss {logs['val_loss']:.4f}"
        if logs.get(f"val_{self.main}") is not None:  # a detector has no val_loss
            status += f"  val_{self.main} {logs[f'val_{self.main}']:.4f}"
        if self.bar is not None:
            self.bar.update(self.task, completed=epoch, status=status)
        elif (epoch == 1 or epoch % max(1, self.total // 10) == 0
              or time.perf_counter() - self.last_line >= self.every_s):
            self._say(f"epoch {epoch:>4}/{self.total}  {status}")

    def on_train_end(self, trainer: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            if self.steps is not None:
                self.bar.remove_task(self.steps)
            self.bar.stop()
        reason = getattr(trainer, "stop_reason", None)
        if reason:
            print(reason, file=self.stream, flush=True)

    def _estimate(self, trainer: Any, per_step: float) -> None:
        """One line with the time an epoch and the rest of the run will take (training
        steps; validation adds a little), and, for images on a CPU that will take long,
        the faster choices."""
        self.estimated = True
        steps = getattr(trainer, "steps_per_epoch", 0)
        epoch, left = per_step * steps, self.total - trainer.epoch + 1
        if epoch * left < ESTIMATE_MIN_S:
            return
        line = (f"estimated: about {duration(epoch)} an epoch, {duration(epoch * left)} for "
                f"{left} more epoch{'s' if left != 1 else ''} (early stopping may end it "
                "sooner)")
        device = getattr(getattr(trainer, "device", None), "type", None)
        if device == "cpu" and epoch * left > LONG_CPU_S:
            if getattr(trainer, "task", None) == "detection":
                line += ("; on a CPU that is long for a detector: a smaller data.image_size, "
                         "fewer --epochs or images, or a GPU would be faster (docs/"
                         "detection.md, 'Results on synthetic smears', has CPU settings)")
            elif getattr(trainer, "inputs", None) is not None:
                line += ("; on a CPU that is long for images: --model lenet, fewer --epochs, "
                         "a smaller data.image_size or a GPU would be faster")
        self._say(line)

    def _say(self, line: str) -> None:
        self.last_line = time.perf_counter()
        if self.bar is not None:
            self.bar.console.print(line)
        else:
            print(line, file=self.stream, flush=True)
