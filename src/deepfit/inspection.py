"""Inside the network: what a run's training diagnostics (``train.diagnostics``) leave on
disk, and how they are read back (``deepfit inspect RUN``, the report).

``diagnostics.json`` holds every epoch's record (``deepfit.train.builtin.diagnostics``);
``summary.json`` holds the last epoch's record, the plain-language notes and the plots.
"""

from __future__ import annotations

from typing import Any, Optional

from deepfit.errors import RunError
from deepfit.evaluate.diagnostic_plots import diagnostic_plots
from deepfit.report.diagnosis import diagnosis_notes
from deepfit.report.inspect import activation_table, gradient_rows
from deepfit.result import load
from deepfit.run import RunDir
from deepfit.train.builtin.diagnostics import Diagnostics


def record_diagnostics(trainer: Any, rd: RunDir, plots: bool) -> Optional[dict[str, Any]]:
    """Write the trainer's diagnostics to ``diagnostics.json`` (and their plots when
    ``plots``); the summary's ``diagnostics`` entry, or None when they were not recorded
    (``train.diagnostics=false``)."""
    diagnostics = trainer.find(Diagnostics)
    if diagnostics is None:
        return None
    records = diagnostics.records
    rd.write_json(rd.diagnostics, {"records": records})
    drawn = diagnostic_plots(records, rd.plots) if plots else {}
    return {"file": rd.diagnostics.name, "epochs": len(records),
            "last": records[-1] if records else None, "notes": diagnosis_notes(records),
            "plots": {title: str(path.relative_to(rd.path)) for title, path in drawn.items()}}


def read_diagnostics(rd: RunDir) -> Optional[list[dict[str, Any]]]:
    """A run's diagnostics records, or None when it has none (recorded off, or older)."""
    if not rd.diagnostics.is_file():
        return None
    return rd.read_json(rd.diagnostics).get("records", [])


def inspect_run(path: Any) -> tuple[list[tuple[str, list[str], list[tuple]]], list[str]]:
    """What ``deepfit inspect RUN`` prints: ``(tables, notes)``, each table a ``(title,
    header, rows)``: the model summary (rebuilt from the run's saved model), then the last
    epoch's gradients and activations and the notes when diagnostics were recorded."""
    run = load(path)
    summary = run.summary()
    if summary.error:
        raise RunError(f"cannot summarise the model of '{run.path}': {summary.error}")
    tables = [(f"Layers of {run.config.model.name} ({summary.parameters:,} parameters, "
               f"{summary.trainable:,} trainable)", *summary.table())]
    records = read_diagnostics(RunDir(run.path))
    if records is None:
        return tables, ["No training diagnostics in this run (train.diagnostics=false, or a "
                        "run made before deepfit recorded them)."]
    if not records:
        return tables, ["The run recorded no epoch of training diagnostics."]
    last = records[-1]
    tables.append((f"Gradients and updates at epoch {last['epoch']}", *gradient_rows(last)))
    header, rows = activation_table(last)
    if rows:
        tables.append((f"Activations on {last['probe_rows']} probe rows at epoch "
                       f"{last['epoch']}", header, rows))
    return tables, diagnosis_notes(records) or [
        "No sign of vanishing or exploding gradients, dead or saturated units."]
