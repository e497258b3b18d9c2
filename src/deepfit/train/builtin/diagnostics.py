"""Training diagnostics, recorded once per epoch at low cost (``train.diagnostics``).

Per layer holding weights (a module with parameters of its own):

- ``grad_norm``: the L2 norm of its gradients after the epoch's last step (the ``.grad``
  the step left; no extra backward pass; unscaled under fp16);
- ``update_ratio``: how far the epoch moved its weights, ``||W_end - W_start|| /
  ||W_start||`` (weights copied once per epoch on the device).

Per layer on a fixed probe batch (up to ``PROBE_ROWS`` training rows taken from the first
steps of training, as the network saw them), run once per epoch in eval mode without
gradients, with forward hooks only for that pass:

- ``mean`` and ``std`` of its output;
- ``dead`` (ReLU-family): the fraction of units (features, or channels of a feature map)
  that are 0 for every probe row;
- ``saturated`` (sigmoid / tanh): the fraction of outputs within 0.01 of the ends of the
  range, where the slope is near 0.

All values of an epoch are read from the device in one transfer at the epoch's end, none per
step. A model whose hooks fail, or whose forward runs outside its hooks (compiled, CUDA
graphs), keeps its gradient and update values and has its activations recorded as
unavailable, with the reason. Only the main process records (several processes see the same
reduced gradients and weights).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from deepfit.train.callbacks import Callback

PROBE_ROWS = 256  # at most this many rows...
PROBE_BYTES = 16 * 2**20  # ...and at most this much memory (images: fewer rows)
RELU_LIKE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish)
SATURATING = {nn.Sigmoid: (0.0, 1.0), nn.Tanh: (-1.0, 1.0)}
SATURATION_MARGIN = 0.01  # an output this close to an end of the range is saturated
DEAD_BELOW = 1e-8  # ELU/GELU/... never reach 0 exactly: a unit whose output stays below this


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module, list[nn.Parameter]]]:
    """Modules holding trainable parameters of their own, in registration order."""
    out = []
    for name, module in model.named_modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if params:
            out.append((name or type(module).__name__, module, params))
    return out


def watched_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules whose outputs the probe pass describes: weight layers and activations."""
    return [(name or type(m).__name__, m) for name, m in model.named_modules()
            if list(m.parameters(recurse=False)) or isinstance(m, RELU_LIKE + tuple(SATURATING))]


