"""Model registry: a name maps to a factory ``(ModelConfig, input_shape, n_outputs)``.

``input_shape`` is ``(F,)`` for tables and ``(C, H, W)`` for images. Users add their own
architectures with ``register_model`` or name any class by its ``package.module:ClassName``
path; any torchvision classification architecture is available by its torchvision name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Sequence

from torch import nn

from deepfit.config import ModelConfig
from deepfit.errors import ModelError, did_you_mean
from deepfit.models.cnn import build_cnn, build_lenet
from deepfit.models.custom import build_custom
from deepfit.models.mlp import build_mlp
from deepfit.models.resnet import build_resnet9, build_resnet18
from deepfit.models.tabm import build_tabm, tabm_packages  # the packages: only when used

Factory = Callable[[ModelConfig, tuple, int], nn.Module]


def _mlp(cfg: ModelConfig, input_shape: tuple, n_outputs: int) -> nn.Module:
    return build_mlp(cfg, math.prod(input_shape), n_outputs)  # images are flattened


_REGISTRY: dict[str, Factory] = {"mlp": _mlp, "tabm": build_tabm, "cnn": build_cnn,
                                 "lenet": build_lenet, "resnet9": build_resnet9,
                                 "resnet18": build_resnet18}
IMAGE_MODELS = ("cnn", "lenet", "resnet9", "resnet18")
# Names torchvision shares with deepfit's own models (resnet18) reach torchvision's with this.
TORCHVISION_PREFIX = "tv:"


def register_model(name: str, factory: Factory) -> None:
    """Make ``model.name=<name>`` build ``factory(cfg, input_shape, n_outputs)``."""
    _REGISTRY[name] = factory


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def resolve_model_name(name: str, input_shape: Sequence[int]) -> str:
    """``auto``: an MLP for tables, the small CNN for images."""
    if name != "auto":
        return name
    return "cnn" if len(input_shape) == 3 else "mlp"


def build_model(cfg: ModelConfig, input_shape: int | Sequence[int],
                n_outputs: int) -> nn.Module:
    """Build the configured network for inputs of ``input_shape`` (an int: F features)."""
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    name = resolve_model_name(cfg.name, shape)
    if name in _REGISTRY:
        if name in IMAGE_MODELS and len(shape) != 3:
            raise ModelError(f"model '{name}' is for images, but the data are a table of "
                             f"{shape[0]} columns; use model.name=mlp")
        return _REGISTRY[name](cfg, shape, n_outputs)
    name = torchvision_name(name) or name  # tv:resnet18 is torchvision's, not deepfit's
    if ":" in name:
        return build_custom(cfg, shape, n_outputs)
    from deepfit.models.vision import TORCHVISION_MODELS, build_torchvision  # torchvision: only when used
    if name in TORCHVISION_MODELS or _torchvision_has(name):
        if len(shape) != 3:
            raise ModelError(f"model '{name}' is for images, but the data are a table")
        return build_torchvision(name, cfg, shape, n_outputs)
    raise _unknown(name)


def check_model_name(name: str) -> None:
    """Raise the one-line ``ModelError`` for a model name that builds nothing (cheap for
    deepfit's names and user classes; torchvision is imported for other names only)."""
    if name == "tabm":
        tabm_packages()  # not installed: its one line before any data are loaded
    if name == "auto" or name in _REGISTRY or (":" in name and not name.startswith(
            TORCHVISION_PREFIX)):
        return
    tv = torchvision_name(name) or name
    from deepfit.models.vision import TORCHVISION_MODELS
    if tv not in TORCHVISION_MODELS and not _torchvision_has(tv):
        raise _unknown(tv, torchvision_only=name.startswith(TORCHVISION_PREFIX))


def _unknown(name: str, torchvision_only: bool = False) -> ModelError:
    """``torchvision_only``: the name said tv:, so the suggestion is a torchvision one."""
    tv = [f"{TORCHVISION_PREFIX}{n}" for n in _torchvision_names()]
    known = tv if torchvision_only else list(_REGISTRY) + _torchvision_names()
    name = f"{TORCHVISION_PREFIX}{name}" if torchvision_only else name
    return ModelError(f"unknown model '{name}'{did_you_mean(name, known)}; deepfit's models are "
                     f"auto, {', '.join(model_names())}; also a torchvision model by name "
                     "(tv:NAME), or your own as 'package.module:ClassName'; 'deepfit models' "
                     "lists them all")


def torchvision_name(name: str) -> str | None:
    """The torchvision architecture ``model.name`` builds, or None for deepfit's own models,
    ``auto`` and user classes (``tv:resnet18`` -> ``resnet18``; ``resnet18`` is deepfit's)."""
    if name.startswith(TORCHVISION_PREFIX):
        return name[len(TORCHVISION_PREFIX):]
    if name == "auto" or ":" in name or name in _REGISTRY:
        return None
    return name


def _torchvision_has(name: str) -> bool:
    return name in _torchvision_names()


def _torchvision_names() -> list[str]:
    """torchvision's classification architectures (torchvision imported only when asked)."""
    import torchvision.models
    return list(torchvision.models.list_models(module=torchvision.models))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
