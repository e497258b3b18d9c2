"""Object detection data: boxes per image in one internal form (``boxes``), read from and
written to the challenge CSV, COCO JSON and YOLO formats (``formats``), checked
(``box_checks``), split by image (``image_splits``), augmented with their boxes
(``box_transforms``), served to torchvision's detection models (``dataset``), and a
synthetic smear generator (``synthetic_smear``). docs/detection.md describes them."""

from deepfit.data.detection.box_transforms import eval_transform, to_source_boxes, train_transform
from deepfit.data.detection.boxes import NEG, DetectionSet, ImageBoxes
from deepfit.data.detection.challenge_csv import read_challenge_csv, write_challenge_csv
from deepfit.data.detection.coco import read_coco, write_coco
from deepfit.data.detection.dataset import (LABEL_OFFSET, DetectionDataset, collate_detection,
                                            from_model_labels)
from deepfit.data.detection.formats import FORMATS, detect_format, load_detection
from deepfit.data.detection.image_splits import split_images
from deepfit.data.detection.synthetic_smear import make_smears, write_synthetic_smear
from deepfit.data.detection.yolo import read_yolo, write_yolo

__all__ = ["NEG", "LABEL_OFFSET", "FORMATS", "DetectionSet", "ImageBoxes", "DetectionDataset",
           "collate_detection", "from_model_labels", "detect_format", "load_detection",
           "read_challenge_csv", "write_challenge_csv", "read_coco", "write_coco", "read_yolo",
           "write_yolo", "split_images", "eval_transform", "train_transform", "to_source_boxes",
           "make_smears", "write_synthetic_smear"]
