"""``Run``: a trained model with its schema, history and metrics; predicts on new data.

``deepfit.train`` returns one; ``deepfit.load(run_dir)`` gives the same object back.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepfit.config import RunConfig
from deepfit.data.bundle import Schema
from deepfit.data.images.inputs import ImageInputs
from deepfit.data.images.new_images import images_for_model
from deepfit.data.sources.tabular import read_frame
from deepfit.errors import DataError, DataWarning, DeepfitError, RunError
from deepfit.evaluate.predict import Predictions, predict
from deepfit.models import build_model
from deepfit.models.summary import ModelSummary, model_summary
from deepfit.report.notes import collapse_warning
from deepfit.run import RunDir, require_finished, resolve_run
from deepfit.task import TaskHead
from deepfit.train.checkpoint import load_checkpoint
from deepfit.train.history import History


class Run:
    """A finished run. ``path`` is its directory (None only if nothing was written)."""

    precision = "fp32"  # of the forward pass; ``predict_files`` uses the run's on a GPU

    def __init__(self, config: RunConfig, schema: Schema, model: nn.Module, head: TaskHead,
                 history: History, metrics: dict[str, Any], path: Optional[Path]) -> None:
        self.config, self.schema, self.model, self.head = config, schema, model, head
        self.history, self.metrics, self.path = history, metrics, path

    @property
    def task(self) -> str:
        return self.schema.task

    @property
    def threshold(self) -> float:
        """The decision threshold of a binary task (0.5, or the tuned one if applied)."""
        return float(self.metrics.get("threshold", 0.5))

    @property
    def warnings(self) -> list[str]:
        """What the console should say after training: a model that predicts one class for
        every test row (the report's notes hold this and the rest)."""
        collapsed = collapse_warning(
            self.task, self.metrics.get("test"), model=self.config.model.name,
            at_epoch_limit=len(self.history.rows) >= (self.config.train.epochs or 0) > 0,
            images=self.schema.image is not None)
        return [collapsed] if collapsed else []

    def summary(self) -> ModelSummary:
        """The model's layer table: each layer's output shape, trainable and frozen
        parameters, memory of its output for a training batch and FLOPs per sample
        (``print(run.summary())``; a notebook shows it as a table)."""
        return model_summary(self.model, self.schema.input_shape,
                             self.config.train.batch_size or 1)

    @property
    def report_path(self) -> Optional[Path]:
        """report.html, or None when the run wrote none (``eval.report=false``)."""
        report = None if self.path is None else RunDir(self.path).report
        return report if report is not None and report.is_file() else None

    def __repr__(self) -> str:
        test = self.metrics.get("test") or {}
        main = "accuracy" if self.task != "regression" else "r2"
        return f"Run({self.path}, task={self.task}, test {main}={test.get(main)})"

    # -- inference -----------------------------------------------------------------------
    def _frame(self, data: Any, origin: str) -> pd.DataFrame:
        if isinstance(data, (str, Path)):
            return read_frame(data, self.config.data.sheet)
        if isinstance(data, pd.DataFrame):
            frame = data.reset_index(drop=True)
            # Training named the columns as text (load_object): so must prediction, or a
            # DataFrame with integer column names would not match its own training run.
            if not all(isinstance(c, str) for c in frame.columns):
                frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
            return frame
        if isinstance(data, torch.Tensor):
            data = data.detach().cpu().numpy()
        array = np.asarray(data)
        columns = self.schema.preprocessor.columns_
        if array.ndim != 2 or array.shape[1] != len(columns):
            raise DataError(f"{origin}: got an array of shape {array.shape}; the model needs "
                            f"(rows, {len(columns)}) in the training column order {columns[:5]}...")
        return pd.DataFrame(array, columns=columns)

    def _checked(self, frame: pd.DataFrame, origin: str) -> pd.DataFrame:
        known = set(self.schema.preprocessor.columns_) | set(self.schema.target_columns)
        known |= set(self.config.data.drop_columns)
        known |= {c for c in (self.schema.id_column, self.config.data.split_column) if c}
        extra = [c for c in frame.columns if c not in known]
        if extra:
            raise DataError(f"{origin}: column(s) {extra} were not seen in training; remove them "
                            "or add them to data.drop_columns when training")
        return frame

    def _image_predictions(self, data: Any, origin: str) -> Predictions:
        X, ids, codes = images_for_model(data, self.schema.image, self.schema.class_names,
                                         self.config.data.label_map, origin,
                                         self.task == "multilabel")
        return self.image_predictions(X, ids, codes)

    def image_predictions(self, X: torch.Tensor, ids: np.ndarray,
                          codes: Optional[np.ndarray] = None) -> Predictions:
        """Scores for uint8 images (N, C, H, W) of the model's size; ``codes``: their
        labels in ``schema.class_names`` order, if known."""
        device = next(self.model.parameters(), torch.empty(0)).device
        inputs = ImageInputs(self.schema.image, device, seed=0)  # never augments here
        y = None if codes is None else torch.from_numpy(
            codes.astype(np.int64 if self.task == "multiclass" else np.float32))
        return predict(self.model, self.head, self.schema, X, ids, y,
                       self.config.eval.batch_size or 4096, threshold=self.threshold, id_name="image",
                       inputs=inputs, precision=self.precision)

    def predictions(self, data: Any, origin: Optional[str] = None) -> Predictions:
        """Scores for new rows (a file path, DataFrame, array or tensor) or, for an image
        model, new images (an image file or folder, any image source, an array). If the
        labels are present the predictions carry them, so ``.metrics()`` works. Warnings
        and errors name ``origin``: by default the file or folder given, else "input"."""
        origin = origin or _origin(data)
        if self.schema.image is not None:
            return self._image_predictions(data, origin)
        frame = self._frame(data, origin)
        p = self.frame_predictions(frame, origin)
        p.warnings = [f"{origin}: {line}" for line in self.schema.preprocessor.unfamiliar(frame)]
        _warn(p.warnings)
        return p

    def frame_predictions(self, frame: pd.DataFrame, origin: str,
                          first_row: int = 0, texts: Optional[dict] = None) -> Predictions:
        """Scores for a table of new rows that starts at row ``first_row`` of its input
        (rows are numbered so in ids and errors); warns of nothing (see
        ``TabularPreprocessor.unfamiliar``). ``texts``: as ``TabularPreprocessor.transform``."""
        X = self.schema.transform(self._checked(frame, origin), origin, texts)
        has_ids = self.schema.id_column is not None and self.schema.id_column in frame.columns
        ids = frame[self.schema.id_column].to_numpy() if has_ids else \
            np.arange(first_row, first_row + len(frame))
        y = None
        columns = self.schema.target_columns
        if all(c in frame.columns for c in columns):
            target = frame[columns] if self.task == "multilabel" else frame[columns[0]]
            gaps = np.flatnonzero(target.isna().to_numpy().reshape(len(frame), -1).any(axis=1))
            if len(gaps):
                raise DataError(f"{origin}: target '{self.schema.target.column}' is missing at "
                                f"row {first_row + gaps[0]}")
            if self.task != "multilabel":  # the old spellings of data.label_map, renamed
                target = self.schema.target.relabel(target)
            y = torch.from_numpy(self.schema.target.encode(target, origin))
        return predict(self.model, self.head, self.schema, X, ids, y,
                       self.config.eval.batch_size or 4096, threshold=self.threshold,
                       id_name=self.schema.id_column if has_ids else "row",
                       precision=self.precision)

    def predict(self, data: Any) -> np.ndarray:
        """Class names (classification), values (regression), or a 0/1 matrix (rows, labels)
        for multi-label."""
        p = self.predictions(data)
        if self.task == "regression":
            return p.scores
        if self.task == "multilabel":
            return p.y_pred
        return np.asarray(self.schema.class_names, dtype=object)[p.y_pred]

    def predict_proba(self, data: Any) -> np.ndarray:
        """(rows, classes) probabilities in ``schema.class_names`` order (multi-label: each
        label's own probability)."""
        if self.task == "regression":
            raise DeepfitError("predict_proba is for classification; this run is a regression")
        s = self.predictions(data).scores
        return np.c_[1 - s, s] if self.task == "binary" else s

    def export(self, format: str, path: Optional[str | Path] = None, force: bool = False,
               intended_use: Optional[str] = None) -> Any:
        """Write the model with its preprocessing as ``format`` (onnx, torchscript,
        exported-program, safetensors) into the folder ``path`` (default RUN/export/FORMAT),
        with input_schema.json and model_card.md; returns their paths (``deepfit.export``)."""
        from deepfit.export import export_run  # same layer; torch.onnx only when asked

        return export_run(self, format, path, force=force, intended_use=intended_use)

    def evaluate(self, data: Any) -> dict[str, Any]:
        """Metrics on labelled data passed through the run's fitted preprocessing."""
        origin = _origin(data)
        p = self.predictions(data, origin)
        if p.y_true is None:
            if self.schema.image is not None:
                raise DataError(f"{origin}: these images carry no labels to evaluate against; "
                                "give a folder with one sub-folder per class, or a CSV with "
                                "labels")
            raise DataError(f"{origin}: no target column(s) '{self.schema.target.column}' "
                            "to evaluate against")
        return p.metrics()


def _origin(data: Any) -> str:
    """How messages name new data: the file or folder given, else "input"."""
    return str(data) if isinstance(data, (str, Path)) else "input"


def _warn(lines: list[str]) -> None:
    """Each line as a ``DataWarning``, attributed to the first caller outside this module."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        level, frame = level + 1, frame.f_back
    for line in lines:
        warnings.warn(line, DataWarning, stacklevel=level)


def load(run_dir: str | Path, model: Optional[nn.Module] = None) -> Run:
    """Load a finished run from disk (weights of the best epoch, loaded safely).

    Args:
        run_dir: the run's folder, or its name under ./runs.
        model: an instance of the network, needed only when the run was trained on a model
            object that cannot be rebuilt from its import path.
    """
    rd = require_finished(resolve_run(run_dir))
    if rd.read_json(rd.schema).get("task") == "detection":
        raise RunError(f"'{rd.path}' is an object-detection run: deepfit.load (and evaluate, "
                       "inspect, explain, export and serve, which use it) reads classification "
                       "and regression runs; for a detector use 'deepfit predict RUN IMAGES -o "
                       "submission.csv' and 'deepfit report RUN' (docs/detection.md)")
    config = RunConfig.load(rd.config)
    schema = Schema.from_dict(rd.read_json(rd.schema))
    if model is None:
        try:
            model = build_model(config.model, schema.input_shape, schema.n_outputs)
        except DeepfitError as exc:
            raise RunError(f"cannot rebuild the model of '{rd.path}' ({exc}); pass the network "
                           "as deepfit.load(run_dir, model=MyNet(...))") from None
    state = load_checkpoint(rd.best)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise RunError(f"the weights in '{rd.best}' do not fit the model: "
                       f"{str(exc).splitlines()[0]}") from None
    model.eval()
    if schema.image is not None and config.train.channels_last:
        # The layout it trained in: a CNN's forward on a CPU takes ~1.7x as long without it.
        model.to(memory_format=torch.channels_last)
    head = TaskHead(schema.task, config.train.loss, config.model.outputs)
    history = History.from_csv(rd.history, schema.task)
    metrics = rd.read_metrics()
    return Run(config, schema, model, head, history, metrics, rd.path)
