"""Training: the loop, its callbacks, optimisers and schedules, checkpoints, history."""

from deepfit.train.callbacks import Callback, describe_loop
from deepfit.train.history import History
from deepfit.train.trainer import Trainer

__all__ = ["Callback", "History", "Trainer", "describe_loop"]
