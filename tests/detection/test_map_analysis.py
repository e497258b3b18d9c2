"""Counts per image, the count threshold chosen on validation, confused classes, misses and
false boxes by size, bootstrap intervals over images, and the checks of the inputs; all on
small sets worked out by hand."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from deepfit.errors import ConfigError, DataError, ModelError
from deepfit.evaluate.bootstrap import format_ci
from deepfit.evaluate.detection import choose_score_threshold, detection_metrics

NAMES = ["troph", "wbc"]
SMALL, WBC = [0, 0, 10, 10], [50, 50, 90, 90]


def _img(i, boxes, labels, scores=None):
    out = {"image_id": i, "boxes": np.array(boxes, float).reshape(-1, 4),
           "labels": np.array(labels, int)}
    if scores is not None:
        out["scores"] = np.array(scores, float)
    return out


def smear_set():
    """Image 0: two trophozoites and a white cell, one trophozoite found below 0.5 and one
    false; image 1: nothing to find (NEG), one false trophozoite; image 2: a trophozoite
    called a white cell, two white cells missed (one found below 0.5)."""
    truths = [_img(0, [SMALL, [20, 0, 30, 10], WBC], [0, 0, 1]),
              _img(1, [], []),
              _img(2, [SMALL, WBC, [100, 0, 140, 40]], [0, 1, 1])]
    preds = [_img(0, [SMALL, [20, 0, 30, 10], WBC, [100, 100, 110, 110]], [0, 0, 1, 0],
                  [0.9, 0.4, 0.8, 0.6]),
             _img(1, [SMALL], [0], [0.7]),
             _img(2, [SMALL, WBC], [1, 1], [0.95, 0.3])]
    return truths, preds


def test_counts_per_image_and_their_errors():
    m = detection_metrics(*smear_set(), NAMES, count_ratio=("troph", "wbc"))
    troph, wbc = m.counts["per_class"]["troph"], m.counts["per_class"]["wbc"]
    assert (troph["true_total"], troph["predicted_total"]) == (3, 3)
    assert troph["mae"] == pytest.approx(2 / 3) and troph["bias"] == pytest.approx(0)
    assert troph["correlation"] == pytest.approx(0.5)
    assert wbc["mae"] == pytest.approx(1 / 3) and wbc["bias"] == pytest.approx(-1 / 3)
    assert m.counts["per_image"]["troph"] == {"true": [2, 0, 1], "predicted": [2, 1, 0]}
    assert m.counts["threshold"] == 0.5 and m.counts["threshold_how"] == "default 0.5"
    ratio = m.counts["ratio"]
    assert (ratio["pooled_true"], ratio["pooled_predicted"]) == (1.0, 1.5)
    assert ratio["images"] == 2 and ratio["mae"] == pytest.approx(0.25)
    assert ratio["bias"] == pytest.approx(-0.25)


def test_constant_counts_have_no_correlation_not_zero():
    truths = [_img(i, [SMALL], [0]) for i in range(3)]
    preds = [_img(i, [SMALL], [0], [0.9]) for i in range(3)]
    m = detection_metrics(truths, preds, ["troph"])
    assert m.counts["per_class"]["troph"]["correlation"] is None
    assert m.counts["per_class"]["troph"]["mae"] == 0.0


def test_count_threshold_chosen_on_validation_in_the_middle_of_its_gap():
    value, how = choose_score_threshold(*smear_set(), NAMES)
    # Errors after each detection in score order: 5 4 3 4 3 4 3: the first 3 is after 0.8.
    assert value == pytest.approx(0.75)
    assert "chosen on validation" in how and "3 boxes over 3 images, 6 true" in how
    m = detection_metrics(*smear_set(), NAMES, score_threshold=value, threshold_how=how)
    assert m.counts["threshold_how"] == how


def test_count_threshold_when_counting_nothing_is_best():
    truths = [_img(0, [], [])]
    value, how = choose_score_threshold(truths, [_img(0, [SMALL], [0], [0.3])], NAMES)
    assert value > 0.3 and "counting nothing" in how


def test_confusion_among_matched_boxes_with_none_row_and_column():
    m = detection_metrics(*smear_set(), NAMES)
    assert m.confusion["labels"] == ["troph", "wbc", "none"]
    # rows true, columns predicted: the trophozoite called a white cell is at [troph, wbc].
    assert m.confusion["matrix"] == [[1, 1, 1], [0, 1, 2], [2, 0, 0]]


def test_missed_and_false_boxes_by_coco_size():
    m = detection_metrics(*smear_set(), NAMES, size_bins="coco")
    assert [b["name"] for b in m.by_size["bins"]] == ["small", "medium", "large"]
    assert m.by_size["per_class"]["troph"] == {"true": [3, 0, 0], "missed": [2, 0, 0],
                                               "predicted": [3, 0, 0], "false": [2, 0, 0]}
    assert m.by_size["per_class"]["wbc"] == {"true": [0, 3, 0], "missed": [0, 2, 0],
                                             "predicted": [1, 1, 0], "false": [1, 0, 0]}


def test_size_terciles_split_the_true_boxes_in_thirds():
    truths = [_img(0, [[0, 0, s, s] for s in range(1, 10)], [0] * 9)]
    preds = [_img(0, [], [], [])]
    m = detection_metrics(truths, preds, ["troph"])
    assert m.by_size["per_class"]["troph"]["true"] == [3, 3, 3]
    assert m.by_size["per_class"]["troph"]["missed"] == [3, 3, 3]
    with pytest.raises(ConfigError, match="unknown size bins 'coc'.*did you mean 'coco'"):
        detection_metrics(truths, preds, ["troph"], size_bins="coc")


def test_bootstrap_is_seeded_and_brackets_the_value():
    rng = np.random.default_rng(0)
    truths, preds = [], []
    for i in range(40):
        n = int(rng.integers(0, 4))
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.c_[xy, xy + 20]
        truths.append(_img(i, boxes, rng.integers(0, 2, n)))
        keep = rng.random(n) < 0.7
        preds.append(_img(i, boxes[keep] + 2, truths[-1]["labels"][keep],
                          rng.random(int(keep.sum()))))
    a = detection_metrics(truths, preds, NAMES, n_resamples=200, seed=3)
    b = detection_metrics(truths, preds, NAMES, n_resamples=200, seed=3)
    assert a.ci == b.ci
    for key in ("map50", "map50_95", "troph.ap50", "wbc.ap50_95", "troph.count_mae"):
        entry = a.ci[key]
        assert entry["low"] <= entry["value"] <= entry["high"], key
    assert format_ci(a.ci["map50"]).startswith(f"{a.map50:.3f} [")
    json.dumps(a.to_dict(), allow_nan=False)


def test_bootstrap_names_a_class_too_rare_for_an_interval():
    truths = [_img(0, [SMALL], [1])] + [_img(i, [WBC], [0]) for i in range(1, 30)]
    preds = [_img(i, [SMALL], [1], [0.8]) for i in range(30)]
    m = detection_metrics(truths, preds, NAMES, n_resamples=100)
    entry = m.ci["wbc.ap50"]
    assert entry["value"] is not None and entry["low"] is None
    assert "no true 'wbc' box" in entry["reason"]


def test_torch_tensors_give_the_numpy_result():
    truths, preds = smear_set()

    def to_torch(entries):
        return [{k: torch.as_tensor(v) if k != "image_id" else torch.tensor(v)
                 for k, v in e.items()} for e in entries]
    a = detection_metrics(truths, preds, NAMES).to_dict()
    b = detection_metrics(to_torch(truths), to_torch(preds), NAMES).to_dict()
    assert a == b


def test_objects_with_attributes_are_accepted():
    from types import SimpleNamespace
    truths, preds = smear_set()
    a = detection_metrics(truths, preds, NAMES).to_dict()
    b = detection_metrics([SimpleNamespace(**t) for t in truths],
                          [SimpleNamespace(**p) for p in preds], NAMES).to_dict()
    assert a == b


@pytest.mark.parametrize("change, error, message", [
    (lambda t, p: t[0].update(boxes=np.zeros((3, 5))), DataError,
     r"detection truth, image 0: boxes must be \(N, 4\)"),
    (lambda t, p: t[0].update(boxes=np.array([[10., 0, 0, 10]] * 3)), DataError,
     r"image 0: box 0 .* has x2 < x1 or y2 < y1"),
    (lambda t, p: t[2].update(labels=np.array([0, 1, 2])), DataError,
     r"image 2: labels must be integers 0 to 1 indexing the classes \['troph', 'wbc'\]; got 2"),
    (lambda t, p: t.append(dict(t[0])), DataError, "image id 0 appears twice"),
    (lambda t, p: p.pop(), ModelError, r"1 of 3 images have no entry \(first: 2\)"),
    (lambda t, p: p.append(_img(9, [], [], [])), ModelError, r"no true boxes entry \(first: 9\)"),
    (lambda t, p: p[1].update(scores=np.array([np.nan])), ModelError,
     "image 1: scores must be 1 finite numbers.*nan"),
    (lambda t, p: p[1].pop("scores"), ModelError, "image 1: no 'scores' key"),
    (lambda t, p: t[1].update(boxes=np.array([[0, 0, np.inf, 1]]), labels=np.array([0])),
     DataError, "image 1: boxes must be finite numbers; found inf"),
])
def test_bad_input_is_named_in_one_line(change, error, message):
    truths, preds = smear_set()
    change(truths, preds)
    with pytest.raises(error, match=message):
        detection_metrics(truths, preds, NAMES)


def test_bad_options_are_refused():
    truths, preds = smear_set()
    with pytest.raises(ConfigError, match="count_ratio: no class 'wbcs'.*did you mean 'wbc'"):
        detection_metrics(truths, preds, NAMES, count_ratio=("troph", "wbcs"))
    with pytest.raises(ConfigError, match="max_dets must be a positive integer"):
        detection_metrics(truths, preds, NAMES, max_dets=0)
    with pytest.raises(ConfigError, match="n_resamples"):
        detection_metrics(truths, preds, NAMES, n_resamples=-1)


def test_bootstrap_over_a_thousand_images_is_quick():
    # The reason for our own matcher: 1000 resamples of 500 images in about a second
    # (pycocotools would take minutes). Generous bound for a shared CPU.
    rng = np.random.default_rng(1)
    truths, preds = [], []
    for i in range(500):
        xy = rng.uniform(0, 500, (6, 2))
        boxes = np.c_[xy, xy + 30]
        truths.append(_img(i, boxes, rng.integers(0, 2, 6)))
        preds.append(_img(i, np.r_[boxes, boxes + 40] + rng.normal(0, 3, (12, 4)),
                          rng.integers(0, 2, 12), rng.random(12)))
    start = time.perf_counter()
    m = detection_metrics(truths, preds, NAMES, n_resamples=1000)
    assert time.perf_counter() - start < 15
    assert m.ci["map50"]["low"] is not None
