"""Our COCO mAP against pycocotools (the reference), to 1e-4: random sets, and the edge cases
(images with no truth or no predictions, classes only predicted, tied scores and IoUs, IoU
exactly at a threshold, more than max_dets detections, resamples with repeated images)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from deepfit.evaluate.detection import detection_metrics
from deepfit.evaluate.detection.average_precision import (class_ap, mean_over_classes,
                                                          precision_recall)
from deepfit.evaluate.detection.boxes import read_predictions, read_truths
from deepfit.evaluate.detection.matching import greedy, match

coco_mask = pytest.importorskip("pycocotools.coco", reason="pycocotools (the dev extra) is "
                                "the reference implementation")
from pycocotools.cocoeval import COCOeval  # noqa: E402

TOL = 1e-4


def coco_eval(truths, preds, n_classes):
    """pycocotools on our representation (xyxy -> xywh; category and annotation ids from 1,
    as pycocotools needs: a matched id of 0 would read as unmatched)."""
    anns = []
    for t in truths:
        for b, label in zip(np.asarray(t["boxes"], float), t["labels"]):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": t["image_id"], "iscrowd": 0,
                         "category_id": int(label) + 1, "bbox": [b[0], b[1], w, h],
                         "area": w * h})
    gt = coco_mask.COCO()
    gt.dataset = {"images": [{"id": t["image_id"]} for t in truths], "annotations": anns,
                  "categories": [{"id": k + 1} for k in range(n_classes)]}
    dets = [{"image_id": p["image_id"], "category_id": int(label) + 1, "score": float(s),
             "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
            for p in preds for b, label, s in zip(np.asarray(p["boxes"], float), p["labels"],
                                                  p["scores"])]
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(dets), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def random_set(seed, n_images=40, n_classes=3, empty=0.2, round_scores=True):
    rng = np.random.default_rng(seed)
    truths, preds = [], []
    for i in range(n_images):
        n = 0 if rng.random() < empty else int(rng.integers(1, 8))
        xy, wh = rng.uniform(0, 200, (n, 2)), rng.uniform(5, 120, (n, 2))
        boxes, labels = np.c_[xy, xy + wh], rng.integers(0, n_classes, n)
        truths.append({"image_id": i, "boxes": boxes, "labels": labels})
        m = int(rng.integers(0, 12))  # 0: an image with no predictions
        if n:
            src = rng.integers(0, n, m)
            pb, pl = boxes[src] + rng.normal(0, 10, (m, 4)), labels[src].copy()
        else:
            pb = np.c_[rng.uniform(0, 200, (m, 2)), rng.uniform(200, 300, (m, 2))]
            pl = rng.integers(0, n_classes, m)
        pb[:, 2:] = np.maximum(pb[:, 2:], pb[:, :2] + 1)
        swap = rng.random(m) < 0.2
        pl[swap] = rng.integers(0, n_classes, int(swap.sum()))
        scores = rng.random(m)
        preds.append({"image_id": i, "boxes": pb, "labels": pl,
                      "scores": scores.round(1) if round_scores else scores})
    return truths, preds


def assert_same(ours, ref, n_classes):
    s = ref.stats
    for value, want in ((ours.map50_95, s[0]), (ours.map50, s[1]), (ours.map75, s[2]),
                        (ours.recall_at[1], s[6]), (ours.recall_at[10], s[7]),
                        (ours.recall_at[100], s[8])):
        assert value == pytest.approx(want, abs=TOL)
    precision = ref.eval["precision"]  # (T, R, K, area, maxDets)
    for k, name in enumerate(ours.class_names[:n_classes]):
        p = precision[:, :, k, 0, 2]
        cls = ours.per_class[name]
        if (p == -1).all():  # no true box of the class: COCO leaves it out
            assert np.isnan(cls["ap50"]) and np.isnan(cls["ap50_95"])
            assert f"{name}.ap" in ours.undefined and ours.pr_curves[name] is None
            continue
        assert cls["ap50"] == pytest.approx(p[0].mean(), abs=TOL)
        assert cls["ap50_95"] == pytest.approx(p.mean(), abs=TOL)
        curve = ours.pr_curves[name]["interpolated_precision"]
        reached = [v for v in curve if v is not None]
        np.testing.assert_allclose(reached, p[0, :len(reached)], atol=TOL)
        assert np.all(p[0, len(reached):] == 0)  # past the last recall: 0 for COCO


@pytest.mark.parametrize("seed", range(4))
def test_random_sets_with_tied_scores_equal_pycocotools(seed):
    truths, preds = random_set(seed)
    ours = detection_metrics(truths, preds, ["a", "b", "c"])
    assert_same(ours, coco_eval(truths, preds, 3), 3)


def test_continuous_scores_many_classes():
    truths, preds = random_set(7, n_images=60, n_classes=5, round_scores=False)
    assert_same(detection_metrics(truths, preds, list("abcde")), coco_eval(truths, preds, 5), 5)


def test_class_only_predicted_and_images_without_truth_or_predictions():
    truths, preds = random_set(3, n_images=30, n_classes=2, empty=0.4)
    for p in preds[:5]:  # class 2 ("ghost") is predicted, never true
        p["labels"] = np.r_[p["labels"], 2]
        p["boxes"] = np.r_[np.asarray(p["boxes"]).reshape(-1, 4), [[1, 1, 30, 30]]]
        p["scores"] = np.r_[p["scores"], 0.99]
    preds[6] = {"image_id": 6, "boxes": np.zeros((0, 4)), "labels": np.zeros(0, int),
                "scores": np.zeros(0)}
    ours = detection_metrics(truths, preds, ["a", "b", "ghost"])
    assert_same(ours, coco_eval(truths, preds, 3), 3)
    assert ours.images_without_truth > 5
    assert "no true 'ghost' box" in ours.undefined["ghost.ap"]
    assert ours.to_dict()["per_class"]["ghost"]["ap50"] is None


def test_exact_iou_thresholds_tied_ious_and_tied_scores():
    # Integer boxes: IoUs of exactly 0.5 (a match at 0.5) and 0.75; a detection overlapping
    # two identical true boxes equally; tied scores within and across images.
    truths = [{"image_id": 0, "boxes": [[0, 0, 10, 10], [0, 0, 10, 10], [40, 40, 50, 50]],
               "labels": [0, 0, 1]},
              {"image_id": 1, "boxes": [[0, 0, 20, 20], [0, 0, 8, 8]], "labels": [1, 0]},
              {"image_id": 2, "boxes": [[0, 0, 10, 10]], "labels": [0]}]
    preds = [{"image_id": 0, "boxes": [[0, 0, 10, 20], [0, 0, 10, 10], [40, 40, 50, 47.5]],
              "labels": [0, 0, 1], "scores": [0.9, 0.9, 0.6]},
             {"image_id": 1, "boxes": [[0, 0, 20, 10], [0, 0, 8, 8], [0, 0, 8, 4]],
              "labels": [1, 0, 0], "scores": [0.9, 0.6, 0.6]},
             {"image_id": 2, "boxes": [[0, 0, 10, 5], [0, 0, 10, 10]], "labels": [0, 0],
              "scores": [0.6, 0.6]}]
    ours = detection_metrics(truths, preds, ["a", "b"])
    assert_same(ours, coco_eval(truths, preds, 2), 2)
    assert 0 < ours.map75 < ours.map50 < 1


def test_greedy_match_takes_the_later_of_equal_ious_and_each_truth_once():
    iou = np.array([[0.6, 0.6, 0.2], [0.6, 0.6, 0.55], [0.9, 0.1, 0.1]])
    tp, which = greedy(iou, np.array([0.5, 0.58]))
    assert which.tolist() == [[1, 0, -1], [1, 0, -1]]
    assert tp.tolist() == [[True, True, False], [True, True, False]]


def test_more_detections_than_max_dets_in_an_image():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (120, 2))
    boxes = np.c_[xy, xy + 20]
    truths = [{"image_id": 0, "boxes": boxes, "labels": np.zeros(120, int)},
              {"image_id": 1, "boxes": boxes[:3], "labels": [0, 0, 0]}]
    preds = [{"image_id": 0, "boxes": boxes + rng.normal(0, 2, boxes.shape),
              "labels": np.zeros(120, int), "scores": rng.random(120)},
             {"image_id": 1, "boxes": boxes[:3], "labels": [0, 0, 0], "scores": [.5, .4, .3]}]
    ours = detection_metrics(truths, preds, ["a"])
    assert_same(ours, coco_eval(truths, preds, 1), 1)
    assert "20 detections beyond the 100 best-scored" in ours.notes[0]
    above = int((preds[0]["scores"] >= 0.5).sum()) + 1  # counts are not capped at 100
    assert ours.counts["per_class"]["a"]["predicted_total"] == above


def test_no_predictions_at_all_scores_zero_not_undefined():
    # pycocotools cannot load an empty result list: checked by hand. Truth exists, nothing
    # found: AP is 0 (defined), recall 0.
    truths = [{"image_id": i, "boxes": [[0, 0, 5, 5]], "labels": [i % 2]} for i in range(3)]
    preds = [{"image_id": i, "boxes": [], "labels": [], "scores": []} for i in range(3)]
    ours = detection_metrics(truths, preds, ["a", "b"])
    assert ours.map50 == 0.0 and ours.map50_95 == 0.0 and ours.recall_at[100] == 0.0
    assert not ours.undefined


def test_no_truth_at_all_leaves_map_undefined():
    truths = [{"image_id": i, "boxes": [], "labels": []} for i in range(3)]
    preds = [{"image_id": i, "boxes": [[0, 0, 5, 5]], "labels": [0], "scores": [0.7]}
             for i in range(3)]
    ours = detection_metrics(truths, preds, ["a"])
    assert np.isnan(ours.map50) and ours.to_dict()["map50"] is None
    assert "no true box of any class in the 3 images" in ours.undefined["map50"]


def test_weighted_resamples_equal_pycocotools_on_the_resampled_images():
    # A resample re-weights the matches made once; pycocotools gets the drawn images as
    # separate images (a repeated image twice), in the drawn order, sorted.
    truths, preds = random_set(11, n_images=25, n_classes=2, round_scores=False)
    rng = np.random.default_rng(0)
    true = read_truths(truths, ["a", "b"])
    matches = match(true, read_predictions(preds, true, ["a", "b"]), 2)
    for _ in range(3):
        idx = np.sort(rng.integers(0, 25, 25))
        weights = np.bincount(idx, minlength=25)[None].astype(float)
        ap = np.stack([np.stack([class_ap(precision_recall(m, weights, 100)[0])[key][0]
                                 for m in matches.classes]) for key in ("ap50", "ap50_95")])
        ours = mean_over_classes(ap)
        rt = [dict(truths[i], image_id=j) for j, i in enumerate(idx)]
        rp = [dict(preds[i], image_id=j) for j, i in enumerate(idx)]
        ref = coco_eval(rt, rp, 2).stats
        assert ours[0] == pytest.approx(ref[1], abs=TOL)
        assert ours[1] == pytest.approx(ref[0], abs=TOL)
