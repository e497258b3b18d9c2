"""Per-epoch records: the single source of truth for curves, reports and "best epoch".

Metric names are constants; asking for an unknown one is an error listing the valid names.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from deepfit.errors import ConfigError, RunError, did_you_mean, one_of
from deepfit.files import atomic_write

EPOCH, LR, TIME = "epoch", "lr", "time"
TRAIN_LOSS, VAL_LOSS = "train_loss", "val_loss"
# The metric tracked live during training, per task (the full set comes at evaluation).
# Multi-label "accuracy" is label-wise: the share of (row, label) cells predicted right.
MAIN_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "regression": "r2",
               "multilabel": "accuracy", "detection": "map50"}
_LOWER_IS_BETTER = ("loss", "mse", "rmse", "mae", "error")


def columns(task: str) -> list[str]:
    """History columns for a task, in CSV order."""
    main = MAIN_METRIC[task]
    if task == "detection":  # no val_loss: a detector gives its losses in training mode
        # only, where batch-norm statistics would move; no mAP of augmented training images
        return [EPOCH, TRAIN_LOSS, f"val_{main}", LR, TIME]
    return [EPOCH, TRAIN_LOSS, f"train_{main}", VAL_LOSS, f"val_{main}", LR, TIME]


def monitorable(task: str) -> list[str]:
    return [c for c in columns(task) if c.startswith("val_")]


def check_monitor(name: str, task: str) -> None:
    """Raise naming the valid choices when ``name`` is not a validation metric of ``task``."""
    valid = monitorable(task)
    if name not in valid:
        raise ConfigError(f"train.monitor={name!r} is not tracked for a {task} task"
                          f"{did_you_mean(name, valid)}; use one of {one_of(valid)}")


def mode_of(name: str) -> str:
    """'min' for losses and errors, 'max' for scores."""
    return "min" if any(name.endswith(s) for s in _LOWER_IS_BETTER) else "max"


def best_so_far(epochs: list, values: list, monitor: str,
                min_delta: float = 0.0) -> tuple[int, float]:
    """``(epoch, value)`` of the best epoch so far (``(0, ±inf)`` before any finite value),
    by the rule early stopping and the best model share: an epoch is better when it beats
    the best so far by more than ``min_delta``."""
    sign = 1.0 if mode_of(monitor) == "min" else -1.0
    best_epoch, best = 0, sign * math.inf
    for epoch, value in zip(epochs, values):
        if value is not None and math.isfinite(value) and sign * value < sign * best - min_delta:
            best_epoch, best = epoch, value
    return best_epoch, best


class History:
    """A list of epoch rows with fixed columns.

    Example:
        >>> h = History("binary"); h.add({"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8,
        ...     "val_loss": 0.6, "val_accuracy": 0.7, "lr": 0.001, "time": 0.1})
        >>> h.column("val_loss")
        [0.6]
    """

    def __init__(self, task: str, rows: list[dict[str, Any]] | None = None) -> None:
        self.task = task
        self.columns = columns(task)
        self.rows: list[dict[str, Any]] = []
        for row in rows or []:
            self.add(row)

    def add(self, row: dict[str, Any]) -> None:
        extra = set(row) - set(self.columns)
        if extra:
            raise KeyError(f"unknown history column(s) {sorted(extra)}; valid: {self.columns}")
        self.rows.append({c: row.get(c) for c in self.columns})

    def column(self, name: str) -> list[Any]:
        # A wrong name here is deepfit's own mistake (users' monitors are checked by
        # check_monitor first), so not a ConfigError that would blame the user's config.
        if name not in self.columns:
            raise ValueError(f"no history column {name!r}{did_you_mean(name, self.columns)}; "
                             f"the columns are {self.columns}")
        return [r[name] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def best(self, monitor: str) -> tuple[int, float]:
        """(epoch, value) of the best finite value of ``monitor``."""
        values = [(r[EPOCH], r[monitor]) for r in self.rows
                  if r[monitor] is not None and math.isfinite(r[monitor])]
        if not values:
            return 0, math.nan
        pick = min if mode_of(monitor) == "min" else max
        return pick(values, key=lambda ev: ev[1])

    def to_csv(self, path: Path) -> None:
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(self.rows)
        data = text.getvalue().encode("utf-8")
        atomic_write(path, lambda fh: fh.write(data))

    @classmethod
    def from_csv(cls, path: Path, task: str) -> History:
        if not Path(path).is_file():
            raise RunError(f"'{path}' is missing; the run did not finish an epoch")
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [{k: (int(v) if k == EPOCH else (float(v) if v not in ("", None) else None))
                     for k, v in row.items()} for row in csv.DictReader(fh)]
        return cls(task, rows)
