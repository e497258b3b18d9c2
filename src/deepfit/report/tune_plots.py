"""The figures of the tune report (tune.html), drawn from tune.json's plain values: the
optimisation history, the parameter importances, one slice per parameter, the parallel
coordinates and the per-epoch validation values. Each returns PNG bytes, or a one-line note
saying why it cannot be drawn (no complete trial yet, nothing searched, ...). ``param_text``
writes a parameter's value as the figures and the page's tables both show it."""

from __future__ import annotations

import io
import math
from typing import Any, Optional

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.ticker import NullFormatter
from matplotlib.lines import Line2D

from deepfit.evaluate.plots import _save, plt

NO_VALUE = "—"  # a parameter a trial did not set (or set to null)
FIGURE = bytes | str  # a PNG, or the note that says why there is none


def param_text(value: Any) -> str:
    """A parameter's value as one short string: a float to 4 significant digits, a list as
    ``[128, 64]`` (so list-valued parameters are categories), null as "—"."""
    if value is None:
        return NO_VALUE
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(param_text(v) for v in value) + "]"
    return str(value)


def figures(tune: dict[str, Any], trials: list[dict], label: str) -> list[tuple[str, FIGURE]]:
    """``(title, PNG or note)`` of every figure, in page order. ``trials`` sorted by number;
    ``label`` is the validation metric's name."""
    space, maximize = tune.get("space") or {}, tune.get("direction") != "minimize"
    best = (tune.get("best") or {}).get("number")
    return [("Optimisation history", history(trials, label, maximize)),
            ("Parameter importances", importances(tune.get("importances"),
                                                  tune.get("importances_note"))),
            ("Validation value against each parameter", slices(trials, space, label, best)),
            ("Parallel coordinates", parallel(trials, space, label, maximize)),
            ("Validation value per epoch", intermediate(trials, label, best))]


