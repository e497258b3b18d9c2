"""``train``: the one function that wires config -> data -> model -> train -> evaluate ->
report. The CLI, and everything else that trains, calls it."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

import yaml

from deepfit.assemble import Assembly, assemble
from deepfit.config import RunConfig
from deepfit.config_rules import merge_once, suggest_key
from deepfit.config_scope import RunFacts, applying_dict
from deepfit.data.batches import images_at
from deepfit.data.sources import PYTHON_SOURCE
from deepfit.errors import ConfigError, ModelError, RunError, TrainingInterrupted
from deepfit.evaluate.diagnostic_plots import diagnostic_plots
from deepfit.evaluate.evaluation import evaluate
from deepfit.evaluate.image_plots import most_confidently_wrong, pick_sample, plot_images
from deepfit.evaluate.plots import plot_run
from deepfit.evaluate.predict import predict
from deepfit.forked import Forked
from deepfit.report import write_report
from deepfit.result import Run, load
from deepfit.run import RunDir, default_run_name, record_failure, resolve_run
from deepfit.summary import build_summary, versions
from deepfit.track import Tracking, check as check_trackers
from deepfit.train.builtin import BestModel, Diagnostics, FixedEpochs, LastCheckpoint, RunFiles
from deepfit.train.callbacks import Callback
from deepfit.train.checkpoint import load_latest, save_checkpoint
from deepfit.train.device import deterministic_algorithms
from deepfit.train.export import save_weights
from deepfit.train.history import MAIN_METRIC, History
from deepfit.train.trainer import Trainer
from deepfit.version import __version__

_SECTIONS = ("train", "model", "data", "eval", "track")


@dataclass(frozen=True)
class RefitPlan:
    """A final fit on the training and validation rows together, repeating a validated run
    (e.g. the best tuning trial): nothing is left to validate on, so the number of epochs,
    the learning rate of each epoch where reduce-on-plateau chose it, and the decision
    threshold tuned on validation predictions all come from that run.

    Attributes:
        epochs: the epochs to train (the validated run's best epoch).
        lrs: the validated run's learning rate in each epoch (needed by train.schedule=plateau).
        tuning: its threshold tuning (``deepfit.evaluate.evaluation.threshold_tuning``).
        source: what the run is, for the report ("trial 7").
    """

    epochs: int
    lrs: Optional[tuple[float, ...]] = None
    tuning: Optional[dict] = None
    source: str = "the validated run"


def resolve_config(config: Any = None, **overrides: Any) -> RunConfig:
    """A ``RunConfig`` from None, a path, a dict or a config, plus keyword overrides.

    Keywords may be dotted (``train.lr``), bare (``lr``; looked up in the train, model, data
    and eval sections, in that order), or a whole section as a dict (``eval={"plots": False}``).
    """
    if config is None:
        cfg = RunConfig()
    elif isinstance(config, RunConfig):
        cfg = config
    elif isinstance(config, (str, Path)):
        cfg = RunConfig.load(config)
    elif isinstance(config, dict):
        cfg = RunConfig.from_dict(config)
    else:
        raise ConfigError(f"config must be a RunConfig, a YAML path or a dict, not "
                          f"{type(config).__name__}")
    items = []
    for key, value in overrides.items():
        if key in _SECTIONS and isinstance(value, dict):
            items += [(f"{key}.{k}", v, f"{key}={{{k}: ...}}") for k, v in value.items()]
            continue
        items.append((key if "." in key or key in ("name", "out") else _section_of(key),
                      value, f"{key}="))
    dotted = merge_once(items, RunConfig)
    return cfg.override(dotted) if dotted else cfg


def _section_of(key: str) -> str:
    """``lr`` -> ``train.lr``; aliases too (``learning_rate`` -> ``train.lr``)."""
    for section in _SECTIONS:
        fields = {f.name for f in dataclasses.fields(getattr(RunConfig(), section))}
        if key in fields:
            return f"{section}.{key}"
        if key in RunConfig.ALIASES.get(section, {}):
            return f"{section}.{RunConfig.ALIASES[section][key]}"
    raise ConfigError(f"unknown option '{key}'{suggest_key(key, RunConfig, bare=True)}")


def train(config: Any = None, *, data: Any = None, model: Optional[nn.Module | str] = None,
          callbacks: Sequence[Callback] = (), split: Optional[pd.Series] = None,
          refit: Optional[RefitPlan] = None, **overrides: Any) -> Run:
    """Train, evaluate and report one model; returns the finished ``Run``.

    Args:
        config: a ``RunConfig``, a YAML path, a dict, or None for the defaults.
        data: a built-in name or file path (sets ``data.source``), or a Python object:
            a pandas DataFrame, an ``(X, y)`` pair of arrays or tensors.
        model: your own ``nn.Module`` instance, or a model name such as ``"cnn"``
            (otherwise ``model.name`` is built).
        callbacks: extra ``Callback`` objects, called after the built-in ones.
        split: per-row ``"train" | "val" | "test"`` labels that replace the configured split
            (cross-validation passes each fold this way).
        refit: train on the training and validation rows together, as ``RefitPlan`` says
            (the final fit of ``deepfit.tune``); the run has no validation metrics.
        **overrides: config values, dotted (``train.lr=0.01``) or bare (``lr=0.01``).

    Example:
        >>> run = train(data="iris", epochs=5, progress=False, out="/tmp/deepfit-doc")
        >>> run.task
        'multiclass'
    """
    cfg, data, model = train_arguments(config, data, model, overrides)
    return _run(cfg, data, model, callbacks, split, refit=refit)


def train_arguments(config: Any, data: Any, model: Optional[nn.Module | str],
                    overrides: dict[str, Any]) -> tuple[RunConfig, Any, Optional[nn.Module]]:
    """``train``'s arguments as ``(config, data object or None, model instance or None)``;
    ``deepfit.cross_validate`` takes the same arguments through this one function."""
    overrides = dict(overrides)
    if isinstance(model, str):  # a registered name: model="cnn" is model.name="cnn"
        overrides["model.name"], model = model, None
    if isinstance(data, (str, Path)):
        overrides["data.source"], data = str(data), None
    elif data is not None:  # recorded so that a re-run says it needs the object again
        overrides["data.source"] = f"{PYTHON_SOURCE}{type(data).__name__}"
    cfg = resolve_config(config, **overrides)
    check_trackers(cfg)  # train, cv and tune: a tracker not installed is one line, no folder
    if model is not None:
        cls = type(model)
        cfg = cfg.override({"model.name": f"{cls.__module__}:{cls.__qualname__}"})
    return cfg, data, model


def resume(run_dir: str | Path, *, data: Any = None, model: Optional[nn.Module] = None,
           callbacks: Sequence[Callback] = ()) -> Run:
    """Continue an interrupted run from its last checkpoint, in the same directory.

    On CPU the result is bit-identical to a run that was never interrupted: the checkpoint
    holds the weights, optimiser, schedule, early-stopping state, data order and every RNG.
    ``data`` and ``model`` are needed again only if the run was given Python objects.
    """
    rd = resolve_run(run_dir)
    if rd.summary.is_file():
        raise RunError(f"run '{rd.path}' already finished; start a new one with "
                       f"'deepfit train {rd.config}'")
    cfg = RunConfig.load(rd.config)
    try:
        state, note = load_latest(rd.last)
    except RunError as exc:
        if not rd.checkpoints.is_dir() or not any(rd.checkpoints.glob("*last*")):
            raise RunError(f"run '{rd.path}' has no checkpoint to resume from; start again "
                           f"with 'deepfit train {rd.config}'") from None
        raise exc from None
    if note:
        print(f"deepfit: {note} (epoch {state['epoch']})", file=sys.stderr)
    for stale in rd.checkpoints.glob(".*.tmp"):  # half-written by a killed process
        stale.unlink()
    refit = state.get("refit")  # a final fit's plan, kept in its checkpoint
    plan = RefitPlan(**{**refit, "lrs": tuple(refit["lrs"]) if refit["lrs"] else None}) \
        if refit else None
    return _run(cfg, data, model, callbacks, None, rd=rd, state=state, refit=plan)


def _run(cfg: RunConfig, data: Any, model: Optional[nn.Module], callbacks: Sequence[Callback],
         split: Optional[pd.Series], rd: Optional[RunDir] = None,
         state: Optional[dict] = None, refit: Optional[RefitPlan] = None) -> Run:
    from deepfit.detection import is_detection
    if is_detection(cfg, data):  # boxes per image: its own loop, metrics and files
        from deepfit.detection.run import train_detection
        return train_detection(cfg, data, model, callbacks, split, rd, state, refit)
    tracking = Tracking(cfg)  # a tracker that is not installed: one line, before any work
    built = assemble(cfg, data, model, split, refit=refit is not None)
    cfg, facts, strategy, bundle = built.cfg, built.facts, built.strategy, built.bundle
    model, head, inputs = built.model, built.head, built.inputs
    task, schema = bundle.schema.task, bundle.schema

    dump = config_yaml(cfg, facts)
    if rd is None:  # the main process makes the folder; the others learn its name
        if strategy.is_main:
            rd = RunDir.create(cfg.out, cfg.name,
                               default_run_name(bundle.info["name"], cfg.model.name))
            rd.write_text(rd.config, dump)
            rd.write_json(rd.schema, schema.to_dict())
        rd = RunDir(Path(strategy.share(str(rd.path) if rd else None)))
    elif rd.read_json(rd.schema) != json.loads(json.dumps(schema.to_dict())):
        raise RunError(f"the data of '{rd.path}' changed since the run started (its columns, "
                       "classes or training statistics differ); a resumed run must see the "
                       "same data")
    extra = {"config": dump, "versions": versions()}
    fixed: list[Callback] = []
    if refit is not None:
        extra["refit"] = dataclasses.asdict(refit)
        fixed = [FixedEpochs(refit.epochs, refit.lrs, f"the best epoch of {refit.source}")]
    files = RunFiles(rd.best, rd.last, extra=extra)
    trainer = Trainer(model, head, cfg.train, task=task, n_outputs=schema.n_outputs,
                      strategy=strategy, select_best=refit is None,
                      callbacks=[*fixed, *callbacks, *tracking.callbacks(built, rd)],
                      files=files,
                      eval_batch_size=cfg.eval.batch_size, inputs=inputs,
                      workers=cfg.data.workers)
    last = trainer.find(LastCheckpoint)
    if state is not None:
        trainer.load_state_dict(state)
    started = time.perf_counter()
    try:
        with deterministic_algorithms(cfg.train.deterministic), tracking:
            history = trainer.fit(bundle.train.X, bundle.train.y, bundle.val.X, bundle.val.y)
    except TrainingInterrupted as exc:
        raise _interrupted(trainer, last, exc, rd) from None
    except Exception as exc:  # a NaN loss, out of memory, ...: removed if empty, else marked
        if strategy.is_main:
            record_failure(rd, exc, new=state is None)
        raise
    seconds = time.perf_counter() - started
    if not strategy.is_main:  # the main process evaluates and writes; the others wait
        strategy.barrier()
        strategy.close()
        return load(rd.path)
    metrics = write_results(built, trainer, rd, seconds,
                            refit=dataclasses.asdict(refit) if refit else None)
    tracking.finish(metrics, rd)  # test metrics with intervals, the run's files
    strategy.barrier()  # the run is complete on disk for every process
    strategy.close()
    return Run(cfg, schema, trainer.model, head, history, metrics, rd.path)


def write_results(built: Assembly, trainer: Trainer, rd: RunDir, seconds: float,
                  refit: Optional[dict] = None, origin: Optional[dict] = None) -> dict:
    """The tail of a run, once its model is trained: history.csv, the kept weights (best.pt,
    model.safetensors), test (and validation) predictions and metrics, plots, summary.json
    and the report. A run without validation rows (``refit``; a model trained elsewhere,
    ``save_trained``, with its ``origin``: the report's sentences about how it was trained)
    is evaluated on test alone. Returns the metrics."""
    cfg, bundle, head, schema = built.cfg, built.bundle, built.head, built.bundle.schema
    task, inputs, data_seed = schema.task, built.inputs, built.data_seed
    best = trainer.find(BestModel)
    trainer.history.to_csv(rd.history)
    if best is None:  # a final fit keeps its last epoch: best.pt holds the weights a run keeps
        save_checkpoint({"model": {k: v.detach().cpu() for k, v in
                                   trainer.model.state_dict().items()},
                         "epoch": trainer.epoch, "monitor": None, "value": None}, rd.best)
    save_weights(trainer.model, rd.weights, {"deepfit": __version__, "model": cfg.model.name,
                                             "input_shape": list(schema.input_shape)})
    validated = refit is None and origin is None
    preds = {name: predict(trainer.model, head, schema, split.X, split.ids, split.y,
                           trainer.eval_batch_size, id_name=schema.id_column or "id",
                           inputs=inputs, precision=cfg.train.precision)
             for name, split in (("val", bundle.val), ("test", bundle.test))
             if name == "test" or validated}
    metrics = evaluate(preds.get("val"), preds["test"], cfg.eval, seed=data_seed,
                       tuned=(refit or {}).get("tuning"))
    rd.write_json(rd.metrics, metrics)
    rd.write_text(rd.predictions, preds["test"].to_frame().to_csv(index=False))
    test, draw = preds["test"], cfg.eval.plots
    diagnostics = trainer.find(Diagnostics)
    # The figures render in forked processes (where that is safe) while this one builds the
    # summary: on two cores a small run's tail takes about half as long (docs/benchmarks.md).
    with ExitStack() as stack:
        figures = stack.enter_context(Forked(
            plot_run, trainer.history.rows, MAIN_METRIC[task], best.best_epoch if best else None,
            task, test.y_true, test.scores, metrics, schema.class_names, rd.plots,
            target=schema.target.column)) if draw else None
        inside = stack.enter_context(Forked(diagnostic_plots, diagnostics.records, rd.plots)) \
            if draw and diagnostics is not None else None
        images = _image_plots(bundle.test.X, test, schema, rd.plots, data_seed) \
            if draw and schema.image is not None else {}
        summary = build_summary(cfg, bundle, trainer, best, head, metrics, rd, seconds,
                                refit=refit, test=test, diagnostic_figures=False)
        summary["plots"] = rd.relative({**(figures.result() if figures else {}), **images})
        if inside is not None:
            summary["diagnostics"]["plots"] = rd.relative(inside.result())
    summary["training"]["origin"] = origin and origin["sentences"]
    for section, values in (origin or {}).get("summary", {}).items():
        summary[section].update(values)
    rd.write_json(rd.summary, summary)
    if cfg.eval.report:
        write_report(rd.path)
    return metrics


def save_trained(state: dict[str, torch.Tensor], history: Sequence[dict[str, Any]], *,
                 data: Any, split: pd.Series, classes: Sequence[str], seconds: float,
                 origin: dict[str, Any], model: Optional[str] = None,
                 data_name: Optional[str] = None, **overrides: Any) -> Run:
    """A run directory for a network trained outside deepfit's trainer (the playground),
    written as ``train`` writes its own: ``state``, the trained weights, go unchanged into
    the network the config (``overrides``) describes, which must fit them exactly;
    ``history``: its rows per whole epoch (``History`` columns, no validation); ``split``:
    'train' or 'test' per row of ``data`` (no validation rows: nothing picked an epoch);
    ``classes``: the classes in the order of the network's outputs (deepfit's order must be
    the same); ``origin``: ``sentences`` for the report (``best_epoch``, ``evaluation``,
    ``rerun``) and ``summary``, values of summary.json's sections that say how it trained;
    ``data_name``: the run folder's default name starts with it."""
    cfg, data, _ = train_arguments(None, data, model, {**overrides, "train.diagnostics": False})
    built = assemble(cfg, data, None, split, refit=True)
    cfg, schema, info = built.cfg, built.bundle.schema, built.bundle.info
    said = origin.get("summary", {})
    data_said = {"split_method": "as given: train and test rows, no validation rows",
                 "drawn_splits": [], "notes": [n for n in info["notes"]  # val rows carved and
                                               if not n.startswith("no 'val' rows")],  # joined
                 **said.get("data", {})}
    origin = {**origin, "summary": {**said, "data": data_said}}
    if list(schema.class_names) != list(classes):
        raise ModelError(f"the network's outputs are the classes {list(classes)}; deepfit "
                         f"orders them {list(schema.class_names)}")
    try:
        built.model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError("the trained weights do not fit the network of the config: "
                         f"{str(exc).splitlines()[0]}") from None
    rd = RunDir.create(cfg.out, cfg.name, default_run_name(data_name or info["name"],
                                                           cfg.model.name))
    rd.write_text(rd.config, config_yaml(cfg, built.facts))
    rd.write_json(rd.schema, schema.to_dict())
    trainer = Trainer(built.model, built.head, cfg.train, task=schema.task,
                      n_outputs=schema.n_outputs, strategy=built.strategy, select_best=False,
                      eval_batch_size=cfg.eval.batch_size, inputs=built.inputs)
    trainer.history = History(schema.task, list(history))
    trainer.epoch = len(trainer.history)
    try:
        metrics = write_results(built, trainer, rd, seconds, origin=origin)
    except Exception as exc:
        record_failure(rd, exc, new=True)
        raise
    return Run(cfg, schema, trainer.model, built.head, trainer.history, metrics, rd.path)

def _interrupted(trainer: Trainer, last: LastCheckpoint, exc: TrainingInterrupted,
                 rd: RunDir) -> TrainingInterrupted:
    """Save what can be resumed exactly (at the step boundary, outside the signal handler)
    and say how to continue. Several processes keep the last whole epoch's checkpoint:
    the steps of the epoch in progress were each process's share of the batches, and are
    done again."""
    where = (f"training interrupted in epoch {trainer.epoch} after step "
             f"{trainer.steps_done_in_epoch} of {trainer.steps_per_epoch}")
    if trainer.strategy.world_size == 1:
        last.save(trainer)
        return TrainingInterrupted(exc.last_epoch, f"{where}; all of it is saved: continue "
                                   f"with 'deepfit resume {rd.path}'")
    return TrainingInterrupted(exc.last_epoch, f"{where}; epochs 1-{trainer.epoch - 1} are "
                               "saved (the epoch in progress is redone): continue with "
                               f"'torchrun --nproc-per-node N -m deepfit resume {rd.path}'")


def config_yaml(cfg: RunConfig, facts: RunFacts) -> str:
    """The run's config.yaml: every key that applies to it (a CNN run's has no MLP layers)."""
    return yaml.safe_dump(applying_dict(cfg, facts), sort_keys=False)


def _image_plots(X: Any, test: Any, schema: Any, folder: Path, seed: int) -> dict:
    """A grid of test images and the most confidently wrong ones (decoded only for the few
    images shown when the set is streamed)."""
    if test.y_true is None:
        return {}
    rows = pick_sample(len(test.y_true), seed)
    worst = (most_confidently_wrong(test.y_true, test.y_pred, test.scores, schema.task)
             if schema.task != "multilabel" else np.empty(0, dtype=int))
    return plot_images(images_at(X, rows), rows, images_at(X, worst), worst, test.y_true,
                       test.y_pred, test.scores, schema.task, schema.class_names, folder)
