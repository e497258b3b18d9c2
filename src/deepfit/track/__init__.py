"""Experiment tracking: TensorBoard (``track.tensorboard``) and MLflow (``track.mlflow``),
both optional (``pip install 'deepfit[track]'``) and off by default.

Trackers are training callbacks (``guard.Tracker``) for what happens per epoch, plus a
final step after evaluation (``Tracking.finish``): the test metrics with their intervals
and the run's files. ``pipeline.train`` and every tuning trial use them the same way::

    tracking = Tracking(cfg)                 # a missing package: one line, before any work
    trainer = Trainer(..., callbacks=[*callbacks, *tracking.callbacks(built, rd)])
    with tracking:                           # an error or Ctrl-C: MLflow run FAILED / KILLED
        trainer.fit(...)
    tracking.finish(metrics, rd)             # after evaluation and the report

A tracker that fails never stops training: one warning, then the run goes on without it
(``guard``). A tuning study is one MLflow run (``StudyRun``) whose children are its trials
and its final run.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Optional

from deepfit.config import RunConfig
from deepfit.config_scope import applying_dict
from deepfit.errors import ConfigError, DeepfitWarning
from deepfit.run import RunDir
from deepfit.track.guard import Tracker, aborted_status
from deepfit.track.mlflow_log import MLflowLog, params_of, tracking_uri
from deepfit.track.tensorboard_log import TensorBoardLog, tensorboard_missing
from deepfit.train.callbacks import Callback
from deepfit.version import __version__

INSTALL = "pip install 'deepfit[track]'"
_STUDIES: list[StudyRun] = []  # the tuning studies of this process with an open MLflow run


def check(cfg: RunConfig) -> Optional[str]:
    """The MLflow tracking URI (None: off), after checking that every tracker asked for is
    installed and its settings make sense; else one ``ConfigError`` line."""
    track = cfg.track
    if track.tensorboard:
        why = tensorboard_missing()
        if why is not None:
            raise ConfigError(f"track.tensorboard=true needs TensorBoard, which cannot be "
                              f"imported ({why}): {INSTALL}")
    if track.mlflow is None:
        return None
    uri = tracking_uri(track.mlflow)
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"track.mlflow is set, but MLflow cannot be imported ({exc}): "
                          f"{INSTALL}") from None
    return uri


class Tracking:
    """The trackers of one run or one tuning trial (``trial``: the Optuna trial)."""

    def __init__(self, cfg: RunConfig, trial: Any = None) -> None:
        self.track, self.trial = cfg.track, trial
        self.uri = check(cfg)
        self.trackers: list[Tracker] = []

    def callbacks(self, built: Any, rd: Optional[RunDir] = None) -> list[Callback]:
        """The trackers as callbacks for the run ``built`` (``assemble.Assembly``), writing
        under ``rd`` (None for a trial: no TensorBoard folder). Only the main process of a
        run on several tracks."""
        if not built.strategy.is_main:
            return []
        cfg = built.cfg
        if self.track.tensorboard and rd is not None:
            self.trackers.append(TensorBoardLog(rd.tensorboard, built.bundle.train.X,
                                                built.inputs, cfg.train.seed))
        if self.uri is not None:
            tags = {"deepfit.version": __version__, "deepfit.task": built.bundle.schema.task,
                    "deepfit.data": cfg.data.source, "deepfit.model": cfg.model.name}
            if self.trial is not None:
                study = self.trial.study.study_name
                name, parent = f"trial-{self.trial.number}", _study(study=study)
                tags.update({"deepfit.study": study, "deepfit.trial": str(self.trial.number)})
            else:
                path = rd.path.resolve()
                name, parent = rd.path.name, _study(inside=path)
                tags["deepfit.run_dir"] = str(path)
            params = params_of(applying_dict(cfg, built.facts))
            if parent is None or parent.run_id is not None:  # its study's failure said it
                self.trackers.append(MLflowLog(self.uri, self.track.experiment, name, params,
                                               tags, parent=parent))
        return list(self.trackers)

    def __enter__(self) -> Tracking:
        return self

    def __exit__(self, exc_type: Optional[type], exc: Any, tb: Any) -> bool:
        if exc_type is not None:  # training stopped by an error or an interruption
            for tracker in self.trackers:
                tracker.end(aborted_status(exc_type))
        return False

    def finish(self, metrics: Optional[dict] = None, rd: Optional[RunDir] = None,
               values: Optional[dict[str, Optional[float]]] = None,
               tags: Optional[dict[str, str]] = None) -> None:
        """Log the final results and close every tracker: ``metrics`` (metrics.json's
        content) as test metrics with their interval bounds, ``values`` as they are (None:
        undefined, not logged), ``rd``'s files as artifacts."""
        final = final_metrics(metrics or {})
        final.update({k: float(v) for k, v in (values or {}).items() if _number(v)})
        tags = dict(tags or {})
        undefined = sorted((metrics or {}).get("test", {}).get("undefined") or {})
        if undefined:
            tags["deepfit.undefined_test_metrics"] = ", ".join(undefined)
        files = artifacts(rd) if rd is not None else []
        for tracker in self.trackers:
            tracker.finish(final, files, tags)


