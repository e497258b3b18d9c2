"""The user's own ``nn.Module``: by ``package.module:ClassName`` path, or as an object."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import sys
from pathlib import Path

from torch import nn

from deepfit.config import ModelConfig
from deepfit.errors import ModelError


def import_attr(path: str) -> object:
    """Import ``package.module:attr`` (or ``file.py:attr``) and return the attribute."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ModelError(f"model '{path}' must look like 'package.module:ClassName'")
    try:
        if module_name.endswith(".py"):
            file = Path(module_name)
            if not file.is_file():
                raise ModelError(f"model file '{file}' does not exist")
            spec = importlib.util.spec_from_file_location(file.stem, file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[file.stem] = module
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))  # let 'mynet:Net' find ./mynet.py
            module = importlib.import_module(module_name)
    except ModelError:
        raise
    except ImportError as exc:
        raise ModelError(f"cannot import module '{module_name}' for model '{path}': {exc}") from None
    except Exception as exc:  # the user's module failed while importing
        raise ModelError(f"importing '{module_name}' for model '{path}' failed: "
                         f"{type(exc).__name__}: {exc}") from None
    if not hasattr(module, attr):
        raise ModelError(f"module '{module_name}' has no attribute '{attr}'")
    return getattr(module, attr)


def build_custom(cfg: ModelConfig, input_shape: tuple[int, ...], out_features: int) -> nn.Module:
    """Instantiate a user class with ``model.kwargs``. The data's sizes are passed too when its
    constructor takes them by these names (and they are not given explicitly):
    ``in_features`` (columns, or C*H*W for images), ``in_channels`` and ``input_shape``
    (images), ``out_features`` and ``num_classes`` (outputs)."""
    in_features = math.prod(input_shape)
    factory = import_attr(cfg.name)
    if not callable(factory):
        raise ModelError(f"model '{cfg.name}' is not a class or function")
    kwargs = dict(cfg.kwargs)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    sizes = {"in_features": in_features, "out_features": out_features,
             "num_classes": out_features, "input_shape": tuple(input_shape)}
    if len(input_shape) == 3:
        sizes["in_channels"] = input_shape[0]
    for name, value in sizes.items():
        if name in params and name not in kwargs:
            kwargs[name] = value
    try:
        model = factory(**kwargs)
    except TypeError as exc:
        raise ModelError(f"model '{cfg.name}' could not be built with kwargs {kwargs}: {exc}; "
                         "set them with model.kwargs.NAME=VALUE") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"model '{cfg.name}' returned {type(model).__name__}, not a torch nn.Module")
    return model
