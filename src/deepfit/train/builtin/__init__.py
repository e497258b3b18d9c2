"""The callbacks every run uses, declared in one place (``default_callbacks``): schedule,
NaN guard, best model, early stopping, training diagnostics, checkpointing and progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from deepfit.train.builtin.best_model import BestModel
from deepfit.train.builtin.checkpointing import LastCheckpoint
from deepfit.train.builtin.diagnostics import Diagnostics
from deepfit.train.builtin.early_stopping import EarlyStopping
from deepfit.train.builtin.fixed_epochs import FixedEpochs
from deepfit.train.builtin.lr_schedule import LRSchedule
from deepfit.train.builtin.nan_guard import NanGuard, checks_every_step
from deepfit.train.builtin.progress import Progress
from deepfit.train.callbacks import Callback
from deepfit.train.history import MAIN_METRIC


@dataclass
class RunFiles:
    """Where a run's checkpoints go: ``best.pt`` (the best epoch's weights) and ``last.pt``
    (the whole training state), with ``extra`` values saved in ``last.pt`` (the resolved
    config, library versions)."""

    best: Path
    last: Path
    extra: dict[str, Any] = field(default_factory=dict)


def default_callbacks(cfg: Any, task: str, device: torch.device, *,
                      files: Optional[RunFiles] = None, select_best: bool = True,
                      main: bool = True) -> tuple[list[Callback], list[Callback]]:
    """``(before, after)``: the built-in callbacks that go before and after the user's.

    Before: the learning-rate schedule, the NaN guard (checking every step where reading the
    loss is free, or one step late on an accelerator; ``train.on_nonfinite``), the best
    model (``train.monitor``; ``select_best=False`` when there is no validation split) and
    early stopping (``train.early_stopping``), the training diagnostics
    (``train.diagnostics``; the main process only). None of them reads another's state, so
    their order does not matter. After: the checkpoint, which must see the state every other
    callback left at the end of the epoch (the user's included), and the progress line.

    ``files``: checkpoints to write (None: the best weights are kept in memory only).
    ``main``: this process reports progress (one of several processes: only the main one).
    """
    before: list[Callback] = [LRSchedule(), NanGuard(every_step=checks_every_step(cfg, device),
                                                     skip=cfg.on_nonfinite == "skip",
                                                     lagged=cfg.precision != "fp16")]
    if select_best:
        before.append(BestModel(cfg.monitor, cfg.min_delta, files.best if files else None))
        if cfg.early_stopping:
            before.append(EarlyStopping(cfg.monitor, cfg.patience, cfg.min_delta))
    if cfg.diagnostics:  # train.diagnostics: per epoch, cheap; recorded by the main process
        before.append(Diagnostics(active=main))
    after: list[Callback] = []
    if files is not None:
        after.append(LastCheckpoint(files.last, cfg.checkpoint_every, extra=files.extra))
    if cfg.progress and main:
        after.append(Progress(MAIN_METRIC[task], cfg.epochs))
    return before, after


__all__ = ["BestModel", "Diagnostics", "EarlyStopping", "FixedEpochs", "LastCheckpoint", "LRSchedule", "NanGuard", "Progress",
           "RunFiles", "default_callbacks"]
