"""tune.html: the report of a hyperparameter search (``deepfit tune``), rendered from
tune.json's content alone; and the "Tuning" section of the report of a run whose
configuration a search chose (from that run's tuning.json)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from deepfit.report.format import LABELS, fmt, mean_sd_cell, shorten
from deepfit.report.page import escape, page, png, table
from deepfit.report.tune_plots import NO_VALUE, figures, param_names, param_text
from deepfit.run import RunDir

CAPTIONS = {
    "Optimisation history": "Each dot is a complete trial's validation value; the line is the "
    "best value so far; marks on the x axis are trials without a value (pruned or failed).",
    "Parameter importances": "How much of the variation in the validation value each "
    "parameter explains, estimated from the complete trials.",
    "Validation value against each parameter": "One panel per parameter; the star is the "
    "best trial.",
    "Parallel coordinates": "Each line is a complete trial through its parameter values; "
    "the colour is its validation value.",
    "Validation value per epoch": "The value each trial reported after every epoch; pruned "
    "trials are dashed and end where they were stopped.",
}


def render_tune(tune: dict[str, Any]) -> str:
    """tune.html from tune.json's content (``deepfit.tune`` writes it; any version renders:
    keys it lacks read as undefined)."""
    tune = _finite(tune)
    trials = sorted(tune.get("trials") or [], key=lambda t: t.get("number", 0))
    label = LABELS.get(tune.get("metric"), tune.get("metric") or "metric")
    if not trials and tune.get("nested"):  # a nested search: its searches are the folds'
        return page("deepfit nested tuning", _header(tune, trials, label) + _nested(tune)
                    + _how_to_read(tune))
    parts = [_header(tune, trials, label), _best(tune, label), _final(tune, label),
             _nested(tune), "<h2>Plots</h2>"]
    for title, figure in figures(tune, trials, label):
        parts.append(f"<h3>{escape(title)}</h3>")
        parts.append(f"<p class='sub'>{escape(CAPTIONS[title])}</p>" + png(figure, title)
                     if isinstance(figure, bytes) else f"<div class='note'>{escape(figure)}</div>")
    parts += [_trials(tune, trials, label), _how_to_read(tune)]
    return page(f"{tune.get('study') or 'deepfit'} - deepfit tuning", "".join(parts))


def _finite(value: Any) -> Any:
    """NaN and infinity as null (undefined), wherever they are."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _counts(trials: list[dict]) -> dict[str, int]:
    states = ("complete", "pruned", "failed", "running", "waiting")
    return {s: n for s in states if (n := sum(t.get("state") == s for t in trials))}


def _cards(cards: list[tuple[str, str]]) -> str:
    return "<div class='cards'>" + "".join(f"<div class='card'><b>{escape(v)}</b>"
                                           f"<span>{escape(k)}</span></div>"
                                           for k, v in cards) + "</div>"


