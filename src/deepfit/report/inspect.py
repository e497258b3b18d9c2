"""The report's view inside the network: the layer table (shapes, parameters, activation
memory, FLOPs) and the training diagnostics (gradient flow, updates, dead and saturated
units), as tables shared by the HTML report, report.md and ``deepfit inspect``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from deepfit.models.summary import table_rows
from deepfit.report.graph_svg import graph_svg
from deepfit.report.page import escape, figures_html, figures_markdown, table

LONG_TABLE = 12  # rows above which the layer table starts folded in the HTML report
OPEN_GRAPH = 40  # nodes up to which the computational graph is shown unfolded

INTRO = ("Recorded once per epoch (train.diagnostics): each layer's gradient norm after the "
         "epoch's last step, how far the epoch moved its weights (update / weight norm), and, "
         "on a fixed probe batch of training rows (every epoch, or every few when epochs are very "
         "short), the mean and spread of each layer's output, "
         "the share of ReLU units that never fire (dead) and of sigmoid / tanh outputs stuck "
         "at the ends of their range (saturated). docs/inspect.md explains each picture.")


def layer_rows(model: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    """The layer table of a summary's ``model`` entry, with a totals row (an older summary:
    output shape and parameters only)."""
    layers, totals = model.get("layers") or [], model.get("summary")
    if not layers or "trainable" not in layers[0] or not totals:
        return (["layer", "type", "output shape", "parameters"],
                [(r["layer"], r["type"], r["output"], f"{r['parameters']:,}") for r in layers])
    return table_rows(layers, totals)


def _num(value: Optional[float], pct: bool = False) -> str:
    if value is None:
        return "undefined"
    return f"{value:.0%}" if pct else f"{value:.2e}" if abs(value) < 1e-2 or abs(value) >= 1e4 \
        else f"{value:.3f}"


def gradient_rows(record: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    """Per layer holding weights: gradient norm and update / weight ratio of one epoch."""
    return (["layer", "type", "gradient norm", "update / weight"],
            [(r["layer"], r["type"], _num(r["grad_norm"]), _num(r["update_ratio"]))
             for r in record["layers"]])


def activation_table(record: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    """Per layer of the probe pass: output mean and std, dead and saturated fractions."""
    rows = [(a["layer"], a["type"], _num(a.get("mean")), _num(a.get("std")),
             _num(a["dead"], pct=True) if "dead" in a else "",
             _num(a["saturated"], pct=True) if "saturated" in a else "")
            for a in record.get("activations") or []]
    return ["layer", "type", "mean", "std", "dead units", "saturated"], rows


def layers_html(model: dict[str, Any]) -> str:
    """The Layers section of the HTML report (folded when long)."""
    header, rows = layer_rows(model)
    if not rows:
        error = (model.get("summary") or {}).get("error")
        return f"<h3>Layers</h3><p>{escape(error)}</p>" if error else ""
    html = table(header, rows, numeric_from=3)
    if len(rows) > LONG_TABLE:
        html = f"<details><summary>{len(rows)} layers (show)</summary>{html}</details>"
    note = ("<p class='sub'>Activations: the memory of each layer's output for one training "
            "batch (what the backward pass keeps). FLOPs: multiply-adds of matrix products and "
            "convolutions, counted as 2, per sample.</p>" if len(header) > 4 else "")
    return "<h3>Layers</h3>" + html + note


def graph_html(model: dict[str, Any]) -> str:
    """The computational graph as an inline SVG, folded, with how it was found."""
    graph = model.get("graph")
    svg = graph_svg(graph) if graph else ""
    if not svg:
        return ""
    how = ("Traced with torch.fx: every layer call, function and method of the forward pass, "
           "in order; a curve on the right is a skip connection" if graph["method"] == "torch.fx"
           else f"torch.fx could not trace the forward pass ({graph['reason']}), so this is "
           "the module hierarchy (which module holds which), not the order of the computation")
    more = f"; {graph['left_out']} more nodes not drawn" if graph.get("left_out") else ""
    return (f"<h3>Computational graph</h3><p class='sub'>{escape(how + more)}.</p>"
            f"<details{' open' if len(graph['nodes']) <= OPEN_GRAPH else ''}><summary>"
            f"{len(graph['nodes'])} nodes (show)</summary>"
            f"<div style='overflow-x:auto'>{svg}</div></details>")


def layers_markdown(model: dict[str, Any], md_table: Callable[..., str]) -> list[str]:
    """The layer table for report.md, drawn by ``md_table(header, rows)``."""
    header, rows = layer_rows(model)
    return ["", md_table(header, rows)] if rows else []


NO_SIGN = "No sign of vanishing or exploding gradients, dead or saturated units."


def diagnostic_tables(last: dict[str, Any], probed_record: Optional[dict[str, Any]]
                      ) -> list[tuple[str, list[str], list[tuple]]]:
    """``(title, header, rows)`` of the per-layer tables: gradients and updates at the last
    epoch, activations at the last probed one (the report and ``deepfit inspect``)."""
    tables = [(f"Gradients and updates at epoch {last['epoch']}", *gradient_rows(last))]
    seen = probed_record or last
    header, rows = activation_table(seen)
    if rows:
        tables.append((f"Activations on {seen['probe_rows']} probe rows at epoch "
                       f"{seen['epoch']}", header, rows))
    return tables


def inside_html(diagnostics: Optional[dict[str, Any]], run_path: Path) -> str:
    """The "Inside the network" part of the Training section ("" when not recorded)."""
    if not diagnostics or not diagnostics.get("last"):
        return ""
    last = diagnostics["last"]
    parts = [f"<h3>Inside the network</h3><p>{escape(INTRO)}</p>"]
    parts.append(figures_html(diagnostics.get("plots", {}), run_path, None))
    parts.append("".join(f"<div class='note'>{escape(n)}</div>" for n in diagnostics["notes"])
                 or f"<p>{NO_SIGN}</p>")
    body = "".join(f"<h4>{escape(title)}</h4>" + table(header, rows, 2) for title, header, rows
                   in diagnostic_tables(last, diagnostics.get("probed")))
    parts.append(f"<details><summary>per-layer values (show)</summary>{body}</details>")
    return "".join(parts)


def inside_markdown(diagnostics: Optional[dict[str, Any]],
                    md_table: Callable[..., str]) -> list[str]:
    """The Markdown report's "Inside the network", tables drawn by ``md_table(header, rows)``."""
    if not diagnostics or not diagnostics.get("last"):
        return []
    last = diagnostics["last"]
    out = ["", "### Inside the network", "", INTRO]
    out += figures_markdown(diagnostics.get("plots", {}), None)
    out += [""] + ([f"- {n}" for n in diagnostics["notes"]] or [NO_SIGN])
    for title, header, rows in diagnostic_tables(last, diagnostics.get("probed")):
        out += ["", f"{title}:", "", md_table(header, rows)]
    return out



LEARNED = ("The test rows as the network sees them just before its output layer (its last "
           "hidden layer), projected to two dimensions: classes that form separate clouds are "
           "what the output layer can split with a line. For two input features: the "
           "decision map over the input plane and what each hidden neuron computes there; "
           "for a CNN: the first layer's filters and what they respond to in test images.")


def learned_html(learned: Optional[dict[str, Any]], run_path: Path) -> str:
    """The "What the network learned" pictures ("" without them)."""
    if not learned or not (learned.get("plots") or learned.get("reason")):
        return ""
    return (f"<h3>What the network learned (test split)</h3><p>{escape(LEARNED)}</p>"
            + figures_html(learned.get("plots", {}), run_path, learned.get("reason")))


def learned_markdown(learned: Optional[dict[str, Any]]) -> list[str]:
    if not learned or not (learned.get("plots") or learned.get("reason")):
        return []
    return (["", "### What the network learned (test split)", "", LEARNED]
            + figures_markdown(learned.get("plots", {}), learned.get("reason")))
