"""Detection plots for the report: precision-recall curves per class at IoU 0.5, and an
image with its true and predicted boxes drawn over it. Each function takes plain values
and writes one PNG (to a path, or a binary file object), as ``evaluate/plots.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from deepfit.evaluate.detection.boxes import box_iou, read_image
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
    shown = _draw(ax, pixels, truth, prediction, class_names, score_threshold, 7, True)
    _legend(ax, class_names, score_threshold, shown)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def overlay_grid(panels: Sequence[tuple], class_names: Sequence[str], path: Any,
                 score_threshold: Optional[float] = None, title: Optional[str] = None,
                 columns: int = 4) -> Any:
    """Several images in one figure, ``columns`` to a row, each as ``overlay`` draws it
    (predicted boxes labelled with their score only: the colour tells the class, one legend
    for all). ``panels``: ``(image, truth, prediction, caption)`` tuples."""
    if not panels:
        raise ValueError("overlay_grid: no images to draw")
    fig, head, axes = _panels(len(panels), columns, 3.1, 3.3)
    total = {"true": 0, "predicted": 0}
    for ax, (image, truth, prediction, caption) in zip(axes, panels):
        shown = _draw(ax, _pixels(image), truth, prediction, class_names, score_threshold, 6,
                      False)
        total = {k: total[k] + shown[k] for k in total}
        ax.set_title(caption, fontsize=7)
    _header(head, class_names, score_threshold, total, title)
    return _save(fig, path)


def box_crops(images: Sequence[tuple], class_names: Sequence[str], path: Any,
              score_threshold: Optional[float] = None, title: Optional[str] = None,
              max_crops: int = 16, columns: int = 4, context: float = 3.0,
              min_side: int = 64) -> Any:
    """Zoomed crops around boxes of large images, where a whole-image view shrinks small
    objects to a few pixels: first the true boxes missed (no prediction of their class at
    IoU >= 0.5 scoring at least ``score_threshold``), then the false predicted boxes, then
    matched ones, image by image in the given order, at most ``max_crops``. A crop is
    ``context`` times the box's longer side (at least ``min_side`` px) around its centre and
    shows every box inside it. ``images``: ``(image, truth, prediction, name)`` tuples.
    Returns None when no image has a box to show."""
    picked: dict[str, list] = {"missed": [], "false": [], "found": []}
    for image, truth, prediction, name in images:
        for kind, box, label, score in box_outcomes(truth, prediction, class_names,
                                                    score_threshold):
            picked[kind].append((image, truth, prediction, name, kind, box, label, score))
    chosen = (picked["missed"] + picked["false"] + picked["found"])[:max_crops]
    if not chosen:
        return None
    fig, head, axes = _panels(len(chosen), columns, 2.6, 2.8)
    pixels_of: dict[int, np.ndarray] = {}
    for ax, (image, truth, prediction, name, kind, box, label, score) in zip(axes, chosen):
        pixels = pixels_of.setdefault(id(image), _pixels(image))
        h, w = pixels.shape[:2]
        side = max(min_side, context * max(box[2] - box[0], box[3] - box[1]))
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0 = int(max(0, min(w - side, cx - side / 2)))
        y0 = int(max(0, min(h - side, cy - side / 2)))
        window = (x0, y0, int(min(w, x0 + side)), int(min(h, y0 + side)))
        _draw(ax, pixels, truth, prediction, class_names, score_threshold, 6, False, window)
        what = f"{kind} {class_names[label]}" + ("" if score is None else f" {score:.2f}")
        ax.set_title(f"{what}\n{name}", fontsize=7)
    _header(head, class_names, score_threshold, None, title)
    return _save(fig, path)


def box_outcomes(truth: Any, prediction: Any, class_names: Sequence[str],
                 score_threshold: Optional[float] = None) -> list[tuple]:
    """Each box of one image as ``(kind, box, label, score)``: ``missed`` (a true box that no
    prediction of its class at or above ``score_threshold`` matches at IoU >= 0.5, COCO's
    greedy rule), ``false`` (such a prediction matching no true box) or ``found`` (the
    prediction that matched; its score)."""
    from deepfit.evaluate.detection.matching import greedy

    t = read_image(truth, class_names, False)
    p = read_image(prediction, class_names, True)
    keep = np.ones(len(p.labels), bool) if score_threshold is None else \
        p.scores >= score_threshold
    out: list[tuple] = []
    for k in np.union1d(t.labels, p.labels[keep]):
        g = np.flatnonzero(t.labels == k)
        d = np.flatnonzero((p.labels == k) & keep)
        d = d[np.argsort(-p.scores[d], kind="stable")]
        _, which = greedy(box_iou(p.boxes[d], t.boxes[g]), np.array([0.5]))
        hit = which[0] >= 0
        matched = set(which[0][hit].tolist())
        out += [("missed", t.boxes[g[j]], int(k), None) for j in range(len(g))
                if j not in matched]
        out += [("false" if not h else "found", p.boxes[i], int(k), float(p.scores[i]))
                for i, h in zip(d, hit)]
    return out


def _draw(ax: Any, pixels: np.ndarray, truth: Any, prediction: Any,
          class_names: Sequence[str], score_threshold: Optional[float], fontsize: int,
          with_class: bool, window: Optional[tuple] = None) -> dict[str, int]:
    """``pixels`` on ``ax`` (only ``window`` = x0, y0, x1, y1 when given) with the true boxes
    solid and the predicted ones dashed; returns how many of each are drawn."""
    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = window or (0, 0, w, h)
    ax.imshow(pixels[y0:y1, x0:x1], cmap="gray" if pixels.ndim == 2 else None, vmin=0,
              vmax=255, extent=(x0, x1, y1, y0))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    shown = {"true": 0, "predicted": 0}
    for entry, kind in ((truth, "true"), (prediction, "predicted")):
        if entry is None:
            continue
        boxes = read_image(entry, class_names, kind == "predicted")
        keep = np.ones(len(boxes.labels), dtype=bool)
        if kind == "predicted" and score_threshold is not None:
            keep = boxes.scores >= score_threshold
        b = boxes.boxes
        keep &= (b[:, 2] > x0) & (b[:, 0] < x1) & (b[:, 3] > y0) & (b[:, 1] < y1)
        for i in np.flatnonzero(keep):
            bx1, by1, bx2, by2 = b[i]
            colour = colours[int(boxes.labels[i]) % len(colours)]
            style = TRUE_STYLE if kind == "true" else PRED_STYLE
            ax.add_patch(plt.Rectangle((bx1, by1), bx2 - bx1, by2 - by1, fill=False,
                                       edgecolor=colour, **style))
            if kind == "predicted":
                text = (f"{class_names[boxes.labels[i]]} " if with_class else "") + \
                    f"{boxes.scores[i]:.2f}"
                ax.text(max(bx1, x0), max(by1, y0), text, color="white", fontsize=fontsize,
                        va="bottom", clip_on=True,
                        bbox={"facecolor": colour, "alpha": 0.7, "pad": 1, "linewidth": 0})
        shown[kind] = int(keep.sum())
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.axis("off")
    return shown


def _legend_handles(class_names: Sequence[str], score_threshold: Optional[float],
                    shown: Optional[dict]) -> list:
    from matplotlib.lines import Line2D

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles = [Line2D([], [], color=colours[c % len(colours)], lw=3, label=name)
               for c, name in enumerate(class_names)]
    which = "" if score_threshold is None else f" ≥ {score_threshold:.3g}"
    true, pred = ("", "") if shown is None else (f" ({shown['true']})", f" ({shown['predicted']})")
    handles.append(Line2D([], [], color="black", **TRUE_STYLE, label=f"true{true}"))
    handles.append(Line2D([], [], color="black", **PRED_STYLE, label=f"predicted{which}{pred}"))
    return handles


def _legend(ax: Any, class_names: Sequence[str], score_threshold: Optional[float],
            shown: dict) -> None:
    ax.legend(handles=_legend_handles(class_names, score_threshold, shown), fontsize=7,
              loc="upper right", framealpha=0.8)


def _panels(n: int, columns: int, width: float, height: float) -> tuple[Any, Any, list]:
    """A figure of ``n`` panels, ``columns`` to a row, under a header row (legend, title)."""
    cols = max(1, min(columns, n))
    rows = -(-n // cols)
    fig = plt.figure(figsize=(width * cols, height * rows + 0.6))
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[0.6] + [height] * rows)
    head = fig.add_subplot(grid[0, :])
    head.axis("off")
    axes = [fig.add_subplot(grid[k // cols + 1, k % cols]) for k in range(n)]
    return fig, head, axes


def _header(head: Any, class_names: Sequence[str], score_threshold: Optional[float],
            shown: Optional[dict], title: Optional[str]) -> None:
    """The header row of a figure of panels: one legend for all, and the title."""
    handles = _legend_handles(class_names, score_threshold, shown)
    head.legend(handles=handles, loc="center", ncol=len(handles), fontsize=8, frameon=False)
    if title:
        head.set_title(title, fontsize=9)


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
