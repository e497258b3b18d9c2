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

import copy
import math
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold
from torch import nn

from deepfit.data.bundle import build_bundle
from deepfit.data.sources import load_table
from deepfit.errors import (ConfigError, DataError, DataWarning, DeepfitError, did_you_mean,
                            one_of)
from deepfit.evaluate.metrics import HEADLINE
from deepfit.pipeline import train, train_arguments
from deepfit.report.cv import render_cv
from deepfit.report.notes import collapse_warning
from deepfit.result import Run
from deepfit.run import RunDir, default_run_name
from deepfit.track import StudyRun
from deepfit.train.callbacks import Callback


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


@dataclass(frozen=True)
class CVResult:
    """A finished cross-validation: the folds' runs and their summary.

    ``summary`` maps each headline metric to ``{"mean", "sd", "folds"}`` (``folds``: how many
    folds define it; ``sd`` is None with one); ``per_fold`` holds each fold's name, run
    folder and test metrics, in fold order, as ``runs`` holds the folds' ``Run`` objects.
    ``to_dict()`` is ``cv.json``.
    """

    task: str
    folds: int
    repeats: int
    groups: Optional[str]
    data: str  # the data's description
    path: Path  # the cross-validation folder
    summary: dict[str, dict[str, Any]]
    per_fold: list[dict[str, Any]]
    runs: list[Run] = field(repr=False)

    @property
    def fold_paths(self) -> list[Path]:
        return [Path(f["path"]) for f in self.per_fold]

    @property
    def collapsed_folds(self) -> list[str]:
        """The folds whose model predicts one class for every test row (see the fold's
        report); the cv table, cv.html and cv.json say how many."""
        return [f["fold"] for f in self.per_fold if f.get("collapsed")]

    @property
    def report_path(self) -> Path:
        return RunDir(self.path).cv_report

    def to_dict(self) -> dict[str, Any]:
        """cv.json: plain values, its keys unchanged since the first cv folders."""
        return {"task": self.task, "folds": self.folds, "repeats": self.repeats,
                "groups": self.groups, "data": self.data, "path": str(self.path),
                "summary": self.summary, "per_fold": self.per_fold,
                "collapsed_folds": self.collapsed_folds}


