"""Running a model forward for prediction: eval mode, no gradients, in chunks."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Optional

import torch
from torch import nn

from deepfit.data.batches import eval_batches

# Turns a stored batch (e.g. uint8 images) into model input; None: the batch is the input.
InputFn = Optional[Callable[..., torch.Tensor]]


def autocast(device: torch.device, precision: str,
             cache: bool = True) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass; 'fp32' (and 'auto' left unresolved) is a no-op.
    ``cache=False``: no cache of low-precision weight copies (CUDA graph capture needs that)."""
    if precision not in ("bf16", "fp16"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache)


@torch.no_grad()
def predict_outputs(model: nn.Module, X: Any, batch_size: int = 4096,
                    precision: str = "fp32", inputs: InputFn = None,
                    forward: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
                    ) -> torch.Tensor:
    """Raw outputs (float32) for every row of ``X`` (a tensor or streamed image files), on
    the model's device. ``inputs`` prepares each batch; ``forward`` replaces ``model(x)``
    (e.g. its compiled version)."""
    device = next(model.parameters(), torch.empty(0)).device
    model.eval()
    forward = forward if forward is not None else model
    outs = []
    for xb in eval_batches(X, batch_size, device):
        if inputs is not None:
            xb = inputs(xb, train=False)
        with autocast(device, precision):
            outs.append(forward(xb).float())
    return torch.cat(outs) if outs else torch.empty(0, device=device)
