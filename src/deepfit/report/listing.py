"""The table of ``deepfit runs``: one row per run folder, with its test metrics as the
results table names them, and a warning column (a collapsed model, a failed run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepfit.errors import RunError
from deepfit.report.format import LABELS, fmt, shorten
from deepfit.report.notes import summary_collapse
from deepfit.run import runs_in, unfinished

# The test metrics 'deepfit runs' shows per task, as the results table names them.
RUNS_METRICS = {"binary": ("accuracy", "f1", "roc_auc"),
                "multiclass": ("accuracy", "f1_macro", "roc_auc"),
                "regression": ("rmse", "r2"),
                "multilabel": ("roc_auc_macro", "f1_macro", "subset_accuracy"),
                "detection": ("map50", "map50_95")}
RUNS_COLUMNS = ("run", "data", "task", "epochs", "test metrics (as in the results table)",
                "warning", "created")


def runs_rows(folder: Path) -> list[tuple[str, ...]]:
    """One row of ``RUNS_COLUMNS`` per run in ``folder``, oldest first. A run that did not
    finish shows why (shortened at a word, never mid-word) in the warning column; a run whose
    model predicts one class for every test row says "collapsed", as its report does."""
    rows = []
    for rd in runs_in(folder):
        state = unfinished(rd, where=False)
        try:
            s = rd.read_summary()
        except (OSError, RunError):
            reason = state or f"{rd.summary.name} is damaged"
            rows.append((rd.path.name, "", "", "", "", shorten(reason.split(";")[0]), ""))
            continue
        try:
            rows.append(_row(rd, s))
        except (KeyError, TypeError, AttributeError, RunError) as exc:
            # One odd folder (another deepfit version, a hand-edited summary) never hides
            # the others.
            what = f"'{exc.args[0]}' is missing" if isinstance(exc, KeyError) else str(exc)
            rows.append((rd.path.name, "", "", "", "",
                         shorten(f"{rd.summary.name} unreadable: {what}"), ""))
    return rows


def _row(rd: Any, s: dict[str, Any]) -> tuple[str, ...]:
    task = s["data"]["task"]
    # A detection run's metrics are in metrics.json only (its report reads them there).
    test = (s["metrics"] if "metrics" in s else rd.read_metrics()).get("test") or {}
    metric = ", ".join(f"{LABELS.get(k, k)} {fmt(test.get(k))}"
                       for k in RUNS_METRICS.get(task, ()) if k in test)
    warning = "collapsed: one class for every test row" if summary_collapse(s) else ""
    return (rd.path.name, s["data"]["name"], task, str(s["training"]["epochs_run"]), metric,
            warning, s["created"])