class StudyRun:
    """The MLflow run of a group of runs, the parent of theirs: a tuning study (``kind``
    "tune"; its trials' runs, and its final run, which lies inside ``folder``) or a
    cross-validation (``kind`` "cv"; its folds, inside ``folder``). Running the same study
    again logs into the same parent. Nothing when ``track.mlflow`` is not set."""

    def __init__(self, cfg: RunConfig, folder: Path, study: str, kind: str = "tune") -> None:
        self.uri, self.folder, self.study = check(cfg), Path(folder).resolve(), study
        self.kind = kind
        self.log: Optional[MLflowLog] = None
        if self.uri is None:
            return
        tags = {"deepfit.version": __version__, "deepfit.kind": kind, "deepfit.study": study,
                "deepfit.study_folder": str(self.folder)}
        self.log = MLflowLog(self.uri, cfg.track.experiment, self.folder.name,
                             params_of(cfg.to_dict()), tags, parent=_study(inside=self.folder),
                             reuse={"deepfit.study_folder": str(self.folder)})
        self.log.start()
        _STUDIES.append(self)

    @property
    def run_id(self) -> Optional[str]:
        return None if self.log is None or self.log.failed else self.log.run_id

    def end(self, summary: Optional[dict[str, dict]] = None) -> None:
        """The group is done: its run is FINISHED, with ``summary`` (``{metric: {"mean": ..,
        "sd": ..}}``, a cross-validation's) as metrics ``<kind>_<metric>_mean`` / ``_sd``."""
        if self.log is not None:
            values = {f"{self.kind}_{name}_{stat}": float(stats[stat])
                      for name, stats in (summary or {}).items() for stat in ("mean", "sd")
                      if isinstance(stats, dict) and _number(stats.get(stat))}
            self.log.finish(values, [])
        if self in _STUDIES:
            _STUDIES.remove(self)


def _study(study: Optional[str] = None, inside: Optional[Path] = None) -> Optional[StudyRun]:
    """The open tuning study named ``study``, or the group whose folder holds ``inside``."""
    for run in reversed(_STUDIES):
        if study is not None and run.kind == "tune" and run.study == study:
            return run
        if inside is not None and run.folder != inside and run.folder in inside.parents:
            return run
    return None


def final_metrics(metrics: dict) -> dict[str, float]:
    """A run's test metrics (``RunDir.metrics``) as ``{"test_accuracy": ...,
    "test_accuracy_ci_low": ..., "threshold": ...}``: numbers only; an undefined value is left
    out, never 0."""
    out = {f"test_{k}": float(v) for k, v in (metrics.get("test") or {}).items() if _number(v)}
    for name, interval in (metrics.get("ci") or {}).items():
        for side in ("low", "high"):
            if isinstance(interval, dict) and _number(interval.get(side)):
                out[f"test_{name}_ci_{side}"] = float(interval[side])
    if _number(metrics.get("threshold")):
        out["threshold"] = float(metrics["threshold"])
    return out


def artifacts(rd: RunDir) -> list[tuple[Path, Optional[str]]]:
    """``(file, folder in the MLflow run or None)`` for the run's files worth keeping beside
    its MLflow run, those that exist: config, schema, history, metrics, report, weights, and
    exported models (``export/<format>/...``, in the same folders)."""
    files = [rd.config, rd.schema, rd.history, rd.metrics, rd.report, rd.report_md,
             rd.weights]
    files += sorted(p for p in rd.exports.rglob("*") if p.is_file())
    return [(p, None if p.parent == rd.path else p.parent.relative_to(rd.path).as_posix())
            for p in files if p.is_file()]


def log_export(cfg: RunConfig, rd: RunDir, folder: Path) -> None:
    """After ``deepfit export``: the exported files (``folder``) join the run's MLflow run,
    under ``export/<folder name>/``, when the run was trained with ``track.mlflow``. A
    failure (MLflow not installed here, the server down, the run not found) is one warning;
    the export itself stands."""
    if cfg.track.mlflow is None:
        return
    try:
        uri = check(cfg)
    except ConfigError as exc:
        warnings.warn(f"{exc}; the export is not logged to MLflow", DeepfitWarning,
                      stacklevel=2)
        return
    log = MLflowLog(uri, cfg.track.experiment, rd.path.name, {}, {}, create=False,
                    reuse={"deepfit.run_dir": str(rd.path.resolve())})
    log.label = f"MLflow at {uri} (the run's export)"
    log.start()
    log.finish({}, [(p, f"{rd.exports.name}/{folder.name}") for p in sorted(folder.iterdir())
                    if p.is_file()])


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


__all__ = ["StudyRun", "Tracking", "check", "final_metrics", "log_export"]