def _pairs(pairs: list[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs) + "</dl>"


def _header(tune: dict[str, Any], trials: list[dict], label: str) -> str:
    counts = _counts(trials)
    finished = sum(counts.get(s, 0) for s in ("complete", "pruned", "failed"))
    requested = tune.get("trials_requested")
    pending = ", ".join(f"{counts[s]} {s}" for s in ("running", "waiting") if s in counts)
    maximize = tune.get("direction") != "minimize"
    final, nested = tune.get("final") or {}, tune.get("nested") or {}
    best, per_fold = tune.get("best"), not trials and nested  # per_fold: searches in the folds
    cards = [] if per_fold else [
        (f"best validation {label}", fmt(best.get("value")) if best else NO_VALUE),
        (f"test {label} (final model)",
         fmt((final.get("test") or {}).get(tune.get("metric"))) if final else NO_VALUE)]
    if nested:
        cards.append((f"nested CV test {LABELS.get(nested.get('metric'), nested.get('metric'))}",
                      fmt(nested.get("mean"))))
    if not per_fold:
        cards.append(("trials complete / finished", f"{counts.get('complete', 0)} / {finished}"))
    pairs = [
        ("Data", tune.get("data")), ("Task", tune.get("task")),
        ("Metric", f"{label} on the validation split, {tune.get('direction')} "
                   f"({'higher' if maximize else 'lower'} is better)"),
        ("Sampler", f"{tune.get('sampler')} (seed {fmt(tune.get('seed'))})"),
        ("Pruner", "none (every trial trains to the end)" if tune.get("pruner") == "none"
         else tune.get("pruner")),
        ("Trials", f"{finished} finished of {'no limit' if requested is None else requested} "
                   f"requested: {counts.get('complete', 0)} complete, {counts.get('pruned', 0)} "
                   f"pruned, {counts.get('failed', 0)} failed"
                   + (f" ({pending})" if pending else "")
                   + (f"; time limit {tune['timeout_s']} s" if tune.get("timeout_s") else "")),
        ("Storage", f"{tune.get('storage')} (study '{tune.get('study')}')")]
    if per_fold:  # the trials and studies are each outer fold's own
        pairs[-2:] = [("Searches", f"one inside each of the {nested.get('folds')} outer folds, "
                                   f"{'no limit' if requested is None else requested} trials "
                                   "requested each")]
        honest = ("<p>The test split was not used in the search: each outer fold's search "
                  "scored its trials on a validation split carved from the fold's training "
                  "part; the configuration it chose was evaluated once on the outer fold.</p>")
    elif tune.get("test_used_in_search") is False:
        after = ("the final model was evaluated on the test split once" if tune.get("final")
                 else "the final model, once trained, is evaluated on the test split once")
        honest = ("<p>The test split was not used in the search: every trial was scored on the "
                  f"validation split; {after}.</p>")
    elif tune.get("test_used_in_search"):
        honest = ("<div class='note'>The test split was used in the search: its figures "
                  "are optimistic, not an estimate for new data.</div>")
    else:
        honest = ""
    return ("<h1>Hyperparameter search</h1>"
            f"<p class='sub'>{escape(tune.get('data'))} &middot; {escape(tune.get('task'))}"
            + ("" if per_fold else f" &middot; study {escape(tune.get('study'))}") + "</p>"
            + _cards(cards) + _pairs(pairs) + honest)


def _param_rows(params: dict[str, Any]) -> list[tuple[str, str]]:
    return [(name, param_text(value)) for name, value in (params or {}).items()]


def best_yaml(params: dict[str, Any]) -> str:
    """The tuned values as config YAML: dotted names (``train.lr``) become sections."""
    tree: dict[str, Any] = {}
    for name, value in params.items():
        *sections, key = name.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = value
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)  # as config.yaml


def _best(tune: dict[str, Any], label: str) -> str:
    best = tune.get("best")
    if not best:
        return ("<h2>Best trial</h2><p>No trial has completed with a defined validation value, "
                "so there is no best configuration yet.</p>")
    config = RunDir(Path()).best_config.name
    return (f"<h2>Best trial</h2><p>Trial {escape(best.get('number'))}: validation "
            f"{escape(label)} {escape(fmt(best.get('value')))} after "
            f"{escape(fmt(best.get('epochs')))} epoch{'' if best.get('epochs') == 1 else 's'}, "
            "with</p>"
            + (f"<p><strong>{escape(best['ties'])} trials tie at this value</strong> (the "
               "metric's ceiling on this validation split, or equal predictions): the search "
               "cannot tell them apart, and the first of them is taken. A larger validation "
               "split, or a finer metric (e.g. --metric log_loss), separates them.</p>"
               if (best.get("ties") or 0) > 1 else "")
            + table(["parameter", "value"], _param_rows(best.get("params")))
            + f"<p>These are the tuned values of <code>{escape(config)}</code> (already written "
            "beside this page, with the rest of the search's configuration); train with them "
            f"with <code>deepfit train {escape(config)}</code>.</p>"
            f"<pre>{escape(best_yaml(best.get('params') or {}))}</pre>")


