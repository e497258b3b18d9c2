"""The evaluation stage: from validation and test predictions to every number the report
shows. The threshold is tuned on the validation split only and then applied unchanged to
the test split; the test split is never used to choose anything."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from deepfit.config import EvalConfig
from deepfit.errors import ConfigError
from deepfit.evaluate.bootstrap import bootstrap_ci
from deepfit.evaluate.predict import Predictions
from deepfit.evaluate.rates import (calibration_curve_data, confusion_rates, regression_extras,
                                    score_metrics)
from deepfit.evaluate.thresholds import tune_threshold

# Rates shown when the test set is scored at the other threshold (0.5 vs tuned).
THRESHOLD_VIEW = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc")


def check_eval_config(cfg: EvalConfig) -> None:
    """Cross-field rules, checked before training starts."""
    needs_target = cfg.threshold_objective in ("sensitivity", "specificity")
    if needs_target and cfg.target is None:
        raise ConfigError(f"eval.threshold_objective={cfg.threshold_objective} needs "
                          f"eval.target, the {cfg.threshold_objective} to reach (e.g. 0.95)")
    if not needs_target and cfg.target is not None:
        raise ConfigError("eval.target is only used with eval.threshold_objective=sensitivity "
                          "or specificity")


def full_metrics(p: Predictions, cfg: EvalConfig) -> dict[str, Any]:
    """scikit-learn-named metrics, score metrics and every confusion-matrix rate."""
    m = p.metrics()
    if p.task != "regression":  # a model that predicts one class for every row shows here
        m["predicted_counts"] = predicted_counts(p)
    if p.task == "multilabel":
        return m
    if p.task == "regression":
        extra = regression_extras(p.y_true, p.scores)
    else:
        extra = score_metrics(p.y_true, p.scores, p.class_names, n_bins=cfg.calibration_bins)
        m["rates"] = confusion_rates(np.asarray(m["confusion_matrix"]), p.class_names,
                                     betas=cfg.betas)
    undefined = {**m.pop("undefined", {}), **extra.pop("undefined", {})}
    extra.pop("n", None)
    extra.pop("n_bins", None)
    m.update({k: v for k, v in extra.items() if k not in m})
    m["undefined"] = undefined
    return m


def predicted_counts(p: Predictions) -> dict[str, int]:
    """Rows predicted as each class (multi-label: rows predicted to carry each label)."""
    pred = p.y_pred
    counts = (pred.sum(axis=0) if p.task == "multilabel"
              else np.bincount(pred.astype(int), minlength=len(p.class_names)))
    return {name: int(c) for name, c in zip(p.class_names, counts)}


def evaluate(val: Optional[Predictions], test: Predictions, cfg: EvalConfig, seed: int = 0,
             tuned: Optional[dict[str, Any]] = None) -> dict:
    """Everything metrics.json holds: ``{"val", "test", "threshold", ...}``.

    Binary tasks: the threshold for ``eval.threshold_objective`` is tuned on ``val``; it
    becomes the decision threshold only with ``eval.apply_threshold``, and the test metrics
    at the other threshold are kept for comparison (``"test_at_other_threshold"``).
    ``val`` None: a model fitted on its validation rows too (a tuned config's final fit);
    ``"val"`` is then None and ``tuned`` is the threshold tuning done on the validation
    predictions of the run it repeats (``threshold_tuning``), if any.
    """
    out: dict[str, Any] = {"threshold": 0.5}
    tuning = None
    if test.task == "binary" and cfg.threshold_objective != "none":
        tuning = threshold_tuning(val, cfg) if val is not None else _given(tuned, cfg)
        out["tuning"] = tuning
        if cfg.apply_threshold and tuning.get("threshold") is not None:
            out["threshold"] = tuning["threshold"]
    for name, p in (("val", val), ("test", test)):
        if p is None:
            out[name] = None
            continue
        p.threshold = out["threshold"]
        out[name] = full_metrics(p, cfg)
    if tuning is not None and tuning.get("threshold") is not None:
        other = 0.5 if cfg.apply_threshold else tuning["threshold"]
        test.threshold = other
        m = test.metrics()
        out["test_at_other_threshold"] = {"threshold": other,
                                          **{k: m.get(k) for k in THRESHOLD_VIEW},
                                          "specificity": _specificity(m["confusion_matrix"])}
        test.threshold = out["threshold"]
    if cfg.bootstrap and len(test.ids) >= 2 and test.task != "multilabel":
        scores = test.scores
        out["ci"] = {k: {kk: vv for kk, vv in v.items() if kk != "samples"}
                     for k, v in bootstrap_ci(test.y_true, scores, n_resamples=cfg.bootstrap,
                                              level=cfg.ci_level, seed=seed, task=test.task,
                                              threshold=out["threshold"]).items()}
        out["ci_level"], out["ci_resamples"] = cfg.ci_level, cfg.bootstrap
    if test.task in ("binary", "multiclass"):
        out["calibration"] = calibration_curve_data(test.y_true, test.scores,
                                                    n_bins=cfg.calibration_bins)
    return out


def threshold_tuning(val: Predictions, cfg: EvalConfig) -> dict[str, Any]:
    """The threshold for ``eval.threshold_objective`` on the validation predictions ``val``
    (binary), with what it was tuned for, or None and the reason."""
    if len(np.unique(val.y_true)) < 2:
        return {"objective": cfg.threshold_objective, "threshold": None,
                "reason": "the validation split holds one class only"}
    target = cfg.target if cfg.threshold_objective in ("sensitivity", "specificity") else None
    tuned = tune_threshold(val.y_true, val.scores, cfg.threshold_objective, cfg.beta, target)
    tuned["applied"] = cfg.apply_threshold
    return tuned


def _given(tuned: Optional[dict[str, Any]], cfg: EvalConfig) -> dict[str, Any]:
    """A threshold tuned before the model was fitted on its validation rows, if it was tuned
    for this run's objective."""
    if tuned and tuned.get("objective") == cfg.threshold_objective:
        return {**tuned, "applied": cfg.apply_threshold}
    why = "no tuned threshold came with it" if not tuned else (
        f"the threshold that came with it was tuned for {tuned.get('objective')}")
    return {"objective": cfg.threshold_objective, "threshold": None,
            "reason": f"the model was fitted on its validation rows too, and {why}"}


def _specificity(cm: list[list[int]]) -> float | None:
    (tn, fp), _ = cm
    return tn / (tn + fp) if tn + fp else None
