"""``train_detection``: a detection run from config to run directory, as
``deepfit.pipeline.train`` is for tables and images (which dispatches here): prepare
(``setup``), train with ``DetectionTrainer`` (checkpoints, exact resume, early stopping on
validation mAP@0.5), evaluate validation and test with ``detection_metrics``, and write
history.csv, best.pt, model.safetensors, metrics.json, predictions.csv (the challenge's
submission format), plots, summary.json and the report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from deepfit.config import RunConfig
from deepfit.config_scope import applying_dict
from deepfit.data.detection import from_model_labels, to_source_boxes
from deepfit.detection.outputs import write_outputs
from deepfit.detection.setup import DetectionSetup, prepare, split_truths
from deepfit.errors import ConfigError, RunError, TrainingInterrupted
from deepfit.models.detection import detector_anchors
from deepfit.evaluate.detection import detection_metrics
from deepfit.run import RunDir, default_run_name, record_failure
from deepfit.summary import versions
from deepfit.train.builtin import LastCheckpoint, RunFiles
from deepfit.train.detection_loop import DetectionTrainer
from deepfit.train.device import deterministic_algorithms

import yaml


class DetectionRun:
    """A finished detection run: ``metrics`` (metrics.json), ``path``, ``report_path``."""

    task = "detection"

    def __init__(self, cfg: RunConfig, metrics: dict, path: Path) -> None:
        self.config, self.metrics, self.path = cfg, metrics, Path(path)

    @property
    def report_path(self) -> Optional[Path]:
        report = RunDir(self.path).report
        return report if report.is_file() else None

    def describe(self) -> str:
        """The test mAPs in a line or two, for the console."""
        t = self.metrics["test"]
        def show(v: Any) -> str:
            return "undefined" if v is None else f"{v:.4f}"
        return (f"test mAP@0.5 {show(t['map50'])}, mAP@[.5:.95] {show(t['map50_95'])} on "
                f"{t['n_images']} images")


def source_detections(found: list[dict], images: Sequence[Any],
                      size: tuple[int, int]) -> list[dict]:
    """The detector's outputs (model-input pixels, 1-based labels) as the metrics take
    them: boxes in each image's own pixels, 0-based labels, scores."""
    return [{"image_id": im.image_id, "boxes": to_source_boxes(f["boxes"], im.size, size),
             "labels": from_model_labels(f["labels"]),
             "scores": f["scores"].numpy().astype(np.float64)}
            for f, im in zip(found, images)]


def _scorer(setup: DetectionSetup) -> Any:
    truths, names = split_truths(setup, "val"), setup.data.class_names

    def score(found: list[dict]) -> float:
        m = detection_metrics(truths, source_detections(found, truths, setup.size), names)
        return m.map50  # NaN (undefined: no true box in validation) never counts as best
    return score


def _schema(setup: DetectionSetup) -> dict:
    return {"task": "detection", "class_names": list(setup.data.class_names),
            "image_size": list(setup.size), "model": setup.cfg.model.name,
            "model_kwargs": dict(setup.cfg.model.kwargs),
            "anchors": detector_anchors(setup.model),
            "images": {s: [setup.data.images[i].image_id for i in ix]
                       for s, ix in setup.parts.items()}}


def train_detection(cfg: RunConfig, data: Any = None, model: Any = None,
                    callbacks: Sequence[Any] = (), split: Any = None, rd: Optional[RunDir] = None,
                    state: Optional[dict] = None, refit: Any = None) -> DetectionRun:
    """Train, evaluate and report one detection run (see the module docstring)."""
    for given, what in ((model, "a model object (use model.name)"),
                        (split, "a given split (cross-validation)"),
                        (refit, "a final refit (deepfit tune)")):
        if given is not None:
            raise ConfigError(f"object detection does not take {what} yet; see "
                              "docs/detection.md")
    setup = prepare(cfg)
    cfg = setup.cfg
    dump = yaml.safe_dump(applying_dict(cfg, setup.facts), sort_keys=False)
    schema = _schema(setup)
    if rd is None:
        rd = RunDir.create(cfg.out, cfg.name, default_run_name(
            Path(cfg.data.source).stem or cfg.data.source, cfg.model.name))
        rd.write_text(rd.config, dump)
        rd.write_json(rd.schema, schema)
    elif rd.read_json(rd.schema) != json.loads(json.dumps(schema)):
        raise RunError(f"the data of '{rd.path}' changed since the run started (its images, "
                       "classes or split differ); a resumed run must see the same data")
    files = RunFiles(rd.best, rd.last, extra={"config": dump, "versions": versions()})
    trainer = DetectionTrainer(setup.model, cfg.train, score=_scorer(setup),
                               strategy=setup.strategy, callbacks=list(callbacks), files=files,
                               eval_batch_size=cfg.eval.batch_size, workers=cfg.data.workers)
    last = trainer.find(LastCheckpoint)
    if state is not None:
        trainer.load_state_dict(state)
    started = time.perf_counter()
    try:
        with deterministic_algorithms(cfg.train.deterministic):
            trainer.fit(setup.train, setup.val)
    except TrainingInterrupted as exc:
        from deepfit.pipeline import _interrupted  # the same message and saving as any run
        raise _interrupted(trainer, last, exc, rd) from None
    except Exception as exc:
        record_failure(rd, exc, new=state is None)
        raise
    seconds = time.perf_counter() - started
    try:
        metrics = write_outputs(setup, trainer, rd, seconds, source_detections)
    except Exception as exc:
        record_failure(rd, exc, new=False)
        raise
    if cfg.train.progress:
        print(f"deepfit: {DetectionRun(cfg, metrics, rd.path).describe()}", file=sys.stderr)
    return DetectionRun(cfg, metrics, rd.path)
