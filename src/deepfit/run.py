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
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from deepfit.errors import RunError
from deepfit.train.checkpoint import atomic_write_bytes


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
