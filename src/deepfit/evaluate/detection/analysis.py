"""What a detector's boxes mean beyond mAP, at one score threshold: objects counted per
image (the clinical quantity, e.g. parasites per white blood cell), the classes confused
among boxes that overlap, and the boxes missed or made up by their size.

Every count here takes the predictions scoring at least the threshold, all of them (no
``max_dets`` cap); the threshold is one number for all classes, given by the caller
(default 0.5) or chosen on the validation split by :func:`choose_score_threshold`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from deepfit.errors import ConfigError, did_you_mean, one_of
from deepfit.evaluate.detection.boxes import ImageBoxes, box_iou
from deepfit.evaluate.detection.matching import Matches, greedy

COCO_SIZES = (32 ** 2, 96 ** 2)  # area edges of COCO's small / medium / large
SIZE_BINS = ("terciles", "coco")
CONFUSION_IOU = 0.5


def counts_per_image(images: list[ImageBoxes], n_classes: int,
                     threshold: Optional[float] = None) -> np.ndarray:
    """Boxes of each class in each image (I, K): all of them, or those scoring >= threshold."""
    out = np.zeros((len(images), n_classes), dtype=np.int64)
    for i, image in enumerate(images):
        labels = image.labels if threshold is None else image.labels[image.scores >= threshold]
        out[i] = np.bincount(labels, minlength=n_classes)
    return out


def count_errors(true: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """MAE, bias (mean predicted - true: > 0 over-counts) and Pearson correlation of one
    class's counts over the images; the correlation is None when either count is constant."""
    err = pred.astype(np.float64) - true
    corr = None
    if len(true) > 1 and true.std() > 0 and pred.std() > 0:
        corr = float(np.corrcoef(true, pred)[0, 1])
    return {"true_total": int(true.sum()), "predicted_total": int(pred.sum()),
            "mae": float(np.abs(err).mean()), "bias": float(err.mean()), "correlation": corr}


def count_ratio(true: np.ndarray, pred: np.ndarray, names: Sequence[str],
                ratio: tuple[str, str]) -> dict[str, Any]:
    """Numerator class per denominator class (e.g. parasites per white blood cell): pooled
    over all images (sum / sum), and per image where both the true and the predicted
    denominator are > 0 (MAE and bias over those images; None when there are none)."""
    num, den = (_class_index(names, c, "count_ratio") for c in ratio)
    pooled = {}
    for key, c in (("true", true), ("predicted", pred)):
        total = c[:, den].sum()
        pooled[key] = float(c[:, num].sum() / total) if total else None
    ok = (true[:, den] > 0) & (pred[:, den] > 0)
    t, p = true[ok, num] / true[ok, den], pred[ok, num] / pred[ok, den]
    return {"numerator": ratio[0], "denominator": ratio[1], "pooled_true": pooled["true"],
            "pooled_predicted": pooled["predicted"], "images": int(ok.sum()),
            "mae": float(np.abs(p - t).mean()) if ok.any() else None,
            "bias": float((p - t).mean()) if ok.any() else None}


def choose_score_threshold(truths: list[ImageBoxes], predictions: list[ImageBoxes],
                           n_classes: int) -> tuple[float, str]:
    """The score threshold whose counts per image and class are closest to the truth (least
    total absolute error) on these images (meant: the validation split), and a sentence
    saying how it was chosen. Between the chosen detection's score and the next lower one
    every threshold gives the same counts: the middle of that gap is returned."""
    true = counts_per_image(truths, n_classes)
    img = np.concatenate([np.full(len(p.labels), i) for i, p in enumerate(predictions)])
    cls = np.concatenate([p.labels for p in predictions])
    score = np.concatenate([p.scores for p in predictions])
    if not len(score):
        return 0.5, "0.5: the validation images have no detections to choose a threshold from"
    order = np.lexsort((img, cls, -score))  # per (image, class) cell, best scores first
    img, cls, score = img[order], cls[order], score[order]
    cell = img * n_classes + cls
    # How many of its cell's detections precede each one (the count before adding it).
    first = np.zeros(len(cell), dtype=np.int64)
    sorted_cells = np.argsort(cell, kind="stable")
    runs = np.r_[True, cell[sorted_cells][1:] != cell[sorted_cells][:-1]]
    pos = np.arange(len(cell))
    first[sorted_cells] = pos - np.maximum.accumulate(np.where(runs, pos, 0))
    # Adding a detection moves its cell's count one away from (or towards) the truth.
    step = np.where(first >= true.reshape(-1)[cell], 1, -1)
    error = true.sum() + np.cumsum(step)   # total error once this detection is counted
    last_of_tie = np.r_[score[1:] != score[:-1], True]
    error = np.where(last_of_tie, error, np.iinfo(np.int64).max)
    best = int(np.argmin(error))
    total = int(true.sum())
    if error[best] >= total:  # counting nothing is as good: a threshold above every score
        top = float(score[0])
        return float(np.nextafter(top, np.inf)), (
            f"{top:.4g}+ (above every validation score): no threshold counts better than "
            f"counting nothing on validation ({total} true boxes)")
    below = score[best + 1] if best + 1 < len(score) else None
    value = float(score[best] if below is None else (score[best] + below) / 2)
    return value, (f"{value:.4g}, chosen on validation: the least absolute error of the "
                   f"counts per image and class ({int(error[best])} boxes over "
                   f"{len(truths)} images, {total} true)")


