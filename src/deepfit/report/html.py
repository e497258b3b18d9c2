"""report.html: one self-contained file (images embedded as base64), readable offline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from deepfit.report.format import (balance_rows, best_epoch_text, describe_batch,
                                   describe_inputs, describe_split, describe_target,
                                   describe_training_time, evaluation_intro, metric_rows,
                                   metric_table, per_class_rows, rate_rows, rerun_text,
                                   threshold_rows)
from deepfit.report.explain import explained_html
from deepfit.report.inspect import graph_html, inside_html, layers_html, learned_html
from deepfit.report.page import escape, page, png, table
from deepfit.report.tune import tuning_html
from deepfit.run import RunDir

def _dl(pairs: list[tuple[str, Any]]) -> str:
    """A definition list; a value given as a list becomes a bulleted list (one step a line)."""
    def value(v: Any) -> str:
        if isinstance(v, list):
            return "<ul>" + "".join(f"<li>{escape(x)}</li>" for x in v) + "</ul>"
        return escape(v)
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{value(v)}</dd>" for k, v in pairs) + "</dl>"


def _img(path: Path, alt: str) -> str:
    return png(path.read_bytes(), alt)


def render_html(summary: dict[str, Any], rd: RunDir, notes: list[str], config_yaml: str,
                tuning: dict[str, Any] | None = None) -> str:
    data, model, training = summary["data"], summary["model"], summary["training"]
    metrics, task = summary["metrics"], data["task"]
    test = metrics.get("test") or {}
    headline = metric_rows(task, metrics)[:4]
    cards = "".join(f"<div class='card'><b>{escape(t.split(' [')[0])}</b><span>test {escape(label)}"
                    f"{'<br>[' + escape(t.split(' [')[1]) if ' [' in t else ''}</span></div>"
                    for label, _, t in headline)
    parts = [f"<h1>{escape(summary['name'])}</h1>",
             f"<p class='sub'>{escape(data['description'])} &middot; {escape(task)} &middot; "
             f"created {escape(summary['created'])} &middot; deepfit {escape(summary['versions']['deepfit'])}"
             "</p>", f"<div class='cards'>{cards}</div>"]

    parts.append("<h2>1. Data</h2>")
    pairs = [("Source", data["description"]), ("Target", describe_target(data)), ("Task", task),
             ("Rows and split", describe_split(data)), ("Inputs", describe_inputs(data)),
             ("Preprocessing (fitted on train only)",
              data.get("preprocessing_steps") or data["preprocessing"])]
    if data.get("positive_class"):
        pairs.append(("Positive class", data["positive_class"]))
    parts.append(_dl(pairs))
    header, rows = balance_rows(data)
    if rows:
        parts.append("<h3>Class balance</h3>" + table(header, rows))

    parts.append("<h2>2. Method</h2>")
    parts.append(_dl([("Model", model["description"]), ("Trainable parameters",
                      f"{model['parameters']:,}"), ("Loss", model["loss"]),
                      ("Optimiser", training["optimizer"]), ("Schedule", training["schedule"]),
                      ("Regularisation", training["regularisation"]),
                      ("Batch size", describe_batch(training)), ("Seed", training["seed"])]))
    parts.append(layers_html(model))  # shapes, parameters, memory, FLOPs (report/inspect.py)
    parts.append(graph_html(model))  # the computational graph (torch.fx), as SVG

    parts.append("<h2>3. Training</h2>")
    parts.append(_dl([("Epochs run", f"{training['epochs_run']} of at most {training['max_epochs']}"),
                      ("Best epoch", best_epoch_text(training)),
                      ("Stopped because", training["stop_reason"]),
                      ("Training time", describe_training_time(training))]))
    plots = summary.get("plots", {})
    if "Learning curves" in plots:
        parts.append(_img(rd.path / plots["Learning curves"], "Learning curves"))
    parts.append(inside_html(summary.get("diagnostics"), rd.path))  # train.diagnostics
    parts.append(learned_html(summary.get("learned"), rd.path))  # representations, test split
    parts.append(explained_html(summary.get("explained"), rd.path))  # image attribution maps

    parts.append("<h2>4. Evaluation</h2>")
    parts.append(f"<p>{escape(evaluation_intro(training))}</p>")
    parts.append(table(*metric_table(task, metrics)))
    if metrics.get("ci"):
        parts.append(f"<p class='sub'>Intervals: percentile bootstrap over the test rows "
                     f"({metrics.get('ci_resamples')} seeded resamples); they show how much "
                     "the test score could move with another test set of this size.</p>")
    sentence, trows = threshold_rows(metrics)
    if sentence:
        parts.append(f"<h3>Decision threshold</h3><p>{escape(sentence)}</p>")
        if trows:
            parts.append(table(list(trows[0]), trows[1:]))
    if task != "regression":
        header, prows = per_class_rows(test)
        title = "Per label" if task == "multilabel" else "Per class"
        parts.append(f"<h3>{title} (test)</h3>" + table(header, prows))
        header, rrows = rate_rows(metrics, task)
        if rrows:
            parts.append("<h3>Every rate of the confusion matrix</h3>" + table(header, rrows))
    for title, rel in plots.items():
        if title != "Learning curves":
            parts.append(f"<h3>{escape(title)}</h3>" + _img(rd.path / rel, title))

    parts.append("<h2>5. Notes</h2>")
    parts.append("".join(f"<div class='note'>{escape(n)}</div>" for n in notes)
                 or "<p>No warnings.</p>")
    if tuning:  # the run's config was chosen by a search (its tuning.json)
        parts.append(tuning_html(tuning))
    rerun = re.sub(r"`([^`]*)`", r"<code>\1</code>", escape(rerun_text(training, str(rd.config))))
    parts.append(f"<h2>Configuration</h2><p>{rerun}</p>"
                 f"<pre>{escape(config_yaml)}</pre>")
    parts.append(f"<p class='sub'>torch {escape(summary['versions']['torch'])}, "
                 f"Python {escape(summary['versions']['python'])}</p>")
    return page(f"{summary['name']} - deepfit report", "".join(parts))