def cross_validate(config: Any = None, *, data: Any = None,
                   model: Optional[nn.Module | str] = None, callbacks: Sequence[Callback] = (),
                   folds: int = 5, repeats: int = 1, groups: Optional[str] = None,
                   **overrides: Any) -> CVResult:
    """K-fold cross-validation of one configuration; writes cv.json and cv.html.

    Args:
        config, data, model, callbacks, **overrides: as for ``deepfit.train`` (one function
            reads both: ``pipeline.train_arguments``). A model instance is copied, untrained,
            for every fold, so no fold starts from another's weights and yours stays as it
            is; the same callback objects are called in every fold.
        folds: number of folds (>= 2). repeats: repetitions with reshuffled folds.
        groups: a column whose rows must stay together (e.g. patient id); it is dropped from
            the features.

    Example:
        >>> cv = cross_validate(data="iris", folds=3, epochs=5, progress=False,
        ...                     out="/tmp/deepfit-doc")       # doctest: +SKIP
        >>> cv.summary["accuracy"]["mean"]                     # doctest: +SKIP
    """
    if folds < 2:
        raise DataError(f"--folds must be at least 2, got {folds}")
    if repeats < 1:
        raise DataError(f"--repeats must be at least 1, got {repeats}")
    if "split" in overrides:
        raise ConfigError("cross_validate makes each fold's split itself; split= applies to "
                          "deepfit.train only (use folds=, repeats= and groups=)")
    cfg, data, model = train_arguments(config, data, model, overrides)
    seed = cfg.data.seed if cfg.data.seed is not None else cfg.train.seed
    probe = build_bundle(cfg.data, data, seed=seed)  # task and target, validated once
    table = load_table(cfg.data, data, seed)
    task = probe.schema.task
    groups = groups or cfg.data.group_column
    if groups is not None:
        if groups not in table.frame.columns:
            columns = [str(c) for c in table.frame.columns]
            raise DataError(f"group column '{groups}' is not in the data"
                            f"{did_you_mean(groups, columns)}; its columns are "
                            f"{one_of(columns[:12])}{', ...' if len(columns) > 12 else ''}")
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
    if group_values is not None:
        check_group_carving(splits, group_values, groups, cfg.data.val_size, labels is not None)
    rd = RunDir.create(cfg.out, cfg.name, default_run_name(probe.info["name"], "cv"))
    group = StudyRun(cfg, rd.path, rd.path.name, kind="cv")  # track.mlflow: the folds' parent
    runs: list[Run] = []
    for name, split in splits:
        try:
            with warnings.catch_warnings():  # the data's warnings were said once, above
                warnings.simplefilter("ignore", DataWarning)
                runs.append(train(cfg.override({"out": str(rd.path), "name": name}),
                                  data=data, model=None if model is None else
                                  copy.deepcopy(model), callbacks=callbacks, split=split))
        except DeepfitError as exc:
            _give_up(rd, name, [r.path.name for r in runs], exc)
            raise
    tests = [r.metrics["test"] for r in runs]
    keys = [k for k in HEADLINE[task] if any(k in m for m in tests)]
    result = CVResult(
        task=task, folds=folds, repeats=repeats, groups=groups,
        data=probe.info["description"], path=rd.path,
        summary={k: mean_sd([m.get(k) for m in tests]) for k in keys},
        per_fold=[{"fold": r.path.name, "path": str(r.path), **{k: m.get(k) for k in keys},
                   "collapsed": collapse_warning(task, m) is not None}
                  for r, m in zip(runs, tests)],
        runs=runs)
    rd.write_json(rd.cv, result.to_dict())
    rd.write_text(rd.cv_report, render_cv(result.to_dict(),
                                          {r.path.name: r.history.rows for r in runs}))
    group.end(result.summary)
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


def check_group_carving(splits: list[tuple[str, pd.Series]], groups: np.ndarray,
                        column: str, val_size: float, stratified: bool) -> None:
    """One line when a fold's training part has too few groups to carve its validation rows
    from whole groups (data/split.py: a stratified carve is one fold of
    round(1 / data.val_size) group folds; otherwise two groups suffice)."""
    need = max(2, round(1 / val_size)) if stratified else 2
    fewest, fold = min((len(np.unique(groups[(split == "train").to_numpy()])), name)
                       for name, split in splits)
    if fewest < need:
        how = (f"by whole groups, about data.val_size={val_size:g} of them, needs at least "
               f"{need}" if stratified else "by whole groups needs at least 2")
        raise DataError(f"group column '{column}': the training part of {fold} holds only "
                        f"{fewest} of the {len(np.unique(groups))} groups, and carving its validation "
                        f"rows {how}; use a column with more groups"
                        + (f", or data.val_size of at least {1 / (fewest + 0.49):.2f} "
                           f"(then {fewest} groups suffice)" if stratified and fewest >= 2
                           else ""))


def _give_up(rd: RunDir, fold: str, finished: list[str], exc: Exception) -> None:
    """A fold failed: remove the cross-validation folder if no fold finished (nothing in it
    is useful), else leave the finished folds and a FAILED.txt that says what happened."""
    if not finished:
        shutil.rmtree(rd.path, ignore_errors=True)
        return
    rd.write_text(rd.failed, f"cross-validation stopped in {fold}: {exc}\nfinished folds: "
                  f"{', '.join(finished)} (each a complete run); no summary.\n")


def mean_sd(values: list) -> dict[str, Any]:
    """Mean and sample sd over the folds where the value is defined (sd undefined for one)."""
    ok = [v for v in values if v is not None and math.isfinite(v)]
    if not ok:
        return {"mean": None, "sd": None, "folds": 0}
    return {"mean": float(np.mean(ok)), "sd": float(np.std(ok, ddof=1)) if len(ok) > 1 else None,
            "folds": len(ok)}
