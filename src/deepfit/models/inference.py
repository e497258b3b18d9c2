"""Running a model forward for prediction: eval mode, no gradients, in chunks."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass; 'fp32' is a no-op."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def predict_outputs(model: nn.Module, X: torch.Tensor, batch_size: int = 4096,
                    precision: str = "fp32") -> torch.Tensor:
    """Raw outputs (float32) for every row of ``X``, on the model's device."""
    device = next(model.parameters(), torch.empty(0)).device
    model.eval()
    outs = []
    for start in range(0, len(X), batch_size):
        with autocast(device, precision):
            outs.append(model(X[start:start + batch_size].to(device)).float())
    return torch.cat(outs) if outs else torch.empty(0, device=device)
