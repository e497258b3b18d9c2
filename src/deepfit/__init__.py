"""deepfit: supervised deep learning on PyTorch, from data to a report you can trust.

Example:
    >>> import deepfit
    >>> run = deepfit.train(data="breast_cancer")          # doctest: +SKIP
    >>> run.metrics["test"]["accuracy"]                      # doctest: +SKIP
    0.96...
"""

import importlib
import sys
import types
from typing import Any

from deepfit.version import __version__

# What ``deepfit.X`` names, and the module that holds it. Imported on first use (PEP 562):
# ``import deepfit`` and ``deepfit --help`` do not pay for torch and scikit-learn.
_WHERE = {
    "DataConfig": "config", "EvalConfig": "config", "ModelConfig": "config",
    "RunConfig": "config", "TrainConfig": "config",
    "ConfigError": "errors", "DataError": "errors", "DeepfitError": "errors",
    "ModelError": "errors", "RunError": "errors",
    "MLP": "models", "register_model": "models",
    "cross_validate": "cv", "resume": "pipeline", "train": "pipeline",
    "Run": "result", "load": "result",
    "NeuralClassifier": "sklearn", "NeuralRegressor": "sklearn",
    "tune": "tune",
    "Callback": "train.callbacks", "describe_loop": "train.callbacks",
}


def _find(name: str) -> Any:
    return getattr(importlib.import_module(f"deepfit.{_WHERE[name]}"), name)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'deepfit' has no attribute {name!r}")
    value = _find(name)
    globals()[name] = value  # the next access is a plain attribute
    return value


class _Package(types.ModuleType):
    """``deepfit.train`` and ``deepfit.tune`` are functions that share their names with the
    subpackages ``deepfit/train/`` and ``deepfit/tune/``. Importing a subpackage sets the
    package's attribute to it; these properties keep the names meaning the functions (as an
    eager ``from deepfit.pipeline import train`` did) and keep the subpackage aside."""

    @property
    def train(self) -> Any:
        return _find("train")

    @train.setter
    def train(self, module: Any) -> None:
        self.__dict__["_train_package"] = module

    @property
    def tune(self) -> Any:
        return _find("tune")

    @tune.setter
    def tune(self, module: Any) -> None:
        self.__dict__["_tune_package"] = module


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [*_WHERE, "__version__"]