def _defined(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _complete(trials: list[dict]) -> list[dict]:
    return [t for t in trials if t.get("state") == "complete" and _defined(t.get("value"))]


def _no_complete(trials: list[dict]) -> str:
    counts = {s: sum(t.get("state") == s for t in trials) for s in ("pruned", "failed")}
    undefined = sum(t.get("state") == "complete" for t in trials)
    seen = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    seen += (", " if seen and undefined else "") + (
        f"{undefined} complete with an undefined value" if undefined else "")
    return ("Nothing to draw: no trial has completed with a defined validation value"
            + (f" ({seen})." if seen else " (no trial has finished yet)."))


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    _save(fig, buffer)
    return buffer.getvalue()


def param_names(trials: list[dict], space: dict[str, Any]) -> list[str]:
    """The searched parameters: the space's order, then any other a trial set."""
    names = list(space)
    for t in trials:
        names += [n for n in (t.get("params") or {}) if n not in names]
    return names


def _numeric(spec: Any, values: list[Any]) -> bool:
    """A range (``{"low", "high"}``) or, without a space entry, numbers only; a list of
    choices is categories, even of numbers."""
    if isinstance(spec, dict) and "low" in spec:
        return True
    present = [v for v in values if v is not None]
    return spec is None and bool(present) and all(_defined(v) for v in present)


def _log(spec: Any, values: list[Any]) -> bool:
    return (isinstance(spec, dict) and bool(spec.get("log"))
            and all(v > 0 for v in values if _defined(v)))


def _categories(spec: Any, values: list[Any]) -> list[str]:
    """The category labels in the space's order, then those only the trials show."""
    cats = [param_text(c) for c in spec] if isinstance(spec, list) else []
    return list(dict.fromkeys([*cats, *(param_text(v) for v in values)]))


def _better(values: list[float], maximize: bool) -> int:
    return int(np.argmax(values) if maximize else np.argmin(values))


def _integer_x(ax: Any, xs: list[int]) -> None:
    ax.xaxis.get_major_locator().set_params(integer=True)
    if len(set(xs)) == 1:  # one trial (or epoch): centred, its own number the only tick
        ax.set_xlim(xs[0] - 1, xs[0] + 1)
        ax.set_xticks([xs[0]])


def _log_axis(ax: Any, x: np.ndarray) -> None:
    """A log x axis with three labelled ticks across the values (matplotlib's own labels of
    a range narrower than a decade overlap in a small panel)."""
    ax.set_xscale("log")
    present = x[~np.isnan(x)]
    if present.size:
        ticks = np.geomspace(present.min(), present.max(), 3 if np.ptp(present) else 1)
        ax.set_xticks(ticks, [f"{t:.2g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())


def history(trials: list[dict], label: str, maximize: bool) -> FIGURE:
    """Every complete trial's validation value by trial number, the best so far as a step
    line; pruned and failed trials (no value) as ticks on the x axis."""
    done = _complete(trials)
    if not done:
        return _no_complete(trials)
    x, y = [t["number"] for t in done], [t["value"] for t in done]
    best = (np.maximum if maximize else np.minimum).accumulate(y)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(x, y, "o", color="tab:blue", alpha=0.8, label="complete trial")
    ax.step(x, best, where="post", color="tab:orange", label="best so far")
    edge = ax.get_xaxis_transform()  # x in data, y in axes: marks sit on the x axis
    for state, marker, colour in (("pruned", "|", "tab:red"), ("failed", "x", "grey")):
        marked = [t["number"] for t in trials if t.get("state") == state]
        if marked:
            ax.plot(marked, [0.02] * len(marked), marker, color=colour, markersize=12,
                    transform=edge, ls="none", label=f"{state} (no value)")
    _integer_x(ax, [t["number"] for t in trials])
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {label}")
    ax.set_title(f"Optimisation history ({'higher' if maximize else 'lower'} is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def importances(values: Optional[dict[str, Any]], note: Optional[str]) -> FIGURE:
    """Horizontal bars, the most important parameter on top."""
    items = sorted(((k, v) for k, v in (values or {}).items() if _defined(v)), key=lambda kv: kv[1])
    if not items:
        return f"Not computed: {note}." if note else "Parameter importances were not computed."
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.42 * len(items)))
    bars = ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue", alpha=0.8)
    ax.bar_label(bars, labels=[f"{v:.2f}" for _, v in items], fontsize=8, padding=2)
    ax.set_xlim(0, max(v for _, v in items) * 1.15 or 1)
    ax.set_xlabel("importance (estimated share of the validation value's variation)")
    ax.set_title("Parameter importances")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def slices(trials: list[dict], space: dict[str, Any], label: str,
           best: Optional[int]) -> FIGURE:
    """One small panel per parameter: each complete trial's validation value against the
    parameter's value (log axis for a log range, categories for choices and lists)."""
    done, names = _complete(trials), param_names(trials, space)
    if not done:
        return _no_complete(trials)
    if not names:
        return "Nothing to draw: the search has no parameters."
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), squeeze=False)
    y = np.array([t["value"] for t in done])
    for ax, name in zip(axes.flat, names):
        values, spec = [(t.get("params") or {}).get(name) for t in done], space.get(name)
        if _numeric(spec, values):
            x = np.array([v if _defined(v) else np.nan for v in values], dtype=float)
            ax.margins(x=0.12)  # the best trial's star stays inside the panel
            if _log(spec, values):
                _log_axis(ax, x)
        else:
            cats = _categories(spec, values)
            x = np.array([cats.index(param_text(v)) for v in values], dtype=float)
            turn = 30 if sum(len(c) for c in cats) > 24 else 0
            ax.set_xticks(range(len(cats)), cats, fontsize=8, rotation=turn,
                          ha="right" if turn else "center")
            ax.set_xlim(-0.5, len(cats) - 0.5)
        ax.scatter(x, y, s=18, color="tab:blue", alpha=0.7)
        mark = [i for i, t in enumerate(done) if t["number"] == best and not np.isnan(x[i])]
        ax.scatter(x[mark], y[mark], s=90, marker="*", color="tab:orange", zorder=3)
        fixed = len({param_text(v) for v in values}) == 1
        ax.set_title(name + (" (never varied)" if fixed else ""), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"validation {label}", fontsize=8)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    return _png(fig)


