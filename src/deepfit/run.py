"""The run directory: every file of a run is named here, and written and read through here.

    runs/<name>/
      config.yaml      resolved config; `deepfit train runs/<name>/config.yaml` re-runs it
      schema.json      fitted preprocessing and target coding (plain JSON, no pickle)
      history.csv      one row per epoch
      metrics.json     {"val": {...}, "test": {...}, "threshold": 0.5}
      predictions.csv  one row per test example
      summary.json     everything the report shows, as plain values
      diagnostics.json per epoch and layer: gradient norms, updates, activations
                       (train.diagnostics; see docs/inspect.md)
      checkpoints/     best.pt (best epoch's weights), last.pt (full training state)
      model.safetensors  the best weights, exported
      plots/           PNG figures
      explanations/    deepfit explain: one numbered folder of maps per call
      tensorboard/     TensorBoard event files (only with track.tensorboard=true)
      report.html, report.md
      FAILED.txt       only in a run stopped by an error

A cross-validation folder (``deepfit.cv``) is made the same way and holds ``cv.json`` and
``cv.html`` beside its folds; ``compare.html`` goes beside the first compared run. A tuning
folder (``deepfit.tune``) holds ``tune.json``, ``tune.html``, ``best.yaml``, ``study.db`` and
its final run(s); ``tuning.json`` in a run says the search that chose its config.

The rule (docs/architecture.md, "The run directory"): no module but this one spells a run
file's name. Text and JSON are written by ``RunDir.write_text`` / ``write_json``; the files
whose bytes a lower layer makes (history.csv, checkpoints, model.safetensors, plots) are
written by that layer's own function, to the path ``RunDir`` names (handed down by
``pipeline``), with the same ``files.atomic_write``. Lower layers never import this module.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deepfit.errors import DeepfitError, RunError
from deepfit.train.checkpoint import atomic_write_bytes, load_latest

COMPARISON = "compare.html"  # beside the first compared run; compare-2.html, ... if taken
# deepfit export: the model's file in an export folder (RUN/export/<format>/), per format,
# beside its machine-readable input schema and its model card.
EXPORT_FILES = {"onnx": "model.onnx", "torchscript": "model.pt",
                "exported-program": "model.pt2", "safetensors": "model.safetensors"}
EXPORT_SCHEMA, EXPORT_CARD = "input_schema.json", "model_card.md"


class RunDir:
    """Paths inside one run directory, plus safe writers."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.schema = self.path / "schema.json"
        self.history = self.path / "history.csv"
        self.metrics = self.path / "metrics.json"
        self.predictions = self.path / "predictions.csv"
        self.summary = self.path / "summary.json"
        self.diagnostics = self.path / "diagnostics.json"  # train.diagnostics: per epoch, per layer
        self.checkpoints = self.path / "checkpoints"
        self.best = self.checkpoints / "best.pt"
        self.last = self.checkpoints / "last.pt"
        self.weights = self.path / "model.safetensors"  # the best weights, exported
        self.exports = self.path / "export"  # deepfit export: one folder per format
        self.plots = self.path / "plots"
        self.explanations = self.path / "explanations"  # deepfit explain: 1/, 2/, ... per call
        self.tensorboard = self.path / "tensorboard"  # track.tensorboard: the event files
        self.report = self.path / "report.html"
        self.report_md = self.path / "report.md"
        self.failed = self.path / "FAILED.txt"  # in a run stopped by an error: the error
        self.cv = self.path / "cv.json"  # a cross-validation folder: the summary
        self.cv_report = self.path / "cv.html"
        # A tuning folder (``deepfit.tune``): the study's description and trials, its report,
        # the best config as a YAML ``deepfit train`` takes, the default SQLite storage;
        # a run made by tuning (the final model) holds ``tuning.json``, which its report shows.
        self.tune = self.path / "tune.json"
        self.tune_report = self.path / "tune.html"
        self.best_config = self.path / "best.yaml"
        self.study_db = self.path / "study.db"
        self.nested = self.path / "nested.json"
        self.tuning = self.path / "tuning.json"
        # A run saved from the playground: the page's settings, its points (with their
        # split), and its history per recorded step with the test loss.
        self.playground = self.path / "playground.json"
        self.playground_points = self.path / "points.csv"
        self.playground_history = self.path / "playground_history.csv"

    def is_run(self) -> bool:
        """Whether the folder holds a deepfit run (finished or not): it has a config."""
        return self.config.is_file()

    @classmethod
    def create(cls, out: str | Path, name: str | None, default_name: str) -> RunDir:
        """Make a new, empty run directory. An existing run is never reused or overwritten:
        an explicit name that exists is an error; a default name gets a numeric suffix."""
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise RunError(f"output folder '{out}' is a file; choose another --out")
        out.mkdir(parents=True, exist_ok=True)
        if name is not None:
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in (".", ".."):
                raise RunError(f"run name {name!r} may only use letters, digits, '.', '_' and '-'")
            path = out / name
            try:
                path.mkdir()
            except FileExistsError:
                raise RunError(f"run '{path}' already exists; choose another --name (runs are "
                               "never overwritten)") from None
            return cls(path)
        for i in range(1, 10_000):
            path = out / (default_name if i == 1 else f"{default_name}-{i}")
            try:
                path.mkdir()  # atomic: two processes never get the same folder
                return cls(path)
            except FileExistsError:
                continue
        raise RunError(f"too many runs named '{default_name}' in '{out}'")  # pragma: no cover

    def write_text(self, path: Path, text: str) -> None:
        write_text(path, text)

    def write_bytes(self, path: Path, write: Callable[[Any], Any]) -> None:
        """``write(binary_file)`` into ``path``, atomically (``files.atomic_write``)."""
        atomic_write_bytes(path, write)

    def write_json(self, path: Path, value: Any) -> None:
        self.write_text(path, json.dumps(_jsonable(value), indent=2, allow_nan=False) + "\n")

    def relative(self, files: dict[str, Path]) -> dict[str, str]:
        """``{title: file}`` with each file's path inside the run folder (summary.json's
        way of naming a run's figures)."""
        return {title: str(Path(path).relative_to(self.path)) for title, path in files.items()}

    def read_summary(self) -> dict[str, Any]:
        return self.read_json(self.summary)

    def read_metrics(self) -> dict[str, Any]:
        return self.read_json(self.metrics)

    def read_config_text(self) -> str:
        """config.yaml as written (the report shows it verbatim)."""
        if not self.config.is_file():
            raise RunError(f"'{self.path}' is not a deepfit run: {self.config.name} is missing")
        return self.config.read_text(encoding="utf-8")

    def read_json(self, path: Path) -> Any:
        if not path.is_file():
            raise RunError(f"'{self.path}' is not a finished deepfit run: {path.name} is missing")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RunError(f"'{path}' is damaged (not valid JSON)") from None


