"""Why an image model decided, shown on its test images in the report (``eval.explain``)
and on new images with ``deepfit explain RUN images...``: Grad-CAM and integrated-gradients
maps over the images (``deepfit.evaluate.explain``), and whether the maps pass the
randomised-weights sanity check."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from deepfit.data.batches import images_at
from deepfit.data.images.inputs import ImageInputs
from deepfit.data.images.new_images import images_for_model
from deepfit.errors import ConfigError, DeepfitError, RunError
from deepfit.evaluate.explain import (METHODS, TITLES, Layer, attribution_maps, class_scores,
                                      find_layer, sanity_check)
from deepfit.evaluate.explain_plots import explanation_figure
from deepfit.evaluate.image_plots import _confidence, _short, most_confidently_wrong
from deepfit.result import Run, load
from deepfit.run import RunDir

REPORT_METHODS = ("gradcam", "integrated_gradients")
GROUP = 4        # images in each "most confident" group of the report
PER_CLASS = 12   # classes shown in the "one per class" group (the first ones)
SANITY_IMAGES = 4


@dataclass
class Explainer:
    """Attribution maps for uint8 images (n, C, H, W) of one model: the images are prepared
    as the model saw them at evaluation (size, scaling, normalisation; never augmented)."""

    model: nn.Module
    task: str
    outputs: str
    spec: Any                      # the run's ImageSpec
    layer_name: Optional[str] = None
    methods: Sequence[str] = REPORT_METHODS
    layer_key: str = "eval.explain_layer"  # how the user names the layer, for errors
    layer: Optional[Layer] = field(default=None, init=False)

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ConfigError(f"explain: unknown method {unknown[0]!r}; use "
                              f"{', '.join(METHODS)}")
        self.device = next(self.model.parameters(), torch.empty(0)).device
        self.inputs = ImageInputs(self.spec, self.device, seed=0)

    def network_input(self, images: torch.Tensor) -> torch.Tensor:
        return self.inputs(images.to(self.device), train=False).float()

    def maps(self, images: np.ndarray, targets: Optional[Sequence[int]],
             model: Optional[nn.Module] = None, methods: Optional[Sequence[str]] = None
             ) -> dict[str, np.ndarray]:
        """{method: (n, H, W)} for ``model`` (default: the explained one)."""
        model = model if model is not None else self.model
        model.eval()
        x = self.network_input(torch.from_numpy(np.ascontiguousarray(images)))
        if self.layer is None or model is not self.model:
            layer = find_layer(model, x, self.layer_name, self.layer_key)
            if model is self.model:
                self.layer = layer
        else:
            layer = self.layer
        forward = class_scores(model, self.task, self.outputs)
        black = self.network_input(torch.zeros_like(torch.from_numpy(images[:1])))
        out = {}
        for method in methods or self.methods:
            if method == "gradcam" and layer is None:
                continue  # said once by the caller: no layer with feature maps
            out[method] = attribution_maps(forward, x, targets, method, layer, baseline=black)
        return out

    def sanity(self, images: np.ndarray, targets: Optional[Sequence[int]],
               seed: int) -> dict[str, Any]:
        """The randomised-weights check per method (same images, same explained class)."""
        checks = {}
        for method in self.methods:
            if method == "gradcam" and self.layer is None:
                continue
            checks[method] = sanity_check(
                lambda m, method=method: self.maps(images, targets, m, [method])[method],
                self.model, seed=seed)
        return checks


def targets_of(task: str, scores: np.ndarray, y_pred: np.ndarray) -> Optional[list[int]]:
    """The class explained for each image: the predicted one (multi-label: the most likely
    label); None for regression (the predicted value is explained)."""
    if task == "regression":
        return None
    if task == "multilabel":
        return [int(i) for i in np.argmax(scores, axis=1)]
    return [int(i) for i in y_pred]


def report_groups(task: str, y_true: Optional[np.ndarray], y_pred: np.ndarray,
                  scores: np.ndarray, class_names: list[str]) -> dict[str, np.ndarray]:
    """The test rows explained in the report, by group: the most confident right
    predictions, the most confidently wrong, and one per class (the image of that class the
    model was surest of); regression: the smallest and largest errors."""
    if y_true is None:
        return {}
    if task == "regression":
        error = np.abs(y_true - y_pred)
        order = np.argsort(error, kind="stable")
        return {"Smallest errors": order[:GROUP], "Largest errors": order[::-1][:GROUP]}
    if task == "multilabel":
        return {"Test images": np.arange(min(2 * GROUP, len(y_true)))}
    conf = _confidence(scores, y_pred, task)
    right = np.flatnonzero(y_true == y_pred)
    groups = {"Right, most confident": right[np.argsort(-conf[right], kind="stable")[:GROUP]],
              "Wrong, most confident": most_confidently_wrong(y_true, y_pred, scores, task,
                                                              k=GROUP)}
    per_class = []
    for c in range(min(len(class_names), PER_CLASS)):
        rows = np.flatnonzero(y_true == c)
        if len(rows):
            own = scores[rows, c] if task == "multiclass" else (
                scores[rows].reshape(-1) if c == 1 else 1 - scores[rows].reshape(-1))
            per_class.append(int(rows[np.argmax(own)]))
    shown = "One per class" if len(class_names) <= PER_CLASS else (
        f"One per class (the first {PER_CLASS} of {len(class_names)})")
    groups[shown] = np.asarray(per_class, dtype=int)
    return {k: v for k, v in groups.items() if len(v)}


def _titles(task: str, rows: np.ndarray, y_true: Optional[np.ndarray], y_pred: np.ndarray,
            scores: np.ndarray, names: list[str]) -> tuple[list[str], Optional[list[bool]]]:
    if task == "regression":
        return ([f"{y_true[r]:.3g} → {y_pred[r]:.3g}" if y_true is not None else
                 f"→ {y_pred[r]:.3g}" for r in rows], None)
    if task == "multilabel":
        top = np.argmax(scores[rows], axis=1)
        return [f"{_short(names[t])} ({scores[r, t]:.2f})" for r, t in zip(rows, top)], None
    conf = _confidence(scores, y_pred, task)
    pred = [f"{_short(names[y_pred[r]])} ({conf[r]:.2f})" for r in rows]
    if y_true is None:
        return pred, None
    return ([f"{_short(names[y_true[r]])}\n→ {p}" for r, p in zip(rows, pred)],
            [bool(y_true[r] == y_pred[r]) for r in rows])


def record_explanations(model: nn.Module, schema: Any, cfg: Any, X: Any, test: Any,
                        rd: RunDir) -> Optional[dict[str, Any]]:
    """The report's explanations of test images (image runs with ``eval.plots`` and
    ``eval.explain``): a figure per group, the layer Grad-CAM read, and the sanity check.
    Never breaks a finished run: a failure is recorded as the reason they are missing."""
    if schema.image is None or not cfg.eval.plots or not cfg.eval.explain:
        return None
    explainer = Explainer(model, schema.task, cfg.model.outputs, schema.image,
                          cfg.eval.explain_layer)
    try:
        groups = report_groups(schema.task, test.y_true, test.y_pred, test.scores,
                               schema.class_names)
        if not groups:
            return {"plots": {}, "reason": "the test images have no labels"}
        plots, sanity = {}, None
        for i, (title, rows) in enumerate(groups.items()):
            images = images_at(X, rows)
            targets = targets_of(schema.task, test.scores[rows], test.y_pred[rows])
            maps = explainer.maps(images, targets)
            titles, correct = _titles(schema.task, rows, test.y_true, test.y_pred,
                                      test.scores, schema.class_names)
            path = rd.plots / f"explain_{i + 1}.png"
            explanation_figure(images, maps, titles, correct, path,
                               f"{title}: what drove the prediction")
            plots[title] = str(path.relative_to(rd.path))
            if sanity is None:
                n = min(SANITY_IMAGES, len(rows))
                sanity = explainer.sanity(images[:n], None if targets is None else targets[:n],
                                          seed=cfg.train.seed + 1)
    except DeepfitError as exc:
        return {"plots": {}, "reason": str(exc)}
    except Exception as exc:  # pictures never break a finished run: say why they are missing
        return {"plots": {}, "reason": "computing them failed ("
                f"{(str(exc).splitlines() or [type(exc).__name__])[0]})"}
    return {"plots": plots, "methods": list(explainer.methods),
            "layer": explainer.layer.name if explainer.layer else None,
            "layer_chosen": explainer.layer.chosen if explainer.layer else None,
            "sanity": sanity, "reason": None if explainer.layer else
            "Grad-CAM needs a layer with feature maps, and this model has none"}


def explain_images(run_dir: Any, sources: Sequence[str], out: Optional[Path] = None,
                   methods: Sequence[str] = REPORT_METHODS, layer: Optional[str] = None,
                   target: Optional[str] = None, device: Optional[str] = None,
                   stream: Any = None) -> Path:
    """``deepfit explain``: maps for new images (files, folders, anything ``deepfit
    predict`` reads) written as PNG figures of up to 8 images into a new folder (default:
    ``RUN/explanations/N``); its path."""
    stream = stream or sys.stdout
    run = load(run_dir)
    if run.schema.image is None:
        raise RunError(f"'{run.path}' was trained on a table; deepfit explain draws maps over "
                       "images (an image run's)")
    if device:
        run.model.to(device)
    explainer = Explainer(run.model, run.task, run.config.model.outputs, run.schema.image,
                          layer, methods, layer_key="--layer")
    target_code = _target_code(run, target)
    rd, folder = RunDir(run.path), None
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"--output {out} is a file; give a new or empty folder")
    if out is not None and Path(out).exists() and any(Path(out).iterdir()):
        raise ConfigError(f"--output {out} is not empty; give a new folder (nothing is "
                          "overwritten)")
    for source in sources:
        X, ids, codes = images_for_model(source, run.schema.image, run.schema.class_names,
                                         run.config.data.label_map, str(source),
                                         run.task == "multilabel")
        preds = run.image_predictions(X, ids, codes)
        images = X.numpy()
        for start in range(0, len(images), 8):
            rows = np.arange(start, min(start + 8, len(images)))
            targets = targets_of(run.task, preds.scores[rows], preds.y_pred[rows])
            if target_code is not None:
                targets = [target_code] * len(rows)
            maps = explainer.maps(images[rows], targets)
            if not maps:  # only Grad-CAM asked, and no layer has feature maps
                raise ConfigError("--method gradcam: the model has no layer with feature maps "
                                  "(an MLP on pixels); use integrated_gradients or saliency")
            titles, correct = _titles(run.task, rows, preds.y_true, preds.y_pred, preds.scores,
                                      run.schema.class_names)
            titles = [f"{_short(str(ids[r]), 18)}\n{t}" for r, t in zip(rows, titles)]
            name = Path(str(source)).stem or "images"
            folder = folder or _new_folder(out, rd)  # made once the first maps are computed
            path = _free_path(folder, name if len(images) <= 8 else f"{name}_{start // 8 + 1}")
            what = (f"class {run.schema.class_names[target_code]!r}" if target_code is not None
                    else "the predicted class" if run.task != "regression" else "the prediction")
            explanation_figure(images[rows], maps, titles, correct, path,
                               f"{', '.join(TITLES[m] for m in maps)}: what drove {what}")
            print(f"wrote {path}", file=stream)
    if explainer.layer is not None:
        print(f"Grad-CAM read layer '{explainer.layer.name}' ({explainer.layer.chosen})",
              file=stream)
    elif "gradcam" in methods:
        print("Grad-CAM left out: the model has no layer with feature maps", file=stream)
    return folder  # type: ignore[return-value]  (sources is never empty)


def _target_code(run: Run, target: Optional[str]) -> Optional[int]:
    if target is None:
        return None
    if run.task == "regression":
        raise ConfigError("--class: a regression model has no classes; its prediction is "
                          "explained")
    names = run.schema.class_names
    if target not in names:
        raise ConfigError(f"--class {target!r} is not a class of the model; its classes: "
                          f"{', '.join(names)}")
    return names.index(target)


def _free_path(folder: Path, stem: str) -> Path:
    """``folder/stem.png``, or ``stem-2.png``, ``stem-3.png``, ... when an earlier source of
    the same call took that name (two files called scan.png in different folders)."""
    path, k = folder / f"{stem}.png", 1
    while path.exists():
        k += 1
        path = folder / f"{stem}-{k}.png"
    return path


def _new_folder(out: Optional[Path], rd: RunDir) -> Path:
    """``out`` (checked empty before), else the next ``RUN/explanations/N``."""
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        return Path(out)
    rd.explanations.mkdir(exist_ok=True)
    while True:  # a numbered folder no other call has taken
        n = 1 + max((int(p.name) for p in rd.explanations.iterdir() if p.name.isdigit()),
                    default=0)
        try:
            (rd.explanations / str(n)).mkdir()
            return rd.explanations / str(n)
        except FileExistsError:
            continue