def _axis(values: list[Any], spec: Any) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """One parallel-coordinates axis: the values placed in [0, 1] and the (position, text)
    labels to write beside it (every category, or a range's two ends)."""
    if not _numeric(spec, values):
        cats = _categories(spec, values)
        step = 1 / (len(cats) - 1) if len(cats) > 1 else 0
        where = [i * step if step else 0.5 for i in range(len(cats))]
        return (np.array([where[cats.index(param_text(v))] for v in values]),
                list(zip(where, cats)))
    raw = np.array([v if _defined(v) else np.nan for v in values], dtype=float)
    scaled = np.log10(raw) if _log(spec, values) else raw
    if np.isnan(scaled).all():
        return scaled, []
    lo, hi = np.nanmin(scaled), np.nanmax(scaled)
    ends = (float(np.nanmin(raw)), float(np.nanmax(raw)))
    if hi == lo:
        return np.where(np.isnan(scaled), np.nan, 0.5), [(0.5, param_text(ends[0]))]
    return (scaled - lo) / (hi - lo), [(0.0, param_text(ends[0])), (1.0, param_text(ends[1]))]


def parallel(trials: list[dict], space: dict[str, Any], label: str, maximize: bool) -> FIGURE:
    """One vertical axis per parameter and one for the validation value; each complete
    trial is a line across them, coloured by its value (the best in yellow)."""
    done, names = _complete(trials), param_names(trials, space)
    if not done:
        return _no_complete(trials)
    if not names:
        return "Nothing to draw: the search has no parameters."
    y = [t["value"] for t in done]
    columns = [_axis([(t.get("params") or {}).get(n) for t in done], space.get(n)) for n in names]
    columns.append(_axis(y, None))
    norm = Normalize(min(y), max(y) if max(y) > min(y) else min(y) + 1)
    cmap = plt.get_cmap("viridis" if maximize else "viridis_r")
    fig, ax = plt.subplots(figsize=(min(9.5, 2 + 1.5 * len(columns)), 4.2))
    points = np.column_stack([c[0] for c in columns])
    for row, value in zip(points, y):
        ax.plot(range(len(columns)), row, color=cmap(norm(value)), alpha=0.75, lw=1.4)
    for j, (_, ticks) in enumerate(columns):
        ax.axvline(j, color="black", lw=0.8)
        for pos, text in ticks:
            ax.text(j + 0.04, pos, text, fontsize=7, va="center", ha="left",
                    bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})
    ticks = [*names, f"validation {label}"]
    room = fig.get_figwidth() * 0.8 / len(columns) / 0.07  # characters between two axes
    turn = 25 if max(len(t) for t in ticks) > room else 0
    ax.set_xticks(range(len(columns)), ticks, fontsize=8, rotation=turn,
                  ha="right" if turn else "center", rotation_mode="anchor")
    ax.set_xlim(-0.2, len(columns) - 0.4)
    ax.set_ylim(-0.08, 1.08)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label=f"validation {label}", pad=0.02)
    ax.set_title("Parallel coordinates (each line a complete trial)")
    return _png(fig)


def intermediate(trials: list[dict], label: str, best: Optional[int]) -> FIGURE:
    """The per-epoch validation value of every trial that reported one: complete trials
    solid, pruned dashed (where they stopped), the best trial in orange."""
    curves = []
    for t in trials:
        points = sorted((int(k), v if _defined(v) else np.nan)
                        for k, v in (t.get("intermediate") or {}).items())
        if points:
            curves.append((t, points))
    if not curves:
        return "Nothing to draw: no trial has reported a per-epoch validation value yet."
    styles = {"complete": ("tab:blue", "-", 0.55), "pruned": ("tab:red", "--", 0.6)}
    fig, ax = plt.subplots(figsize=(9, 3.6))
    shown, epochs = {}, []
    for t, points in curves:
        x, v = zip(*points)
        epochs += x
        kind = "best trial" if t.get("number") == best else t.get("state") or "unknown"
        colour, ls, alpha = styles.get(kind, ("grey", ":", 0.6))
        if kind == "best trial":
            colour, ls, alpha = "tab:orange", "-", 1.0
        ax.plot(x, v, ls=ls, color=colour, alpha=alpha, lw=2 if kind == "best trial" else 1.2,
                marker="o", markersize=3, zorder=3 if kind == "best trial" else 2)
        shown[kind] = Line2D([], [], ls=ls, color=colour, marker="o", markersize=3)
    _integer_x(ax, epochs)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {label}")
    ax.set_title("Validation value per epoch (each line a trial)")
    ax.grid(alpha=0.3)
    ax.legend(list(shown.values()), list(shown), fontsize=8)
    return _png(fig)
