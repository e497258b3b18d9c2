"""Why an image model decided: attribution maps (Grad-CAM, integrated gradients, saliency)
computed with Captum, and the randomised-weights sanity check of Adebayo et al. (2018,
"Sanity Checks for Saliency Maps").

Captum does the attribution (hooks, the integral path, the gradients); this module chooses
what to attribute: the layer Grad-CAM reads (found automatically), the score explained (the
class logit, for any head deepfit trains), the baseline of integrated gradients (a black
image, as the network sees it) and how maps are compared.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from deepfit.errors import ModelError

METHODS = ("gradcam", "integrated_gradients", "saliency")
TITLES = {"gradcam": "Grad-CAM", "integrated_gradients": "Integrated gradients",
          "saliency": "Saliency"}
IG_STEPS = 24          # points on the integral path (Gauss-Legendre): enough for a map
SANE_BELOW = 0.5       # median rank correlation under which maps "change with the weights"
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass(frozen=True)
class Layer:
    """The layer Grad-CAM reads: its name in ``model.named_modules()`` and how it was
    chosen."""

    name: str
    module: nn.Module
    chosen: str  # "named" or "automatic"


def class_scores(model: nn.Module, task: str, outputs: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> scores`` whose column c is the score of class c before any softmax or sigmoid
    (the logit; the log-probability for a model returning probabilities), so that Captum's
    ``target=c`` explains class c. Binary: two columns, ``-z`` and ``z``; regression: the
    value (B,). An ensemble's (B, k, out) is averaged over its members."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = model(x).float()
        if out.ndim == 3:
            out = out.mean(dim=1)
        if task == "regression":
            return out.reshape(-1)
        if outputs == "probabilities":
            p = out.clamp(1e-7, 1 - 1e-7)
            out = torch.log(p / (1 - p)) if task in ("binary", "multilabel") else p.log()
        if task == "binary":
            z = out.reshape(-1, 1)
            return torch.cat([-z, z], dim=1)
        return out

    return forward


def find_layer(model: nn.Module, x: torch.Tensor, name: Optional[str] = None,
               key: str = "eval.explain_layer") -> Optional[Layer]:
    """The layer whose feature maps Grad-CAM weighs: ``name`` when given, else the last
    layer of the forward pass that outputs a spatial map (B, C, H, W with H·W > 1), run
    once, on ``x[:1]``; ``key``: how the user named it, for the error. A block that ends by pooling gives way to the layer before the
    pooling (a finer map), a ResNet stage is kept whole (its output follows the skip
    connection's sum). None when no layer outputs a spatial map (an MLP on pixels)."""
    modules = dict(model.named_modules())
    if name is not None:
        if name not in modules or not name:
            spatial = [n for n, _ in _finishing(model, x) if n]
            raise ModelError(f"{key} {name!r} is not a layer of the model; its layers "
                             f"with feature maps: {', '.join(spatial[-8:]) or 'none'}")
        return Layer(name, modules[name], "named")
    order = _finishing(model, x)
    if not order:
        return None
    i = len(order) - 1
    j = i  # the last-finishing leaf inside order[i] (children finish just before parents)
    while j > 0 and any(True for _ in order[j][1].children()):
        j -= 1
    if isinstance(order[j][1], _POOLS):
        finer = [k for k in range(j) if not isinstance(order[k][1], _POOLS)
                 and not any(True for _ in order[k][1].children())]
        if finer:
            i = finer[-1]
    return Layer(order[i][0], order[i][1], "automatic")


def _finishing(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """The sub-modules that output a spatial map, in the order they finish, each called once
    in the forward pass (a module used twice, such as a shared ReLU, cannot be hooked
    unambiguously)."""
    seen: list[tuple[str, nn.Module, bool]] = []
    calls: dict[str, int] = {}

    def hook(name: str) -> Callable:
        def record(module: nn.Module, _: Any, out: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            spatial = isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[2] * out.shape[3] > 1
            seen.append((name, module, spatial))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    return [(n, m) for n, m, spatial in seen if spatial and calls[n] == 1]


def attribution_maps(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     targets: Optional[Sequence[int]], method: str,
                     layer: Optional[Layer] = None, baseline: Optional[torch.Tensor] = None,
                     steps: int = IG_STEPS) -> np.ndarray:
    """Non-negative maps (B, H, W) of how much each pixel of ``x`` (network input, B, C, H, W)
    drove the explained score (``targets``: one class per image, None for regression).
    Grad-CAM: the layer's maps weighted by their mean gradient, ReLU, upsampled bilinearly;
    integrated gradients: |attribution| summed over channels, from ``baseline`` (zeros when
    None); saliency: the largest |gradient| over channels."""
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency

    target = None if targets is None else [int(t) for t in targets]
    x = x.detach().float().contiguous().requires_grad_(method != "gradcam")
    with torch.enable_grad():
        if method == "gradcam":
            if layer is None:
                raise ModelError("Grad-CAM needs a layer with feature maps; this model has none "
                                 "(use integrated_gradients or saliency)")
            cam = LayerGradCam(forward, layer.module).attribute(x, target=target,
                                                                relu_attributions=True)
            if cam.ndim != 4:
                raise ModelError(f"Grad-CAM: layer '{layer.name}' outputs shape "
                                 f"{tuple(cam.shape)}, not feature maps (B, C, H, W)")
            maps = LayerAttribution.interpolate(cam.float(), tuple(x.shape[2:]),
                                                interpolate_mode="bilinear")[:, 0]
            return maps.clamp_min(0).detach().cpu().numpy()
        if method == "integrated_gradients":
            base = torch.zeros_like(x) if baseline is None else baseline.expand_as(x)
            attr = IntegratedGradients(forward).attribute(x, baselines=base, target=target,
                                                          n_steps=steps,
                                                          internal_batch_size=max(steps, 8))
            return attr.abs().sum(dim=1).detach().cpu().numpy()
        if method == "saliency":
            grads = Saliency(forward).attribute(x, target=target, abs=True)
            return grads.max(dim=1).values.detach().cpu().numpy()
    raise ModelError(f"explain: unknown method {method!r}; use one of {', '.join(METHODS)}")


def randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every weight drawn afresh (each layer's own initialisation;
    a parameter of no such layer from N(0, 0.02²)), for the sanity check."""
    fresh = copy.deepcopy(model)
    # Every generator manual_seed touches (the CPU's and each GPU's) is put back afterwards:
    # the check leaves the process's random streams as it found them.
    gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=gpus):
        torch.manual_seed(seed)
        reset: set[int] = set()
        for module in fresh.modules():
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
                reset.update(id(p) for p in module.parameters(recurse=False))
        with torch.no_grad():
            for p in fresh.parameters():
                if id(p) not in reset:
                    p.normal_(0.0, 0.02)
    return fresh.eval()


def rank_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation between each pair of maps (B, H, W); NaN where a map is
    constant (its ranking is undefined)."""
    from scipy.stats import rankdata

    out = np.full(len(a), np.nan)
    for i, (u, v) in enumerate(zip(a.reshape(len(a), -1), b.reshape(len(b), -1))):
        if np.ptp(u) > 0 and np.ptp(v) > 0:
            out[i] = np.corrcoef(rankdata(u), rankdata(v))[0, 1]
    return out


def sanity_check(maps_of: Callable[[nn.Module], np.ndarray], model: nn.Module,
                 seed: int = 0) -> dict[str, Any]:
    """The randomised-weights test: ``maps_of(model)`` against ``maps_of(randomised(model))``
    on the same images. An explanation of what the network learned must change when what it
    learned is destroyed; a map that stays the same shows the image (edges, bright areas),
    not the model. ``{"rank_correlation": median over images (None if undefined),
    "per_image": [...], "changes": bool or None}``."""
    rho = rank_correlations(maps_of(model), maps_of(randomised(model, seed)))
    defined = rho[~np.isnan(rho)]
    median = float(np.median(defined)) if len(defined) else None
    return {"rank_correlation": median,
            "per_image": [None if np.isnan(r) else float(r) for r in rho],
            "changes": None if median is None else bool(median < SANE_BELOW)}
