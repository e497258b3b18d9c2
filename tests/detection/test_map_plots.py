"""The detection plots: precision-recall curves per class, and boxes drawn over an image."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from deepfit.evaluate.detection import detection_metrics
from deepfit.evaluate.detection.plots import (box_crops, box_outcomes, overlay, overlay_grid,
                                              pr_curves)


def _set():
    truths = [{"image_id": 0, "boxes": [[0, 0, 10, 10], [20, 20, 40, 40]], "labels": [0, 0]},
              {"image_id": 1, "boxes": [], "labels": []}]
    preds = [{"image_id": 0, "boxes": [[0, 0, 10, 10], [60, 60, 70, 70]], "labels": [0, 1],
              "scores": [0.9, 0.6]},
             {"image_id": 1, "boxes": [[5, 5, 9, 9]], "labels": [0], "scores": [0.3]}]
    return truths, preds


def test_pr_curves_from_the_result_or_its_json(tmp_path):
    m = detection_metrics(*_set(), ["troph", "wbc"])  # wbc: predicted, never true
    path = pr_curves(m, tmp_path / "pr.png")
    assert Image.open(path).size[0] > 300
    buffer = pr_curves(m.to_dict(), io.BytesIO())
    assert Image.open(buffer).format == "PNG"


def test_overlay_draws_true_and_predicted_boxes(tmp_path):
    truths, preds = _set()
    image = torch.zeros(3, 80, 100, dtype=torch.uint8)  # channels first, black
    path = overlay(image, truths[0], preds[0], ["troph", "wbc"], tmp_path / "o.png",
                   score_threshold=0.5, title="image 0")
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
    blue = np.array([31, 119, 180])  # the first class's colour (matplotlib's tab:blue)
    assert (np.abs(pixels - blue).sum(axis=1) < 40).sum() > 50
    only_truth = overlay(np.zeros((80, 100)), truths[0], None, ["troph", "wbc"], io.BytesIO())
    assert Image.open(only_truth).format == "PNG"


def test_overlay_grid_draws_several_images_in_one_figure(tmp_path):
    truths, preds = _set()
    panels = [(np.full((80, 100, 3), 200, np.uint8), truths[i % 2], preds[i % 2], f"image {i}")
              for i in range(6)]
    path = overlay_grid(panels, ["troph", "wbc"], tmp_path / "grid.png", score_threshold=0.5,
                        title="six images", columns=4)
    width, height = Image.open(path).size
    assert width > 1.5 * height  # 4 columns by 2 rows, not a column of full-size figures


def test_box_outcomes_name_missed_false_and_found_boxes():
    truths, preds = _set()
    kinds = [(k, label) for k, _, label, _ in box_outcomes(truths[0], preds[0], ["t", "w"], 0.5)]
    assert sorted(kinds) == [("false", 1), ("found", 0), ("missed", 0)]
    # below the threshold a prediction is neither found nor false: its true box is missed
    assert [k for k, *_ in box_outcomes(truths[1], preds[1], ["t", "w"], 0.5)] == []
    assert [k for k, *_ in box_outcomes(truths[1], preds[1], ["t", "w"], None)] == ["false"]


def test_box_crops_zoom_on_small_boxes_of_a_large_image(tmp_path):
    image = np.full((3000, 4000, 3), 230, np.uint8)
    image[1000:1030, 2000:2030] = (90, 30, 120)  # a 30-px parasite, missed
    image[200:230, 300:330] = (90, 30, 120)      # one found
    truth = {"image_id": "big", "boxes": [[2000, 1000, 2030, 1030], [300, 200, 330, 230]],
             "labels": [0, 0]}
    pred = {"image_id": "big", "boxes": [[301, 201, 331, 229], [3500, 2500, 3530, 2530]],
            "labels": [0, 1], "scores": [0.9, 0.7]}
    path = box_crops([(image, truth, pred, "big.jpg")], ["troph", "wbc"], tmp_path / "c.png",
                     score_threshold=0.5, title="crops")
    crops = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
    purple = (np.abs(crops - np.array([90, 30, 120])).sum(axis=1) < 30).sum()
    assert purple > 2000  # the parasites fill a good part of their crops (not 30 px in 4000)
    empty = {"image_id": "big", "boxes": [], "labels": [], "scores": []}
    assert box_crops([(image, {"image_id": "big", "boxes": [], "labels": []}, empty, "b")],
                     ["troph", "wbc"], tmp_path / "none.png") is None
