"""Where and how a model trains: the seam between the training loop and the hardware.

A strategy owns what changes when training moves from one device to many: putting the data
and the model on the device (and compiling or graph-capturing it), the order of the batch
indices each process takes in an epoch, combining the gradients of the processes after the
backward pass, and which process writes files. The loop in ``deepfit.train.trainer`` asks
the strategy for these and does the same arithmetic whatever runs it.

``SingleDevice`` is one process on one device (CPU, one CUDA GPU or Apple MPS): every call
is what the loop did before there was a seam, so its speed is the same
(``benchmarks/engine_overhead.py``). A data-parallel strategy (torch.distributed) implements
the same methods with a rank and a world size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from deepfit.data.batches import Inputs, on_device
from deepfit.train.cuda_graph import GraphedForward, graph_refusal
from deepfit.train.loop_parts import batch_slices


@dataclass
class PreparedModel:
    """The model on its device, and how the training steps call it.

    Attributes:
        model: the module whose parameters train (checkpoints save this one).
        forward: what a training step calls: ``model``, or ``torch.compile(model)`` (which
            shares its parameters).
        graphed: full-size training batches replayed as CUDA graphs, or None.
        graph_refusal: why ``train.cuda_graphs`` is not used (None when it is, or was not
            asked for).
    """

    model: nn.Module
    forward: Callable[..., torch.Tensor]
    graphed: Optional[GraphedForward]
    graph_refusal: Optional[str]


class SingleDevice:
    """One process training on one device."""

    rank = 0
    world_size = 1

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    @property
    def is_main(self) -> bool:
        """True in the process that writes checkpoints, history and reports."""
        return self.rank == 0

    def describe(self) -> str:
        return str(self.device)

    def check(self, cfg: Any) -> None:
        """Refuse, in one line, training settings this strategy cannot honour."""

    # -- placement ----------------------------------------------------------------------
    def place(self, X: Inputs) -> Inputs:
        """Data on the device once (a tensor), or left on disk (streamed ``ImageFiles``)."""
        return on_device(X, self.device)

    def prepare(self, model: nn.Module, cfg: Any, images: bool) -> PreparedModel:
        """The model on the device, in channels-last layout for images when asked, compiled
        (``train.compile``) or graph-captured (``train.cuda_graphs``)."""
        model = model.to(self.device)
        if cfg.channels_last and images:
            model = model.to(memory_format=torch.channels_last)
        forward = torch.compile(model) if cfg.compile else model
        refusal = graph_refusal(cfg.cuda_graphs, self.device, model, cfg.compile)
        graphed = (GraphedForward(model, self.device, cfg.precision, cfg.batch_size)
                   if refusal is None else None)
        return PreparedModel(model, forward, graphed, refusal)

    # -- the epoch ----------------------------------------------------------------------
    def batch_slices(self, n: int, batch_size: int) -> list[slice]:
        """This process's mini-batches of an epoch of ``n`` rows, as slices of its
        ``epoch_order``."""
        return batch_slices(n, batch_size)

    def epoch_order(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """This process's row order for one epoch: a permutation of ``n`` rows drawn from
        ``generator`` (on the CPU, so every device draws the same order for one seed)."""
        return torch.randperm(n, generator=generator).to(self.device)

    def step_weight(self, step: int) -> float:
        """What this process's mean loss of ``step`` is multiplied by before the backward
        pass, so that the combined gradient is the gradient of the whole batch's mean."""
        return 1.0

    def reduce_gradients(self, model: nn.Module) -> None:
        """Combine the processes' gradients after the backward pass (one process: as is)."""

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the processes (one process: as is)."""
        return values

    def agree(self, flag: bool) -> bool:
        """True when any process says True (one process: its own flag); every process
        must call it at the same point."""
        return flag

    # -- around training ----------------------------------------------------------------
    def share(self, value: Any) -> Any:
        """The main process's ``value``, in every process (one process: as is)."""
        return value

    def barrier(self) -> None:
        """Wait until every process gets here (one process: nothing to wait for)."""

    def close(self) -> None:
        """Leave the process group, if any."""
