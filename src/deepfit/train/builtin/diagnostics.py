"""Training diagnostics, recorded once per epoch at low cost (``train.diagnostics``).

Per layer holding weights (a module with parameters of its own):

- ``grad_norm``: the L2 norm of its gradients after the epoch's last step (the ``.grad``
  the step left; no extra backward pass; under fp16 the scaler's step has already unscaled
  it in place);
- ``update_ratio``: how far the epoch moved its weights, ``||W_end - W_start|| /
  ||W_start||`` (weights copied once per epoch on the device).

Per layer on a fixed probe batch (up to ``PROBE_ROWS`` training rows taken from the first
steps of training, as the network saw them), run in eval mode without gradients, with
forward hooks only for that pass, after every epoch of at least ``PROBE_STEPS`` steps, and
after every few epochs when they are shorter, so that it costs about as much as a training
step in ``PROBE_STEPS`` or less (the first epoch always; deterministic, so two identical runs
record the same; a record without the pass says ``"skipped": true``):

- ``mean`` and ``std`` of its output;
- ``dead`` (ReLU-family): the fraction of units (features, or channels of a feature map)
  that are 0 for every probe row;
- ``saturated`` (sigmoid / tanh): the fraction of outputs within 0.01 of the ends of the
  range, where the slope is near 0.

All values of an epoch are read from the device in one transfer at the epoch's end, none per
step. A model whose hooks fail, or whose forward runs outside its hooks (compiled, CUDA
graphs), keeps its gradient and update values and has its activations recorded as
unavailable, with the reason. Only the main process records (several processes see the same
reduced gradients and weights; the others hold the callback inactive, so that every
process resumes from the same checkpoint).
"""

from __future__ import annotations

import json
import math
from typing import Any, Optional

import torch
from torch import nn

from deepfit.train.callbacks import Callback

PROBE_ROWS = 128  # at most this many rows...
PROBE_BYTES = 16 * 2**20  # ...and at most this much memory (images: fewer rows)
RELU_LIKE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish)
SATURATING = {nn.Sigmoid: (0.0, 1.0), nn.Tanh: (-1.0, 1.0)}
SATURATION_MARGIN = 0.01  # an output this close to an end of the range is saturated
PROBE_STEPS = 50  # the probe pass runs once per this many training steps at most (see below)
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
    """The modules whose outputs the probe pass describes: the activation layers, each the
    output of a hidden layer; a model without activation modules (``F.relu`` in its forward):
    the layers holding parameters, and the last of them (the output layer) in any case."""
    named = [(name or type(m).__name__, m) for name, m in model.named_modules()]
    weights = [(n, m) for n, m in named if list(m.parameters(recurse=False))]
    acts = [(n, m) for n, m in named if isinstance(m, RELU_LIKE + tuple(SATURATING))]
    if not acts:
        return weights
    return acts + [w for w in weights[-1:] if w not in acts]


