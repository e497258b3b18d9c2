"""Compare finished runs: metrics side by side and, when two runs were tested on the same
rows (same ids and true labels), paired tests of their difference (``evaluate.paired``):
McNemar and a paired bootstrap of accuracy for classifiers, a paired bootstrap of RMSE for
regressions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.errors import RunError
from deepfit.evaluate.paired import mcnemar, paired_bootstrap
from deepfit.run import comparison_path, require_finished, resolve_run, write_text


def _load(path: str | Path) -> dict[str, Any]:
    rd = require_finished(resolve_run(path))
    summary = rd.read_summary()
    if summary.get("task") == "detection":
        raise RunError(f"'{rd.path}' is an object-detection run; deepfit compare compares "
                       "classification and regression runs (their test predictions row by "
                       "row); compare detectors by the mAP tables of their reports")
    if not rd.predictions.is_file():
        raise RunError(f"'{rd.path}' has no {rd.predictions.name}; it did not finish")
    history = pd.read_csv(rd.history) if rd.history.is_file() else pd.DataFrame()
    return {"name": rd.path.name, "path": rd.path, "summary": summary,
            "metrics": rd.read_metrics(), "predictions": pd.read_csv(rd.predictions),
            "history": history}


def compare_runs(paths: list[str | Path], seed: int = 0) -> dict[str, Any]:
    """Load two or more runs and compare them. Paired tests compare each run with the first."""
    if len(paths) < 2:
        raise RunError("compare needs at least two runs")
    runs = [_load(p) for p in paths]
    seen: dict[str, int] = {}
    for run in runs:  # the same run named twice must still get two columns and curves
        seen[run["name"]] = seen.get(run["name"], 0) + 1
        if seen[run["name"]] > 1:
            run["name"] = f"{run['name']} ({seen[run['name']]})"
    tasks = {r["summary"]["data"]["task"] for r in runs}
    if len(tasks) > 1:
        raise RunError(f"the runs solve different tasks ({', '.join(sorted(tasks))}); compare "
                       "runs of one task")
    task = tasks.pop()
    pairs = []
    base = runs[0]
    for other in runs[1:]:
        pairs.append(_paired(base, other, task, seed))
    return {"task": task, "runs": runs, "pairs": pairs}


def _paired(a: dict, b: dict, task: str, seed: int) -> dict[str, Any]:
    pa, pb = a["predictions"], b["predictions"]
    id_a, id_b = pa.columns[0], pb.columns[0]
    out: dict[str, Any] = {"a": a["name"], "b": b["name"]}
    if len(pa) != len(pb) or set(pa[id_a].astype(str)) != set(pb[id_b].astype(str)):
        out["paired"] = False
        out["reason"] = ("the runs were tested on different rows (different data, split or "
                         "seed); only their separate metrics can be compared")
        return out
    pb = pb.set_index(pb[id_b].astype(str)).loc[pa[id_a].astype(str)].reset_index(drop=True)
    if not (_text(pa["true"]) == _text(pb["true"])).all():
        out["paired"] = False
        out["reason"] = "the same row ids have different true labels in the two runs"
        return out
    out["paired"] = True
    out["n"] = len(pa)
    if task == "regression":
        err_a = (pa["true"] - pa["predicted"]).to_numpy(float) ** 2
        err_b = (pb["true"] - pb["predicted"]).to_numpy(float) ** 2
        out["metric"] = "rmse"
        out["bootstrap"] = paired_bootstrap(err_a, err_b, reduce="rmse", seed=seed)
        return out
    # Correct = the predicted class, or the whole predicted label set, equals the truth.
    ca = _text(pa["true"]) == _text(pa["predicted"])
    cb = _text(pb["true"]) == _text(pb["predicted"])
    out["metric"] = "accuracy" if task != "multilabel" else "subset accuracy"
    out["mcnemar"] = mcnemar(ca, cb)
    out["bootstrap"] = paired_bootstrap(ca.astype(float), cb.astype(float), seed=seed)
    return out


def _text(values: pd.Series) -> np.ndarray:
    """Labels as strings; an empty label set (read back from CSV as missing) is ''."""
    return values.fillna("").astype(str).to_numpy()


def default_output(result: dict[str, Any]) -> Path:
    """compare.html beside the first run, or compare-2.html, ... : never an existing file."""
    folder = result["runs"][0]["path"].parent
    for i in range(1, 10_000):
        out = comparison_path(folder, i)
        if not out.exists():
            return out
    raise RunError(f"too many comparisons in '{folder}'")  # pragma: no cover


def write_comparison(result: dict[str, Any], out: Path | None = None,
                     force: bool = False) -> Path:
    """Write compare.html (self-contained) with the overlaid curves. An existing ``out`` is
    overwritten only with ``force``; without ``out``, :func:`default_output`."""
    from deepfit.report.compare import render_comparison

    out = default_output(result) if out is None else Path(out)
    if out.exists() and not force:
        raise RunError(f"'{out}' already exists; choose another -o or pass --force")
    write_text(out, render_comparison(result))  # atomic; makes the folder
    return out
