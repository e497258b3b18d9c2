"""The model summary: each layer with its output shape, parameters (trainable and frozen),
the memory its output takes for one batch, and its FLOPs per sample.

One forward pass of two zero rows, in eval mode and without gradients, with a forward hook
on every layer (a leaf module, or any module holding parameters of its own) and PyTorch's
``FlopCounterMode`` around it (it counts matrix products and convolutions: 2 FLOPs per
multiply-add; element-wise work such as activations and norms is not counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any, Optional

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

PROBE_ROWS = 2  # rows of the zero batch: 2, so batch-norm layers in eval mode are happy


def table_rows(rows: list[dict[str, Any]], totals: dict[str, Any]
               ) -> tuple[list[str], list[tuple]]:
    """The layer table as text: header, a row per layer and a totals row (``totals``: a
    ``ModelSummary.to_dict()``). The report and ``Run.summary()`` both show this."""
    header = ["layer", "type", "output shape", "trainable", "frozen",
              f"activations (batch {totals['batch_size']})", "FLOPs / sample"]
    out = [(r["layer"], r["type"], r["output"], f"{r['trainable']:,}", f"{r['frozen']:,}",
            human_bytes(r["activation_bytes"]), human_count(r["flops"])) for r in rows]
    out.append(("total", "", "", f"{totals['trainable']:,}", f"{totals['frozen']:,}",
                human_bytes(totals["activation_bytes"]), human_count(totals["flops"])))
    return header, out


@dataclass
class ModelSummary:
    """The rows of the layer table and the model's totals.

    ``rows``: one dict per layer call, in the order the forward pass called them, with
    ``layer``, ``type``, ``output`` ("(B, 4)"), ``parameters`` (all of the layer's own),
    ``trainable``, ``frozen``, ``activation_bytes`` (its output for a batch of
    ``batch_size``) and ``flops`` (per sample; None where the counter saw none).
    Totals count every parameter of the model once (shared ones too), also those of
    layers the forward pass never called. ``error``: why the table is empty, if it is.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    trainable: int = 0
    frozen: int = 0
    activation_bytes: int = 0
    flops: Optional[int] = None
    batch_size: int = 1
    error: Optional[str] = None

    @property
    def parameters(self) -> int:
        return self.trainable + self.frozen

    def to_dict(self) -> dict[str, Any]:
        return {"trainable": self.trainable, "frozen": self.frozen,
                "parameters": self.parameters, "activation_bytes": self.activation_bytes,
                "flops": self.flops, "batch_size": self.batch_size, "error": self.error}

    def table(self) -> tuple[list[str], list[tuple]]:
        """Header and rows as text, with a totals row."""
        return table_rows(self.rows, self.to_dict())

    def __str__(self) -> str:
        if self.error:
            return f"model summary unavailable: {self.error}"
        header, rows = self.table()
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

        def line(cells: tuple) -> str:  # names left-aligned, numbers right-aligned
            return "  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths)))
        return "\n".join([line(header), "  ".join("-" * w for w in widths)]
                         + [line(r) for r in rows])

    def _repr_html_(self) -> str:
        header, rows = self.table()

        def cells(tag: str, row: Any) -> str:
            return "".join(f"<{tag}>{escape(str(c))}</{tag}>" for c in row)
        return ("<table><tr>" + cells("th", header) + "</tr>"
                + "".join("<tr>" + cells("td", r) + "</tr>" for r in rows) + "</table>")


def human_bytes(n: Optional[int]) -> str:
    """1536 -> '1.5 KiB'; None -> 'n/a'."""
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # not reached


def human_count(n: Optional[float]) -> str:
    """12345678 -> '12.3M'; None -> '-' (nothing counted)."""
    if n is None:
        return "-"
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}{suffix}"
    return f"{n:.0f}"


