"""The network's training forward and backward as CUDA graphs (``train.cuda_graphs``).

Why: a small image network on a large GPU is bound by the CPU, not by the GPU. Eager PyTorch
launches every kernel of a step one by one from Python (each convolution, batch norm,
activation, pooling and bf16 cast, forward and backward); on an H200 a step of the
288k-parameter CNN took ~5 ms while its arithmetic needs well under one. A CUDA graph records
those launches once and replays them with one.

How: PyTorch's partial-network capture, ``torch.cuda.make_graphed_callables``, turns the
network into an autograd function whose forward and backward are two graphs. Everything
else in the step stays eager and unchanged: the uint8-to-float input path and augmentation
(their own random generator), the loss, gradient clipping, the non-finite check, fp16 loss
scaling and the optimiser step with its learning-rate schedule. Only batches shaped like the
captured one replay the graph; the last, smaller batch of an epoch, micro-batches after an
out-of-memory halving, and evaluation run the plain network, which shares the parameters.

A graph replays exactly what was captured: Python-side decisions inside ``forward`` are
frozen at capture. Hence the refusals in ``graph_refusal``, and every capture failure falls
back to the eager step with a reason for the report instead of stopping the run.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from deepfit.models.inference import autocast


def graph_refusal(enabled: bool, device: torch.device, model: nn.Module, compiled: bool
                  ) -> Optional[str]:
    """``None`` when the training step may be captured, else why not (one line)."""
    if not enabled:
        return "train.cuda_graphs is off"
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, not {device.type}"
    if compiled:
        return "train.compile is on (use torch.compile's own mode='reduce-overhead' instead)"
    hooked = [name or type(m).__name__ for name, m in model.named_modules()
              if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
              or getattr(m, "_backward_pre_hooks", None)]
    if hooked:
        return (f"module '{hooked[0]}' has hooks, which a graph would run only once at "
                "capture")
    if any(b.requires_grad for b in model.buffers()):
        return "a buffer of the model requires gradients"
    if not any(p.requires_grad for p in model.parameters()):
        return "the model has no trainable parameters"
    return None


class _Forward(nn.Module):
    """The network's forward under the run's autocast; the module that gets graphed, so the
    user's network keeps its own ``forward``."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str) -> None:
        super().__init__()
        self.model, self.device, self.precision = model, device, precision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.precision, cache=False):  # graphs need no weight cache
            return self.model(x)


class GraphedForward:
    """Replays the captured forward (and, through autograd, backward) for batches shaped
    like the first one it was given; returns ``None`` for any other batch (run eagerly).

    Captured lazily on the first full-size training batch. The capture's warm-up passes run
    the network in training mode, so the batch-norm running statistics and the CUDA random
    generator are restored afterwards: capturing leaves the model (and the dropout stream)
    exactly as it was. Failure to capture (an
    operation that synchronises with the host, data-dependent shapes, out of memory) turns
    graphs off for the run and records ``reason``.
    """

    WARMUP = 3  # eager passes on a side stream before capture (PyTorch's recommendation)

    def __init__(self, model: nn.Module, device: torch.device, precision: str,
                 batch_size: int) -> None:
        self.model, self.device, self.precision = model, device, precision
        self.batch_size = batch_size
        self._graphed: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
        self._signature: Optional[tuple] = None
        self.reason: Optional[str] = None  # why graphs were turned off, when they were
        self.replays = 0

    @property
    def active(self) -> bool:
        return self.reason is None

    @staticmethod
    def _signature_of(x: torch.Tensor) -> tuple:
        return tuple(x.shape), x.stride(), x.dtype, x.device

    def __call__(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        if self.reason is not None or not self.model.training:
            return None
        if self._graphed is None:
            if len(x) != self.batch_size or not self._capture(x):
                return None
        if self._signature_of(x) != self._signature:
            return None
        # The graph writes its output into the same memory at every replay: the caller
        # gets a fresh tensor (the loss and the epoch's outputs keep theirs).
        out = self._graphed(x).clone()
        self.replays += 1
        return out

    def release(self, reason: str) -> None:
        """Stop replaying and free the graphs' private memory (e.g. after running out of GPU
        memory, so that the smaller eager micro-batches get it)."""
        if self.reason is None:
            self.reason = reason
        self._graphed = None  # the graphs and their memory pool go with the last reference
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _capture(self, x: torch.Tensor) -> bool:
        saved = {name: b.detach().clone() for name, b in self.model.named_buffers()}
        # Warm-up passes draw dropout masks: put the generator back afterwards, so that a run
        # resumed from a checkpoint (which captures again) draws what the original run drew.
        rng = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        wrapper = _Forward(self.model, self.device, self.precision)
        sample = x.detach().clone()
        try:
            # allow_unused_input: a layer the forward skips (or a frozen one) gets no gradient,
            # as in an eager step.
            self._graphed = torch.cuda.make_graphed_callables(
                wrapper, (sample,), num_warmup_iters=self.WARMUP, allow_unused_input=True)
            self._signature = self._signature_of(sample)
        except Exception as exc:  # any failure: the eager step still works
            self._graphed = None
            if isinstance(exc, torch.OutOfMemoryError):
                torch.cuda.empty_cache()
            text = str(exc).strip().splitlines()
            self.reason = (f"capture failed ({type(exc).__name__}: "
                           f"{text[0][:160] if text else 'no message'})")
        finally:
            with torch.no_grad():  # the warm-up passes moved the batch-norm statistics
                for name, b in self.model.named_buffers():
                    b.copy_(saved[name])
            if rng is not None:
                torch.cuda.set_rng_state(rng, self.device)
            self.model.zero_grad(set_to_none=True)
        return self._graphed is not None
