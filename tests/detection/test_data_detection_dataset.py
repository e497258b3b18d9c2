"""The detection Dataset in torchvision's form, and the synthetic smears it serves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy import ndimage
from torch.utils.data import DataLoader

from deepfit.data.detection import (LABEL_OFFSET, DetectionDataset, collate_detection,
                                    eval_transform, from_model_labels, load_detection,
                                    make_smears, train_transform, write_synthetic_smear)
from deepfit.errors import DataError


@pytest.fixture(scope="module")
def smear(tmp_path_factory):
    root = tmp_path_factory.mktemp("smear")
    write_synthetic_smear(root, n_images=8, size=(64, 64), seed=0)
    return root


def test_items_and_batches_are_what_torchvision_detection_models_take(smear):
    data = load_detection(smear)
    loader = DataLoader(DetectionDataset(data, eval_transform((48, 48))), batch_size=4,
                        collate_fn=collate_detection)
    images, targets = next(iter(loader))
    assert len(images) == len(targets) == 4
    assert all(x.shape == (3, 48, 48) and x.dtype == torch.float32 for x in images)
    for target, entry in zip(targets, data.images):
        assert set(target) == {"boxes", "labels"}
        assert target["boxes"].dtype == torch.float32 and target["boxes"].shape[1] == 4
        assert target["labels"].dtype == torch.int64
        # the one shift: 0-based classes become 1-based, 0 is the background
        assert target["labels"].tolist() == (entry.labels + LABEL_OFFSET).tolist()
        assert from_model_labels(target["labels"]).tolist() == entry.labels.tolist()
    assert any(len(t["labels"]) == 0 and t["boxes"].shape == (0, 4) for t in targets)
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    torch.manual_seed(0)
    model = fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=len(data.class_names) + 1,
        min_size=64, max_size=64)
    losses = model(images, targets)  # train mode: the targets are accepted as they are
    assert all(torch.isfinite(v) for v in losses.values())


def test_without_a_transform_the_image_and_boxes_are_as_read(smear):
    data = load_detection(smear)
    image, target = DetectionDataset(data, indices=[1])[0]
    assert image.shape == (3, 64, 64) and float(image.max()) <= 1
    np.testing.assert_array_equal(target["boxes"].numpy(), data.images[1].boxes)
    train = DetectionDataset(data, train_transform((32, 32)))
    assert train[2][0].shape == (3, 32, 32)


def test_an_image_replaced_after_reading_is_named(smear, tmp_path):
    data = load_detection(smear)
    data.image_dir = tmp_path
    Image.new("RGB", (10, 10)).save(tmp_path / data.images[0].image_id)
    with pytest.raises(DataError, match="is now 10x10 pixels but was 64x64"):
        DetectionDataset(data)[0]


def _inside(centre, box) -> bool:
    """The (row, column) ``centre`` lies in the xyxy ``box``."""
    return box[0] <= centre[1] <= box[2] and box[1] <= centre[0] <= box[3]


def test_synthetic_objects_are_clearly_visible_and_the_only_dark_things():
    """Every box holds a dark blob and every dark blob lies in a box: the objects can be
    found from the pixels (the background cells and platelets stay lighter)."""
    images, data = make_smears(30, (96, 96), seed=7)
    assert data.class_names == ["Trophozoite", "WBC"]
    assert sum(im.is_negative for im in data.images) >= 3
    sizes = {0: [], 1: []}
    for pixels, entry in zip(images, data.images):
        dark = ndimage.gaussian_filter(pixels.min(axis=2).astype(float), 1) < 110
        blobs, n = ndimage.label(dark)
        centres = ndimage.center_of_mass(dark, blobs, range(1, n + 1))
        for box, label in zip(entry.boxes, entry.labels):
            assert any(_inside(c, box) for c in centres), (entry.image_id, box)
            sizes[int(label)].append(box[2] - box[0])
        for c in centres:
            assert any(_inside(c, box) for box in entry.boxes), (entry.image_id, c)
    assert np.median(sizes[1]) > 2 * np.median(sizes[0])  # white cells are the larger
    assert np.ptp(sizes[0]) > 2  # varied sizes


def test_the_written_folder_is_the_challenge_layout(smear):
    frame = pd.read_csv(smear / "Train.csv")
    assert list(frame.columns) == ["Image_ID", "class", "ymin", "xmin", "ymax", "xmax", "slide"]
    assert set(frame["class"]) <= {"Trophozoite", "WBC", "NEG"}
    assert (smear / "images" / frame["Image_ID"][0]).is_file()
