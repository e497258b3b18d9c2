"""Plots for the report: each function takes plain values and writes one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from deepfit.files import atomic_write  # noqa: E402

DPI = 110
FEW_ROWS = 5  # a calibration bin holding fewer rows is drawn hollow and grey: too few to judge


def _epoch_style(count: int) -> dict[str, Any]:
    """Line and markers for per-epoch curves: every epoch is a visible point, so one epoch
    (a line needs two points) still shows, and many epochs do not turn into blots."""
    size = 5 if count <= 20 else 3 if count <= 60 else 1.5
    return {"marker": "o", "markersize": size}


def _epoch_axis(ax: Any, epochs: list[int]) -> None:
    """Whole epochs on the x axis; a single epoch centred, not on a 0.96..1.04 scale."""
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    if epochs and len(epochs) <= 12:
        ax.set_xticks(sorted(set(epochs)))
    if len(set(epochs)) == 1:
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)


def _save(fig: Any, path: Any) -> Any:
    """Save to a file path (folders created) or to a binary file object."""
    fig.tight_layout()
    if isinstance(path, Path):  # atomic, like every run file
        atomic_write(path, lambda fh: fig.savefig(fh, dpi=DPI, format="png"))
    else:
        fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return path


def learning_curves(rows: list[dict], main: str, best_epoch: Optional[int], path: Path) -> Path:
    """Loss and the main metric per epoch, train and validation, best epoch marked."""
    return _save(learning_figure(rows, main, best_epoch), path)


def learning_figure(rows: list[dict], main: str, best_epoch: Optional[int]) -> Any:
    """The figure of ``learning_curves``: a marker at every epoch, a line between them."""
    epochs = [r["epoch"] for r in rows]
    pretty = {"r2": "R²", "accuracy": "Accuracy"}.get(main, main.replace("_", " ").capitalize())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    style = _epoch_style(len(epochs))
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], main, pretty)):
        ax.plot(epochs, [r[f"train_{key}"] for r in rows], label="train", **style)
        if any(r[f"val_{key}"] is not None for r in rows):  # None: fitted without validation
            ax.plot(epochs, [r[f"val_{key}"] for r in rows], label="validation", **style)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best (epoch {best_epoch})")
        _epoch_axis(ax, epochs)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_title("Loss")
    axes[1].set_title(pretty)
    return fig


def overlaid_curves(named_rows: dict[str, list[dict]], main: str, path: Any) -> Any:
    """Validation loss and main metric of several runs on one pair of axes."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, rows in named_rows.items():
        epochs = [r["epoch"] for r in rows]
        style = _epoch_style(len(epochs))
        axes[0].plot(epochs, [r["val_loss"] for r in rows], label=name, **style)
        axes[1].plot(epochs, [r[f"val_{main}"] for r in rows], label=name, **style)
    for ax, title in ((axes[0], "Validation loss"), (axes[1], f"Validation {main}")):
        ax.set_title(title)
        _epoch_axis(ax, sorted({r["epoch"] for rows in named_rows.values() for r in rows}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def confusion_matrix(cm: list[list[int]], class_names: list[str], path: Path) -> Path:
    """Counts and row-normalised (recall per true class): side by side for a few classes,
    one above the other for more, so that each matrix keeps the page's width and its labels
    stay readable; the figure grows with the classes (numbers in the cells up to 20)."""
    cm = np.asarray(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    k = len(class_names)
    size = min(3.5 + 0.38 * k, 14)
    if k <= 5:
        fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    else:
        fig, axes = plt.subplots(2, 1, figsize=(size + 1, 2 * size))
    ticks = 9 if k <= 20 else 8
    for ax, data, title, fmt in ((axes[0], cm, "Counts", "d"),
                                 (axes[1], norm, "Normalised by true class", ".2f")):
        ax.imshow(data, cmap="Blues", vmin=0)
        ax.set_title(title)
        longest = max((len(str(n)) for n in class_names), default=1)
        turn = 0 if k <= 3 or longest <= 3 else 45 if k <= 12 else 90
        ax.set_xticks(range(k), class_names, rotation=turn, fontsize=ticks,
                      ha="right" if turn == 45 else "center")
        ax.set_yticks(range(k), class_names, fontsize=ticks)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if k <= 20:
            hi = data.max() / 2 if data.max() else 0.5
            for i in range(k):
                for j in range(k):
                    text = format(data[i, j], fmt) if data[i, j] else "0"  # less noise
                    ax.text(j, i, text, ha="center", va="center",
                            color="white" if data[i, j] > hi else "black",
                            fontsize=9 if k <= 10 else 7)
    return _save(fig, path)


def _one_vs_rest(y: np.ndarray, scores: np.ndarray, names: list[str]) -> list[tuple[str, Any, Any]]:
    if scores.ndim == 1:
        return [(names[1], y == 1, scores)]
    if y.ndim == 2:  # multi-label: each label's own column, where it has both outcomes
        return [(name, y[:, j] == 1, scores[:, j]) for j, name in enumerate(names)
                if 0 < y[:, j].sum() < len(y)]
    return [(name, y == j, scores[:, j]) for j, name in enumerate(names) if 0 < (y == j).sum() < len(y)]


def roc(y: np.ndarray, scores: np.ndarray, names: list[str], path: Path,
        threshold: float = 0.5) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, truth, s in _one_vs_rest(y, scores, names):
        fpr, tpr, thr = roc_curve(truth, s)
        ax.plot(fpr, tpr, label=name if scores.ndim > 1 else "ROC")
        if scores.ndim == 1:  # mark the operating point at the decision threshold
            i = int(np.argmin(np.abs(thr - threshold)))
            ax.plot(fpr[i], tpr[i], "o", color="black", label=f"threshold {threshold:g}")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="chance")
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_title("ROC curve" + (" (per label)" if y.ndim == 2 else
                                " (one vs rest)" if scores.ndim > 1 else ""))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def precision_recall(y: np.ndarray, scores: np.ndarray, names: list[str], path: Path,
                     threshold: float = 0.5) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, truth, s in _one_vs_rest(y, scores, names):
        precision, recall, thr = precision_recall_curve(truth, s)
        ax.plot(recall, precision, label=name if scores.ndim > 1 else "PR")
        if scores.ndim == 1:
            ax.axhline(truth.mean(), ls=":", color="grey", label="chance (prevalence)")
            i = int(np.argmin(np.abs(thr - threshold)))  # the operating point
            ax.plot(recall[i], precision[i], "o", color="black", label=f"threshold {threshold:g}")
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision (PPV)")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall curve")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def reliability(calibration: dict, path: Path) -> Path:
    """The reliability diagram (``reliability_figure``) as a PNG."""
    return _save(reliability_figure(calibration), path)


def reliability_figure(calibration: dict) -> Any:
    """Reliability diagram: observed frequency against mean predicted probability per bin,
    marker area by the bin's rows, bins of fewer than ``FEW_ROWS`` rows hollow and grey, and
    the rows per bin as a histogram underneath (counts written on the bars). Only draws:
    the ECE and the bins come from the evaluation unchanged."""
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 5.5), height_ratios=[3, 1], sharex=True)
    points = [(m, o, c) for m, o, c in zip(calibration["mean_predicted"],
                                           calibration["observed_frequency"],
                                           calibration["count"]) if m is not None]
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="perfectly calibrated")
    if points:
        m, o, c = map(np.asarray, zip(*points))
        # Marker area follows the bin's size: a bin of two examples should not look certain.
        area = 15 + 250 * c / c.max()
        full, few = c >= FEW_ROWS, c < FEW_ROWS
        ax.plot(m[full], o[full], "-", lw=1, color="tab:blue", alpha=0.5)  # not via few-row bins
        if full.any():
            ax.scatter(m[full], o[full], s=area[full], color="tab:blue", alpha=0.8, zorder=3,
                       label="model (marker size = rows in bin)")
        if few.any():
            ax.scatter(m[few], o[few], s=np.maximum(area[few], 40), facecolors="none",
                       edgecolors="grey",
                       linewidths=1.2, zorder=3,
                       label=f"bin of fewer than {FEW_ROWS} rows (too few to judge)")
    top = calibration["kind"] == "top_class"
    ax.set_ylabel("observed accuracy" if top else "observed frequency of the positive class")
    ax.set_title("Calibration (reliability diagram)")
    ax.set_ylim(-0.04, 1.04)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    edges = np.asarray(calibration["bin_edges"])
    counts = np.asarray(calibration["count"])
    colours = ["tab:blue" if n >= FEW_ROWS else "darkgrey" for n in counts]
    bars = hist.bar(edges[:-1], counts, width=np.diff(edges), align="edge", alpha=0.7,
                    color=colours, edgecolor="white")
    if len(counts) <= 20:
        hist.bar_label(bars, labels=[str(n) if n else "" for n in counts], fontsize=7,
                       padding=1)
        hist.set_ylim(0, max(1, counts.max()) * 1.3)
    hist.set_xlabel("predicted confidence of the top class" if top else "predicted probability")
    hist.set_ylabel("rows")
    hist.set_xlim(0, 1)
    return fig


