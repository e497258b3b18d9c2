"""Inside the network: what a run's training diagnostics (``train.diagnostics``) leave on
disk, and how they are read back (``deepfit inspect RUN``, the report).

``diagnostics.json`` holds every epoch's record (``deepfit.train.builtin.diagnostics``);
``summary.json`` holds the last epoch's record, the plain-language notes and the plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from deepfit.errors import RunError
from deepfit.evaluate.diagnostic_plots import diagnostic_plots
from deepfit.evaluate.representations import (ROWS_MAX, cnn_pictures, decision_maps,
                                              projection)
from deepfit.report.diagnosis import diagnosis_notes
from deepfit.report.inspect import NO_SIGN, diagnostic_tables
from deepfit.result import load
from deepfit.run import RunDir
from deepfit.train.builtin.diagnostics import Diagnostics, probed


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
            "last": records[-1] if records else None, "probed": probed(records),
            "notes": diagnosis_notes(records),
            "plots": rd.relative(drawn)}


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
    tables += diagnostic_tables(records[-1], probed(records))
    return tables, diagnosis_notes(records) or [NO_SIGN]


def record_representations(trainer: Any, bundle: Any, head: Any, rd: RunDir,
                           plots: bool) -> Optional[dict[str, Any]]:
    """What the network learned, drawn on the test split (``eval.plots``): the last hidden
    layer projected to 2-D, the decision map and hidden neurons of a 2-D input, a CNN's
    first-layer filters and feature maps. ``{"plots": {title: path}, "reason": why some are
    missing or None}``; None without plots."""
    if not plots:
        return None
    test, schema = bundle.test, bundle.schema
    if not isinstance(test.X, torch.Tensor):
        return {"plots": {}, "reason": "the test images are streamed from disk; the pictures "
                "of learned representations need them in memory"}
    model, folder = trainer.model, rd.plots
    X = test.X[:ROWS_MAX].to(trainer.device)
    if trainer.inputs is not None:  # stored images -> network input, as in evaluation
        X = torch.cat([trainer.inputs(X[i:i + 256], train=False) for i in range(0, len(X), 256)])
    y = test.y[:ROWS_MAX].cpu().numpy()
    names = schema.class_names if schema.task in ("binary", "multiclass") else []
    drawn: dict[str, Path] = {}
    reason = None
    try:
        picture = projection(model, X, y.astype(int) if names else y, names,
                             folder / "representation.png", seed=trainer.cfg.seed)
        if picture is None:
            reason = "the model has no hidden layer to project"
        else:
            drawn["Last hidden layer, projected"] = picture
        if tuple(schema.input_shape) == (2,):
            drawn.update(decision_maps(model, X, y.astype(int) if names else y, names,
                                       lambda out: head.scores(out).float().cpu(),
                                       folder / "decision_map.png",
                                       folder / "hidden_neurons.png"))
        if schema.image is not None:
            drawn.update(cnn_pictures(model, X, folder / "filters.png",
                                      folder / "feature_maps.png"))
    except Exception as exc:  # pictures never break a finished run: say why they are missing
        reason = f"drawing them failed ({(str(exc).splitlines() or [type(exc).__name__])[0]})"
    return {"plots": rd.relative(drawn), "reason": reason}
