"""Shared formatting of values and metric tables for the HTML and Markdown reports."""

from __future__ import annotations

from typing import Any

from deepfit.evaluate.bootstrap import format_ci
from deepfit.evaluate.metrics import HEADLINE

LABELS = {
    "accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy",
    "precision": "Precision (PPV)", "recall": "Recall (sensitivity)", "f1": "F1",
    "precision_macro": "Precision (macro)", "recall_macro": "Recall (macro)",
    "f1_macro": "F1 (macro)", "precision_weighted": "Precision (weighted)",
    "recall_weighted": "Recall (weighted)", "f1_weighted": "F1 (weighted)",
    "mcc": "Matthews correlation (MCC)", "roc_auc": "ROC-AUC", "average_precision":
    "Average precision (PR-AUC)", "log_loss": "Log-loss", "mse": "MSE", "rmse": "RMSE",
    "mae": "MAE", "r2": "R²", "brier": "Brier score", "ece": "Expected calibration error",
    "roc_auc_ovo_macro": "ROC-AUC (one-vs-one, macro)", "median_ae": "Median absolute error",
    "explained_variance": "Explained variance", "mape": "MAPE (fraction)",
    "roc_auc_macro": "ROC-AUC (macro over labels)",
    "map50": "mAP@0.5", "map50_95": "mAP@[.5:.95]",
    "roc_auc_macro_defined": "ROC-AUC (macro over labels where defined)",
    "roc_auc_micro": "ROC-AUC (micro)", "average_precision_macro": "Average precision (macro)",
    "average_precision_micro": "Average precision (micro)", "f1_micro": "F1 (micro)",
    "samples_f1": "F1 (per sample)", "samples_f1_defined": "F1 (per sample, where defined)", "subset_accuracy": "Subset accuracy (exact match)",
    "hamming_loss": "Hamming loss",
}