def confusion(truths: list[ImageBoxes], predictions: list[ImageBoxes], n_classes: int,
              threshold: float) -> np.ndarray:
    """(K+1, K+1) counts, rows the true class, columns the predicted one, the last row and
    column "none": predictions scoring >= threshold are matched to true boxes of any class
    (COCO's greedy rule at IoU 0.5, ignoring the class); a matched pair counts at [true,
    predicted] (off the diagonal: right place, wrong class), a prediction matching nothing
    at [none, predicted] (a false box), a true box matched by nothing at [true, none]."""
    out = np.zeros((n_classes + 1, n_classes + 1), dtype=np.int64)
    for truth, pred in zip(truths, predictions):
        d = np.flatnonzero(pred.scores >= threshold)
        d = d[np.argsort(-pred.scores[d], kind="stable")]
        _, which = greedy(box_iou(pred.boxes[d], truth.boxes), np.array([CONFUSION_IOU]))
        hit = which[0] >= 0
        np.add.at(out, (truth.labels[which[0][hit]], pred.labels[d[hit]]), 1)
        np.add.at(out, (n_classes, pred.labels[d[~hit]]), 1)
        missed = np.ones(len(truth.labels), dtype=bool)
        missed[which[0][hit]] = False
        np.add.at(out, (truth.labels[missed], n_classes), 1)
    return out


def by_size(truths: list[ImageBoxes], matches: Matches, n_classes: int, threshold: float,
            bins: str = "terciles") -> dict[str, Any]:
    """True boxes missed and predicted boxes that are false (at IoU 0.5, same class, scores
    >= threshold), per class and size bin of the box area: the terciles of the true boxes'
    areas (default: three bins of equal true counts) or COCO's small (< 32²), medium
    (< 96²), large. A bin includes its lower edge."""
    if bins not in SIZE_BINS:
        raise ConfigError(f"unknown size bins '{bins}'{did_you_mean(bins, SIZE_BINS)}; use "
                          f"one of {one_of(SIZE_BINS)}")
    t_area = np.concatenate([t.areas for t in truths])
    t_cls = np.concatenate([t.labels for t in truths])
    found = np.concatenate(matches.found_by) >= threshold  # NaN (never found): False
    if bins == "coco" or not len(t_area):
        edges = np.array(COCO_SIZES, dtype=np.float64)
        names = ["small", "medium", "large"]
    else:
        edges = np.quantile(t_area, [1 / 3, 2 / 3])
        names = ["smallest third", "middle third", "largest third"]
    ranges = [(0.0, edges[0]), (edges[0], edges[1]), (edges[1], None)]
    out = {"bins": [{"name": n, "low": float(lo), "high": None if hi is None else float(hi)}
                    for n, (lo, hi) in zip(names, ranges)],
           "how": "terciles of the true box areas" if names[0] != "small" else
           "COCO sizes (area < 32², < 96², larger)", "per_class": {}}
    t_bin = np.searchsorted(edges, t_area, side="right")
    for k in range(n_classes):
        m = matches.classes[k]
        counted = m.score >= threshold
        d_bin = np.searchsorted(edges, m.area[counted], side="right")
        false = ~m.tp[0, counted]
        mine = t_cls == k
        out["per_class"][k] = {
            "true": np.bincount(t_bin[mine], minlength=3).tolist(),
            "missed": np.bincount(t_bin[mine & ~found], minlength=3).tolist(),
            "predicted": np.bincount(d_bin, minlength=3).tolist(),
            "false": np.bincount(d_bin[false], minlength=3).tolist()}
    return out


def _class_index(names: Sequence[str], name: str, key: str) -> int:
    if name not in names:
        raise ConfigError(f"{key}: no class '{name}'{did_you_mean(name, names)}; the classes "
                          f"are {one_of(names)}")
    return list(names).index(name)
