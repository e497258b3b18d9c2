"""From a trained model and a split to scores, predictions and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepfit.data.bundle import Schema
from deepfit.evaluate.metrics import classification_metrics, regression_metrics
from deepfit.evaluate.multilabel import multilabel_metrics
from deepfit.models.inference import predict_outputs
from deepfit.task import TaskHead


@dataclass
class Predictions:
    """Scores for one set of rows. ``scores``: P(positive) (N,), class probabilities (N, K),
    label probabilities (N, L) for multi-label, or regression values in the target's units
    (N,). ``y_true`` is None for unlabelled rows. ``warnings``: one line per column of the
    input that held what training never saw (see ``TabularPreprocessor.unfamiliar``)."""

    ids: np.ndarray
    scores: np.ndarray
    task: str
    class_names: list[str]
    y_true: Optional[np.ndarray] = None
    threshold: float = 0.5
    id_name: str = "id"
    warnings: list[str] = field(default_factory=list)

    @property
    def y_pred(self) -> np.ndarray:
        if self.task in ("binary", "multilabel"):
            return (self.scores >= self.threshold).astype(int)
        if self.task == "multiclass":
            return self.scores.argmax(axis=1)
        return self.scores

    def metrics(self) -> dict[str, Any]:
        if self.y_true is None:
            raise ValueError("these predictions have no true labels")
        if self.task == "regression":
            return regression_metrics(self.y_true, self.scores)
        if self.task == "multilabel":
            return flat_multilabel(multilabel_metrics(self.y_true, self.scores, self.class_names,
                                                      self.threshold))
        return classification_metrics(self.y_true, self.scores, self.class_names, self.threshold)

    def to_frame(self) -> pd.DataFrame:
        """One row per input: id, true (if known), predicted, and the class scores."""
        frame = pd.DataFrame({self.id_name: self.ids})
        names = np.array(self.class_names, dtype=object)
        if self.task == "regression":
            if self.y_true is not None:
                frame["true"] = self.y_true
            frame["predicted"] = self.scores
            return frame
        if self.task == "multilabel":  # label sets as 'a;c'; an empty set is ''
            def join(rows: np.ndarray) -> list[str]:
                return [";".join(names[r.astype(bool)]) for r in rows]
            if self.y_true is not None:
                frame["true"] = join(self.y_true)
            frame["predicted"] = join(self.y_pred)
            for j, name in enumerate(self.class_names):
                frame[f"p_{name}"] = self.scores[:, j]
            return frame
        if self.y_true is not None:
            frame["true"] = names[self.y_true.astype(int)]
        frame["predicted"] = names[self.y_pred]
        probs = np.c_[1 - self.scores, self.scores] if self.task == "binary" else self.scores
        for j, name in enumerate(self.class_names):
            frame[f"p_{name}"] = probs[:, j]
        return frame


def flat_multilabel(m: dict[str, Any]) -> dict[str, Any]:
    """Multi-label metrics with the averages as flat keys (``f1_macro``, ``roc_auc_micro``),
    like the single-label ones, and ``per_class`` for the per-label table."""
    out = {k: m[k] for k in ("n", "subset_accuracy", "hamming_loss", "samples_f1", "undefined")}
    for scope in ("macro", "micro", "weighted"):
        out.update({f"{k}_{scope}": v for k, v in m[scope].items()})
    out["roc_auc_macro_defined"] = m["macro_defined"]["roc_auc"]
    out["samples_f1_defined"] = m["samples_f1_defined"]["f1"]
    out["accuracy"] = 1.0 - m["hamming_loss"]  # label-wise, as tracked during training
    out["per_class"] = m["per_label"]
    return out


def predict(model: nn.Module, head: TaskHead, schema: Schema, X: Any,
            ids: np.ndarray, y: Optional[torch.Tensor] = None, batch_size: int = 4096,
            threshold: float = 0.5, id_name: str = "id", inputs: Any = None,
            precision: str = "fp32") -> Predictions:
    """Run ``model`` on ``X`` and package the scores (regression back in target units).
    ``inputs`` turns stored image batches into network input (see ``ImageInputs``)."""
    out = predict_outputs(model, X, batch_size, precision, inputs)
    scores = head.scores(out).cpu().numpy().astype(np.float64)
    y_true = None if y is None else y.cpu().numpy()
    if schema.task == "regression":
        scores = schema.target.decode_regression(scores)
        y_true = None if y_true is None else schema.target.decode_regression(y_true.astype(float))
    elif y_true is not None:
        y_true = y_true.astype(int)
    return Predictions(ids=ids, scores=scores, task=schema.task, class_names=schema.class_names,
                       y_true=y_true, threshold=threshold, id_name=id_name)
