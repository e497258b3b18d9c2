"""Exported weights: the model's tensors in the safetensors format.

A safetensors file holds only named tensors and a few strings of metadata: loading it can
never run code (unlike a pickle), and other tools (Hugging Face, ONNX converters, Rust or
C++ runtimes) read it directly. Every run writes its best weights as ``model.safetensors``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes
from torch import nn

from deepfit.errors import RunError
from deepfit.train.checkpoint import atomic_write_bytes


def save_weights(model: nn.Module | dict[str, torch.Tensor], path: Path,
                 metadata: Optional[dict[str, str]] = None) -> Path:
    """Write the weights (a module or a state dict) atomically as safetensors."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    # safetensors refuses tensors that share memory (tied weights) or are not contiguous:
    # each tensor gets its own contiguous CPU copy.
    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in state.items()}
    data = save_bytes(tensors, metadata={k: str(v) for k, v in (metadata or {}).items()})
    atomic_write_bytes(Path(path), lambda fh: fh.write(data))
    return Path(path)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in a safetensors file; a damaged file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"weights file '{path}' does not exist")
    try:
        return load_bytes(path.read_bytes())
    except (SafetensorError, ValueError, OSError) as exc:
        raise RunError(f"'{path}' is not a readable safetensors file ({exc}); export the "
                       "weights again") from None
