"""Object detection runs (issue #18): ``deepfit train --data <boxes>`` dispatches here
(``run.train_detection``); ``deepfit predict`` on a detection run goes to
``predict.predict_folder``. docs/detection.md describes them."""

from __future__ import annotations

from typing import Any

from deepfit.data.source_kind import source_kind


def is_detection(cfg: Any, data: Any) -> bool:
    """True when the run's data source holds boxes per image (a box CSV, COCO JSON, YOLO
    folder or ``synthetic-smear``); data given as an object never is. Here, not in
    ``setup``, so that asking costs a table run nothing (``setup`` imports torchvision)."""
    if data is not None:
        return False
    return source_kind(cfg.data) in ("detection-file", "detection-synthetic")