def model_summary(model: nn.Module, input_shape: tuple[int, ...],
                  batch_size: int = 1) -> ModelSummary:
    """The summary of ``model`` for inputs of ``input_shape`` (one sample, no batch axis).

    Never raises: a model that fails on the zero batch gives an empty table with ``error``
    set (the totals still count its parameters).

    Example:
        >>> from deepfit.models.mlp import MLP
        >>> s = model_summary(MLP(3, 1, hidden=(4,)), (3,))
        >>> [r["output"] for r in s.rows], s.parameters, s.flops
        (['(B, 4)', '(B, 4)', '(B, 1)'], 21, 32)
    """
    params = list(model.parameters())  # each shared parameter once
    summary = ModelSummary(trainable=sum(p.numel() for p in params if p.requires_grad),
                           frozen=sum(p.numel() for p in params if not p.requires_grad),
                           batch_size=batch_size)
    calls: list[tuple[str, nn.Module, Any]] = []
    hooks = []

    def record(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            calls.append((name, module, output))
        return hook

    for name, module in model.named_modules():
        if not list(module.children()) or list(module.parameters(recurse=False)):
            hooks.append(module.register_forward_hook(record(name)))
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(torch.zeros((PROBE_ROWS, *input_shape), device=device))
    except Exception as exc:  # a summary must never break a run; the report says so
        summary.error = f"the model failed on a zero batch: {str(exc).splitlines()[0][:200]}"
        return summary
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    summary.rows = _rows(calls, _flops_by_layer(counter, type(model).__name__), batch_size)
    summary.activation_bytes = sum(r["activation_bytes"] for r in summary.rows)
    total = counter.get_total_flops()
    summary.flops = total // PROBE_ROWS if total else None
    return summary


def _flops_by_layer(counter: FlopCounterMode, root: str) -> dict[str, int]:
    """FLOPs of each module, by its name in the model ("" for the model itself; the counter
    prefixes the class name of the model: "MLP.net.0")."""
    out = {}
    for key, ops in counter.get_flop_counts().items():
        if key.startswith(root + "."):
            out[key[len(root) + 1:]] = sum(ops.values())
        elif key == root:
            out[""] = sum(ops.values())
    return out


def _rows(calls: list[tuple[str, nn.Module, Any]], flops: dict[str, int],
          batch_size: int) -> list[dict[str, Any]]:
    rows, seen = [], set()
    for name, module, output in calls:
        tensor = output if isinstance(output, torch.Tensor) else None
        shape = tuple(tensor.shape[1:]) if tensor is not None else ()
        own = list(module.parameters(recurse=False))
        first = name not in seen  # a module called twice: its parameters and FLOPs once
        seen.add(name)
        per_sample = tensor[0].numel() * tensor.element_size() if tensor is not None else 0
        counted = _own_flops(name, module, flops) if first else None
        rows.append({
            "layer": name or type(module).__name__, "type": type(module).__name__,
            "output": "(B, " + ", ".join(map(str, shape)) + ")" if tensor is not None
                      else type(output).__name__,
            "parameters": sum(p.numel() for p in own) if first else 0,
            "trainable": sum(p.numel() for p in own if p.requires_grad) if first else 0,
            "frozen": sum(p.numel() for p in own if not p.requires_grad) if first else 0,
            "activation_bytes": per_sample * batch_size,
            "flops": counted // PROBE_ROWS if counted else None})
    return rows


def _own_flops(name: str, module: nn.Module, flops: dict[str, int]) -> Optional[int]:
    """A layer's FLOPs without those of its children (a module with parameters of its own
    and sub-modules: the counter's figure includes the sub-modules')."""
    total = flops.get(name)
    if total is None:
        return None
    children = sum(flops.get(f"{name}.{child}" if name else child, 0)
                   for child, _ in module.named_children())
    return total - children or None


def layer_table(model: nn.Module, input_shape: tuple[int, ...],
                batch_size: int = 1) -> list[dict[str, Any]]:
    """The rows of ``model_summary`` (empty when the model failed on the zero batch).

    Example:
        >>> from deepfit.models.mlp import MLP
        >>> [r["output"] for r in layer_table(MLP(3, 1, hidden=(4,)), (3,))]
        ['(B, 4)', '(B, 4)', '(B, 1)']
    """
    return model_summary(model, input_shape, batch_size).rows
