"""Warnings a careful reader needs, computed from the run's own numbers."""

from __future__ import annotations

import math
from typing import Any, Optional

from deepfit.config_scope import model_family
from deepfit.report.format import LABELS


def wilson_interval(successes: int, n: int, level_z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion: unlike the percentile bootstrap it does not
    collapse to a point when every (or no) test example is right."""
    p = successes / n
    centre = (p + level_z ** 2 / (2 * n)) / (1 + level_z ** 2 / n)
    half = level_z * math.sqrt(p * (1 - p) / n + level_z ** 2 / (4 * n * n)) / (1 + level_z ** 2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def collapse_warning(task: str, test: Optional[dict[str, Any]], model: Optional[str] = None,
                     at_epoch_limit: bool = False, images: bool = False) -> Optional[str]:
    """The note for a model that predicts one class for every test row (multi-label: every
    label the same way for every row), or None. It needs ``predicted_counts`` in the test
    metrics, and a test split whose true classes vary (else one class is not a sign).

    The likely causes fit the run: ``model`` (its name) decides whether model.outputs is
    advice (only your own nn.Module has it), ``at_epoch_limit`` (training ran every epoch
    it was given) names too few epochs, and ``images`` says images instead of rows.
    """
    test = test or {}
    counts, n = test.get("predicted_counts"), test.get("n") or 0
    if not counts or n < 2 or task == "regression":
        return None
    rows = "images" if images else "rows"
    causes = []
    if at_epoch_limit:
        causes.append("too few epochs (training stopped at the epoch limit: raise "
                      "train.epochs)")
    if model is None or model_family(model) == "custom":
        causes.append("a mismatch between the loss and what the model returns (a forward "
                      "that ends in a sigmoid or softmax needs model.outputs=probabilities)")
    causes.append("a learning rate too high (lower train.lr)")
    why = ", ".join(causes)
    if task == "multilabel":
        support = [row.get("support", 0) for row in (test.get("per_class") or {}).values()]
        if any(0 < c < n for c in counts.values()) or not any(0 < s < n for s in support):
            return None
        always = [k for k, c in counts.items() if c == n]
        how = (f"labels {always} on every {rows[:-1]}, the others on none" if always
               else f"no label on any {rows[:-1]}")
        return (f"The model has collapsed: it predicts {how} of the {n} test {rows}, so it "
                f"ignores the inputs. Likely causes: {why}, or labels too rare to learn "
                "(more data or epochs).")
    cm = test.get("confusion_matrix") or []
    true_classes = sum(1 for row in cm if sum(row))
    used = [k for k, c in counts.items() if c]
    if len(used) != 1 or true_classes < 2:
        return None
    return (f"The model has collapsed: it predicts class '{used[0]}' for every one of the {n} "
            f"test {rows}, although the test split holds {true_classes} classes, so it "
            f"ignores the inputs. Likely causes: {why}, or class imbalance (try "
            "train.class_weights=balanced).")


def summary_collapse(summary: dict[str, Any]) -> Optional[str]:
    """:func:`collapse_warning` of a run from its summary.json (also for ``deepfit runs``,
    ``evaluate`` and ``cv``), with the causes that fit its model and training."""
    data, training = summary.get("data") or {}, summary.get("training") or {}
    return collapse_warning(
        data.get("task", ""), (summary.get("metrics") or {}).get("test"),
        model=(summary.get("model") or {}).get("name"),
        at_epoch_limit=training.get("epochs_run") is not None
        and training.get("epochs_run") == training.get("max_epochs"),
        images=data.get("kind") == "image")


def warnings_for(summary: dict[str, Any]) -> list[str]:
    notes: list[str] = list(summary["data"].get("notes", []))
    data, metrics = summary["data"], summary.get("metrics", {})
    collapsed = summary_collapse(summary)
    if collapsed:
        notes.insert(0, collapsed)
    n_test, rows = data["split_sizes"]["test"], "images" if data.get("kind") == "image" else "rows"
    if data["task"] != "regression" and n_test and 100.0 / n_test > 1.0:
        notes.append(f"The test set has {n_test} {rows}: one example moves accuracy by "
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
                     f"validation one by {gap:.3f}: the model may overfit; consider "
                     f"{_regularisers(summary)} or more data.")
    shape = data.get("image_shape")
    if shape and max(shape[1:]) > 256:
        notes.append(f"The images are {shape[1]}×{shape[2]} pixels: convolutions at that size "
                     "are slow and memory-hungry; data.image_size=128 (or 224 for pretrained "
                     "torchvision models) usually trains much faster at little cost.")
    if training.get("skipped_steps"):
        notes.append(f"{training['skipped_steps']} training step(s) had a non-finite loss or "
                     "gradient and were skipped (train.on_nonfinite=skip); if there are many, "
                     "lower train.lr or standardise the inputs.")
    if training.get("oom_events"):
        first = training["oom_events"][0]
        notes.append(f"The GPU ran out of memory at step {first['step']} of epoch "
                     f"{first['epoch']}; each batch of {training['batch_size']} was then split "
                     f"into {training['micro_batches']} micro-batches (train.on_oom=halve), "
                     "which gives the same updates with less memory.")
    if training.get("precise_bn"):
        notes.append("Batch-norm statistics were recomputed over the training rows before each "
                     "validation (train.precise_bn): with few steps an epoch, running averages "
                     "would describe earlier weights and make evaluation-mode predictions "
                     "unreliable.")
    graphs = training.get("cuda_graphs") or {}
    if graphs and not graphs.get("used"):
        why = graphs.get("reason") or "no training batch had the full batch size"
        notes.append(f"train.cuda_graphs was asked for but not used: {why}; training ran "
                     "eagerly (the same arithmetic, one kernel launch at a time).")
    elif graphs.get("reason"):
        notes.append(f"CUDA graphs replayed {graphs['replays']} training steps, then were "
                     f"turned off: {graphs['reason']}.")
    if training.get("epochs_run") == training.get("max_epochs") and training.get("early_stopping"):
        notes.append("Training used every epoch without an early stop; more epochs might help.")
    for split in ("val", "test"):
        for metric, reason in (metrics.get(split) or {}).get("undefined", {}).items():
            notes.append(f"{LABELS.get(metric, metric)} on {split} is undefined: {reason}.")
    rates = ((metrics.get("test") or {}).get("rates") or {}).get("undefined", {})
    shown = [f"{key} ({reason})" for key, reason in rates.items()
             if not key.startswith(("macro.", "weighted.", "binary."))]
    if shown:
        more = f", and {len(shown) - 6} more" if len(shown) > 6 else ""
        notes.append("Undefined rates on test (division by zero): " + "; ".join(shown[:6]) +
                     more + ".")
    test = metrics.get("test") or {}
    if data["task"] != "regression" and test.get("accuracy") in (0.0, 1.0) and test.get("n"):
        lo, hi = wilson_interval(round(test["accuracy"] * test["n"]), test["n"])
        notes.append(f"Test accuracy is exactly {test['accuracy']:.0f} on {test['n']} rows, so "
                     "every bootstrap resample agrees and its interval collapses to a point; "
                     f"the Wilson 95% interval [{lo:.3f}, {hi:.3f}] is the honest range.")
    for name, entry in (metrics.get("ci") or {}).items():
        if entry.get("reason"):
            notes.append(f"No confidence interval for {LABELS.get(name, name)}: "
                         f"{entry['reason']}.")
    notes += (summary.get("diagnostics") or {}).get("notes", [])  # inside the network
    return notes


def _regularisers(summary: dict[str, Any]) -> str:
    """What can regularise this model more: dropout only where it has dropout (deepfit's mlp
    and cnn have model.dropout; another model only if its layers hold Dropout)."""
    model, training = summary.get("model") or {}, summary.get("training") or {}
    layer_types = " ".join(str(row.get("type", "")) for row in model.get("layers") or [])
    if "dropout" in str(training.get("regularisation", "")):
        dropout = "more dropout (model.dropout), "
    elif "Dropout" in layer_types:
        dropout = "more dropout (in the model's Dropout layers), "
    else:
        dropout = ""
    augment = ("data augmentation (data.augment), " if (summary.get("data") or {}).get("kind")
               == "image" and "augmentation" not in str(training.get("regularisation", ""))
               else "")
    return f"{dropout}{augment}more weight decay (train.weight_decay)"


def console_warnings(run_path: Any) -> list[str]:
    """The ``warning:`` lines the CLI prints for a finished run (train, evaluate), from its
    summary.json: today a collapsed model, with the causes that fit the run."""
    from deepfit.run import RunDir

    note = summary_collapse(RunDir(run_path).read_summary())
    return [note] if note else []
