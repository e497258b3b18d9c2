"""Object detection data: boxes per image in one internal form (``boxes``), read from and
written to the challenge CSV, COCO JSON and YOLO formats (``formats``), checked
(``box_checks``), split by image (``image_splits``), augmented with their boxes
(``box_transforms``), served to torchvision's detection models (``dataset``), and a
synthetic smear generator (``synthetic_smear``). docs/detection.md describes them."""

from __future__ import annotations

import importlib
from typing import Any

# Names and the module holding each, imported on first use (PEP 562): the box transforms
# import torchvision (about a second), which a table run, whose data kind is asked of this
# package, must not pay for.
_WHERE = {
    "eval_transform": "box_transforms", "to_source_boxes": "box_transforms",
    "train_transform": "box_transforms",
    "NEG": "boxes", "DetectionSet": "boxes", "ImageBoxes": "boxes",
    "read_challenge_csv": "challenge_csv", "write_challenge_csv": "challenge_csv",
    "read_coco": "coco", "write_coco": "coco",
    "LABEL_OFFSET": "dataset", "DetectionDataset": "dataset",
    "collate_detection": "dataset", "from_model_labels": "dataset",
    "FORMATS": "formats", "detect_format": "formats", "load_detection": "formats",
    "split_images": "image_splits",
    "make_smears": "synthetic_smear", "write_synthetic_smear": "synthetic_smear",
    "read_yolo": "yolo", "write_yolo": "yolo",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
