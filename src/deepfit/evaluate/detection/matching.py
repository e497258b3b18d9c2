"""Matching predicted boxes to true boxes, image by image, by COCO's rules.

Why our own matcher rather than calling pycocotools: the bootstrap over images recomputes
mAP on ~1000 resamples. Matching is done once here, per image and class; a resample then
only re-weights the per-image match arrays (an image drawn k times counts k times) and
``average_precision`` aggregates them with vectorised numpy, in milliseconds, where
pycocotools would redo the matching and its Python loops for every resample. The numbers
equal pycocotools' (tests/detection/test_map_reference.py checks them to 1e-4).

COCO's rules, as pycocotools applies them to boxes with no crowd and every area:
per image and class, detections in descending score (a stable sort: ties keep their given
order) are matched greedily, each to the unmatched true box of the same class with the
highest IoU >= the threshold (of equal IoUs, the later true box), each true box at most
once; per IoU threshold 0.50, 0.55, ..., 0.95 separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepfit.evaluate.detection.boxes import ImageBoxes, box_iou

# Spelled as pycocotools spells them, so that the floats are the same to the last bit.
IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
MAX_DETS = 100  # COCO: per image and class, the highest-scoring detections that count


@dataclass(frozen=True)
class ClassMatches:
    """All detections of one class over the images, in the order COCO ranks them: by
    descending score, ties by image (in the given order), then by order within the image."""

    image: np.ndarray      # (D,) index of the detection's image
    score: np.ndarray      # (D,)
    rank: np.ndarray       # (D,) its place among its image's detections of the class (0: best)
    area: np.ndarray       # (D,) box area in pixels²
    tp: np.ndarray         # (T, D) bool: matched to a true box of the class at IoU threshold t
    n_true: np.ndarray     # (I,) true boxes of the class in each image


@dataclass(frozen=True)
class Matches:
    """Per class the ranked detections; per image the score of the detection that found
    each true box at IoU 0.5 (NaN: not found by any detection of its class)."""

    classes: list[ClassMatches]
    found_by: list[np.ndarray]   # per image, (N_i,) aligned with the image's true boxes


def match(truths: list[ImageBoxes], predictions: list[ImageBoxes], n_classes: int,
          thresholds: np.ndarray = IOU_THRESHOLDS) -> Matches:
    """Match every image's detections (all of them: ``max_dets`` is applied when averaging,
    which gives the same matches, the matching being greedy in score order)."""
    parts: list[list[tuple]] = [[] for _ in range(n_classes)]
    n_true = np.zeros((n_classes, len(truths)), dtype=np.int64)
    found_by = []
    for i, (truth, pred) in enumerate(zip(truths, predictions)):
        found = np.full(len(truth.labels), np.nan)
        for k in np.union1d(truth.labels, pred.labels):
            g = np.flatnonzero(truth.labels == k)
            d = np.flatnonzero(pred.labels == k)
            d = d[np.argsort(-pred.scores[d], kind="stable")]
            tp, which = greedy(box_iou(pred.boxes[d], truth.boxes[g]), thresholds)
            hit = which[0] >= 0
            found[g[which[0][hit]]] = pred.scores[d[hit]]
            n_true[k, i] = len(g)
            parts[k].append((np.full(len(d), i), pred.scores[d], np.arange(len(d)),
                             pred.areas[d], tp))
        found_by.append(found)
    return Matches([_ranked(parts[k], n_true[k], len(thresholds)) for k in range(n_classes)],
                   found_by)


def greedy(iou: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy matching of detections (rows, best score first) to true boxes (columns)
    at each threshold: ``tp`` (T, D) bool and ``which`` (T, D), the matched column or -1.
    One step per detection covers all thresholds at once."""
    d_count, g_count = iou.shape
    tp = np.zeros((len(thresholds), d_count), dtype=bool)
    which = np.full((len(thresholds), d_count), -1, dtype=np.int64)
    if d_count == 0 or g_count == 0:
        return tp, which
    limit = np.minimum(thresholds, 1 - 1e-10)[:, None]  # as pycocotools
    rows = np.arange(len(thresholds))
    taken = np.zeros((len(thresholds), g_count), dtype=bool)
    reachable = iou.max(axis=1) >= limit.min()
    for d in np.flatnonzero(reachable):  # a detection overlapping nothing enough: unmatched
        cand = np.where(~taken & (iou[d] >= limit), iou[d], -1.0)
        g = g_count - 1 - cand[:, ::-1].argmax(axis=1)  # the last of equal best IoUs
        ok = cand[rows, g] >= 0
        tp[ok, d], which[ok, d] = True, g[ok]
        taken[rows[ok], g[ok]] = True
    return tp, which


def _ranked(parts: list[tuple], n_true: np.ndarray, n_thresholds: int) -> ClassMatches:
    if not parts:
        empty = np.zeros(0)
        return ClassMatches(empty.astype(np.int64), empty, empty.astype(np.int64), empty,
                            np.zeros((n_thresholds, 0), dtype=bool), n_true)
    image, score, rank, area, tp = (np.concatenate(p, axis=-1) for p in zip(*parts))
    order = np.argsort(-score, kind="stable")  # pycocotools: mergesort, the same order
    return ClassMatches(image[order], score[order], rank[order], area[order], tp[:, order],
                        n_true)
