"""Warnings a careful reader needs, computed from the run's own numbers."""

from __future__ import annotations

from typing import Any


def warnings_for(summary: dict[str, Any]) -> list[str]:
    notes: list[str] = list(summary["data"].get("notes", []))
    data, metrics = summary["data"], summary.get("metrics", {})
    n_test = data["split_sizes"]["test"]
    if data["task"] != "regression" and n_test and 100.0 / n_test > 1.0:
        notes.append(f"The test set has {n_test} rows: one example moves accuracy by "
                     f"{100.0 / n_test:.1f} points. Read differences of that size as noise.")
    for name, count in data.get("class_counts", {}).get("test", {}).items():
        if count < 10:
            notes.append(f"Class '{name}' has only {count} test example(s); its per-class "
                         "metrics are very uncertain.")
    counts = data.get("class_counts", {}).get("train", {})
    if counts and min(counts.values()) * 4 < max(counts.values()):
        notes.append("The classes are imbalanced in training (" + ", ".join(
            f"{k}: {v}" for k, v in counts.items()) + "); prefer balanced accuracy, MCC and "
            "per-class recall over accuracy, or try train.class_weights=balanced.")
    training = summary.get("training", {})
    gap = training.get("train_val_gap")
    if gap is not None and gap > 0.05:
        notes.append(f"At the best epoch the training {training['main_metric']} exceeds the "
                     f"validation one by {gap:.3f}: the model may overfit; consider more "
                     "dropout, weight decay or data.")
    if training.get("epochs_run") == training.get("max_epochs") and training.get("early_stopping"):
        notes.append("Training used every epoch without an early stop; more epochs might help.")
    for split in ("val", "test"):
        for metric, reason in (metrics.get(split) or {}).get("undefined", {}).items():
            notes.append(f"{metric} on {split} is undefined: {reason}.")
    rates = ((metrics.get("test") or {}).get("rates") or {}).get("undefined", {})
    shown = [f"{key} ({reason})" for key, reason in rates.items()
             if not key.startswith(("macro.", "weighted.", "binary."))]
    if shown:
        more = f", and {len(shown) - 6} more" if len(shown) > 6 else ""
        notes.append("Undefined rates on test (division by zero): " + "; ".join(shown[:6]) +
                     more + ".")
    for name, entry in (metrics.get("ci") or {}).items():
        if entry.get("reason"):
            notes.append(f"No confidence interval for {name}: {entry['reason']}.")
    return notes