def resolve_run(path: str | Path) -> RunDir:
    """A run directory given by path, or by name under ./runs."""
    candidates = [Path(path), Path("runs") / str(path)]
    for candidate in candidates:
        if RunDir(candidate).is_run():
            return RunDir(candidate)
    raise RunError(f"no deepfit run at '{path}' (looked for {RunDir(path).config.name} there "
                   "and in runs/); list runs with 'deepfit runs'")


def runs_in(folder: str | Path) -> list[RunDir]:
    """The runs directly inside ``folder``, by name (none if it is not a folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [RunDir(p) for p in sorted(folder.iterdir()) if RunDir(p).is_run()]


def comparison_path(folder: Path, i: int) -> Path:
    """The ``i``-th name for a comparison page in ``folder``: compare.html, compare-2.html."""
    stem, suffix = COMPARISON.rsplit(".", 1)
    return folder / (COMPARISON if i == 1 else f"{stem}-{i}.{suffix}")


def write_text(path: Path, text: str) -> None:
    """UTF-8 ``text`` into ``path``, atomically; a failure is one RunError naming the path."""
    atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))


def default_run_name(data_name: str, model_name: str) -> str:
    model = model_name.split(":")[-1].lower()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{data_name}-{model}")
    return f"{safe}-{stamp}"


def unfinished(rd: RunDir, where: bool = True) -> str | None:
    """None for a finished run, else what happened to it and what to do, in words:
    ``did not finish (interrupted in epoch 3); continue it with 'deepfit resume RUN'``.
    ``where``: read the checkpoint for the epoch it stopped in."""
    if rd.summary.is_file():
        return None
    if rd.failed.is_file():
        lines = rd.failed.read_text(encoding="utf-8").strip().splitlines()
        return (f"failed ({lines[0] if lines else 'no reason recorded'}); it has no results: "
                f"fix the cause and start again with 'deepfit train {rd.config}'")
    if rd.checkpoints.is_dir() and any(rd.checkpoints.glob("*last*")):
        stopped = f" ({_stopped_at(rd)})" if where else ""
        return f"did not finish{stopped}; continue it with 'deepfit resume {rd.path}'"
    return f"did not finish and has no checkpoint; start it again with 'deepfit train {rd.config}'"


def require_finished(rd: RunDir) -> RunDir:
    """``rd`` if the run finished; else a RunError saying what happened and what to do."""
    state = unfinished(rd)
    if state is not None:
        raise RunError(f"run '{rd.path}' {state}")
    return rd


def record_failure(rd: RunDir, error: BaseException, new: bool) -> None:
    """A run stopped by an error (not an interruption). A new run without a checkpoint holds
    nothing useful and is removed; otherwise FAILED.txt records the error, and 'deepfit runs',
    'evaluate', 'report', 'predict' and 'compare' say the run failed."""
    if new and not any(rd.checkpoints.glob("*.pt")):
        shutil.rmtree(rd.path, ignore_errors=True)
    else:
        text = str(error) if isinstance(error, DeepfitError) else (
            f"internal error {type(error).__name__}: {error}")
        rd.write_text(rd.failed, text.replace("\n", " ") + "\n")


def _stopped_at(rd: RunDir) -> str:
    try:
        state, _ = load_latest(rd.last)
    except RunError:
        return "its checkpoint is damaged"
    mid = state.get("mid_epoch")
    return (f"interrupted in epoch {mid['epoch']}" if mid
            else f"interrupted after epoch {state.get('epoch', '?')}")


def _jsonable(value: Any) -> Any:
    """Plain JSON: NumPy scalars unwrapped, NaN/inf as null (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