def refit_sentence(refit: Any, epochs: Any) -> str:
    """How the final model was trained, in words."""
    if refit == "train+val":
        count = "a number of epochs" if epochs is None else f"{epochs} epochs"
        return (f"retrained on train+validation for {count} fixed in advance (no validation "
                "split is left to stop it early)")
    if refit == "train":
        return ("retrained on the training split with validation early stopping, as in the "
                "trials")
    return f"refit: {fmt(refit)}"


def _final(tune: dict[str, Any], label: str) -> str:
    final = tune.get("final")
    if not final:
        return ("<h2>Final model</h2><p>The final model has not been trained yet (the search "
                "stopped before it). Run the same <code>deepfit tune</code> command again: it "
                "continues the study from its storage and trains the final model.</p>")
    test = {k: v for k, v in (final.get("test") or {}).items()
            if v is None or isinstance(v, (int, float))}
    first = [k for k in test if k == tune.get("metric")]
    rows = [(LABELS.get(k, k), fmt(test[k])) for k in [*first, *(k for k in test if k not in first)]]
    report = RunDir(Path(final.get("path") or ".")).report.as_posix()
    return ("<h2>Final model</h2><p>The best configuration, "
            f"{escape(refit_sentence(final.get('refit'), final.get('epochs')))}, then evaluated "
            f"once on the test split. Its full report: <a href='{escape(report)}'>"
            f"{escape(report)}</a>.</p>"
            + (table(["metric", "test"], rows) if rows else "<p>No test metrics recorded.</p>"))


def _nested(tune: dict[str, Any]) -> str:
    nested = tune.get("nested")
    if not nested:
        return ""
    folds = nested.get("per_fold") or []
    label = LABELS.get(nested.get("metric"), nested.get("metric"))
    inner = any("validation" in f for f in folds)  # the inner search's best value
    rows = [(f.get("fold"), "; ".join(f"{k}={param_text(v)}"
                                      for k, v in (f.get("best_params") or {}).items()) or NO_VALUE,
             *([fmt(f.get("validation"))] if inner else []), fmt(f.get("test")),
             fmt(f.get("trials"))) for f in folds]
    links = ", ".join(f"<a href='{escape(RunDir(Path(str(f.get('fold')))).tune_report.as_posix())}'>"
                      f"{escape(f.get('fold'))}</a>" for f in folds)
    summary = mean_sd_cell({"mean": nested.get("mean"), "sd": nested.get("sd"),
                            "folds": sum(f.get("test") is not None for f in folds)}, len(folds))
    return ("<h2>Nested cross-validation</h2><p>The whole search was repeated inside each of "
            f"{escape(nested.get('folds'))} outer folds, and the configuration it chose was "
            "evaluated once on the outer fold it never saw. The mean therefore estimates the "
            "whole tuning procedure (search, choice and refit) on new data: it is the number "
            f"to report in a paper.</p><p><b>Test {escape(label)}: {escape(summary)}</b> "
            "(mean ± sd over the outer folds)</p>"
            + table(["outer fold", "best parameters (inner search)",
                     *([f"inner best validation {label}"] if inner else []), f"test {label}",
                     "inner trials"], rows, numeric_from=2)
            + (f"<p>Each outer fold's own search, with its trials and plots: {links}.</p>"
               if folds else ""))


def _dash(value: Any) -> str:
    return NO_VALUE if value is None else str(value)


