"""deepfit: supervised deep learning on PyTorch, from data to a report you can trust.

Example:
    >>> import deepfit
    >>> run = deepfit.train(data="breast_cancer")          # doctest: +SKIP
    >>> run.metrics["test"]["accuracy"]                      # doctest: +SKIP
    0.96...
"""

from deepfit.config import DataConfig, EvalConfig, ModelConfig, RunConfig, TrainConfig
from deepfit.errors import ConfigError, DataError, DeepfitError, ModelError, RunError
from deepfit.models import MLP, register_model
from deepfit.pipeline import train
from deepfit.result import Run, load
from deepfit.train.callbacks import Callback, describe_loop

from deepfit.version import __version__  # noqa: E402

__all__ = [
    "Callback", "ConfigError", "DataConfig", "DataError", "DeepfitError", "EvalConfig", "MLP",
    "ModelConfig", "ModelError", "Run", "RunConfig", "RunError", "TrainConfig", "describe_loop",
    "__version__", "load", "register_model", "train",
]
