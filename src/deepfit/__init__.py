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
from deepfit.cv import cross_validate
from deepfit.pipeline import resume, train
from deepfit.result import Run, load
from deepfit.sklearn import NeuralClassifier, NeuralRegressor
from deepfit.tune import tune
from deepfit.train.callbacks import Callback, describe_loop

from deepfit.version import __version__  # noqa: E402

__all__ = [
    "Callback", "ConfigError", "cross_validate", "DataConfig", "DataError", "DeepfitError", "EvalConfig", "MLP",
    "ModelConfig", "ModelError", "NeuralClassifier", "NeuralRegressor", "Run", "RunConfig",
    "RunError", "TrainConfig", "describe_loop",
    "__version__", "load", "register_model", "resume", "train", "tune",
]
