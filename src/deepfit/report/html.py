"""report.html: one self-contained file (images embedded as base64), readable offline."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from deepfit.report.format import (balance_rows, describe_split, fmt, metric_rows,
                                   per_class_rows, rate_rows, test_header, threshold_rows)

CSS = """
body{font:15px/1.5 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d2330;
max-width:1040px;margin:0 auto;padding:24px 28px 64px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 10px;padding-bottom:4px;
border-bottom:2px solid #e6e9ef}h3{font-size:16px;margin:22px 0 8px}
.sub{color:#5b6475;margin:0 0 18px}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #e1e5ec;border-radius:8px;padding:10px 16px;min-width:150px}
.card b{display:block;font-size:22px}.card span{color:#5b6475;font-size:13px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}
th,td{border-bottom:1px solid #e6e9ef;padding:5px 12px;text-align:left}
th{background:#f5f7fa;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eef0f4;border-radius:6px;margin:6px 0 14px}
.note{background:#fff8e6;border-left:4px solid #f0b429;padding:8px 12px;margin:6px 0}
pre{background:#f5f7fa;padding:12px;border-radius:6px;overflow-x:auto;font-size:12.5px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px}dt{color:#5b6475}dd{margin:0}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[tuple], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f"<td class='num'>{_e(c)}</td>" if i >= numeric_from else f"<td>{_e(c)}</td>"
        for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _dl(pairs: list[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs) + "</dl>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{data}'>"


def render_html(summary: dict[str, Any], run_dir: Path, notes: list[str], config_yaml: str) -> str:
    data, model, training = summary["data"], summary["model"], summary["training"]
    metrics, task = summary["metrics"], data["task"]
    test = metrics.get("test") or {}
    headline = metric_rows(task, metrics)[:4]
    cards = "".join(f"<div class='card'><b>{_e(t.split(' [')[0])}</b><span>test {_e(label)}"
                    f"{'<br>[' + _e(t.split(' [')[1]) if ' [' in t else ''}</span></div>"
                    for label, _, t in headline)
    parts = [f"<h1>{_e(summary['name'])}</h1>",
             f"<p class='sub'>{_e(data['description'])} &middot; {_e(task)} &middot; "
             f"created {_e(summary['created'])} &middot; deepfit {_e(summary['versions']['deepfit'])}"
             "</p>", f"<div class='cards'>{cards}</div>"]

    parts.append("<h2>1. Data</h2>")
    pairs = [("Source", data["description"]), ("Target", data["target"]), ("Task", task),
             ("Rows and split", describe_split(data)), ("Features", f"{data['columns']} column(s) "
             f"-> {data['inputs']} model input(s)"), ("Preprocessing (fitted on train only)",
             data["preprocessing"])]
    if data.get("positive_class"):
        pairs.append(("Positive class", data["positive_class"]))
    parts.append(_dl(pairs))
    header, rows = balance_rows(data)
    if rows:
        parts.append("<h3>Class balance</h3>" + _table(header, rows))

    parts.append("<h2>2. Method</h2>")
    parts.append(_dl([("Model", model["description"]), ("Trainable parameters",
                      f"{model['parameters']:,}"), ("Loss", model["loss"]),
                      ("Optimiser", training["optimizer"]), ("Schedule", training["schedule"]),
                      ("Regularisation", training["regularisation"]),
                      ("Batch size", training["batch_size"]), ("Seed", training["seed"])]))
    if model.get("layers"):
        rows = [(r["layer"], r["type"], r["output"], f"{r['parameters']:,}") for r in model["layers"]]
        parts.append("<h3>Layers</h3>" + _table(["layer", "type", "output shape", "parameters"],
                                                rows, numeric_from=3))

    parts.append("<h2>3. Training</h2>")
    parts.append(_dl([("Epochs run", f"{training['epochs_run']} of at most {training['max_epochs']}"),
                      ("Best epoch", f"{training['best_epoch']} ({training['monitor']} = "
                                     f"{fmt(training['best_value'])})"),
                      ("Stopped because", training["stop_reason"]),
                      ("Training time", f"{training['seconds']:.1f} s on {training['device']}")]))
    plots = summary.get("plots", {})
    if "Learning curves" in plots:
        parts.append(_img(run_dir / plots["Learning curves"], "Learning curves"))

    parts.append("<h2>4. Evaluation</h2>")
    parts.append("<p>The model from the best epoch, evaluated once on the held-out test set. "
                 "Validation figures are shown for comparison: they were used to pick the "
                 "epoch, so they are optimistic.</p>")
    parts.append(_table(["metric", "validation", test_header(metrics)], metric_rows(task, metrics)))
    if metrics.get("ci"):
        parts.append(f"<p class='sub'>Intervals: percentile bootstrap over the test rows "
                     f"({metrics.get('ci_resamples')} seeded resamples); they show how much "
                     "the test score could move with another test set of this size.</p>")
    sentence, trows = threshold_rows(metrics)
    if sentence:
        parts.append(f"<h3>Decision threshold</h3><p>{_e(sentence)}</p>")
        if trows:
            parts.append(_table(list(trows[0]), trows[1:]))
    if task != "regression":
        header, prows = per_class_rows(test)
        title = "Per label" if task == "multilabel" else "Per class"
        parts.append(f"<h3>{title} (test)</h3>" + _table(header, prows))
        header, rrows = rate_rows(metrics, task)
        if rrows:
            parts.append("<h3>Every rate of the confusion matrix</h3>" + _table(header, rrows))
    for title, rel in plots.items():
        if title != "Learning curves":
            parts.append(f"<h3>{_e(title)}</h3>" + _img(run_dir / rel, title))

    parts.append("<h2>5. Notes</h2>")
    parts.append("".join(f"<div class='note'>{_e(n)}</div>" for n in notes)
                 or "<p>No warnings.</p>")
    parts.append("<h2>Configuration</h2><p>Re-run this experiment with "
                 f"<code>deepfit train {_e(run_dir / 'config.yaml')}</code>.</p>"
                 f"<pre>{_e(config_yaml)}</pre>")
    parts.append(f"<p class='sub'>torch {_e(summary['versions']['torch'])}, "
                 f"Python {_e(summary['versions']['python'])}</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{_e(summary['name'])} - deepfit report</title><style>{CSS}</style></head>"
            f"<body>{''.join(parts)}</body></html>")
