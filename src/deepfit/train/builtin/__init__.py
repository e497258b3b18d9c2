"""The callbacks every run uses: schedule, NaN guard, best model, early stopping,
checkpointing and progress."""

from deepfit.train.builtin.best_model import BestModel
from deepfit.train.builtin.checkpointing import LastCheckpoint
from deepfit.train.builtin.early_stopping import EarlyStopping
from deepfit.train.builtin.lr_schedule import LRSchedule
from deepfit.train.builtin.nan_guard import NanGuard
from deepfit.train.builtin.progress import Progress

__all__ = ["BestModel", "EarlyStopping", "LastCheckpoint", "LRSchedule", "NanGuard", "Progress"]
