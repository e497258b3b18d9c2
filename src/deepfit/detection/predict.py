"""``deepfit predict RUN IMAGES -o submission.csv`` for a detection run: every image of a
file or folder (searched recursively) through the run's detector, written in the
challenge's submission format (``outputs.submission_frame``: boxes in each image's own
pixels, one NEG row for an image with no detection)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import numpy as np

from deepfit.config import RunConfig
from deepfit.data.detection import DetectionDataset, DetectionSet, ImageBoxes, eval_transform
from deepfit.data.detection.boxes import image_size
from deepfit.data.images.decode import is_image_name
from deepfit.detection.outputs import submission_frame
from deepfit.detection.run import source_detections
from deepfit.errors import DataError
from deepfit.models.detection import build_detector
from deepfit.run import RunDir, require_finished, resolve_run
from deepfit.train.checkpoint import load_checkpoint
from deepfit.train.detection_loop import detect
from deepfit.train.device import resolve_device


def is_detection_run(run: "str | Path") -> bool:
    """True when ``run`` is a finished detection run's folder."""
    rd = resolve_run(run)
    return rd.schema.is_file() and rd.read_json(rd.schema).get("task") == "detection"


def predict_images(run: "str | Path", source: "str | Path", output: "str | Path",
                   batch: Optional[int] = None, device: Optional[str] = None) -> int:
    """Write the submission CSV ``output`` for the images at ``source``; returns its rows."""
    rd: RunDir = require_finished(resolve_run(run))
    schema = rd.read_json(rd.schema)
    cfg = RunConfig.load(rd.config)
    root = Path(source)
    files = ([root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.is_file() and is_image_name(p.name)
        and not any(part.startswith(".") for part in p.relative_to(root).parts)))
    if not files:
        raise DataError(f"'{source}' holds no image files; give an image or a folder of them")
    base = root.parent if root.is_file() else root
    entries = [ImageBoxes(p.relative_to(base).as_posix(), image_size(p),
                          np.zeros((0, 4), np.float32), np.zeros(0, np.int64)) for p in files]
    names, size = list(schema["class_names"]), tuple(schema["image_size"])
    data = DetectionSet(names, entries, base, None, f"images in '{source}'")
    model, _ = build_detector(schema["model"], len(names), size, np.zeros(0), None,
                              schema.get("model_kwargs"), anchors=schema.get("anchors"))
    model.load_state_dict(load_checkpoint(rd.best)["model"])
    where = resolve_device(device or "auto")
    found = detect(model.to(where), DetectionDataset(data, eval_transform(size)),
                   batch or cfg.eval.batch_size or 8, where, cfg.train.precision)
    frame = submission_frame(source_detections(found, entries, size), names)
    text = io.StringIO()
    frame.to_csv(text, index=False)
    RunDir(Path(output).parent).write_text(Path(output), text.getvalue())
    return len(frame)


def predict_if_detection(run: "str | Path", source: "str | Path", output: "str | Path",
                         batch: Optional[int] = None) -> bool:
    """``deepfit predict`` on a detection run: write and say the submission CSV; False
    (nothing done) for any other run."""
    if not is_detection_run(run):
        return False
    rows = predict_images(run, source, output, batch)
    print(f"wrote {rows} rows (boxes, and NEG for images without any) to {output}")
    return True
