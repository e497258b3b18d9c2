"""``deepfit export RUN --format F [-o OUT]`` and ``Run.export``: write the model with its
preprocessing, its input schema and its model card into one folder.

    OUT/ (default: RUN/export/<format>/)
      model.onnx | model.pt | model.pt2 | model.safetensors
      input_schema.json    the inputs and output, machine-readable
      model_card.md        data, split, metrics with intervals, use and limits, how to run

Nothing is overwritten without ``force``; each file is written atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from deepfit.errors import RunError
from deepfit.export.formats import FILE_NAMES, check_format, model_bytes
from deepfit.export.input_schema import input_schema
from deepfit.export.model_card import model_card
from deepfit.export.servable import servable
from deepfit.files import atomic_write
from deepfit.run import EXPORT_CARD, EXPORT_SCHEMA, RunDir, require_finished

SCHEMA_FILE, CARD_FILE = EXPORT_SCHEMA, EXPORT_CARD


@dataclass
class Exported:
    """Where an export went: the folder and its three files."""

    folder: Path
    model: Path
    schema: Path
    card: Path


def export_run(run: Any, fmt: str, out: Optional[str | Path] = None, force: bool = False,
               intended_use: Optional[str] = None) -> Exported:
    """Export ``run`` (a ``deepfit.Run``) in format ``fmt`` into the folder ``out``.

    Raises:
        ConfigError: an unknown format.
        RunError: the run has no directory or did not finish; a file exists (no ``force``).
        ModelError: the model cannot be exported, naming the operation.
    """
    check_format(fmt)
    if run.path is None:
        raise RunError("this run wrote no run directory (its summary and metrics are needed "
                       "for the model card); train it with an output folder")
    rd = require_finished(RunDir(run.path))
    folder = Path(out) if out is not None else rd.exports / fmt
    if folder.exists() and not folder.is_dir():
        raise RunError(f"'{folder}' is a file; -o names the folder to export into")
    target = Exported(folder, folder / FILE_NAMES[fmt], folder / SCHEMA_FILE, folder / CARD_FILE)
    taken = [p for p in (target.model, target.schema, target.card) if p.exists()]
    if taken and not force:
        raise RunError(f"'{taken[0]}' already exists; choose another -o folder or pass "
                       "--force to overwrite")
    name = rd.path.name
    schema = input_schema(run.schema, run.threshold, fmt, target.model.name, name)
    card = model_card(rd.read_summary(), schema, intended_use)
    data = model_bytes(servable(run.model, run.schema, run.head), run.schema, fmt, name, schema)
    atomic_write(target.model, lambda fh: fh.write(data))
    text = json.dumps(schema, indent=2) + "\n"
    atomic_write(target.schema, lambda fh: fh.write(text.encode("utf-8")))
    atomic_write(target.card, lambda fh: fh.write(card.encode("utf-8")))
    from deepfit.track import log_export  # a run trained with track.mlflow: its MLflow run
    log_export(run.config, rd, target.folder)  # gets the export (a failure: one warning)
    return target
