"""Box-aware transforms: boxes stay on their objects, are clipped, and dropped when out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepfit.data.detection import eval_transform, to_source_boxes, train_transform
from deepfit.data.detection.box_transforms import clip_and_drop

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _picture():
    """A gray 60 (high) x 90 (wide) image with a red and a blue square, and their boxes."""
    image = torch.full((3, 60, 90), 128, dtype=torch.uint8)
    boxes = np.array([[10, 8, 30, 28], [55, 30, 80, 52]], dtype=np.float32)  # xyxy
    for (x0, y0, x1, y1), colour in zip(boxes.astype(int), (RED, BLUE)):
        image[:, y0:y1, x0:x1] = torch.tensor(colour, dtype=torch.uint8)[:, None, None]
    return image, boxes, np.array([0, 1])


def _mask(image: torch.Tensor, channel: int) -> torch.Tensor:
    """Pixels clearly of the pure colour in ``channel`` (0 red, 2 blue)."""
    others = [c for c in range(3) if c != channel]
    return (image[channel] > 0.75) & (image[others].max(dim=0).values < 0.25)


def _enclosing(mask: torch.Tensor) -> list[float]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_train_boxes_stay_on_their_coloured_squares():
    image, boxes, labels = _picture()
    transform = train_transform((64, 64), min_scale=0.2, jitter=0, blur=0)
    kept = dropped = 0
    for seed in range(40):
        torch.manual_seed(seed)
        out, out_boxes, out_labels = transform(image, boxes, labels)
        assert out.shape == (3, 64, 64) and out.dtype == torch.float32
        assert out_boxes.shape == (len(out_labels), 4)
        assert (out_boxes >= 0).all() and (out_boxes[:, 2] <= 64).all()
        dropped += 2 - len(out_labels)
        for box, label in zip(out_boxes.tolist(), out_labels.tolist()):
            kept += 1
            mask = _mask(out, 0 if label == 0 else 2)
            assert mask.sum() > 0, (seed, label)
            # the colour stays inside its box (one pixel of resampling slack) ...
            x0, y0, x1, y1 = _enclosing(mask)
            assert x0 >= box[0] - 1 and y0 >= box[1] - 1 and x1 <= box[2] + 1 \
                and y1 <= box[3] + 1, (seed, label, box, (x0, y0, x1, y1))
            # ... and fills it
            assert _iou(box, [x0, y0, x1, y1]) > 0.7, (seed, label, box)
    assert kept > 40 and dropped > 0  # crops both keep and lose squares


def test_eval_letterbox_and_back_to_the_source_image():
    image, boxes, labels = _picture()
    out, out_boxes, out_labels = eval_transform((48, 48))(image, boxes, labels)
    assert out.shape == (3, 48, 48) and out_labels.tolist() == [0, 1]
    # 90 x 60 scaled by 48/90 into 48 x 32, 8 rows of black above and below
    assert out[:, :8].max() == 0 and out[:, -8:].max() == 0
    np.testing.assert_allclose(out_boxes[0].numpy(), np.array([10, 8, 30, 28]) * 48 / 90
                               + [0, 8, 0, 8], atol=1e-4)
    assert _iou(out_boxes[1].tolist(), _enclosing(_mask(out, 2))) > 0.8
    np.testing.assert_allclose(to_source_boxes(out_boxes, (60, 90), (48, 48)), boxes, atol=1e-3)


def test_clip_and_drop_keeps_boxes_mostly_inside():
    boxes = torch.tensor([[-5.0, 0, 5, 10], [-8, 0, 2, 10], [95, 0, 120, 10], [10, 10, 20, 20]])
    out, labels = clip_and_drop(boxes, torch.tensor([0, 1, 2, 3]), (50, 100), 0.5)
    assert labels.tolist() == [0, 3]
    assert out.tolist() == [[0, 0, 5, 10], [10, 10, 20, 20]]


@pytest.mark.parametrize("make", [lambda: eval_transform((32, 32)),
                                  lambda: train_transform((32, 32))])
def test_an_image_without_boxes_passes(make):
    image = torch.zeros((3, 20, 30), dtype=torch.uint8)
    out, boxes, labels = make()(image, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    assert out.shape == (3, 32, 32) and boxes.shape == (0, 4) and labels.shape == (0,)


def test_the_train_transform_repeats_under_a_seed_and_describes_itself():
    image, boxes, labels = _picture()
    transform = train_transform((40, 40))
    torch.manual_seed(1)
    a = transform(image, boxes, labels)
    torch.manual_seed(1)
    b = transform(image, boxes, labels)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert transform.describe()[0] == "horizontal flip (p=0.5)"
