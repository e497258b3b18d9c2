"""One trial of a search: a run built exactly as ``deepfit.train`` builds it (``assemble``),
trained on the training split with the validation split for early stopping and scoring, and
nothing written to disk. The test split is never predicted here: trials only see ``train``
and ``val``.

The score is the search's metric (``roc_auc``, ``r2``, ...) on the validation split, for
the model the run would keep (the best epoch by ``train.monitor``). Each epoch's value is
reported to Optuna, whose pruner may stop the trial (``trainer.should_stop``).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd
import sklearn.metrics as skm

from deepfit.assemble import Assembly, assemble
from deepfit.config import EvalConfig, RunConfig
from deepfit.errors import ConfigError, RunError, did_you_mean, one_of
from deepfit.evaluate.evaluation import full_metrics, threshold_tuning
from deepfit.evaluate.metrics import HEADLINE
from deepfit.evaluate.predict import Predictions, predict
from deepfit.track import Tracking
from deepfit.train.builtin.nan_guard import TrainingDiverged
from deepfit.train.callbacks import Callback
from deepfit.train.device import deterministic_algorithms
from deepfit.train.history import LR
from deepfit.train.trainer import Trainer

# The metric a search optimises by default, per task: threshold-free and smooth on small
# validation sets (accuracy moves in steps of one row).
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "roc_auc", "regression": "r2",
                  "multilabel": "roc_auc_macro"}
_MINIMISED = ("log_loss", "brier", "ece", "rmse", "mae", "median_ae", "mse", "mape")
# Failures of one configuration (the search goes on); anything else stops the search.
TRIAL_FAILURES = (TrainingDiverged, RunError)


def direction_of(metric: str) -> str:
    return "minimize" if metric in _MINIMISED else "maximize"


def check_metric(metric: Optional[str], task: str) -> str:
    """The search's metric: ``metric`` if the task has it, else the task's default."""
    if metric is None:
        return DEFAULT_METRIC[task]
    valid = HEADLINE[task]
    if metric not in valid:
        raise ConfigError(f"--metric {metric} is not a metric of a {task} task"
                          f"{did_you_mean(metric, valid)}; use one of {one_of(valid)}")
    return metric


def score(p: Predictions, metric: str) -> Optional[float]:
    """``metric`` of predictions as the run's evaluation computes it, or None where it is
    undefined (e.g. one class only). The common search metrics are computed alone, by the
    same scikit-learn call as ``evaluate.metrics`` (a test pins the equality); the rest
    through the whole evaluation (``full_metrics``), which costs tens of ms an epoch."""
    fast = _alone(p, metric)
    value = fast if fast is not _ALL else full_metrics(p, EvalConfig()).get(metric)
    return float(value) if value is not None and math.isfinite(value) else None


_ALL = object()


def _alone(p: Predictions, metric: str) -> Any:
    y, s = p.y_true, p.scores
    if p.task == "regression":
        if metric == "r2":
            return float(skm.r2_score(y, s)) if len(y) >= 2 and np.var(y) > 0 else None
        if metric in ("mse", "rmse"):
            mse = float(skm.mean_squared_error(y, s))
            return mse if metric == "mse" else math.sqrt(mse)
        return float(skm.mean_absolute_error(y, s)) if metric == "mae" else _ALL
    if p.task not in ("binary", "multiclass"):
        return _ALL
    labels = list(range(len(p.class_names)))
    if metric == "roc_auc":
        if len(np.unique(y)) < 2:
            return None
        if p.task == "binary":
            return float(skm.roc_auc_score(y, s))
        try:
            return float(skm.roc_auc_score(y, s, multi_class="ovr", average="macro",
                                           labels=labels))
        except ValueError:
            return None
    if metric == "log_loss":
        probs = np.c_[1 - s, s] if p.task == "binary" else s
        return float(skm.log_loss(y, np.clip(probs, 1e-15, 1.0), labels=labels))
    if metric == "accuracy":
        return float(skm.accuracy_score(y, p.y_pred))
    return _ALL


class ReportToTrial(Callback):
    """Reports each epoch's validation ``metric`` to an Optuna trial and stops the run when
    the pruner says so (``pruned_at`` is then that epoch)."""

    def __init__(self, trial: Any, metric: str, built: Assembly, prune: bool) -> None:
        self.trial, self.metric, self.built, self.prune = trial, metric, built, prune
        self.values: dict[int, Optional[float]] = {}
        self.pruned_at: Optional[int] = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        val = self.built.bundle.val
        scores = self.built.head.scores(trainer.val_outputs).cpu().numpy().astype(np.float64)
        value = score(_predictions(self.built, val, scores), self.metric)
        self.values[epoch] = value
        if value is None:
            return
        self.trial.report(value, epoch)
        if self.prune and self.trial.should_prune():
            self.pruned_at = epoch
            trainer.should_stop = True
            trainer.stop_reason = f"pruned at epoch {epoch}"


@dataclass
class TrialOutcome:
    value: Optional[float]
    epochs: int
    best_epoch: Optional[int]
    pruned_at: Optional[int]
    seconds: float
    intermediate: dict[int, Optional[float]] = field(default_factory=dict)
    # What a final fit on train + validation repeats (``deepfit.pipeline.RefitPlan``): the
    # learning rate of each epoch up to the best, and the threshold tuned on validation.
    lrs: list[float] = field(default_factory=list)
    tuning: Optional[dict[str, Any]] = None
    # The batch and epoch limit it trained with, once resolved from its training rows: a
    # final fit on train + validation has more rows and would resolve others.
    train: dict[str, Any] = field(default_factory=dict)


def run_trial(trial: Any, cfg: RunConfig, data: Any, model: Any, split: Optional[pd.Series],
              metric: str, prune: bool, bundles: dict) -> TrialOutcome:
    """Train ``cfg`` (the base config with the trial's values) and score it on validation."""
    started = time.perf_counter()
    built = assemble(cfg, data, None if model is None else _fresh(model), split, bundles)
    report = ReportToTrial(trial, metric, built, prune)
    tracking = Tracking(cfg, trial=trial)  # track.mlflow: a child of the study's run
    b, c = built.bundle, built.cfg
    trainer = Trainer(built.model, built.head, c.train, task=b.schema.task,
                      n_outputs=b.schema.n_outputs, strategy=built.strategy,
                      callbacks=[report, *tracking.callbacks(built)],
                      eval_batch_size=c.eval.batch_size, inputs=built.inputs,
                      workers=c.data.workers)
    with deterministic_algorithms(c.train.deterministic), tracking:
        history = trainer.fit(b.train.X, b.train.y, b.val.X, b.val.y)
    value, tuning = None, None
    if report.pruned_at is None:
        p = predict(trainer.model, built.head, b.schema, b.val.X, b.val.ids, b.val.y,
                    trainer.eval_batch_size, inputs=built.inputs, precision=c.train.precision)
        value = score(p, metric)
        if p.task == "binary" and c.eval.threshold_objective != "none":
            tuning = _plain(threshold_tuning(p, c.eval))
    tracking.finish(values={f"trial_{metric}": value})
    lrs = [float(r[LR]) for r in history.rows[:trainer.best_epoch or 0]]
    return TrialOutcome(value, len(history), trainer.best_epoch, report.pruned_at,
                        time.perf_counter() - started, report.values, lrs, tuning,
                        {"batch_size": c.train.batch_size, "epochs": c.train.epochs})


def _plain(tuning: dict[str, Any]) -> dict[str, Any]:
    """The threshold tuning as JSON values (a study's attributes are JSON), without its curve
    (a point per validation score; only the run that tunes on validation plots it)."""
    return json.loads(json.dumps({k: v for k, v in tuning.items() if k != "curve"},
                                 default=float))


def _predictions(built: Assembly, split: Any, scores: np.ndarray) -> Predictions:
    schema = built.bundle.schema
    y = split.y.cpu().numpy()
    if schema.task == "regression":
        scores = schema.target.decode_regression(scores)
        y = schema.target.decode_regression(y.astype(float))
    elif schema.task != "multilabel":
        y = y.astype(int)
    return Predictions(ids=split.ids, scores=scores, task=schema.task,
                       class_names=schema.class_names, y_true=y)


def _fresh(model: Any) -> Any:
    """An untrained copy of the user's module for every trial (no trial starts from
    another's weights; the user's object stays as it is)."""
    return copy.deepcopy(model)
