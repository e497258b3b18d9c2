"""compare.html: runs side by side, paired tests, overlaid curves (self-contained)."""

from __future__ import annotations

import io
from typing import Any

from deepfit.evaluate.bootstrap import format_ci
from deepfit.evaluate.metrics import HEADLINE
from deepfit.evaluate.paired import format_p
from deepfit.evaluate.plots import overlaid_curves
from deepfit.report.format import LABELS, fmt
from deepfit.report.page import escape, page, png, table


def metric_cell(metrics: dict, key: str) -> str:
    """A run's test value of ``key`` with its interval, for the side-by-side tables."""
    value = (metrics.get("test") or {}).get(key)
    ci = (metrics.get("ci") or {}).get(key)
    return format_ci(ci, 4) if ci and value is not None else fmt(value)


def render_comparison(result: dict[str, Any]) -> str:
    task, runs = result["task"], result["runs"]
    main = "r2" if task == "regression" else "accuracy"
    header = ["test metric"] + [r["name"] for r in runs]
    rows = [(LABELS.get(k, k), *(metric_cell(r["metrics"], k) for r in runs)) for k in HEADLINE[task]]
    parts = ["<h1>Run comparison</h1>",
             f"<p class='sub'>{len(runs)} runs &middot; {escape(task)} &middot; the first run is "
             "the reference for the paired tests</p>", "<h2>Test metrics</h2>",
             table(header, rows)]
    setup = [("data", *(r["summary"]["data"]["description"] for r in runs)),
             ("model", *(r["summary"]["model"]["description"] for r in runs)),
             ("parameters", *(f"{r['summary']['model']['parameters']:,}" for r in runs)),
             ("optimiser", *(r["summary"]["training"]["optimizer"] for r in runs)),
             ("best epoch", *(str(r["summary"]["training"]["best_epoch"]) for r in runs)),
             ("test rows", *(str(r["summary"]["data"]["split_sizes"]["test"]) for r in runs))]
    parts += ["<h2>Set-up</h2>", table(["", *header[1:]], setup, numeric_from=99)]
    parts.append("<h2>Paired tests</h2>")
    for pair in result["pairs"]:
        parts.append(f"<h3>{escape(pair['a'])} vs {escape(pair['b'])}</h3>")
        if not pair["paired"]:
            parts.append(f"<div class='note'>Not paired: {escape(pair['reason'])}.</div>")
            continue
        boot = pair["bootstrap"]
        items = [("shared test rows", pair["n"]),
                 (f"difference in {pair['metric']} (A - B)",
                  f"{boot['difference']:+.4f} [{boot['low']:+.4f}, {boot['high']:+.4f}]"),
                 ("paired bootstrap p-value", f"{format_p(boot)} ({boot['resamples']} resamples)")]
        if "mcnemar" in pair:
            m = pair["mcnemar"]
            items += [("rows only A gets right / only B", f"{m['a_only']} / {m['b_only']}"),
                      ("McNemar p-value", f"{m['p_value']:.4g} ({m['method']})")]
        parts.append(table(["", "value"], items))
    curves = {r["name"]: r["history"].to_dict("records") for r in runs if len(r["history"])}
    if curves:
        buffer = io.BytesIO()
        overlaid_curves(curves, main, buffer)
        parts += ["<h2>Learning curves</h2>", png(buffer.getvalue(), "Validation curves")]
    parts.append("<p class='sub'>A p-value below 0.05 says the difference is unlikely under "
                 "'both runs are equally good on rows like these'; it says nothing about runs "
                 "tested on other rows.</p>")
    return page("deepfit comparison", "".join(parts))