class Diagnostics(Callback):
    """Records ``records``: one dict per epoch, ``{"epoch", "layers": [...],
    "activations": [...] or None, "unavailable": reason or None}``."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.probe: Optional[torch.Tensor] = None
        self.unavailable: Optional[str] = None
        self._parts: list[torch.Tensor] = []
        self._hook: Any = None
        self._start: Optional[list[torch.Tensor]] = None
        self._layers: list[tuple[str, nn.Module, list[nn.Parameter]]] = []

    # -- hooks of the loop ---------------------------------------------------------------
    def on_train_begin(self, trainer: Any, **kwargs: Any) -> None:
        self._layers = weight_layers(trainer.model)
        self._start = self._weights()
        if trainer.cfg.compile or trainer.graphed is not None:
            self.unavailable = ("the model's forward runs " + ("compiled (train.compile)"
                                if trainer.cfg.compile else "as CUDA graphs (train.cuda_graphs)")
                                + ", outside the hooks that would capture a probe batch")
        elif self.probe is None:
            self._hook = trainer.model.register_forward_pre_hook(self._capture)

    def _capture(self, module: nn.Module, args: Any) -> None:
        """Keep the first training rows the network sees, up to the probe's size."""
        try:
            if not module.training or not args or not isinstance(args[0], torch.Tensor):
                return
            x = args[0]
            per_row = max(1, x[0].numel() * x.element_size()) if len(x) else 1
            limit = min(PROBE_ROWS, max(1, PROBE_BYTES // per_row))
            have = sum(map(len, self._parts))
            self._parts.append(x[:limit - have].detach().clone())
            if have + len(self._parts[-1]) >= limit:
                self._finish_capture()
        except Exception as exc:  # never break a step
            self.unavailable = f"capturing a probe batch failed ({_first_line(exc)})"
            self._finish_capture()

    def _finish_capture(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self._parts and self.unavailable is None:
            self.probe = torch.cat(self._parts)
        self._parts = []

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        if self._hook is not None:  # fewer rows than the probe's size in the whole epoch
            self._finish_capture()
        values: list[torch.Tensor] = []
        for _, _, params in self._layers:
            grads = [p.grad.detach().float() for p in params if p.grad is not None]
            values.append(_norm(grads) if len(grads) == len(params) else _nan(trainer))
        end = self._weights()
        for before, after in zip(self._start or [], end):  # 0 / 0: undefined, None
            values.append(torch.linalg.vector_norm(after - before) /
                          torch.linalg.vector_norm(before))
        self._start = end
        scale = trainer.scaler.get_scale() if trainer.scaler.is_enabled() else 1.0
        activations, stats = self._probe(trainer.model)
        numbers = torch.stack(values + stats).cpu().tolist() if values or stats else []
        n = len(self._layers)
        layers = [{"layer": name, "type": type(m).__name__,
                   "grad_norm": _finite(numbers[i] / scale),
                   "update_ratio": _finite(numbers[n + i])}
                  for i, (name, m, _) in enumerate(self._layers)]
        for entry in activations or []:
            at = 2 * n + entry.pop("_index")
            for k, key in enumerate(entry.pop("_keys")):
                entry[key] = _finite(numbers[at + k])
        self.records.append({"epoch": epoch, "layers": layers, "activations": activations,
                             "probe_rows": 0 if self.probe is None else len(self.probe),
                             "unavailable": self.unavailable if activations is None else None})

    # -- pieces --------------------------------------------------------------------------
    def _weights(self) -> list[torch.Tensor]:
        with torch.no_grad():
            return [torch.cat([p.detach().float().reshape(-1) for p in params])
                    for _, _, params in self._layers]

    def _probe(self, model: nn.Module) -> tuple[Optional[list[dict]], list[torch.Tensor]]:
        """Per watched module: its output's statistics, as tensors still on the device."""
        if self.probe is None:
            if self.unavailable is None:
                self.unavailable = "no training rows reached the model"
            return None, []
        entries: list[dict[str, Any]] = []
        stats: list[torch.Tensor] = []
        calls: dict[str, int] = {}

        def hook(name: str) -> Any:
            def record(module: nn.Module, args: Any, output: Any) -> None:
                if not isinstance(output, torch.Tensor) or not output.is_floating_point():
                    return
                calls[name] = calls.get(name, 0) + 1
                out = output.detach().float()
                keys, values = ["mean", "std"], [out.mean(), out.std() if out.numel() > 1
                                                 else torch.zeros((), device=out.device)]
                if isinstance(module, RELU_LIKE) and out.dim() >= 2:
                    per_unit = out.transpose(0, 1).reshape(out.shape[1], -1).amax(dim=1)
                    keys.append("dead")
                    values.append((per_unit <= DEAD_BELOW).float().mean())
                for kind, (lo, hi) in SATURATING.items():
                    if isinstance(module, kind):
                        margin = SATURATION_MARGIN * (hi - lo)
                        keys.append("saturated")
                        values.append(((out <= lo + margin) | (out >= hi - margin)).float().mean())
                label = name if calls[name] == 1 else f"{name} (call {calls[name]})"
                entries.append({"layer": label, "type": type(module).__name__,
                                "_keys": keys, "_index": len(stats)})
                stats.extend(values)
            return record

        hooks = [m.register_forward_hook(hook(name)) for name, m in watched_modules(model)]
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(self.probe)
        except Exception as exc:  # never break a run: say why there are no activations
            self.unavailable = f"the probe pass failed ({_first_line(exc)})"
            return None, []
        finally:
            for h in hooks:
                h.remove()
            model.train(was_training)
        return entries, stats

    def state_dict(self) -> dict:
        return {"records": self.records}

    def load_state_dict(self, state: dict) -> None:
        self.records = list(state.get("records", []))


def weight_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's layers that transform (linear, convolution, ...), not normalisation
    layers, whose scale and shift gradients are not comparable with a weight matrix's."""
    return [r for r in record["layers"] if "Norm" not in r["type"]]


def activation_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The probe's rows for activation layers (those with a dead or saturated fraction)."""
    return [a for a in record.get("activations") or [] if "dead" in a or "saturated" in a]


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))


def _nan(trainer: Any) -> torch.Tensor:
    return torch.full((), float("nan"), device=trainer.device)


def _finite(value: float) -> Optional[float]:
    """None for a value that is not a number (undefined), else the value."""
    return value if value == value and abs(value) != float("inf") else None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