def _trials(tune: dict[str, Any], trials: list[dict], label: str) -> str:
    names = param_names(trials, tune.get("space") or {})
    rows = [(t.get("number"), t.get("state"),
             fmt(t.get("value")) if t.get("state") == "complete" else NO_VALUE,
             *(param_text((t.get("params") or {}).get(n)) for n in names),
             _dash(t.get("epochs")), _dash(t.get("pruned_at")),
             NO_VALUE if t.get("seconds") is None else f"{t['seconds']:.1f}",
             shorten(t["error"], 24) if t.get("error") else "", _dash(t.get("retry_of")))
            for t in trials]
    if not rows:
        return "<h2>Trials</h2><p>No trial has run yet.</p>"
    errors = "".join(f"<div class='note'>Trial {escape(t.get('number'))} failed: "
                     f"{escape(t['error'])}</div>" for t in trials if t.get("error"))
    return ("<h2>Trials</h2>" + table(["trial", "state", f"validation {label}", *names, "epochs",
                                       "pruned at", "seconds", "error", "retry of"], rows,
                                      numeric_from=2) + errors)


def _how_to_read(tune: dict[str, Any]) -> str:
    pruner = tune.get("pruner")
    pruning = ("Nothing was pruned: every trial trained to the end (pruner: none)."
               if pruner == "none" else
               f"A pruned trial was stopped early because its validation value after some "
               f"epoch was worse than earlier trials' at the same epoch (pruner: {pruner}); it "
               "has no final value and cannot be the best.")
    sentences = [
        "Every trial trained one configuration on the training split and was scored on the "
        "validation split; the sampler chose each next configuration from the scores so far.",
        pruning,
        "Parameter importances are estimates from few trials: a small difference between "
        "two parameters is noise, not a finding.",
        "The best validation value is optimistic: it is the best of many tries on the same "
        "validation split, so part of it is luck.",
        "The honest numbers are the final model's test value (the test split played no part "
        "in the choice) and, when present, the nested cross-validation mean, which also "
        "accounts for the search itself."]
    return "<h2>How to read this page</h2>" + "".join(f"<p>{escape(s)}</p>" for s in sentences)


def tuning_lines(tuning: dict[str, Any]) -> list[str]:
    """The sentences of a tuned run's "Tuning" section (from its tuning.json), shared by
    report.html and report.md."""
    total, complete, pruned = (tuning.get(k) for k in ("trials", "complete", "pruned"))
    failed = total - complete - pruned if None not in (total, complete, pruned) else 0
    label = LABELS.get(tuning.get("metric"), tuning.get("metric"))
    lines = [f"This model's configuration was chosen by tuning: {fmt(total)} trials "
             f"({fmt(complete)} complete, {fmt(pruned)} pruned"
             + (f", {failed} failed" if failed > 0 else "") + f"), sampler {tuning.get('sampler')}, "
             f"pruner {tuning.get('pruner')}; best validation {label} "
             f"{fmt(tuning.get('best_value'))} ({tuning.get('direction')}).",
             "The chosen configuration was "
             f"{refit_sentence(tuning.get('refit'), tuning.get('epochs'))}."]
    if tuning.get("test_used_in_search") is False:
        lines.append("The test split was not used in the search: this report's test figures "
                     "are an honest estimate.")
    elif tuning.get("test_used_in_search"):
        lines.append("The test split was used in the search: this report's test figures are "
                     "optimistic.")
    return lines


def tuning_html(tuning: dict[str, Any]) -> str:
    """The "Tuning" section of a tuned run's HTML report: the search in words, the chosen
    values, a link to the tune report."""
    link = tuning.get("tune_report")
    return ("<h2>Tuning</h2>" + "".join(f"<p>{escape(s)}</p>" for s in tuning_lines(tuning))
            + table(["parameter", "value"], _param_rows(tuning.get("params")))
            + (f"<p>Every trial, the plots and the test estimate of the whole search: "
               f"<a href='{escape(link)}'>the tune report</a> ({escape(link)}).</p>"
               if link else ""))


def tuning_markdown(tuning: dict[str, Any]) -> list[str]:
    """The "Tuning" section of a tuned run's Markdown report, as lines."""
    link = tuning.get("tune_report")
    return (["", "## Tuning", ""] + [f"{s}\n" for s in tuning_lines(tuning)]
            + [f"- `{name}`: {value}" for name, value in _param_rows(tuning.get("params"))]
            + ([] if not link else ["", f"Every trial and the plots: [the tune report]({link})"]))
