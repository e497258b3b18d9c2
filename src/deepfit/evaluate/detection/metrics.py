"""Object-detection metrics of a set of images: mAP as COCO computes it, per-class AP and
precision-recall curves, recall at a number of detections, counts per image, confused
classes, misses and false boxes by size, and bootstrap intervals over images.

``detection_metrics(truths, predictions, class_names)`` is the entry point; the input
representation is described in ``boxes.py``. Undefined values are NaN inside, None in
:meth:`DetectionMetrics.to_dict`, with the reason under ``undefined``; never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from deepfit.errors import ConfigError
from deepfit.evaluate.bootstrap import interval
from deepfit.evaluate.detection import analysis
from deepfit.evaluate.detection.average_precision import (class_ap, mean_over_classes,
                                                          pr_curve, precision_recall)
from deepfit.evaluate.detection.boxes import read_predictions, read_truths
from deepfit.evaluate.detection.matching import IOU_THRESHOLDS, MAX_DETS, match

RECALL_AT = (1, 10, MAX_DETS)  # COCO's maxDets
DEFAULT_THRESHOLD = 0.5
_MEANS = ("map50", "map75", "map50_95")


@dataclass
class DetectionMetrics:
    """The numbers of one evaluation (NaN: undefined, the reason in ``undefined``).

    ``per_class[name]``: ap50, ap75, ap50_95, recall_at {K: recall over IoU 0.5:0.95},
    recall50_at {K: recall at IoU 0.5}, true_boxes, predicted_boxes, images_with (images
    holding a true box of the class). ``recall_at`` / ``recall50_at``: the same averaged over
    the classes (COCO's AR@K is ``recall_at``). K counts each image's best K detections of
    each class, as COCO does. ``pr_curves[name]`` at IoU 0.5 (None for a class with no true
    box). ``ci``: bootstrap entries (``bootstrap.interval``'s format) by name, e.g. "map50",
    "trophozoite.ap50", "trophozoite.count_mae"; empty without a bootstrap.
    """

    class_names: list[str]
    n_images: int
    images_without_truth: int
    map50: float
    map75: float
    map50_95: float
    recall_at: dict[int, float]
    recall50_at: dict[int, float]
    per_class: dict[str, dict[str, Any]]
    pr_curves: dict[str, Optional[dict[str, list]]]
    counts: dict[str, Any]
    confusion: dict[str, Any]
    by_size: dict[str, Any]
    max_dets: int = MAX_DETS
    iou_thresholds: list[float] = field(default_factory=lambda: IOU_THRESHOLDS.tolist())
    ci: dict[str, dict[str, Any]] = field(default_factory=dict)
    undefined: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN -> None, integer keys as strings."""
        return _plain({k: getattr(self, k) for k in self.__dataclass_fields__})


def detection_metrics(truths: Sequence[Any], predictions: Sequence[Any],
                      class_names: Sequence[str], score_threshold: float = DEFAULT_THRESHOLD,
                      threshold_how: Optional[str] = None, max_dets: int = MAX_DETS,
                      count_ratio: Optional[tuple[str, str]] = None,
                      size_bins: str = "terciles", n_resamples: int = 0, level: float = 0.95,
                      seed: int = 0) -> DetectionMetrics:
    """Evaluate ``predictions`` against ``truths`` (one entry per image each, see
    ``boxes.py``).

    Args:
        class_names: What the labels index (no class for an empty image).
        score_threshold: Predictions scoring at least this are counted (counts per image,
            confusion, misses and false boxes by size); AP uses every score.
        threshold_how: How the threshold was chosen, for the record (e.g. the sentence of
            :func:`choose_score_threshold`); default "given" or "default 0.5".
        max_dets: The best-scored detections per image and class that count for AP (COCO 100).
        count_ratio: (numerator, denominator) class names, e.g. ("trophozoite", "wbc").
        size_bins: "terciles" of the true box areas, or "coco" (32², 96²).
        n_resamples, level, seed: Bootstrap over images (0: none), as ``bootstrap_ci``.

    Raises:
        DataError / ModelError: a truth / prediction entry that is malformed (named).
        ConfigError: a bad option.
    """
    names = [str(c) for c in class_names]
    if not names:
        raise ConfigError("detection metrics need the class names (the labels index them)")
    if not isinstance(max_dets, (int, np.integer)) or max_dets < 1:
        raise ConfigError(f"max_dets must be a positive integer (COCO: 100), got {max_dets!r}")
    if not (isinstance(score_threshold, (int, float)) and math.isfinite(score_threshold)):
        raise ConfigError(f"score_threshold must be a number, got {score_threshold!r}")
    if not (0.0 < level < 1.0):
        raise ConfigError(f"bootstrap level must be between 0 and 1 (e.g. 0.95), got {level}")
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 0:
        raise ConfigError(f"n_resamples must be 0 (no bootstrap) or more, got {n_resamples!r}")
    true = read_truths(truths, names)
    pred = read_predictions(predictions, true, names)
    matches = match(true, pred, len(names))
    k_values = sorted({k for k in RECALL_AT if k < max_dets} | {max_dets})
    ones = np.ones((1, len(true)))

    per_class, curves, undefined = {}, {}, {}
    ap = np.full((len(_MEANS), len(names)), np.nan)
    recall = {k: np.full((len(IOU_THRESHOLDS), len(names)), np.nan) for k in k_values}
    for c, (name, m) in enumerate(zip(names, matches.classes)):
        for k in k_values:
            precision, rec = precision_recall(m, ones, k)
            recall[k][:, c] = rec[0]
        aps = class_ap(precision)  # the last k is max_dets
        ap[:, c] = [aps[key][0] for key in ("ap50", "ap75", "ap50_95")]
        n_true = int(m.n_true.sum())
        per_class[name] = {"ap50": ap[0, c], "ap75": ap[1, c], "ap50_95": ap[2, c],
                           "recall_at": {k: recall[k][:, c].mean() for k in k_values},
                           "recall50_at": {k: recall[k][0, c] for k in k_values},
                           "true_boxes": n_true, "predicted_boxes": len(m.score),
                           "images_with": int((m.n_true > 0).sum())}
        curves[name] = pr_curve(m, max_dets, precision[0, 0]) if n_true else None
        if not n_true:
            undefined[f"{name}.ap"] = (
                f"AP undefined: no true '{name}' box in the {len(true)} images "
                f"({len(m.score)} predicted); left out of the means over classes, as COCO does")
    means = mean_over_classes(ap)
    for key, value in zip(_MEANS, means):
        if math.isnan(value):
            undefined[key] = f"{key} undefined: no true box of any class in the {len(true)} images"

    thr_how = threshold_how or ("default 0.5" if score_threshold == DEFAULT_THRESHOLD
                                else f"{score_threshold:g}, given")
    counts, per_image = _counts(true, pred, names, score_threshold, thr_how, count_ratio)
    cm = analysis.confusion(true, pred, len(names), score_threshold)
    sizes = analysis.by_size(true, matches, len(names), score_threshold, size_bins)
    sizes["per_class"] = {names[k]: v for k, v in sizes["per_class"].items()}
    beyond = sum(int((m.rank >= max_dets).sum()) for m in matches.classes)
    notes = [] if not beyond else [
        f"{beyond} detections beyond the {max_dets} best-scored per image and class are left "
        "out of AP and recall, as COCO does (max_dets); counts take every detection above "
        "the threshold"]
    result = DetectionMetrics(
        names, len(true), sum(len(t.labels) == 0 for t in true),
        *map(float, means[[0, 1, 2]]),
        recall_at={k: float(mean_over_classes(recall[k].mean(axis=0))) for k in k_values},
        recall50_at={k: float(mean_over_classes(recall[k][0])) for k in k_values},
        per_class=per_class, pr_curves=curves, counts=counts,
        confusion={"labels": names + ["none"], "matrix": cm.tolist(),
                   "iou": analysis.CONFUSION_IOU, "threshold": score_threshold},
        by_size=sizes, max_dets=max_dets, undefined=undefined, notes=notes)
    if n_resamples:
        result.ci = _bootstrap(matches, per_image, names, max_dets, n_resamples, level, seed,
                               result)
    return result


def choose_score_threshold(truths: Sequence[Any], predictions: Sequence[Any],
                           class_names: Sequence[str]) -> tuple[float, str]:
    """The count threshold chosen on these (validation) images, and how: see
    ``analysis.choose_score_threshold``. Pass both to :func:`detection_metrics` on test."""
    names = [str(c) for c in class_names]
    true = read_truths(truths, names)
    return analysis.choose_score_threshold(true, read_predictions(predictions, true, names),
                                           len(names))


def _counts(true: list, pred: list, names: list[str], threshold: float, how: str,
            ratio: Optional[tuple[str, str]]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    t = analysis.counts_per_image(true, len(names))
    p = analysis.counts_per_image(pred, len(names), threshold)
    out = {"threshold": threshold, "threshold_how": how,
           "per_class": {n: analysis.count_errors(t[:, c], p[:, c]) for c, n in enumerate(names)},
           "ratio": None if ratio is None else analysis.count_ratio(t, p, names, tuple(ratio)),
           "per_image": {"image_id": [x.image_id for x in true],
                         **{n: {"true": t[:, c].tolist(), "predicted": p[:, c].tolist()}
                            for c, n in enumerate(names)}}}
    return out, {"true": t, "predicted": p}


def _bootstrap(matches: Any, per_image: dict[str, np.ndarray], names: list[str], max_dets: int,
               n_resamples: int, level: float, seed: int,
               result: DetectionMetrics) -> dict[str, dict[str, Any]]:
    """Percentile intervals over resamples of images (with replacement, ``seed``-ed):
    each resample re-weights the matches made once (see matching.py)."""
    n = result.n_images
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    weights = np.zeros((n_resamples, n), dtype=np.float64)
    np.add.at(weights, (np.repeat(np.arange(n_resamples), n), idx.ravel()), 1.0)
    ap = np.full((n_resamples, len(_MEANS), len(names)), np.nan)
    for c, m in enumerate(matches.classes):
        precision, _ = precision_recall(m, weights, max_dets)
        aps = class_ap(precision)
        ap[:, :, c] = np.stack([aps[key] for key in ("ap50", "ap75", "ap50_95")], axis=1)
    means = mean_over_classes(ap)
    out = {}
    for j, key in enumerate(_MEANS):
        out[key] = interval(getattr(result, key), means[:, j], level, "no true box at all")
        for c, name in enumerate(names):
            out[f"{name}.{key[1:]}"] = interval(result.per_class[name][key[1:]], ap[:, j, c],
                                                level, f"no true '{name}' box")
    err = (per_image["predicted"] - per_image["true"]).astype(np.float64)
    for c, name in enumerate(names):
        counts = result.counts["per_class"][name]
        out[f"{name}.count_mae"] = interval(counts["mae"], weights @ np.abs(err[:, c]) / n,
                                            level, "no images")
        out[f"{name}.count_bias"] = interval(counts["bias"], weights @ err[:, c] / n, level,
                                             "no images")
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