class Diagnostics(Callback):
    """Records ``records``: one dict per epoch, ``{"epoch", "layers": [...],
    "activations": [...] or None, "unavailable": reason or None}``."""

    def __init__(self, active: bool = True) -> None:
        self.active = active  # False: another process than the main one (it keeps the saved
        self.records: list[dict[str, Any]] = []  # records of a checkpoint, records nothing)
        self.probe: Optional[torch.Tensor] = None
        self.unavailable: Optional[str] = None
        self._parts: list[torch.Tensor] = []
        self._hook: Any = None
        self._start: list[torch.Tensor] = []
        self._layers: list[tuple[str, nn.Module, list[nn.Parameter]]] = []
        self._params: list[nn.Parameter] = []  # the layers' parameters, in order
        self._members: list[list[int]] = []  # each layer's indices into _params
        self._watched: list[tuple[str, nn.Module]] = []
        self._encoded: list[str] = []  # each record as JSON (for checkpoints)

    # -- hooks of the loop ---------------------------------------------------------------
    def on_train_begin(self, trainer: Any, **kwargs: Any) -> None:
        if not self.active:
            return
        self._layers = weight_layers(trainer.model)
        self._params = [p for _, _, params in self._layers for p in params]
        counts = [len(params) for _, _, params in self._layers]
        self._members = [list(range(sum(counts[:k]), sum(counts[:k + 1])))
                         for k in range(len(counts))]
        self._watched = watched_modules(trainer.model)
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
        if not self.active:
            return
        if self._hook is not None:  # fewer rows than the probe's size in the whole epoch
            self._finish_capture()
        try:
            self._record(trainer, epoch)
        except Exception as exc:  # diagnostics never stop a run: the record says why
            self._add({"epoch": epoch, "layers": [], "activations": None, "probe_rows": 0,
                       "unavailable": f"recording the diagnostics failed ({_first_line(exc)})",
                       "skipped": False})

    def _record(self, trainer: Any, epoch: int) -> None:
        params = self._params
        have = [i for i, p in enumerate(params) if p.grad is not None]
        with torch.no_grad():  # a few fused ops for every parameter at once, on the device
            grads = torch._foreach_norm([params[i].grad for i in have]) if have else []
            end = self._weights()
            moved = torch._foreach_norm(torch._foreach_sub(end, self._start)) if params else []
            size = torch._foreach_norm(self._start) if params else []
        self._start = end
        every = max(1, math.ceil(PROBE_STEPS / max(1, getattr(trainer, "steps_per_epoch", 1))))
        probe = (epoch - 1) % every == 0
        activations, stats = self._probe(trainer.model) if probe else (None, [])
        values = [*grads, *moved, *size, *stats]
        numbers = torch.stack([v.float() for v in values]).cpu().tolist() if values else []
        layers = self._layer_values(numbers, have)
        at = len(have) + 2 * len(params)
        for entry in activations or []:
            first = at + entry.pop("_index")
            for k, key in enumerate(entry.pop("_keys")):
                entry[key] = _finite(numbers[first + k])
            if entry["mean"] is not None and entry["std"] is not None:  # from the mean square
                entry["std"] = math.sqrt(max(0.0, entry["std"] - entry["mean"] ** 2))
        self._add({"epoch": epoch, "layers": layers, "activations": activations,
                   "probe_rows": 0 if self.probe is None else len(self.probe),
                   "unavailable": self.unavailable if activations is None and probe else None,
                   "skipped": not probe})

    def _add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self._encoded.append(json.dumps(record))

    def _layer_values(self, numbers: list[float], have: list[int]) -> list[dict[str, Any]]:
        """Each layer's gradient norm (undefined when a parameter had no gradient) and update
        ratio, from the per-parameter norms: sqrt of the sum of their squares."""
        n = len(self._params)
        grad = dict(zip(have, numbers))
        moved, size = numbers[len(have):len(have) + n], numbers[len(have) + n:len(have) + 2 * n]
        out = []
        for (name, module, _), members in zip(self._layers, self._members):
            g = ([grad[i] for i in members] if all(i in grad for i in members) else None)
            base = math.sqrt(sum(size[i] ** 2 for i in members))
            out.append({"layer": name, "type": type(module).__name__,
                        "grad_norm": _finite(math.sqrt(sum(v * v for v in g)))
                        if g is not None else None,
                        "update_ratio": _finite(math.sqrt(sum(moved[i] ** 2 for i in members))
                                                / base) if base > 0 else None})
        return out

    # -- pieces --------------------------------------------------------------------------
    def _weights(self) -> list[torch.Tensor]:
        """A copy of every watched parameter (one fused op)."""
        with torch.no_grad():
            return list(torch._foreach_mul(self._params, 1.0)) if self._params else []

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
                out = output if output.dtype == torch.float32 else output.float()
                # mean and mean square: std_mean is 25 times slower on a CPU
                keys, values = ["mean", "std"], [out.mean(), out.square().mean()]
                if isinstance(module, RELU_LIKE) and out.dim() >= 2:  # per feature / channel
                    top = out.amax(dim=(0, *range(2, out.dim())))
                    keys.append("dead")
                    values.append((top <= DEAD_BELOW).float().mean())
                for kind, (lo, hi) in SATURATING.items():
                    if isinstance(module, kind):
                        half = (hi - lo) / 2
                        keys.append("saturated")
                        values.append((out - (lo + half)).abs().ge(
                            half - SATURATION_MARGIN * (hi - lo)).float().mean())
                label = name if calls[name] == 1 else f"{name} (call {calls[name]})"
                entries.append({"layer": label, "type": type(module).__name__,
                                "_keys": keys, "_index": len(stats)})
                stats.extend(values)
            return record

        hooks = [m.register_forward_hook(hook(name)) for name, m in self._watched]
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
        """The records as one JSON text, each record encoded once when it was made: a
        checkpoint every epoch would otherwise pickle every record again, many small
        objects, at a cost growing with the epochs."""
        if len(self._encoded) != len(self.records):  # records set from outside (a test)
            self._encoded = [json.dumps(r) for r in self.records]
        return {"records": "[" + ",".join(self._encoded) + "]"}

    def load_state_dict(self, state: dict) -> None:
        records = state.get("records", [])
        self.records = json.loads(records) if isinstance(records, str) else list(records)
        self._encoded = [json.dumps(r) for r in self.records]


def is_norm(type_name: str) -> bool:
    """A normalisation layer (BatchNorm*, LayerNorm, GroupNorm, InstanceNorm*, RMSNorm, ...),
    by its class name: its scale and shift are not a transform of the layer's input."""
    return "Norm" in type_name


def weight_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's layers that transform (linear, convolution, ...), not normalisation
    layers, whose scale and shift gradients are not comparable with a weight matrix's."""
    return [r for r in record["layers"] if not is_norm(r["type"])]


def probed(records: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The latest record whose epoch ran the probe pass (None: none did)."""
    return next((r for r in reversed(records) if not r.get("skipped")), None)


def activation_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The probe's rows for activation layers (those with a dead or saturated fraction)."""
    return [a for a in record.get("activations") or [] if "dead" in a or "saturated" in a]


def _finite(value: float) -> Optional[float]:
    """None for a value that is not a number (undefined), else the value."""
    return value if value == value and abs(value) != float("inf") else None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
