"""Plots of the training diagnostics (``train.diagnostics``): the gradient flow through the
layers, and per-layer gradient norms, weight updates, activation spread and dead / saturated
units over the epochs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepfit.evaluate.plots import _epoch_axis, _epoch_style, _save, plt
from deepfit.train.builtin.diagnostics import activation_rows, probed, weight_rows

MAX_LINES = 8  # layers drawn per panel over epochs: the first, the last, evenly between


def _pick(names: list[str]) -> list[str]:
    if len(names) <= MAX_LINES:
        return names
    at = np.linspace(0, len(names) - 1, MAX_LINES).round().astype(int)
    return [names[i] for i in sorted(set(at))]


def _values(records: list[dict], rows: Any, key: str, name: str) -> list[float]:
    """One layer's ``key`` per epoch (NaN where undefined: a gap in the line)."""
    out = []
    for rec in records:
        row = next((r for r in rows(rec) if r["layer"] == name), {})
        value = row.get(key)
        out.append(np.nan if value is None else value)
    return out


def gradient_flow(records: list[dict], path: Path) -> Path:
    """Gradient norm of each weight layer, input side left, at the first and last epoch, on a
    log scale: vanishing gradients fall to the left, exploding ones rise."""
    first, last = records[0], records[-1]
    rows = weight_rows(last)
    names = [r["layer"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(5.0, min(14.0, 0.45 * len(names) + 3)), 3.8))
    x = np.arange(len(names))
    last_values = [r["grad_norm"] if r["grad_norm"] else np.nan for r in rows]
    ax.bar(x, last_values, color="#4C72B0", label=f"epoch {last['epoch']}")
    if first is not last:
        by_name = {r["layer"]: r["grad_norm"] for r in weight_rows(first)}
        ax.plot(x, [by_name.get(n) or np.nan for n in names], "o", mfc="none", color="#DD8452",
                label=f"epoch {first['epoch']}")
    zero = [i for i, r in enumerate(rows) if r["grad_norm"] == 0]
    for i in zero:
        ax.annotate("0", (i, 0), xycoords=("data", "axes fraction"), ha="center",
                    va="bottom", color="red")
    if any(v == v for v in last_values):
        ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=45 if len(names) > 4 else 0,
                  ha="right" if len(names) > 4 else "center", fontsize=8)
    ax.set_xlabel("layer (input side left)")
    ax.set_ylabel("gradient norm (log)")
    ax.set_title("Gradient flow: gradient norm per layer")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, path)


def diagnostics_over_epochs(records: list[dict], path: Path) -> Path:
    """Four panels over epochs: gradient norm and update / weight ratio per weight layer
    (log), the spread (std) of each activation layer's output, and the fraction of dead or
    saturated units."""
    epochs = [r["epoch"] for r in records]
    style = _epoch_style(len(epochs))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    weights = _pick([r["layer"] for r in weight_rows(records[-1])])
    seen = probed(records) or records[-1]  # the latest epoch with activations measured
    acts = _pick([r["layer"] for r in activation_rows(seen)]
                 or [r["layer"] for r in seen.get("activations") or []])
    panels = [(axes[0, 0], weight_rows, weights, "grad_norm", "gradient norm", True),
              (axes[0, 1], weight_rows, weights, "update_ratio",
               "update / weight norm per epoch", True),
              (axes[1, 0], _all_activations, acts, "std", "activation std (probe rows)", False)]
    for ax, rows, names, key, title, log in panels:
        for name in names:
            _line(ax, epochs, _values(records, rows, key, name), name, style)
        if log and any(v > 0 for name in names for v in _values(records, rows, key, name)):
            ax.set_yscale("log")
        ax.set_title(title)
    ax = axes[1, 1]
    drawn = False
    for name in acts:
        for key, word in (("dead", "dead"), ("saturated", "saturated")):
            values = _values(records, _all_activations, key, name)
            if any(v == v for v in values):
                _line(ax, epochs, values, f"{name} {word}", style)
                drawn = True
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("dead ReLU / saturated units (fraction)")
    if not drawn:
        ax.text(0.5, 0.5, "no ReLU, sigmoid or tanh layer measured", ha="center",
                va="center", transform=ax.transAxes, color="grey")
    for ax in axes.flat:
        _epoch_axis(ax, epochs)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, path)


def _line(ax: Any, epochs: list[int], values: list[float], label: str, style: dict) -> None:
    """The defined points joined (epochs without a value, e.g. no probe pass, left out)."""
    kept = [(e, v) for e, v in zip(epochs, values) if v == v]
    if kept:
        ax.plot(*zip(*kept), label=label, **style)


def _all_activations(record: dict) -> list[dict]:
    return record.get("activations") or []


def diagnostic_plots(records: list[dict], folder: Path) -> dict[str, Path]:
    """The diagnostics' PNGs in ``folder``, by title (none without records)."""
    if not records or not weight_rows(records[-1]):
        return {}
    return {"Gradient flow": gradient_flow(records, folder / "gradient_flow.png"),
            "Inside the network over epochs": diagnostics_over_epochs(
                records, folder / "diagnostics.png")}
