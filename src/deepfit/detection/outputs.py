"""The files of a trained detection run: history.csv, model.safetensors, metrics.json
(validation and test, ``detection_metrics`` with bootstrap intervals), predictions.csv in
the challenge's submission format, the plots, summary.json and the report."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from PIL import Image

from deepfit.data.detection.boxes import NEG
from deepfit.evaluate.detection import choose_score_threshold, detection_metrics
from deepfit.evaluate.detection.plots import box_crops, overlay_grid, pr_curves
from deepfit.report import write_report
from deepfit.run import RunDir
from deepfit.summary import versions
from deepfit.train.builtin import BestModel
from deepfit.train.export import save_weights
from deepfit.version import __version__

SUBMISSION_COLUMNS = ["Image_ID", "class", "confidence", "ymin", "xmin", "ymax", "xmax"]
GRID_EACH = 4  # worst and best test images in the grid (and one per class)
CROP_ABOVE = 600  # images longer than this (pixels) also get zoomed crops of boxes
CROP_IMAGES = 6  # ... of their worst test images


def submission_frame(detections: list[dict], class_names: list[str]) -> pd.DataFrame:
    """The challenge's submission rows: one per detected box (original image pixels), and
    one NEG row (confidence 0, coordinates 0) for an image with no detection."""
    rows = []
    for d in detections:
        if len(d["labels"]) == 0:
            rows.append([d["image_id"], NEG, 0.0, 0.0, 0.0, 0.0, 0.0])
        for (x1, y1, x2, y2), label, score in zip(d["boxes"], d["labels"], d["scores"]):
            rows.append([d["image_id"], class_names[int(label)], round(float(score), 6),
                         round(float(y1), 2), round(float(x1), 2), round(float(y2), 2),
                         round(float(x2), 2)])
    return pd.DataFrame(rows, columns=SUBMISSION_COLUMNS)


def count_ratio(names: list[str]) -> Any:
    """(parasite class, "WBC") when the classes include white blood cells: the ratio the
    clinic reads (parasites per WBC); else None."""
    wbc = [n for n in names if n.lower() in ("wbc", "white_blood_cell", "white blood cell")]
    others = [n for n in names if n not in wbc]
    return (others[0], wbc[0]) if wbc and others else None


def _overlays(setup: Any, test: list[dict], metrics: Any, folder: Path) -> dict[str, str]:
    """One grid of test images (the worst and best by count error at the threshold, and the
    one with most boxes of each class) and, for large images, where whole-image panels
    shrink the objects to a few pixels, zoomed crops of the worst images' missed, false and
    found boxes."""
    threshold = metrics.counts["threshold"]
    truths = [setup.data.images[i] for i in setup.parts["test"]]
    error = [abs(len(t.labels) - int((d["scores"] >= threshold).sum()))
             for t, d in zip(truths, test)]
    order = list(np.argsort(error, kind="stable"))
    picks = {f"worst {k + 1}": order[-1 - k] for k in range(min(GRID_EACH, len(order)))}
    for k in range(min(GRID_EACH, len(order))):
        if order[k] not in picks.values():
            picks[f"best {k + 1}"] = order[k]
    for c, name in enumerate(setup.data.class_names):
        held = [j for j, t in enumerate(truths) if (t.labels == c).any()]
        best = max(held, key=lambda j: int((truths[j].labels == c).sum()), default=None)
        if best is not None and best not in picks.values():
            picks[f"most {name}"] = best
    names = setup.data.class_names
    panels = []
    for title, j in picks.items():
        shown = int((test[j]["scores"] >= threshold).sum())
        panels.append((_pixels_of(setup, j), truths[j], test[j],
                       f"{title}: {truths[j].image_id}\n{len(truths[j].labels)} true, "
                       f"{shown} predicted"))
    out = {}
    overlay_grid(panels, names, folder / "detection_test_images.png", threshold,
                 "Test images, worst and best by count error (solid: true, dashed: predicted "
                 "with its score)")
    out["test images: worst, best and per class"] = "detection_test_images.png"
    if max(max(t.size) for t in truths) > CROP_ABOVE:
        worst = [(_pixels_of(setup, j), truths[j], test[j], str(truths[j].image_id))
                 for j in order[::-1][:CROP_IMAGES]]
        if box_crops(worst, names, folder / "detection_crops.png", threshold,
                     "Zoomed: boxes missed, false and found on the worst test images"):
            out["zoomed boxes: missed, false and found"] = "detection_crops.png"
    return out


def _pixels_of(setup: Any, j: int) -> np.ndarray:
    """The RGB pixels of the j-th test image."""
    with Image.open(setup.data.path(int(setup.parts["test"][j]))) as img:
        return np.asarray(img.convert("RGB"))


def write_outputs(setup: Any, trainer: Any, rd: RunDir, seconds: float,
                  to_source: Callable) -> dict:
    """Write the run's files (see the module docstring); returns metrics.json's content."""
    cfg, names = setup.cfg, list(setup.data.class_names)
    trainer.history.to_csv(rd.history)
    save_weights(trainer.model, rd.weights, {"deepfit": __version__, "model": cfg.model.name,
                                             "task": "detection"})
    found = {s: to_source(trainer.predict_detections(getattr(setup, s)),
                          [setup.data.images[i] for i in setup.parts[s]], setup.size)
             for s in ("val", "test")}
    truths = {s: [setup.data.images[i] for i in setup.parts[s]] for s in ("val", "test")}
    threshold, how = 0.5, "default 0.5 (validation has no true box to choose on)"
    if any(len(t.labels) for t in truths["val"]):
        threshold, how = choose_score_threshold(truths["val"], found["val"], names)
    ratio = count_ratio(names)
    ev = cfg.eval
    computed = {s: detection_metrics(truths[s], found[s], names, score_threshold=threshold,
                                     threshold_how=how, count_ratio=ratio,
                                     n_resamples=ev.bootstrap, level=ev.ci_level,
                                     seed=setup.data_seed) for s in ("val", "test")}
    metrics = {s: m.to_dict() for s, m in computed.items()}
    metrics["score_threshold"] = {"value": threshold, "how": how}
    rd.write_json(rd.metrics, metrics)
    text = io.StringIO()
    submission_frame(found["test"], names).to_csv(text, index=False)
    rd.write_text(rd.predictions, text.getvalue())
    plots: dict[str, str] = {}
    if ev.plots:
        rd.plots.mkdir(parents=True, exist_ok=True)
        pr_curves(computed["test"], rd.plots / "detection_pr_curves.png")
        plots["precision-recall curves"] = "detection_pr_curves.png"
        plots.update(_overlays(setup, found["test"], computed["test"], rd.plots))
    rd.write_json(rd.summary, _summary(setup, trainer, plots, seconds, threshold, how,
                                       rd.path.name))
    if ev.report:
        write_report(rd.path)
    return metrics


def _summary(setup: Any, trainer: Any, plots: dict, seconds: float, threshold: float,
             how: str, name: str) -> dict:
    cfg, data = setup.cfg, setup.data
    best = trainer.find(BestModel)
    per_split = {s: {"images": int(len(ix)),
                     "boxes": {n: int(sum((data.images[i].labels == c).sum() for i in ix))
                               for c, n in enumerate(data.class_names)},
                     "negative_images": int(sum(data.images[i].is_negative for i in ix))}
                 for s, ix in setup.parts.items()}
    return {
        "task": "detection", "name": name,
        "created": datetime.now().isoformat(timespec="seconds"), "versions": versions(),
        "data": {"task": "detection", "name": data_name(cfg.data.source),
                 "source": cfg.data.source, "description": data.source,
                 "classes": list(data.class_names), "splits": per_split,
                 "grouped_by": cfg.data.group_column or ("slide" if data.groups else None),
                 "image_size": list(setup.size), "augment": setup.augment,
                 "notes": list(data.notes)},
        "model": {"name": cfg.model.name, "notes": setup.model_notes,
                  "parameters": int(sum(p.numel() for p in trainer.model.parameters()))},
        "training": {"epochs_run": len(trainer.history), "epochs": cfg.train.epochs,
                     "best_epoch": best.best_epoch if best else None,
                     "monitor": cfg.train.monitor, "stop_reason": trainer.stop_reason,
                     "seconds": round(seconds, 2), "device": str(trainer.device),
                     "precision": cfg.train.precision, "batch_size": cfg.train.batch_size,
                     "optimizer": cfg.train.optimizer, "lr": cfg.train.lr,
                     "schedule": cfg.train.schedule, "history": trainer.history.rows},
        "evaluation": {"score_threshold": threshold, "threshold_how": how,
                       "bootstrap": cfg.eval.bootstrap, "ci_level": cfg.eval.ci_level},
        "plots": plots,
    }


def data_name(source: str) -> str:
    """The data's short name in run listings: ``synthetic-smear``, or the annotation file's
    folder (``malaria`` for ``malaria/Train.csv``), or the folder given."""
    path = Path(str(source))
    if path.suffix and path.parent.name:
        return path.parent.name
    return path.name or str(source)