def threshold_curve(curve: dict, chosen: float, objective: str, path: Path,
                    interval: Optional[list] = None, undetermined: bool = False) -> Path:
    """Validation metrics against the decision threshold; the tuned threshold is marked, and
    the interval of equally good thresholds shaded (``undetermined``: 0.5 lies in it, so
    validation cannot choose and 0.5 is kept)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    x = curve["threshold"]
    for key, label in (("f1", "F1"), ("precision", "precision"), ("recall", "recall (sensitivity)"),
                       ("specificity", "specificity"), ("youden", "Youden's J")):
        if key in curve:  # a step function: the value at a score holds down to the one below
            ax.step(x, [np.nan if v is None else v for v in curve[key]], where="pre",
                    label=label)
    if interval and interval[0] is not None and interval[1] is not None:
        ax.axvspan(interval[0], interval[1], color="grey", alpha=0.15,
                   label=f"equally good for {objective}")
    if undetermined:
        ax.axvline(0.5, color="black", ls="--", lw=1, label=f"0.5 kept: {objective} cannot choose")
    else:
        ax.axvline(chosen, color="black", ls="--", lw=1,
                   label=f"suggested ({objective}): {chosen:.3f}")
        ax.axvline(0.5, color="grey", ls=":", lw=1, label="0.5")
    ax.set_xlabel("decision threshold on P(positive)")
    ax.set_ylabel("value on the validation split")
    ax.set_title("Threshold tuning (validation)")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def predicted_vs_true(y: np.ndarray, pred: np.ndarray, path: Path, target: str = "target") -> Path:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.scatter(y, pred, s=12, alpha=0.6)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], ls="--", color="grey", label="perfect")
    ax.set_xlabel(f"true {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_title("Predicted vs true (test)")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def residuals(y: np.ndarray, pred: np.ndarray, path: Path, target: str = "target") -> Path:
    res = y - pred
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].scatter(pred, res, s=12, alpha=0.6)
    axes[0].axhline(0, color="grey", ls="--")
    axes[0].set_xlabel(f"predicted {target}")
    axes[0].set_ylabel("residual (true - predicted)")
    axes[0].set_title("Residuals vs predicted")
    axes[1].hist(res, bins=30)
    axes[1].set_xlabel("residual")
    axes[1].set_ylabel("count")
    axes[1].set_title("Error histogram")
    for ax in axes:
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_run(rows: list[dict], main: str, best_epoch: Optional[int], task: str,
             y: Optional[np.ndarray], scores: Optional[np.ndarray], metrics: dict,
             class_names: list[str], folder: Path, target: str = "target") -> dict[str, Path]:
    """All plots for one run; returns ``{title: path}`` in report order. ``metrics`` is the
    evaluation stage's output (``{"test": ..., "threshold": ..., "tuning": ...}``)."""
    threshold = metrics.get("threshold", 0.5)
    out = {"Learning curves": learning_curves(rows, main, best_epoch, folder / "learning_curves.png")}
    if y is None or scores is None:
        return out
    if task == "regression":
        out["Predicted vs true"] = predicted_vs_true(y, scores, folder / "predicted_vs_true.png", target)
        out["Residuals"] = residuals(y, scores, folder / "residuals.png", target)
        return out
    if task == "multilabel":
        if _one_vs_rest(y, scores, class_names):
            out["ROC curve"] = roc(y, scores, class_names, folder / "roc.png")
            out["Precision-recall curve"] = precision_recall(y, scores, class_names,
                                                             folder / "pr.png")
        return out
    out["Confusion matrix"] = confusion_matrix(metrics["test"]["confusion_matrix"], class_names,
                                               folder / "confusion_matrix.png")
    if len(np.unique(y)) > 1:
        out["ROC curve"] = roc(y, scores, class_names, folder / "roc.png", threshold)
        out["Precision-recall curve"] = precision_recall(y, scores, class_names, folder / "pr.png",
                                                         threshold)
    if metrics.get("calibration"):
        out["Calibration"] = reliability(metrics["calibration"], folder / "calibration.png")
    tuning = metrics.get("tuning") or {}
    if tuning.get("curve"):
        out["Threshold tuning"] = threshold_curve(
            tuning["curve"], tuning["threshold"], tuning["objective"], folder / "threshold.png",
            tuning.get("interval"), bool(tuning.get("undetermined")))
    return out
