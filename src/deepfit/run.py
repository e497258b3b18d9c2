"""The run directory: what is written where, and reading a finished run back.

    runs/<name>/
      config.yaml      resolved config; `deepfit train runs/<name>/config.yaml` re-runs it
      schema.json      fitted preprocessing and target coding (plain JSON, no pickle)
      history.csv      one row per epoch
      metrics.json     {"val": {...}, "test": {...}, "threshold": 0.5}
      predictions.csv  one row per test example
      summary.json     everything the report shows, as plain values
      checkpoints/     best.pt (best epoch's weights), last.pt (full training state)
      plots/           PNG figures
      report.html, report.md
"""

from __future__ import annotations

import json
import math
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from deepfit.errors import DeepfitError, RunError
from deepfit.train.checkpoint import atomic_write_bytes, load_latest


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
        self.checkpoints = self.path / "checkpoints"
        self.best = self.checkpoints / "best.pt"
        self.last = self.checkpoints / "last.pt"
        self.weights = self.path / "model.safetensors"  # the best weights, exported
        self.plots = self.path / "plots"
        self.report = self.path / "report.html"

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
        atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))

    def write_json(self, path: Path, value: Any) -> None:
        self.write_text(path, json.dumps(_jsonable(value), indent=2, allow_nan=False) + "\n")

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
        if (candidate / "config.yaml").is_file():
            return RunDir(candidate)
    raise RunError(f"no deepfit run at '{path}' (looked for config.yaml there and in runs/); "
                   "list runs with 'deepfit runs'")


def default_run_name(data_name: str, model_name: str) -> str:
    model = model_name.split(":")[-1].lower()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{data_name}-{model}")
    return f"{safe}-{stamp}"


FAILED = "FAILED.txt"  # in a run stopped by an error; its first line is the error


def unfinished(rd: RunDir, where: bool = True) -> str | None:
    """None for a finished run, else what happened to it and what to do, in words:
    ``did not finish (interrupted in epoch 3); continue it with 'deepfit resume RUN'``.
    ``where``: read the checkpoint for the epoch it stopped in."""
    if rd.summary.is_file():
        return None
    if (rd.path / FAILED).is_file():
        lines = (rd.path / FAILED).read_text(encoding="utf-8").strip().splitlines()
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
        rd.write_text(rd.path / FAILED, text.replace("\n", " ") + "\n")


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
