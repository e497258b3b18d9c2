"""Cross-validation: each fold is a full deepfit run (its own preprocessing fitted on its
own training part, its own validation split for early stopping), and the folds' test
metrics are summarised as mean ± standard deviation.

    runs/<data>-cv-<time>/
      fold1-1/ ... fold1-K/    one ordinary run directory per fold (repeat r: fold<r>-<k>)
      cv.json                  per-fold test metrics and the summary
      cv.html                  the summary table and the folds' curves overlaid

The folds are checked before the folder is made. If a fold fails, the folder is removed when
no fold finished, else the finished folds stay with FAILED.txt saying what stopped it.
"""

from __future__ import annotations

import math
import shutil
from typing import Any, Optional

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from deepfit.data.bundle import build_bundle
from deepfit.data.sources import load_table
from deepfit.errors import DataError, DeepfitError, did_you_mean
from deepfit.evaluate.metrics import HEADLINE
from deepfit.pipeline import resolve_config, train
from deepfit.report.cv import render_cv
from deepfit.run import RunDir, default_run_name


def fold_splits(n: int, labels: Optional[np.ndarray], groups: Optional[np.ndarray], folds: int,
                repeats: int, seed: int) -> list[tuple[str, pd.Series]]:
    """``(name, per-row 'train'/'test')`` for every fold of every repeat. Stratified when
    ``labels`` is given, grouped (no group in two parts) when ``groups`` is given."""
    out = []
    X = np.zeros((n, 1))
    for r in range(repeats):
        rs = seed + r
        if groups is not None and labels is not None:
            splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=rs)
        elif groups is not None:
            splitter = GroupKFold(folds)
        elif labels is not None:
            splitter = StratifiedKFold(folds, shuffle=True, random_state=rs)
        else:
            splitter = KFold(folds, shuffle=True, random_state=rs)
        try:
            parts = list(splitter.split(X, labels, groups))
        except ValueError as exc:
            raise DataError(f"cannot make {folds} folds: {exc}") from None
        for k, (_, test) in enumerate(parts, start=1):
            split = pd.Series("train", index=range(n))
            split.iloc[test] = "test"
            out.append((f"fold{r + 1}-{k}", split))
    return out


def cross_validate(config: Any = None, *, data: Any = None, folds: int = 5, repeats: int = 1,
                   groups: Optional[str] = None, **overrides: Any) -> dict[str, Any]:
    """K-fold cross-validation of one configuration; returns (and writes) the summary.

    Args:
        config, data, **overrides: as for ``deepfit.train``.
        folds: number of folds (>= 2). repeats: repetitions with reshuffled folds.
        groups: a column whose rows must stay together (e.g. patient id); it is dropped from
            the features.

    Example:
        >>> cv = cross_validate(data="iris", folds=3, epochs=5, progress=False,
        ...                     out="/tmp/deepfit-doc")       # doctest: +SKIP
        >>> cv["summary"]["accuracy"]["mean"]                  # doctest: +SKIP
    """
    if folds < 2:
        raise DataError(f"--folds must be at least 2, got {folds}")
    if repeats < 1:
        raise DataError(f"--repeats must be at least 1, got {repeats}")
    if isinstance(data, str):
        overrides["data.source"], data = data, None
    cfg = resolve_config(config, **overrides)
    seed = cfg.data.seed if cfg.data.seed is not None else cfg.train.seed
    probe = build_bundle(cfg.data, data, seed=seed)  # task and target, validated once
    table = load_table(cfg.data, data, seed)
    task = probe.schema.task
    groups = groups or cfg.data.group_column
    if groups is not None:
        if groups not in table.frame.columns:
            raise DataError(f"group column '{groups}' is not in the data"
                            f"{did_you_mean(groups, table.frame.columns)}")
        # Each fold's validation rows are carved from its training rows by whole groups too.
        cfg = cfg.override({"data.group_column": groups})
        group_values = table.frame[groups].astype(str).to_numpy()
    else:
        group_values = None
    labels = None
    if task in ("binary", "multiclass"):
        labels = probe.schema.target.relabel(table.frame[probe.schema.target.column])
        labels = labels.astype(str).to_numpy()  # stratified by the classes data.label_map made
    check_folds(folds, labels, group_values, groups, len(table.frame))
    # Every split is made, and checked, before any folder is created.
    splits = fold_splits(len(table.frame), labels, group_values, folds, repeats, seed)
    rd = RunDir.create(cfg.out, cfg.name, default_run_name(probe.info["name"], "cv"))
    runs = []
    for name, split in splits:
        try:
            run = train(cfg.override({"out": str(rd.path), "name": name}), data=data,
                        split=split)
        except DeepfitError as exc:
            _give_up(rd, name, runs, exc)
            raise
        runs.append({"fold": name, "path": str(run.path), "metrics": run.metrics["test"],
                     "history": run.history.rows})
    keys = [k for k in HEADLINE[task] if any(k in r["metrics"] for r in runs)]
    summary = {k: _mean_sd([r["metrics"].get(k) for r in runs]) for k in keys}
    result = {"task": task, "folds": folds, "repeats": repeats, "groups": groups,
              "data": probe.info["description"], "path": str(rd.path), "summary": summary,
              "per_fold": [{"fold": r["fold"], "path": r["path"],
                            **{k: r["metrics"].get(k) for k in keys}} for r in runs]}
    rd.write_json(rd.path / "cv.json", result)
    rd.write_text(rd.path / "cv.html",
                  render_cv(result, {r["fold"]: r["history"] for r in runs}))
    return result


def check_folds(folds: int, labels: Optional[np.ndarray], groups: Optional[np.ndarray],
                group_column: Optional[str], rows: int) -> None:
    """One line when the data cannot fill ``folds`` test folds: every fold needs a row, a
    group of its own and, stratified, a row of every class."""
    if groups is not None:
        n_groups = len(np.unique(groups))
        if folds > n_groups:
            raise DataError(f"--folds {folds} is more than the {n_groups} groups in "
                            f"'{group_column}' (each group stays in one fold); use at most "
                            f"{n_groups}")
    if labels is not None:
        names, counts = np.unique(labels, return_counts=True)
        smallest = int(counts.min())
        if folds > smallest:
            raise DataError(f"--folds {folds} is more than the {smallest} rows of the smallest "
                            f"class '{names[counts.argmin()]}' (every test fold needs one of "
                            f"each class); use at most {smallest}")
    if folds > rows:
        raise DataError(f"--folds {folds} is more than the {rows} rows; use at most {rows}")


def _give_up(rd: RunDir, fold: str, runs: list, exc: Exception) -> None:
    """A fold failed: remove the cross-validation folder if no fold finished (nothing in it
    is useful), else leave the finished folds and a FAILED.txt that says what happened."""
    if not runs:
        shutil.rmtree(rd.path, ignore_errors=True)
        return
    rd.write_text(rd.path / "FAILED.txt",
                  f"cross-validation stopped in {fold}: {exc}\nfinished folds: "
                  f"{', '.join(r['fold'] for r in runs)} (each a complete run); no summary.\n")


def _mean_sd(values: list) -> dict[str, Any]:
    """Mean and sample sd over the folds where the value is defined (sd undefined for one)."""
    ok = [v for v in values if v is not None and math.isfinite(v)]
    if not ok:
        return {"mean": None, "sd": None, "folds": 0}
    return {"mean": float(np.mean(ok)), "sd": float(np.std(ok, ddof=1)) if len(ok) > 1 else None,
            "folds": len(ok)}
