"""Optimisers with parameter groups, and learning-rate schedules with warm-up."""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import nn

from deepfit.config import TrainConfig
from deepfit.errors import RunError


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices / kernels only: biases and normalisation parameters
    (every tensor with fewer than two dimensions) are not decayed. Without decay there is one
    group: each extra group costs the optimiser a pass per step."""
    if weight_decay == 0:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": 0.0}]
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _fusable(model: nn.Module) -> bool:
    """Fused SGD / Adam kernels update every parameter in one call (measured ~2x faster steps
    for small models on CPU); they need floating-point parameters on CPU or CUDA."""
    params = list(model.parameters())
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda")
                                for p in params)


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    groups = parameter_groups(model, cfg.weight_decay)
    fused = {"fused": True} if _fusable(model) else {}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0, **fused)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, **fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, **fused)
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(groups, lr=cfg.lr)
    return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum)


class Schedule:
    """One object for every schedule: linear warm-up over the first ``warmup_epochs`` (per
    step), then constant, step, cosine or reduce-on-plateau (per epoch), or one-cycle (per
    step, with its own warm-up phase)."""

    def __init__(self, cfg: TrainConfig, optimizer: torch.optim.Optimizer,
                 steps_per_epoch: int) -> None:
        self.cfg, self.optimizer = cfg, optimizer
        # Every group starts at train.lr (``build_optimizer``); read from the config, not
        # the groups, which hold a resumed run's current rates when the schedule is rebuilt.
        self.base_lrs = [cfg.lr for _ in optimizer.param_groups]
        self.warmup_steps = cfg.warmup_epochs * steps_per_epoch if cfg.schedule != "onecycle" else 0
        self.step_count, self.steps_per_epoch = 0, max(1, steps_per_epoch)
        # The rate of each epoch of a validated run, replayed where reduce-on-plateau would
        # need a validation loss (``deepfit.train.builtin.fixed_epochs``); None: decide.
        self.replay: Optional[list[float]] = None
        main_epochs = max(1, cfg.epochs - cfg.warmup_epochs)
        self.inner: Optional[Any] = None
        if cfg.schedule == "step":
            self.inner = torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
        elif cfg.schedule == "cosine":
            self.inner = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, main_epochs)
        elif cfg.schedule == "plateau":
            self.inner = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=cfg.gamma, patience=cfg.plateau_patience)
        elif cfg.schedule == "onecycle":
            pct = cfg.warmup_epochs / cfg.epochs if cfg.warmup_epochs else 0.3
            self.inner = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=self.base_lrs, epochs=cfg.epochs,
                steps_per_epoch=steps_per_epoch, pct_start=min(max(pct, 0.01), 0.99))
        if self.warmup_steps:
            self._set_scale(1.0 / (self.warmup_steps + 1))

    def _set_scale(self, scale: float) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * scale

    def before_step(self) -> None:
        """Called before each optimiser step: warm-up ramps the rate linearly to its base."""
        if self.step_count < self.warmup_steps:
            self._set_scale((self.step_count + 1) / (self.warmup_steps + 1) if
                            self.step_count + 1 < self.warmup_steps else 1.0)

    def after_step(self) -> None:
        self.step_count += 1
        if self.cfg.schedule == "onecycle" and self.step_count < self.inner.total_steps:
            self.inner.step()

    def after_epoch(self, val_loss: Optional[float]) -> None:
        if self.step_count < self.warmup_steps or self.cfg.schedule in ("constant", "onecycle"):
            return
        if self.cfg.schedule == "plateau" and self.replay is not None:
            done = self.step_count // self.steps_per_epoch  # the next epoch's rate: replay[done]
            if done < len(self.replay):
                self._set_scale(self.replay[done] / self.cfg.lr)
        elif self.cfg.schedule == "plateau":
            if val_loss is None:
                raise RunError("train.schedule=plateau lowers the rate when the validation "
                               "loss stops falling, and this fit has no validation rows; "
                               "choose another train.schedule")
            # A NaN loss must not count as an improvement or silently vanish.
            self.inner.step(val_loss if math.isfinite(val_loss) else float("inf"))
        else:
            self.inner.step()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count,
                "inner": self.inner.state_dict() if self.inner is not None else None,
                "groups": [{k: v for k, v in g.items() if k != "params"}
                           for g in self.optimizer.param_groups]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = state["step_count"]
        if self.inner is not None and state["inner"] is not None:
            self.inner.load_state_dict(state["inner"])
        # Building OneCycleLR resets every group's rate (and cycled momentum / beta1) to its
        # starting value; the next step must use the values the interrupted run had reached.
        for group, saved in zip(self.optimizer.param_groups, state.get("groups", [])):
            group.update(saved)
