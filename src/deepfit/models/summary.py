"""A layer table: each leaf module with its output shape and parameter count."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def layer_table(model: nn.Module, input_shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """Run two zero rows through ``model`` and record each leaf module's output shape.

    Example:
        >>> from deepfit.models.mlp import MLP
        >>> [r["output"] for r in layer_table(MLP(3, 1, hidden=(4,)), (3,))]
        ['(B, 4)', '(B, 4)', '(B, 1)']
    """
    rows: list[dict[str, Any]] = []
    hooks = []

    def record(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else ()
            rows.append({"layer": name, "type": type(module).__name__,
                         "output": "(B, " + ", ".join(map(str, shape)) + ")",
                         "parameters": sum(p.numel() for p in module.parameters(recurse=False))})
        return hook

    for name, module in model.named_modules():
        if not list(module.children()):
            hooks.append(module.register_forward_hook(record(name or type(module).__name__)))
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((2, *input_shape), device=device))
    except Exception:  # a summary must never break a run; the report says so
        rows = []
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows
