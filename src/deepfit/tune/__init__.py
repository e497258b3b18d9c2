"""``deepfit tune``: hyperparameter search on Optuna, with an honest estimate of the tuned
model. Beside ``deepfit.cv`` (cross-validation), which it uses for ``nested``.

    runs/<data>-tune/
      study.db     the Optuna study (SQLite; or any --storage URL): the same command resumes it
      tune.json    the study's description and every trial
      tune.html    the tune report
      best.yaml    the best config; `deepfit train --config best.yaml` trains it
      final/       the best config retrained and evaluated ONCE on the test split

Every trial trains on the training split and is scored on the validation split; the test
split is not read until the final run (``deepfit.tune.trial``).
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd
import yaml
from torch import nn

from deepfit.assemble import assemble
from deepfit.config import RunConfig
from deepfit.config_rules import plain
from deepfit.errors import ConfigError, RunError
from deepfit.pipeline import RefitPlan, config_yaml, train, train_arguments
from deepfit.config_scope import not_applying
from deepfit.report import write_report
from deepfit.report.tune import render_tune
from deepfit.result import Run, load
from deepfit.run import RunDir
from deepfit.track import StudyRun
from deepfit.tune.record import best_record, importances, trial_records
from deepfit.tune.search import Search, best_trial, printer, run_search
from deepfit.tune.space import SearchSpace, default_space, most_epochs
from deepfit.tune.study import (PRUNERS, SAMPLERS, counted, open_study, optuna_module,
                                outcome, redact, sqlite_url)
from deepfit.tune.trial import check_metric, direction_of

FINAL = "final"
REFITS = ("train+val", "train")  # how the final model is trained (``tune(refit=...)``)
RECORD_EVERY_S = 2.0  # tune.json is rewritten at most this often during a search


@dataclass
class TuneResult:
    """A finished search: the study, the best trial's config and, unless this process was
    a ``worker``, the final run (the best config retrained, evaluated once on test)."""

    path: Path
    study: Any = field(repr=False)
    metric: str
    direction: str
    best_value: Optional[float]
    best_params: dict[str, Any]
    best_config: RunConfig
    final: Optional[Run] = None
    stopped_by: str = "budget"
    nested: Optional[dict[str, Any]] = None

    @property
    def report_path(self) -> Path:
        return RunDir(self.path).tune_report


def tune(config: Any = None, *, data: Any = None, model: Optional[nn.Module | str] = None,
         space: Any = None, trials: int = 20, timeout: Optional[float] = None,
         metric: Optional[str] = None, sampler: str = "tpe", pruner: str = "median",
         storage: Optional[str] = None, worker: bool = False, nested: Optional[int] = None,
         split: Optional[pd.Series] = None, refit: Optional[str] = None,
         **overrides: Any) -> TuneResult:
    """Search hyperparameters, then retrain the best config and evaluate it once on test.

    Args:
        config, data, model, **overrides: as for ``deepfit.train``; they fix every trial's
            options outside the space.
        space: a ``SearchSpace``, a dict (``{"train.lr": {"low": 1e-4, "high": 0.1,
            "log": True}, "model.hidden": [[64], [128, 64]]}``), a YAML path, or None for the
            default space of the model's family.
        trials: finished trials the study should hold (a resumed study runs only the rest).
        timeout: seconds after which no new trial starts.
        metric: the validation metric to optimise (default per task: roc_auc, r2, ...).
        sampler: ``tpe``, ``random`` or ``grid``. pruner: ``median``, ``hyperband``, ``none``.
        storage: an SQLAlchemy URL shared by several workers (default: study.db in the
            tuning folder). worker: run trials only (another process makes the final run).
        nested: K outer folds: the whole search repeated in each (``deepfit.tune.nested``).
        split: per-row ``train | val | test`` labels (as for ``deepfit.train``).
        refit: how the final model is trained: ``train+val`` (the default, None: on the
            training and validation rows together, for the best trial's epochs with its
            learning rates and validation threshold) or ``train`` (on the training split
            with validation early stopping: the best trial's own model, same seed).
    """
    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler {sampler} is not known; use one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise ConfigError(f"--pruner {pruner} is not known; use one of {', '.join(PRUNERS)}")
    if refit is not None and worker:
        raise ConfigError("--refit shapes the final run, which a --worker does not make; "
                          "give it to the process without --worker")
    refit = refit or REFITS[0]
    if refit not in REFITS:
        raise ConfigError(f"--refit {refit} is not known; use one of {', '.join(REFITS)}")
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("deepfit tune runs its trials in one process; start several "
                          "workers on one --storage instead of torchrun")
    optuna_module()  # installed? (one line if not, before any work)
    cfg, data, model = train_arguments(config, data, model, overrides)
    if nested is not None:
        if split is not None:
            raise ConfigError("tune(nested=K) makes each outer fold's split itself; split= "
                              "applies to a search without nested")
        from deepfit.tune.nested import nested_tune
        return nested_tune(cfg, data, model, space, trials, timeout, metric, sampler, pruner,
                           storage, worker, nested, refit)
    return tune_once(cfg, data, model, space, trials, timeout, metric, sampler, pruner,
                     storage, worker, split, refit=refit)


def tune_once(cfg: RunConfig, data: Any, model: Optional[nn.Module], space: Any, trials: int,
              timeout: Optional[float], metric: Optional[str], sampler: str, pruner: str,
              storage: Optional[str], worker: bool, split: Optional[pd.Series],
              folder: Optional[Path] = None, final: bool = True,
              refit: str = "train+val") -> TuneResult:
    """One search in ``folder`` (default: ``out/<name or data-tune>``)."""
    bundles: dict = {}
    probe = assemble(cfg, data, None if model is None else copy.deepcopy(model), split, bundles)
    task = probe.bundle.schema.task
    metric = check_metric(metric, task)
    direction = direction_of(metric)
    space = _space(space, probe)
    search_space_check(space, probe, cfg, data, model, split, bundles)
    rd = RunDir(folder or Path(cfg.out) / (cfg.name or f"{probe.bundle.info['name']}-tune"))
    _make_folder(rd)
    url = storage or sqlite_url(rd.study_db, create=True)
    grid = space.grid() if sampler == "grid" else None
    name = rd.path.name if folder is None else f"{folder.parent.name}-{folder.name}"
    study = open_study(url, name, direction, sampler, pruner, cfg.train.seed,
                       most_epochs(space, cfg, probe.cfg.train.epochs, probe.facts.kind,
                                   len(probe.bundle.train.y)), grid)
    spec = {"data": probe.bundle.info["description"], "task": task, "metric": metric,
            "sampler": sampler, "pruner": pruner, "space": space.to_dict(),
            "config": _base_config(cfg)}
    _check_same_search(study, spec, url)
    study_run = StudyRun(cfg, rd.path, study.study_name)  # track.mlflow: the trials' parent
    say = printer(not cfg.train.progress)
    record = {"version": 1, **spec, "direction": direction, "storage": redact(url),
              "study": study.study_name, "trials_requested": trials, "timeout_s": timeout,
              "seed": cfg.train.seed, "test_used_in_search": False}
    previous = rd.read_json(rd.tune).get("final") if rd.tune.is_file() else None
    # tune.json while the search runs: after a finished trial, at most every few seconds
    # (rewriting it costs a read of every trial; the study itself is always current).
    after_trial = None if worker else _at_most_every(RECORD_EVERY_S, lambda: write_record(
        rd, record, study, space, None, None, final_entry=previous, html=False))
    search = Search(study, space, cfg, probe.cfg, probe.facts, data, model, split, metric,
                    pruner != "none", trials, say, bundles, after_trial)
    done = counted(study)
    if done:
        say(f"study '{study.study_name}' holds {done} finished trial(s) of {trials}; continuing")
    stopped_by = run_search(search, timeout, wait=not worker)
    if worker:
        study_run.end()
        return _result(rd, study, space, cfg, metric, direction, stopped_by)
    best = best_trial(study)
    best_cfg = cfg.override(space.decode(best.params))
    rd.write_text(rd.best_config, config_yaml(best_cfg.override({"name": None}), probe.facts))
    result = _result(rd, study, space, cfg, metric, direction, stopped_by)
    final_run = _final(rd, record, study, space, best, best_cfg, data, model, split, refit) \
        if final else None
    result.final = final_run
    write_record(rd, record, study, space, final_run, best)
    study_run.end()
    return result


def write_record(rd: RunDir, record: dict, study: Any, space: Optional[SearchSpace],
                 final_run: Optional[Run], best: Any, nested: Optional[dict] = None,
                 final_entry: Optional[dict] = None, html: bool = True) -> None:
    """tune.json and (with ``html``) tune.html; a nested search's has no study of its own.
    ``final_entry``: the final run's entry to keep when there is no new ``final_run``."""
    if study is None:
        imp, why = None, "see each outer fold's tune.html"
    elif not html:  # a snapshot while the search runs: estimated once, at its end
        imp, why = None, "estimated when the search ends"
    else:
        imp, why = importances(study)
    out = {**record, "trials": trial_records(study, space) if study is not None else [],
           "best": best_record(study, space) if study is not None else None,
           "importances": imp, "importances_note": why, "final": final_entry,
           "nested": nested}
    if final_run is not None:
        refit = RunDir(final_run.path).read_json(RunDir(final_run.path).tuning)
        out["final"] = {"path": final_run.path.name, "refit": refit["refit"],
                        "epochs": refit.get("epochs"), "trial": best.number,
                        "test": {k: v for k, v in final_run.metrics["test"].items()
                                 if isinstance(v, (int, float)) or v is None}}
    rd.write_json(rd.tune, out)
    if html:
        rd.write_text(rd.tune_report, render_tune(rd.read_json(rd.tune)))


def _final(rd: RunDir, record: dict, study: Any, space: SearchSpace, best: Any,
           best_cfg: RunConfig, data: Any, model: Any, split: Optional[pd.Series],
           refit: str) -> Run:
    """The best config trained again and evaluated once on the test split: on the training
    and validation rows together for the best trial's epochs (``train+val``), or on the
    training split with validation early stopping as in its trial (``train``: same seed,
    same model)."""
    previous = rd.read_json(rd.tune) if rd.tune.is_file() else {}
    done = previous.get("final") or {}
    if (done.get("trial") == best.number and done.get("refit", "train") == refit
            and RunDir(rd.path / done["path"]).summary.is_file()):
        return load(rd.path / done["path"])
    plan = refit_plan(best) if refit == "train+val" else None
    if plan is not None:  # the trial's own batch and epoch limit, not ones re-resolved from
        # the larger train + validation rows (a smaller limit would stop before its epochs)
        trained = {f"train.{k}": v for k, v in (outcome(best).get("train") or {}).items()
                   if v is not None and getattr(best_cfg.train, k) is None}
        best_cfg = best_cfg.override(trained) if trained else best_cfg
    name = FINAL
    for i in range(2, 10_000):
        if not (rd.path / name).exists():
            break
        name = f"{FINAL}-{i}"
    run = train(best_cfg.override({"out": str(rd.path), "name": name}), data=data,
                model=None if model is None else copy.deepcopy(model), split=split,
                refit=plan)
    final_rd = RunDir(run.path)
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    final_rd.write_json(final_rd.tuning, {
        "tune_report": f"../{rd.tune_report.name}", "trials": counted(study),
        "complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"),
        "metric": record["metric"], "direction": record["direction"],
        "best_value": best.value, "best_trial": best.number, "sampler": record["sampler"],
        "pruner": record["pruner"], "refit": refit, "epochs": plan.epochs if plan else None,
        "params": space.decode(best.params),
        "test_used_in_search": False})
    if best_cfg.eval.report:
        write_report(run.path)  # again, now with the Tuning section
    return run


def refit_plan(best: Any) -> RefitPlan:
    """What the final fit on train + validation repeats of the best trial: its best epoch,
    its learning rate in each epoch, the threshold it tuned on its validation predictions."""
    done = outcome(best)
    if not done.get("best_epoch") or "lrs" not in done:
        raise RunError(f"trial {best.number} recorded no best epoch to refit for (its study "
                       "was made by an older deepfit); use --refit train")
    tuning = done.get("tuning")
    if tuning:
        tuning = {**tuning, "where": f"the validation split of trial {best.number} (its "
                                     "model before the final fit)"}
    return RefitPlan(epochs=done["best_epoch"], lrs=tuple(done["lrs"]), tuning=tuning,
                     source=f"trial {best.number}")


def _at_most_every(seconds: float, action: Callable[[], None]) -> Callable[[], None]:
    """``action`` when called, unless it last ran less than ``seconds`` ago."""
    last = [-math.inf]

    def maybe() -> None:
        if time.monotonic() - last[0] >= seconds:
            action()
            last[0] = time.monotonic()
    return maybe


def search_space_check(space: SearchSpace, probe: Any, cfg: RunConfig, data: Any, model: Any,
                       split: Optional[pd.Series], bundles: dict) -> None:
    """Refuse, before any trial, a key that applies under no values of the keys before it,
    and build the first candidate of every key (a value the run rejects is named now)."""
    for i, p in enumerate(space.params):
        contexts = [{}] + [{q.key: c} for q in space.params[:i] if q.choices is not None
                           for c in q.choices]
        reasons = [not_applying(probe.cfg.override(c), probe.facts).get(p.key)
                   for c in contexts]
        if all(reasons):
            raise ConfigError(f"search space: {p.key} does not apply to this run ({reasons[0]});"
                              " remove it")
    first = {p.key: p.choices[0] if p.choices is not None else
             (int(p.low) if p.integer else p.low) for p in space.params}
    search = Search(None, space, cfg, probe.cfg, probe.facts, data, model, split, "", False,
                    0, print, bundles, None)
    values = {k: v for k, v in first.items() if search.applies({}, k)}
    assemble(cfg.override(values), data, None if model is None else copy.deepcopy(model),
             split, bundles)


