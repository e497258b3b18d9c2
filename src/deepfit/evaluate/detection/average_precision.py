"""Average precision from the per-image matches, for the whole set or for many resamples.

A resample of images is a row of weights, how often each image was drawn: a detection
counts as many times as its image, and so does each of the image's true boxes. The
cumulative true and false positives of all resamples of a block come from one ``cumsum``;
the rest is COCO's accumulation, step for step: precision made non-increasing from the
right, read at the 101 recall thresholds 0, 0.01, ..., 1 (the first detection reaching
each; 0 past the last recall reached), averaged. A class with no true box in the
(re)sample has no AP (NaN), and means over classes leave it out, as COCO does.

The weights reproduce COCO on a resample exactly but for one case: tied scores within an
image drawn twice are ranked copy by copy by COCO and pooled here (real scores rarely tie).
"""

from __future__ import annotations

import numpy as np

from deepfit.evaluate.detection.matching import RECALL_THRESHOLDS, ClassMatches

_BLOCK = 2 ** 21  # resamples x detections per block: ~50 MB of float64 at most


def precision_recall(m: ClassMatches, weights: np.ndarray,
                     max_dets: int) -> tuple[np.ndarray, np.ndarray]:
    """COCO's interpolated precision (R, T, 101) and recall (R, T) of one class for each
    resample (row of image ``weights`` (R, I)), counting each image's ``max_dets``
    best-scored detections; NaN for a resample with no true box of the class.

    Only the true positives' points are computed: the first point reaching a recall is a
    true positive, and so is the best precision at or after any point (a false positive
    only lowers precision), so the others cannot change the result."""
    weights = np.asarray(weights, dtype=np.float64)
    n_true = weights @ m.n_true
    r_count, (t_count, d_count) = len(weights), m.tp.shape
    precision = np.zeros((r_count, t_count, len(RECALL_THRESHOLDS)))
    recall = np.zeros((r_count, t_count))
    keep = m.rank < max_dets
    hits = [np.flatnonzero(m.tp[t] & keep) for t in range(t_count)]
    rows = max(1, _BLOCK // max(1, d_count))
    for start in range(0, r_count, rows):
        w = weights[start:start + rows][:, m.image] * keep          # (r, D)
        seen = np.cumsum(w, axis=1)                                  # detections so far
        total = n_true[start:start + rows, None]
        for t, pos in enumerate(hits):
            if not len(pos):
                continue
            tp = np.cumsum(w[:, pos], axis=1)                        # (r, P)
            with np.errstate(invalid="ignore", divide="ignore"):
                rc = tp / total
            pr = tp / (seen[:, pos] + np.spacing(1))                 # tp / (tp + fp + eps)
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            recall[start:start + rows, t] = rc[:, -1]
            idx = _first_reaching(rc)
            got = np.take_along_axis(pr, np.minimum(idx, len(pos) - 1), axis=1)
            precision[start:start + rows, t] = np.where(idx < len(pos), got, 0.0)
    none = n_true == 0
    precision[none], recall[none] = np.nan, np.nan
    return precision, recall


def _first_reaching(rc: np.ndarray) -> np.ndarray:
    """For each row of non-decreasing recalls (r, P), the first position reaching each recall
    threshold (r, 101), P where none does: pycocotools' ``searchsorted(rc, thresholds,
    "left")`` for all rows at once, exact (the float comparisons are the same: each point's
    count of thresholds reached, then integer keys offset by row)."""
    reached = np.searchsorted(RECALL_THRESHOLDS, rc, side="right")   # thresholds <= rc
    span = len(RECALL_THRESHOLDS) + 1
    offset = np.arange(len(rc))[:, None] * span
    want = offset + np.arange(len(RECALL_THRESHOLDS))[None, :]
    idx = np.searchsorted((reached + offset).ravel(), want.ravel(), side="right")
    return idx.reshape(want.shape) - np.arange(len(rc))[:, None] * rc.shape[1]


def class_ap(precision: np.ndarray) -> dict[str, np.ndarray]:
    """AP at IoU 0.5, 0.75 and averaged over 0.5:0.95 from ``precision`` (R, T, 101): (R,)."""
    return {"ap50": precision[:, 0].mean(axis=1), "ap75": precision[:, 5].mean(axis=1),
            "ap50_95": precision.mean(axis=(1, 2))}


def mean_over_classes(values: np.ndarray) -> np.ndarray:
    """Mean over the classes (last axis) where defined; NaN where no class is."""
    defined = ~np.isnan(values)
    total = np.where(defined, values, 0.0).sum(axis=-1)
    count = defined.sum(axis=-1)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def pr_curve(m: ClassMatches, max_dets: int, interpolated: np.ndarray,
             threshold_index: int = 0) -> dict[str, list]:
    """The raw precision-recall curve of one class over the whole set at one IoU threshold
    (default 0.5): a point after each ranked detection, with its score; and COCO's
    interpolated precision at the 101 recall thresholds (``interpolated``, from
    ``precision_recall``), None past the last recall reached (AP counts those as 0)."""
    keep = m.rank < max_dets
    hits = m.tp[threshold_index, keep]
    total = int(m.n_true.sum())
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = tp / total if total else np.full(len(hits), np.nan)
    last = recall[-1] if total and len(recall) else -1.0
    interp = [float(v) if t <= last else None for v, t in zip(interpolated, RECALL_THRESHOLDS)]
    return {"recall": recall.tolist(), "precision": precision.tolist(),
            "score": m.score[keep].tolist(), "recall_thresholds": RECALL_THRESHOLDS.tolist(),
            "interpolated_precision": interp}
