"""report.md: the same content as the HTML report, with images linked from plots/."""

from __future__ import annotations

from typing import Any

from deepfit.report.format import (balance_rows, best_epoch_text, describe_batch,
                                   describe_inputs, describe_split, describe_target,
                                   describe_training_time, evaluation_intro,
                                   metric_table, per_class_rows, rate_rows, rerun_text,
                                   threshold_rows)
from deepfit.report.explain import explained_markdown
from deepfit.report.inspect import inside_markdown, layers_markdown, learned_markdown
from deepfit.report.tune import tuning_markdown


# Value columns per Markdown table: a wider table (the rates of many classes) is split into
# several, each repeating the first column, so that it fits a page or a terminal.
MAX_COLUMNS = 7


def _table(header: list[str], rows: list[tuple]) -> str:
    chunks = []
    for start in range(1, max(2, len(header)), MAX_COLUMNS):
        cols = [0, *range(start, min(start + MAX_COLUMNS, len(header)))]
        lines = ["| " + " | ".join(str(header[i]) for i in cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(row[i]) for i in cols) + " |" for row in rows]
        chunks.append("\n".join(lines))
    return "\n\n".join(chunks)


def render_markdown(summary: dict[str, Any], notes: list[str], config_yaml: str,
                    tuning: dict[str, Any] | None, config_path: str) -> str:
    """``config_path``: the run's config file, as the re-run line names it (as report.html)."""
    data, model, training = summary["data"], summary["model"], summary["training"]
    metrics, task = summary["metrics"], data["task"]
    out = [f"# {summary['name']}", "",
           f"{data['description']} · {task} · created {summary['created']} · "
           f"deepfit {summary['versions']['deepfit']}", "", "## 1. Data", "",
           f"- Target: {describe_target(data)} ({task})" if data.get("kind") == "image"
           else f"- Target: `{data['target']}` ({task})", f"- Rows and split: {describe_split(data)}",
           f"- Inputs: {describe_inputs(data)}",
           "- Preprocessing (fitted on train only): " + (
               "".join(f"\n  - {step}" for step in data["preprocessing_steps"])
               if data.get("preprocessing_steps") else data["preprocessing"])]
    if data.get("positive_class"):
        out.append(f"- Positive class: {data['positive_class']}")
    header, rows = balance_rows(data)
    if rows:
        out += ["", _table(header, rows)]
    out += ["", "## 2. Method", "", f"- Model: {model['description']}",
            f"- Trainable parameters: {model['parameters']:,}", f"- Loss: {model['loss']}",
            f"- Optimiser: {training['optimizer']}", f"- Schedule: {training['schedule']}",
            f"- Regularisation: {training['regularisation']}",
            f"- Batch size: {describe_batch(training)}; seed: {training['seed']}"]
    out += layers_markdown(model, _table)
    out += ["", "## 3. Training", "",
            f"- Epochs run: {training['epochs_run']} of at most {training['max_epochs']}",
            f"- Best epoch: {best_epoch_text(training)}",
            f"- Stopped because: {training['stop_reason']}",
            f"- Training time: {describe_training_time(training)}"]
    plots = summary.get("plots", {})
    if "Learning curves" in plots:
        out += ["", f"![Learning curves]({plots['Learning curves']})"]
    out += inside_markdown(summary.get("diagnostics"), _table)
    out += learned_markdown(summary.get("learned"))
    out += explained_markdown(summary.get("explained"))
    out += ["", "## 4. Evaluation", "",
            evaluation_intro(training), "", _table(*metric_table(task, metrics))]
    sentence, trows = threshold_rows(metrics)
    if sentence:
        out += ["", "### Decision threshold", "", sentence]
        if trows:
            out += ["", _table(list(trows[0]), trows[1:])]
    if task != "regression":
        header, prows = per_class_rows(metrics.get("test") or {})
        title = "Per label" if task == "multilabel" else "Per class"
        out += ["", f"### {title} (test)", "", _table(header, prows)]
        header, rrows = rate_rows(metrics, task)
        if rrows:
            out += ["", "### Every rate of the confusion matrix", "", _table(header, rrows)]
    for title, rel in plots.items():
        if title != "Learning curves":
            out += ["", f"### {title}", "", f"![{title}]({rel})"]
    out += ["", "## 5. Notes", ""] + ([f"- {n}" for n in notes] or ["No warnings."])
    if tuning:  # the run's config was chosen by a search (its tuning.json)
        out += tuning_markdown(tuning)
    rerun = rerun_text(training, config_path)
    out += ["", "## Configuration", "", rerun, "", "```yaml", config_yaml.rstrip(), "```", ""]
    return "\n".join(out)
