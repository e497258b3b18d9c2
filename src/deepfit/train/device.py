"""Device choice (once, at the start), precision, and seeding."""

from __future__ import annotations

import contextlib
import os
import random
from typing import Iterator, Optional

import numpy as np
import torch

from deepfit.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name} but no CUDA GPU is visible; use "
                              "train.device=auto or cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"train.device={name} but only {torch.cuda.device_count()} CUDA "
                              "device(s) exist")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None
                              and torch.backends.mps.is_available()):
        raise ConfigError("train.device=mps but Apple MPS is not available; use auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """PyTorch's deterministic algorithms while training (CUDA: also cuDNN without
    autotuning, and the cuBLAS workspace setting it needs); the previous settings come back
    afterwards. When not ``enabled``, cuDNN autotuning is on while training (it picks the
    fastest convolution kernels for the run's fixed input size). An operation that has no deterministic implementation then fails, and the
    trainer names it (``nondeterministic_op``)."""
    if not enabled:
        # Fixed-size inputs (images): let cuDNN time its kernels once and keep the fastest.
        before = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = before
        return
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[1:]


def nondeterministic_op(exc: BaseException) -> Optional[str]:
    """The message of PyTorch's refusal of a nondeterministic operation, or None."""
    text = str(exc)
    return text.splitlines()[0] if "does not have a deterministic implementation" in text else None