# The confusion-matrix table of the lectures, in their order.
RATE_LABELS = {
    "prevalence": "Prevalence", "accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy",
    "tpr": "Sensitivity, recall (TPR)", "tnr": "Specificity (TNR)", "ppv": "Precision (PPV)",
    "npv": "Negative predictive value (NPV)", "fpr": "Fall-out (FPR)", "fnr": "Miss rate (FNR)",
    "fdr": "False discovery rate (FDR)", "for": "False omission rate (FOR)",
    "lr_plus": "Positive likelihood ratio (LR+)", "lr_minus": "Negative likelihood ratio (LR−)",
    "dor": "Diagnostic odds ratio (DOR)", "informedness": "Informedness (Youden's J)",
    "markedness": "Markedness", "f1": "F1", "f0.5": "F0.5", "f2": "F2", "mcc": "MCC",
    "fowlkes_mallows": "Fowlkes–Mallows index", "threat_score": "Threat score (Jaccard)",
    "prevalence_threshold": "Prevalence threshold",
}


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def metric_rows(task: str, metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, validation, test) for the headline metrics; the test value carries its
    bootstrap interval where there is one: ``0.9474 [0.9035, 0.9825]``."""
    val, test = metrics.get("val") or {}, metrics.get("test") or {}
    ci = metrics.get("ci") or {}
    return [(LABELS.get(k, k), fmt(val.get(k)),
             format_ci(ci[k], 4) if k in ci and test.get(k) is not None else fmt(test.get(k)))
            for k in HEADLINE[task] if k in test or k in val]


def metric_table(task: str, metrics: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    """The headline metrics as (header, rows): validation beside test, or test alone for a
    model fitted on its validation rows too (``metrics["val"]`` None)."""
    rows = metric_rows(task, metrics)
    if metrics.get("val") is None and "val" in metrics:
        return ["metric", test_header(metrics)], [(label, t) for label, _, t in rows]
    return ["metric", "validation", test_header(metrics)], rows


def best_epoch_text(training: dict[str, Any]) -> str:
    """The best epoch and its monitored value, or why no epoch was picked (a final fit)."""
    if training.get("origin"):  # trained elsewhere (the playground): its own sentence
        return training["origin"]["best_epoch"]
    refit = training.get("refit")
    if refit:
        return (f"none picked: no validation rows (they were fitted on); {refit['epochs']} "
                f"epoch(s), the best epoch of {refit['source']}")
    return f"{training['best_epoch']} ({training['monitor']} = {fmt(training['best_value'])})"


def evaluation_intro(training: dict[str, Any]) -> str:
    """What model the test figures are of, and what the validation figures mean."""
    if training.get("origin"):
        return training["origin"]["evaluation"]
    if training.get("refit"):
        return ("The model fitted on the training and validation rows together, evaluated "
                "once on the held-out test set. There are no validation figures: the "
                "validation rows were fitted on.")
    return ("The model from the best epoch, evaluated once on the held-out test set. "
            "Validation figures are shown for comparison: they were used to pick the "
            "epoch, so they are optimistic.")


def rerun_text(training: dict[str, Any], config: str) -> str:
    """How to run the experiment again."""
    if training.get("origin"):
        return training["origin"]["rerun"]
    text = f"Re-run this experiment with `deepfit train {config}`."
    if training.get("refit"):
        text = (f"This model was fitted on training and validation rows for the epochs of "
                f"{training['refit']['source']}, which `deepfit train` does not repeat: "
                f"`deepfit train {config}` trains the same config with validation and early "
                "stopping; the search's own command makes this fit again.")
    return text


def test_header(metrics: dict[str, Any]) -> str:
    """'test' or 'test [95% CI]'."""
    return f"test [{metrics.get('ci_level', 0.95):.0%} CI]" if metrics.get("ci") else "test"


def rate_rows(metrics: dict[str, Any], task: str) -> tuple[list[str], list[tuple]]:
    """The confusion-matrix rate table of the test split (header, rows). Binary: the
    positive class, validation beside test. Multi-class: one column per class plus the
    macro and weighted averages."""
    test = (metrics.get("test") or {}).get("rates")
    if not test:
        return [], []
    keys = [k for k in RATE_LABELS if k in test["macro"]]
    if task == "binary" and metrics.get("val") is None and "val" in metrics:
        return ["rate (positive class)", "test"], [(RATE_LABELS[k], fmt(test["binary"][k]))
                                                   for k in keys]
    if task == "binary":
        val = (metrics.get("val") or {}).get("rates") or {}
        rows = [(RATE_LABELS[k], fmt(val.get("binary", {}).get(k)), fmt(test["binary"][k]))
                for k in keys]
        return ["rate (positive class)", "validation", "test"], rows
    names = list(test["per_class"])
    rows = [(RATE_LABELS[k], *(fmt(test["per_class"][n][k]) for n in names),
             fmt(test["macro"][k]), fmt(test["weighted"][k])) for k in keys]
    return ["rate (test)", *names, "macro", "weighted"], rows


OBJECTIVE_LABELS = {"f1": "F1", "fbeta": "F-beta", "youden": "Youden's J",
                    "sensitivity": "sensitivity", "specificity": "specificity"}


def threshold_sentence(metrics: dict[str, Any]) -> str:
    """What decides a binary prediction: the threshold in use and what tuning on the
    validation split found, in words ("" when no tuning was asked for). The console line
    and the report both use it."""
    tuning = metrics.get("tuning")
    if not tuning:
        return ""
    used = metrics.get("threshold", 0.5)
    name = OBJECTIVE_LABELS.get(tuning["objective"], tuning["objective"])
    if tuning.get("threshold") is None:
        return (f"Decision threshold {used:.4g} (default); no threshold was tuned: "
                f"{tuning['reason']}.")
    on = tuning.get("where") or "validation"  # a final fit: the chosen trial's validation
    if tuning.get("undetermined"):
        return (f"Decision threshold {used:.4g} (default). Tuning on {on} for {name}: "
                f"{tuning['reason']}.")
    found = f"validation {name} {tuning['value']:.4f}"
    if tuning.get("value_at_default") is not None:
        found += f" vs {tuning['value_at_default']:.4f} at 0.5"
    if tuning.get("applied"):
        return (f"Decision threshold {used:.4g}, tuned on {on} for {name} ({found}); "
                "applied (eval.apply_threshold=true).")
    return (f"Decision threshold {used:.4g} (default). Tuning on {on} for {name} suggests "
            f"{tuning['threshold']:.4g} ({found}); to use it, rerun with "
            "eval.apply_threshold=true.")


def threshold_rows(metrics: dict[str, Any]) -> tuple[str, list[tuple]]:
    """A sentence on the decision threshold and a table of test metrics at both thresholds
    (no table when tuning could not choose: both would be 0.5)."""
    sentence = threshold_sentence(metrics)
    tuning = metrics.get("tuning") or {}
    other = metrics.get("test_at_other_threshold")
    if tuning.get("threshold") is None or tuning.get("undetermined") or not other:
        return sentence, []
    chosen = metrics["threshold"]
    test = metrics["test"]
    spec = (test.get("rates") or {}).get("binary", {}).get("tnr")
    rows = [(LABELS.get(k, k), fmt(test.get(k)), fmt(other.get(k)))
            for k in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc")]
    rows.append(("Specificity (TNR)", fmt(spec), fmt(other.get("specificity"))))
    header = (f"test at {chosen:.4g} (in use)", f"test at {other.get('threshold', 0.5):.4g}")
    return sentence, [("metric", *header)] + rows


def value_rows(task: str, values: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) of the headline metrics of one set of metrics (e.g. new data)."""
    return [(LABELS.get(k, k), fmt(values.get(k))) for k in HEADLINE[task] if k in values]


def mean_sd_cell(entry: dict[str, Any], total: int) -> str:
    """A metric's mean ± sd over ``total`` folds, saying in how many it was undefined:
    ``0.8100 ± 0.0200 (4 of 5 folds; undefined in 1)``."""
    if entry.get("mean") is None:
        return f"undefined (in all {total} folds)"
    text = f"{fmt(entry['mean'])} ± {fmt(entry['sd'])}"
    if entry["folds"] < total:
        text += f" ({entry['folds']} of {total} folds; undefined in {total - entry['folds']})"
    return text


