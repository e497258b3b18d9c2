"""Resizing inside the exported graph, as deepfit resizes an array of images
(``deepfit.data.images.decode.arrays_to_tensor``): stretch to the run's size, or letterbox
into it (``data.resize=pad``), with torch's antialiased bilinear, rounded to uint8 values.

The letterbox's size depends on the input's height and width, so it is computed in the
graph, in float64 tensors with the same operations as ``decode.letterbox`` (so the same
IEEE results: scale = min(H/h, W/w), the picture's sides rounded half to even, at least 1
and at most the run's; the extra odd pixel below / right), then read back as two integers.
torch.export sees them as data-dependent sizes (bounded by ``torch._check``), which the ONNX
exporter turns into a ``Resize`` and a ``Pad`` whose sizes come from the input's ``Shape``.
The TorchScript tracer would freeze them (a Python number made from a tensor), so a traced
model calls the same function compiled with ``torch.jit.script``, which keeps the arithmetic.
"""

from __future__ import annotations

import functools
from typing import Any, List

import torch
from torch.nn import functional as F

STRETCH, PAD = "stretch", "pad"  # data.resize's values


def resized(pixels: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """float pixels (N, C, h, w) of any h, w -> (N, C, *size): stretched or letterboxed
    (``mode``), rounded and clamped to 0-255; at ``size`` itself the identity."""
    if mode == PAD:
        if torch.jit.is_tracing():
            return _scripted_letterbox()(pixels, size[0], size[1])
        return letterbox(pixels, size[0], size[1])
    return _bilinear(pixels, size[0], size[1])


def _bilinear(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    out = F.interpolate(pixels, size=[height, width], mode="bilinear", align_corners=False,
                        antialias=True)
    return out.round().clamp(0.0, 255.0)


def letterbox(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """float pixels (N, C, h, w) scaled to fit ``height`` × ``width`` with their aspect ratio
    kept, centred on black (0): ``decode.letterbox``'s box, ``arrays_to_tensor``'s pixels.
    Written for torch.export and ``torch.jit.script`` alike (no Python floats from shapes)."""
    source, target = _pair(pixels.shape[2], pixels.shape[3]), _pair(height, width)
    scale = torch.min(target / source)
    fit = torch.minimum(torch.clamp(torch.round(source * scale), min=1.0), target)
    sides: List[int] = fit.to(torch.int64).tolist()  # a typed list: TorchScript keeps ints
    h, w = sides[0], sides[1]
    if not torch.jit.is_scripting():  # torch.export: the bounds of the data-dependent sizes
        torch._check(h >= 1)
        torch._check(h <= height)
        torch._check(w >= 1)
        torch._check(w <= width)
    top, left = (height - h) // 2, (width - w) // 2
    return F.pad(_bilinear(pixels, h, w), [left, width - w - left, top, height - h - top])


def _pair(first: int, second: int) -> torch.Tensor:
    """float64 (2,) from two sizes, which may be the input's (symbolic in an export)."""
    return torch.stack([torch.scalar_tensor(first, dtype=torch.float64),
                        torch.scalar_tensor(second, dtype=torch.float64)])


@functools.cache
def _scripted_letterbox() -> Any:
    """``letterbox`` compiled by TorchScript (once, when a traced export first needs it)."""
    return torch.jit.script(letterbox)
