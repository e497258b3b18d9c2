"""Nested cross-validation of the whole tuning procedure (``deepfit tune --nested K``).

The best validation score of a search is optimistic: the search chose it among many. The
honest estimate of "tune, then train" is nested cross-validation: K outer folds; in each, a
complete search on the outer training part (its trials' validation rows carved from it) and
the best config retrained and evaluated once on the outer test fold, which that search
never saw. The mean ± sd of the K outer test scores is the number to report.

    runs/<data>-tune-nested/
      outer-1/ ... outer-K/   one tuning folder per outer fold (study, trials, final run)
      nested.json             the per-fold and summary scores; tune.html shows them
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional

from torch import nn

from deepfit.assemble import assemble
from deepfit.config import RunConfig
from deepfit.cv import check_folds, fold_splits, mean_sd
from deepfit.data.sources import load_table
from deepfit.errors import ConfigError
from deepfit.run import RunDir
from deepfit.tune.trial import check_metric, direction_of


def nested_tune(cfg: RunConfig, data: Any, model: Optional[nn.Module], space: Any, trials: int,
                timeout: Optional[float], metric: Optional[str], sampler: str, pruner: str,
                storage: Optional[str], worker: bool, folds: int,
                refit: str = "train+val") -> Any:
    from deepfit.tune import TuneResult, tune_once

    if folds < 2:
        raise ConfigError(f"--nested needs at least 2 outer folds, got {folds}")
    if worker:
        raise ConfigError("--nested runs the outer folds one after another in one process; "
                          "give it no --worker (its searches may still share --storage)")
    probe = assemble(cfg, data, None if model is None else copy.deepcopy(model))
    if probe.facts.kind == "image":
        raise ConfigError("--nested needs folds of the data, and image data have no "
                          "cross-validation yet; tune without --nested and report the final "
                          "run's test score with its interval")
    task = probe.bundle.schema.task
    metric = check_metric(metric, task)
    labels, n = _labels_and_rows(probe, data)
    check_folds(folds, labels, None, None, n)
    seed = cfg.data.seed if cfg.data.seed is not None else cfg.train.seed
    splits = fold_splits(n, labels, None, folds, 1, seed)
    rd = RunDir(Path(cfg.out) / (cfg.name or f"{probe.bundle.info['name']}-tune-nested"))
    rd.path.mkdir(parents=True, exist_ok=True)
    per_fold, results = [], []
    for k, (_, split) in enumerate(splits, start=1):
        folder = rd.path / f"outer-{k}"
        result = tune_once(cfg, data, model, space, trials, timeout, metric, sampler, pruner,
                           storage, False, split, folder=folder, refit=refit)
        results.append(result)
        test = result.final.metrics["test"].get(metric) if result.final else None
        per_fold.append({"fold": folder.name, "test": test, "validation": result.best_value,
                         "best_params": result.best_params,
                         "trials": len(result.study.get_trials(deepcopy=False))})
    summary = mean_sd([f["test"] for f in per_fold])
    nested = {"folds": folds, "metric": metric, "direction": direction_of(metric),
              "per_fold": per_fold, "mean": summary["mean"], "sd": summary["sd"],
              "test_used_in_search": False}
    rd.write_json(rd.nested, nested)
    last = results[-1]
    record = RunDir(last.path).read_json(RunDir(last.path).tune)
    from deepfit.tune import write_record
    write_record(rd, {k: v for k, v in record.items() if k not in (
        "trials", "best", "importances", "importances_note", "final", "nested")},
        None, None, None, None, nested)
    return TuneResult(rd.path, last.study, metric, direction_of(metric), None, {},
                      cfg, nested=nested)


def _labels_and_rows(probe: Any, data: Any) -> tuple[Any, int]:
    """Stratification labels (classification) and the number of rows of the whole data."""
    table = load_table(probe.cfg.data, data, probe.data_seed)
    schema = probe.bundle.schema
    if schema.task in ("binary", "multiclass"):
        labels = schema.target.relabel(table.frame[schema.target.column]).astype(str).to_numpy()
        return labels, len(table.frame)
    return None, len(table.frame)
