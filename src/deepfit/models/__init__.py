"""Network architectures and the registry that names them."""

from deepfit.models.mlp import MLP
from deepfit.models.registry import build_model, count_parameters, model_names, register_model

__all__ = ["MLP", "build_model", "count_parameters", "model_names", "register_model"]