def _space(space: Any, probe: Any) -> SearchSpace:
    if space is None:
        return default_space(probe.facts.family, probe.cfg.model.name, probe.facts.kind,
                             len(probe.bundle.train.y))
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, dict):
        return SearchSpace.from_dict(space)
    if isinstance(space, (str, Path)):
        return SearchSpace.load(space)
    raise ConfigError(f"space must be a dict, a YAML path or a SearchSpace, not "
                      f"{type(space).__name__}")


def _make_folder(rd: RunDir) -> None:
    if rd.path.exists() and not rd.path.is_dir():
        raise RunError(f"'{rd.path}' is a file; choose another --name or --out")
    if rd.is_run() or (rd.path.is_dir() and rd.cv.is_file()):
        raise RunError(f"'{rd.path}' is a run or cross-validation folder, not a tuning folder; "
                       "choose another --name")
    rd.path.mkdir(parents=True, exist_ok=True)


def _base_config(cfg: RunConfig) -> dict[str, Any]:
    """The options every trial shares, as ``{dotted key: value}`` (the evaluation and output
    options only shape the final run, so they may change between runs of one search)."""
    out = cfg.to_dict()
    return {f"{section}.{k}": plain(v) for section in ("data", "model", "train")
            for k, v in out[section].items()
            if f"{section}.{k}" not in ("train.progress", "train.diagnostics")}


