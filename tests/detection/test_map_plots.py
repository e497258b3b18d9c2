"""The detection plots: precision-recall curves per class, and boxes drawn over an image."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from deepfit.evaluate.detection import detection_metrics
from deepfit.evaluate.detection.plots import overlay, pr_curves


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
