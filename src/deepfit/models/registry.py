"""Model registry: a name maps to a factory ``(ModelConfig, in_features, out_features)``.

Users add their own architectures with ``register_model`` or name any class by its
``package.module:ClassName`` path.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from deepfit.config import ModelConfig
from deepfit.errors import ModelError, did_you_mean
from deepfit.models.custom import build_custom
from deepfit.models.mlp import build_mlp

Factory = Callable[[ModelConfig, int, int], nn.Module]
_REGISTRY: dict[str, Factory] = {"mlp": build_mlp}


def register_model(name: str, factory: Factory) -> None:
    """Make ``model.name=<name>`` build ``factory(cfg, in_features, out_features)``."""
    _REGISTRY[name] = factory


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def build_model(cfg: ModelConfig, in_features: int, out_features: int) -> nn.Module:
    """Build the configured network for ``in_features`` inputs and ``out_features`` outputs."""
    if ":" in cfg.name:
        return build_custom(cfg, in_features, out_features)
    if cfg.name not in _REGISTRY:
        raise ModelError(f"unknown model '{cfg.name}'{did_you_mean(cfg.name, _REGISTRY)}; use one "
                         f"of {', '.join(model_names())} or 'package.module:ClassName'")
    return _REGISTRY[cfg.name](cfg, in_features, out_features)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