def _check_same_search(study: Any, spec: dict[str, Any], url: str) -> None:
    """A study is continued only by the command that made it (same data, options, space,
    metric, sampler and pruner); --trials and --timeout may change."""
    key = "deepfit_search"
    held = study.user_attrs.get(key)
    if held is None:
        study.set_user_attr(key, spec)
        return
    differs = [k for k in spec if k != "config"
               and yaml.safe_dump(held.get(k)) != yaml.safe_dump(spec[k])]
    old = held.get("config", {})
    differs += [f"{k} ({old.get(k)} then, {v} now)" for k, v in spec["config"].items()
                if yaml.safe_dump(old.get(k)) != yaml.safe_dump(v)][:3]
    if differs:
        raise RunError(f"study '{study.study_name}' in {redact(url)} was made by another search "
                       f"(its {', '.join(differs)} differ{'s' if len(differs) == 1 else ''}); "
                       "run the same command to continue it, or choose another --name")


def _result(rd: RunDir, study: Any, space: SearchSpace, cfg: RunConfig, metric: str,
            direction: str, stopped_by: str) -> TuneResult:
    try:
        best = study.best_trial
        params, value = space.decode(best.params), best.value
    except ValueError:
        params, value = {}, None
    return TuneResult(rd.path, study, metric, direction, value, params,
                      cfg.override(params) if params else cfg, stopped_by=stopped_by)


__all__ = ["SearchSpace", "TuneResult", "tune"]
