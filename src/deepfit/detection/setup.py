"""A detection run's config resolved and checked, its data loaded and split, its detector
built: ``prepare``, the detection counterpart of ``deepfit.assemble``."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepfit.config import RunConfig
from deepfit.config_scope import RunFacts, check_applies
from deepfit.data.detection import (DetectionDataset, DetectionSet, eval_transform,
                                    split_images, train_transform)
from deepfit.data.detection.source import load_detection_source
from deepfit.data.images.decode import letterbox
from deepfit.data.source_kind import source_kind
from deepfit.errors import ConfigError, DataError
from deepfit.models.detection import build_detector, detector_name
from deepfit.train.device import resolve_device, seed_everything
from deepfit.train.distributed import make_strategy
from deepfit.train.history import check_monitor
from deepfit.train.strategy import SingleDevice

MAX_SIDE = 800  # the default model size keeps the images' shape, the longer side at most this
CPU_BATCH, GPU_BATCH = 4, 8  # train.batch_size=auto: images per step
EVAL_BATCH = 8
# train.lr and train.grad_clip left automatic: a detector trained from scratch with AdamW at
# the tables' 1e-3 and no clipping diverged (the ResNet-50 Faster R-CNN in epoch 2, RetinaNet
# in epoch 3); 3e-4 with the gradient norm clipped at 10 trained smoothly to mAP@0.5 0.97-1.0
# on synthetic smears (docs/benchmarks.md, "Detection on synthetic smears")
DETECTION_LR, DETECTION_GRAD_CLIP = 3e-4, 10.0


@dataclass
class DetectionSetup:
    cfg: RunConfig
    facts: RunFacts
    strategy: SingleDevice
    data: DetectionSet
    parts: dict[str, np.ndarray]
    size: tuple[int, int]
    model: nn.Module
    model_notes: list[str]
    train: DetectionDataset
    val: DetectionDataset
    test: DetectionDataset
    augment: list[str]
    data_seed: int


def resolved(cfg: RunConfig, device: torch.device) -> RunConfig:
    """Every ``auto`` decided for a detection run on ``device``."""
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    given = cfg.train
    # A detector is judged by mAP: the monitor is set before the automatic values, which
    # depend on it (train.min_delta: any gain of a metric counts).
    monitor = "val_map50" if given.monitor == "val_loss" else given.monitor
    t = dataclasses.replace(
        given, lr=DETECTION_LR if given.lr is None else given.lr,
        grad_clip=DETECTION_GRAD_CLIP if given.grad_clip is None else given.grad_clip,
        monitor=monitor,
    ).resolved("image", device.type, bf16)
    batch = cfg.train.batch_size or (GPU_BATCH if device.type == "cuda" else CPU_BATCH)
    train = dataclasses.replace(t, batch_size=batch, channels_last=False, diagnostics=False)
    ev = dataclasses.replace(cfg.eval, batch_size=cfg.eval.batch_size or EVAL_BATCH)
    return dataclasses.replace(cfg, train=train, eval=ev,
                               data=dataclasses.replace(cfg.data, task="detection"))


def default_size(data: DetectionSet) -> tuple[int, int]:
    """The most common image size, scaled so that its longer side is at most MAX_SIDE."""
    h, w = Counter(im.size for im in data.images).most_common(1)[0][0]
    scale = min(1.0, MAX_SIDE / max(h, w))
    return max(32, round(h * scale)), max(32, round(w * scale))


def _checks(given: RunConfig, cfg: RunConfig, facts: RunFacts, device: torch.device) -> None:
    accepted = resolved(RunConfig(), device).to_dict()
    check_applies(given, facts, cfg, accepted)
    if given.data.task not in ("auto", "detection"):
        raise ConfigError(f"data.task={given.data.task} does not fit boxes per image; the task "
                          f"of '{given.data.source}' is detection (leave data.task=auto)")
    if tuple(cfg.data.augment) not in (("auto",), ("standard",), ("none",)):
        raise ConfigError(f"data.augment={list(cfg.data.augment)} is not a detection "
                          "augmentation; use auto (= standard: flips, crops, colour, blur) "
                          "or none")
    if cfg.train.schedule == "plateau":
        raise ConfigError("train.schedule=plateau follows the validation loss, which a "
                          "detection run does not have; use onecycle, cosine, step or "
                          "constant")
    if len(cfg.data.image_size) > 2:
        raise ConfigError(f"data.image_size={list(cfg.data.image_size)} must be [S] or [H, W]")
    check_monitor(cfg.train.monitor, "detection")


def prepare(cfg: RunConfig) -> DetectionSetup:
    """Resolve, check, load, split and build (see the module docstring)."""
    seed_everything(cfg.train.seed)
    data_seed = cfg.data.seed if cfg.data.seed is not None else cfg.train.seed
    strategy = make_strategy(resolve_device(cfg.train.device))
    if strategy.world_size > 1:
        raise ConfigError("detection trains in one process; run it without torchrun")
    device = strategy.device
    model_name = detector_name(cfg.model.name)
    facts = RunFacts(source=source_kind(cfg.data), model=model_name, family="detector",
                     task="detection", device=device.type)
    given, cfg = cfg, resolved(cfg, device)
    _checks(given, cfg, facts, device)
    data = load_detection_source(cfg.data, data_seed)
    parts = split_images(data, cfg.data.val_size, cfg.data.test_size, data_seed)
    size = ((cfg.data.image_size[0], cfg.data.image_size[-1]) if cfg.data.image_size
            else default_size(data))
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, image_size=size),
                              model=dataclasses.replace(cfg.model, name=model_name))
    sides = []
    for i in parts["train"]:
        im = data.images[i]
        _, _, h, _ = letterbox(im.size, size)
        scale = h / im.size[0]
        wh = im.boxes[:, 2:] - im.boxes[:, :2]
        sides += list(np.sqrt(wh[:, 0] * wh[:, 1]) * scale)
    if not sides:
        raise DataError(f"the training split of {data.source} has no boxes (every image is "
                        "NEG); a detector needs objects to learn from")
    model, notes = build_detector(model_name, len(data.class_names), size, np.array(sides),
                                  cfg.model.weights, dict(cfg.model.kwargs))
    augment = tuple(cfg.data.augment) != ("none",)
    transform = train_transform(size) if augment else eval_transform(size)
    plain = eval_transform(size)
    return DetectionSetup(cfg, facts, strategy, data, parts, size, model, notes,
                          DetectionDataset(data, transform, parts["train"], seed=cfg.train.seed),
                          DetectionDataset(data, plain, parts["val"]),
                          DetectionDataset(data, plain, parts["test"]),
                          transform.describe(), data_seed)


def split_truths(setup: DetectionSetup, split: str) -> list:
    """The true boxes of a split's images (source pixels, 0-based labels)."""
    return [setup.data.images[i] for i in setup.parts[split]]

