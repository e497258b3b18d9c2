"""Batch-norm statistics that describe the network being evaluated.

A batch-norm layer normalises with the batch's own statistics in training and with running
averages at evaluation. The averages (momentum 0.1) need dozens of steps at nearly the same
weights to settle: a small training set (one step an epoch for 120 images at batch 128) is
evaluated with statistics of much earlier weights, and validation loss stays high while the
ranking is perfect (the classic small-data trap). The fix the field uses ("precise BN",
fvcore; ``torch.optim.swa_utils.update_bn`` for SWA) recomputes the statistics over training
data with the current weights, before each validation.

Written here rather than calling ``update_bn``: that puts the whole model in training mode
(dropout on, drawing from torch's random generator, which would change the rest of the run and
its exact resume) and feeds raw batches; here only the batch-norm layers run in training
mode, on the training rows prepared as evaluation prepares them (no augmentation).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from deepfit.data.batches import eval_batches
from deepfit.errors import ConfigError
from deepfit.models.inference import InputFn, autocast

# ``train.precise_bn`` unset: recompute when an epoch has fewer optimiser steps than this
# (the running averages, momentum 0.1, have then seen too few steps at the current weights).
FEW_STEPS = 30


def batch_norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def wants_precise_bn(setting: Optional[bool], model: nn.Module, steps_per_epoch: int) -> bool:
    """Whether to recompute before each validation (``train.precise_bn``: True, False, or
    None for automatic: when the model has batch-norm layers and an epoch is short)."""
    has_bn = bool(batch_norm_layers(model))
    if setting and not has_bn:
        raise ConfigError("train.precise_bn=true recomputes batch-norm statistics, and this "
                          "model has no batch-norm layer; remove the option")
    if setting is None:
        return has_bn and steps_per_epoch < FEW_STEPS
    return setting


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, X: Any, batch_size: int, inputs: InputFn = None,
                       precision: str = "fp32") -> None:
    """Replace every batch-norm layer's running mean and variance by their average over the
    batches of ``X`` (training rows) at the current weights; the model is left in eval mode."""
    layers = batch_norm_layers(model)
    if not layers:
        return
    device = next(model.parameters()).device
    model.eval()
    momenta = [bn.momentum for bn in layers]
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average: every batch counts the same
        bn.train()
    try:
        for i, xb in enumerate(eval_batches(X, batch_size, device)):
            if len(xb) < 2 and i:  # one row has no variance (a last batch of one is left out)
                continue
            if inputs is not None:
                xb = inputs(xb, train=False)
            with autocast(device, precision):
                model(xb)
    finally:
        for bn, momentum in zip(layers, momenta):
            bn.momentum = momentum
        model.eval()
