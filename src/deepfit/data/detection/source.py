"""A detection run's data source: a detection file or folder (challenge CSV, COCO JSON,
YOLO; ``formats``), or ``synthetic-smear``, the generator's set written once into the data
root (``data.root``, else ``$DEEPFIT_DATA``, else ``~/.cache/deepfit/datasets``, where named
image data sets go) in a folder named by its size and seed, and read back like any
challenge CSV, grouped by its ``slide`` column."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

from deepfit.config import DataConfig
from deepfit.data.detection.boxes import DetectionSet
from deepfit.data.detection.formats import detect_format, load_detection
from deepfit.data.detection.synthetic_smear import NAME as SMEAR, write_synthetic_smear
from deepfit.data.images.options import data_root, image_options
from deepfit.errors import DataError
from deepfit.files import temporary_folder

SMEAR_SIZE = (128, 128)  # the synthetic smears' pixels (data.image_size is the model's)
SMEAR_GROUP = "slide"


def detection_kind(text: str) -> Optional[str]:
    """``detection-synthetic`` for ``synthetic-smear``, ``detection-file`` for a path holding
    detection annotations, else None (cheap: headers only)."""
    if text.strip().lower() == SMEAR:
        return "detection-synthetic"
    path = Path(text).expanduser()
    if not text or not path.exists():
        return None
    try:
        detect_format(path)
    except (DataError, OSError):
        return None
    return "detection-file"


def smear_folder(cfg: DataConfig, seed: int) -> Path:
    """The synthetic smear set of ``data.n_samples`` images and ``seed``, written on first
    use (into a temporary folder renamed at the end: a killed run leaves no half set)."""
    root = data_root(image_options(cfg))
    h, w = SMEAR_SIZE
    folder = root / f"{SMEAR}-n{cfg.n_samples}-seed{seed}-{h}x{w}"
    if (folder / "Train.csv").is_file():
        return folder
    tmp = temporary_folder(folder)
    try:
        write_synthetic_smear(tmp, n_images=cfg.n_samples, size=SMEAR_SIZE, seed=seed)
        os.replace(tmp, folder)
    except OSError:
        if not (folder / "Train.csv").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # another process wrote it first
    return folder


def load_detection_source(cfg: DataConfig, seed: int) -> DetectionSet:
    """The checked ``DetectionSet`` of ``data.source`` (``data.group_column`` and
    ``data.label_map`` applied)."""
    label_map = dict(cfg.label_map) or None
    if detection_kind(cfg.source) == "detection-synthetic":
        return load_detection(smear_folder(cfg, seed), cfg.group_column or SMEAR_GROUP,
                              label_map)
    return load_detection(Path(cfg.source).expanduser(), cfg.group_column, label_map)
