"""Detection plots for the report: precision-recall curves per class at IoU 0.5, and an
image with its true and predicted boxes drawn over it. Each function takes plain values
and writes one PNG (to a path, or a binary file object), as ``evaluate/plots.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from deepfit.evaluate.detection.boxes import read_image
from deepfit.evaluate.detection.metrics import DetectionMetrics
from deepfit.evaluate.plots import _save, plt

TRUE_STYLE = {"linestyle": "-", "linewidth": 2.0}    # true boxes: solid, thick
PRED_STYLE = {"linestyle": "--", "linewidth": 1.2}   # predicted boxes: dashed, with the score


def pr_curves(metrics: DetectionMetrics | dict, path: Any) -> Any:
    """Per class: the precision-recall curve at IoU 0.5 over the ranked detections (thin),
    COCO's interpolated precision that AP averages (thick; AP50 in the legend), and the
    point at the count threshold. A class with no true box has no curve and says so."""
    m = metrics.to_dict() if isinstance(metrics, DetectionMetrics) else metrics
    threshold = m["counts"]["threshold"]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    missing = []
    for c, name in enumerate(m["class_names"]):
        curve = m["pr_curves"].get(name)
        if curve is None:
            missing.append(name)
            continue
        colour = colours[c % len(colours)]
        ap = m["per_class"][name]["ap50"]
        ax.plot(curve["recall"], curve["precision"], color=colour, lw=0.8, alpha=0.5)
        interp = [np.nan if v is None else v for v in curve["interpolated_precision"]]
        ax.plot(curve["recall_thresholds"], interp, color=colour, lw=2,
                label=f"{name} (AP50 {ap:.3f}, {m['per_class'][name]['true_boxes']} true)")
        above = int(np.sum(np.asarray(curve["score"]) >= threshold))
        if above:  # detections are ranked by score: the first ``above`` are counted
            ax.plot(curve["recall"][above - 1], curve["precision"][above - 1], "o",
                    color=colour, markeredgecolor="black")
    if any(line.get_marker() == "o" for line in ax.lines):
        ax.plot([], [], "o", color="white", markeredgecolor="black",
                label=f"score threshold {threshold:g}")
    if missing:
        ax.plot([], [], " ", label=f"no true box, no curve: {', '.join(missing)}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall at IoU 0.5 (test)")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def overlay(image: Any, truth: Any, prediction: Any, class_names: Sequence[str], path: Any,
            score_threshold: Optional[float] = None, title: Optional[str] = None) -> Any:
    """``image`` (H, W[, C]) or (C, H, W) uint8 / [0, 1] floats, a PIL image or a tensor, with
    ``truth``'s boxes solid and ``prediction``'s dashed with "class score" (those scoring at
    least ``score_threshold``, all if None), one colour per class. Either may be None."""
    pixels = _pixels(image)
    h, w = pixels.shape[:2]
    fig, ax = plt.subplots(figsize=(min(10.0, 2 + 6 * w / max(h, w)),
                                    min(10.0, 1 + 6 * h / max(h, w))))
    ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=255)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    shown = {"true": 0, "predicted": 0}
    for entry, kind in ((truth, "true"), (prediction, "predicted")):
        if entry is None:
            continue
        boxes = read_image(entry, class_names, kind == "predicted")
        keep = np.ones(len(boxes.labels), dtype=bool)
        if kind == "predicted" and score_threshold is not None:
            keep = boxes.scores >= score_threshold
        for i in np.flatnonzero(keep):
            x1, y1, x2, y2 = boxes.boxes[i]
            colour = colours[int(boxes.labels[i]) % len(colours)]
            style = TRUE_STYLE if kind == "true" else PRED_STYLE
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                                       edgecolor=colour, **style))
            if kind == "predicted":
                ax.text(x1, y1 - 2, f"{class_names[boxes.labels[i]]} {boxes.scores[i]:.2f}",
                        color="white", fontsize=7, va="bottom",
                        bbox={"facecolor": colour, "alpha": 0.7, "pad": 1, "linewidth": 0})
        shown[kind] = int(keep.sum())
    for c, name in enumerate(class_names):
        ax.plot([], [], color=colours[c % len(colours)], lw=3, label=name)
    ax.plot([], [], color="black", **TRUE_STYLE, label=f"true ({shown['true']})")
    which = "" if score_threshold is None else f" ≥ {score_threshold:g}"
    ax.plot([], [], color="black", **PRED_STYLE,
            label=f"predicted{which} ({shown['predicted']})")
    ax.legend(fontsize=7, loc="upper right", framealpha=0.8)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def _pixels(image: Any) -> np.ndarray:
    """(H, W) or (H, W, 3|4) uint8 from the accepted image forms."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        a = np.transpose(a, (1, 2, 0))  # channels first -> last
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise ValueError(f"overlay: an image is (H, W), (H, W, C) or (C, H, W); got {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(a * 255.0 if a.max(initial=0) <= 1.0 else a, 0, 255).astype(np.uint8)
    return a