def per_class_rows(test: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    """Per-class (or per-label, with ROC-AUC and AP) precision, recall, F1 and support."""
    rows = test.get("per_class", {})
    multilabel = any("roc_auc" in r for r in rows.values())
    header = ["label" if multilabel else "class", "precision", "recall", "F1", "support"]
    if multilabel:
        header[4:4] = ["ROC-AUC", "average precision"]
    out = []
    for name, r in rows.items():
        cells = [fmt(r["precision"]), fmt(r["recall"]), fmt(r["f1"])]
        if multilabel:
            cells += [fmt(r["roc_auc"]), fmt(r["average_precision"])]
        out.append((name, *cells, str(r["support"])))
    return header, out


def balance_rows(data: dict[str, Any]) -> tuple[list[str], list[tuple]]:
    """Rows per class, or positives per label (multi-label), in each split."""
    counts = data.get("class_counts") or data.get("label_counts")
    if not counts:
        return [], []
    names = list(dict.fromkeys([*counts["train"], *counts["val"], *counts["test"]]))
    if data.get("class_counts"):
        names.sort()
    first = "label (positives)" if data.get("label_counts") else "class"
    # A final fit on train + validation has no validation rows: no column of zeros.
    splits = ("train", "val", "test") if data["split_sizes"].get("val") else ("train", "test")
    return [first, *(SPLIT_NAMES[s] for s in splits)], [
        (n, *(counts[s].get(n, 0) for s in splits)) for n in names]


SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}


def describe_split(data: dict[str, Any]) -> str:
    sizes = data["split_sizes"]
    val = f"{sizes['val']} validation / " if sizes.get("val") else ""
    return (f"{data['rows']} rows: {sizes['train']} train / {val}{sizes['test']} test; "
            f"split {data.get('split_method', 'as given')}")


def describe_inputs(data: dict[str, Any]) -> str:
    """The model's inputs: columns of a table, or the images' shape and how they were read."""
    if data.get("kind") != "image":
        return f"{data['columns']} column(s) -> {data['inputs']} model input(s)"
    images = data.get("images", {})
    text = f"{data['inputs']}; {images.get('origin', '')}".rstrip("; ")
    if images.get("streamed"):
        text += " (streamed from disk: larger than data.max_memory_gb)"
    if images.get("skipped"):
        text += f"; {len(images['skipped'])} unreadable image(s) skipped"
    return text


def describe_batch(training: dict[str, Any]) -> str:
    """The batch size, and how several processes shared it (the learning rate is the
    configured one: not rescaled for the number of processes)."""
    size, processes = training["batch_size"], training.get("processes") or 1
    if processes == 1:
        return str(size)
    return (f"{size} rows a step over {processes} processes (about {size // processes} each; "
            "each step's gradient is the whole batch's mean, the learning rate not rescaled)")


def describe_training_time(training: dict[str, Any]) -> str:
    """Seconds, device, and how the arithmetic ran (precision, layout, compilation)."""
    how = []
    if training.get("precision") in ("bf16", "fp16"):
        how.append(f"{training['precision']} autocast")
    if training.get("channels_last"):
        how.append("channels-last")
    if training.get("compiled"):
        how.append("torch.compile")
    if (training.get("cuda_graphs") or {}).get("used"):
        how.append("CUDA graphs")
    if training.get("sync_bn"):
        how.append("batch norm synchronised across processes")
    return (f"{training['seconds']:.1f} s on {training['device']}"
            + (f" ({', '.join(how)})" if how else ""))


def describe_target(data: dict[str, Any]) -> str:
    """What the labels are: the target column of a table, or for images where the classes
    come from (an image source has no "label" column to name)."""
    if data.get("kind") != "image":
        return str(data["target"])
    if "class folders" in str(data.get("description", "")):
        return "the class folders (one folder per class)"
    return "the image source's labels"


def collapsed_folds_line(result: dict[str, Any]) -> str | None:
    """cv: how many folds' models predict one class for every test row, or None (cv.json
    written before folds were checked has no "collapsed_folds")."""
    collapsed, total = result.get("collapsed_folds") or [], len(result.get("per_fold") or [])
    if not collapsed:
        return None
    return (f"{len(collapsed)} of {total} folds collapsed: the model predicts one class for "
            f"every test row ({', '.join(collapsed)}), so their metrics describe a constant "
            "guess; see each fold's report for the likely causes.")


def shorten(text: str, width: int = 72) -> str:
    """``text`` cut at a word boundary to at most ``width`` characters, with "…" and any
    parenthesis it opened closed, never mid-word (for one-line table cells)."""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    cut = text[:width - 1].rsplit(" ", 1)[0].rstrip(" ,;:(<")
    return cut + "…" + ")" * max(0, cut.count("(") - cut.count(")"))
