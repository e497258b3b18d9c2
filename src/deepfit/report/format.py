"""Shared formatting of values and metric tables for the HTML and Markdown reports."""

from __future__ import annotations

from typing import Any

from deepfit.evaluate.metrics import HEADLINE

LABELS = {
    "accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy",
    "precision": "Precision (PPV)", "recall": "Recall (sensitivity)", "f1": "F1",
    "precision_macro": "Precision (macro)", "recall_macro": "Recall (macro)",
    "f1_macro": "F1 (macro)", "precision_weighted": "Precision (weighted)",
    "recall_weighted": "Recall (weighted)", "f1_weighted": "F1 (weighted)",
    "mcc": "Matthews correlation (MCC)", "roc_auc": "ROC-AUC", "average_precision":
    "Average precision (PR-AUC)", "log_loss": "Log-loss", "mse": "MSE", "rmse": "RMSE",
    "mae": "MAE", "r2": "R²",
}


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def metric_rows(task: str, metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, validation, test) for the headline metrics."""
    val, test = metrics.get("val") or {}, metrics.get("test") or {}
    return [(LABELS.get(k, k), fmt(val.get(k)), fmt(test.get(k))) for k in HEADLINE[task]
            if k in test or k in val]


def per_class_rows(test: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return [(name, fmt(r["precision"]), fmt(r["recall"]), fmt(r["f1"]), str(r["support"]))
            for name, r in test.get("per_class", {}).items()]


def describe_split(data: dict[str, Any]) -> str:
    sizes = data["split_sizes"]
    return (f"{data['rows']} rows: {sizes['train']} train / {sizes['val']} validation / "
            f"{sizes['test']} test; split {data.get('split_method', 'as given')}")
