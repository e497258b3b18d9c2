"""Data-parallel training over several processes: torch.distributed's
DistributedDataParallel, launched by torchrun (``torchrun --nproc-per-node N -m deepfit
train ...``, or ``deepfit train ... --devices N``, which runs torchrun).

Every process holds the whole data set and the same model; each epoch all draw the same
permutation (one seed), cut it into the same global batches, and each takes its share of
every batch (``tensor_split``: the first processes take one row more when a batch does not
divide evenly). DDP sums the gradients over the processes during the backward pass and
divides by their number; each process's mean loss is first weighted by its share of the
batch (``step_weight``), so the step is the gradient of the whole batch's mean, as on one
device: ``train.batch_size`` is the global batch size, and the learning rate is not
rescaled. Validation runs on the whole validation set in every process (each decides the
same early stop); after training the main process (rank 0) evaluates on the test set and
writes every file.

Backends: NCCL on CUDA GPUs (one per process, ``LOCAL_RANK``), gloo on CPU.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from deepfit.errors import ConfigError
from deepfit.train.loop_parts import batch_slices
from deepfit.train.strategy import PreparedModel, SingleDevice


def launched_by_torchrun() -> bool:
    """True in a process torchrun started (even alone: ``torchrun --nproc-per-node 1``
    trains through DDP, which checks that path on a machine with one GPU)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def make_strategy(device: torch.device) -> SingleDevice:
    """``DataParallel`` in a process of a torchrun group, else ``SingleDevice``."""
    return DataParallel.from_env(device) if launched_by_torchrun() else SingleDevice(device)


class DataParallel(SingleDevice):
    """One of ``world_size`` processes training one model together."""

    def __init__(self, device: torch.device, rank: int, world_size: int) -> None:
        super().__init__(device)
        self.rank, self.world_size = rank, world_size
        self._weights: list[float] = []
        self._global: list[slice] = []

    @classmethod
    def from_env(cls, device: torch.device) -> DataParallel:
        """Join the group torchrun set up (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
        ``MASTER_ADDR``, ``MASTER_PORT``): NCCL with one GPU per process, else gloo."""
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        if device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            if local >= torch.cuda.device_count():
                visible = torch.cuda.device_count()
                raise ConfigError(f"process {rank} needs GPU {local}, but {visible} are "
                                  "visible; start at most that many processes per node")
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        elif device.type != "cpu":
            raise ConfigError(f"training on several processes runs on CUDA GPUs or CPUs, "
                              f"not {device.type}; use train.device=cpu or cuda")
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                    timeout=datetime.timedelta(minutes=30))
        return cls(device, rank, world)

    def describe(self) -> str:
        return f"{self.world_size} processes ({self.device.type}, DDP)"

    def check(self, cfg: Any) -> None:
        for key, refused in (("train.compile", cfg.compile), ("train.cuda_graphs",
                                                              cfg.cuda_graphs),
                             ("train.checkpoint_every", cfg.checkpoint_every),
                             ("train.on_oom=halve", cfg.on_oom == "halve"),
                             ("train.sync_bn on CPUs (PyTorch's SyncBatchNorm runs on GPUs)",
                              cfg.sync_bn and self.device.type != "cuda")):
            if refused:
                raise ConfigError(f"{key} is not supported on several processes yet; remove "
                                  "it, or train on one device")
        if cfg.batch_size < self.world_size:
            raise ConfigError(f"train.batch_size={cfg.batch_size} is the batch of all "
                              f"{self.world_size} processes together; it must be at least "
                              f"{self.world_size} (one row each)")

    def prepare(self, model: nn.Module, cfg: Any, images: bool) -> PreparedModel:
        self.check(cfg)
        if cfg.sync_bn:  # the same parameters, in layers that share their batch statistics
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(self.device)
        if cfg.channels_last and images:
            model = model.to(memory_format=torch.channels_last)
        ids = [self.device.index] if self.device.type == "cuda" else None
        wrapped = DistributedDataParallel(model, device_ids=ids)
        return PreparedModel(model, wrapped, None, None)

    # -- the epoch ----------------------------------------------------------------------
    def batch_slices(self, n: int, batch_size: int) -> list[slice]:
        self._global = [c for c in batch_slices(n, batch_size)
                        if c.stop - c.start >= self.world_size]  # a row for each process
        local, start, self._weights = [], 0, []
        for cut in self._global:
            size = cut.stop - cut.start
            mine = size // self.world_size + (self.rank < size % self.world_size)
            local.append(slice(start, start + mine))
            self._weights.append(mine * self.world_size / size)
            start += mine
        return local

    def epoch_order(self, n: int, generator: torch.Generator) -> torch.Tensor:
        order = torch.randperm(n, generator=generator)  # the same in every process
        shares = [order[cut].tensor_split(self.world_size)[self.rank] for cut in self._global]
        return torch.cat(shares).to(self.device)

    def step_weight(self, step: int) -> float:
        return self._weights[step]

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def agree(self, flag: bool) -> bool:
        value = torch.tensor([1 if flag else 0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    # -- around training ----------------------------------------------------------------
    def share(self, value: Any) -> Any:
        box: list[Optional[Any]] = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()
