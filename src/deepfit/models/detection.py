"""torchvision's object detectors, built for a detection run: ``build_detector``.

Every detector is built with ``weights=None`` and ``weights_backbone=None``: nothing is
downloaded. ``model.weights=PATH`` loads a local torchvision checkpoint (backbone and heads);
the class head is re-initialised when its class count differs from the data's.

Labels: the data's classes are 1..K in the model (``deepfit.data.detection.dataset``
shifts them), 0 is the background, so every detector gets ``num_classes = K + 1``. Faster
R-CNN needs the background class; RetinaNet, FCOS and SSD score each class on its own and
simply never see a box labelled 0, so one numbering serves all five.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from deepfit.errors import ConfigError, ModelError

DETECTORS = ("fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn",
             "retinanet_resnet50_fpn", "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large")
# The default: the ResNet-50 FPN Faster R-CNN. Its finest level has stride 4; the MobileNet
# variant's two levels both have stride 32 (4x4 maps for a 128-px smear), coarser than small
# objects such as parasites, and it was not brought to a useful mAP on the smears
# (docs/benchmarks.md, "Detection on synthetic smears")
DEFAULT_DETECTOR = "fasterrcnn_resnet50_fpn"
SMALL_SIDE = 320  # images up to this longer side get fewer proposals (build_detector)
# A Faster R-CNN's proposals on small images: torchvision's 2000 / 1000 are set for 800-px
# COCO photos; evaluating 1000 proposals cost 5x the CPU time of 100 per image, and these
# values reached mAP@0.5 0.97-1.0 on 128-px smears (docs/benchmarks.md)
SMALL_PROPOSALS = {"rpn_pre_nms_top_n_train": 600, "rpn_post_nms_top_n_train": 300,
                   "rpn_pre_nms_top_n_test": 300, "rpn_post_nms_top_n_test": 100,
                   "box_batch_size_per_image": 64}
_CLASS_HEADS = ("roi_heads.box_predictor.", "head.classification_head.")


def detector_name(name: str) -> str:
    """``model.name`` as a detector's name (``auto``: the default; ``tv:`` allowed)."""
    key = DEFAULT_DETECTOR if name == "auto" else name.removeprefix("tv:")
    if key not in DETECTORS:
        raise ConfigError(f"model.name='{name}' is not a detector; use one of "
                          f"{', '.join(DETECTORS)} (object detection, docs/detection.md)")
    return key


def anchor_sizes(box_sides: np.ndarray, n: int) -> tuple[float, ...]:
    """``n`` anchor sizes (pixels at the model's input) spread geometrically from the 2nd
    to the 98th percentile of the training boxes' sides (sqrt of the area), widened by a
    quarter each way: the anchors cover the objects of this data set instead of COCO's
    32-512 px, which on a 128-px smear would leave most cells without a matching anchor."""
    sides = np.asarray(box_sides, dtype=np.float64)
    low, high = np.percentile(sides, [2, 98]) if len(sides) else (32.0, 256.0)
    low, high = max(2.0, 0.8 * low), max(4.0, 1.25 * high)
    if n == 1:
        return (float(math.sqrt(low * high)),)
    return tuple(float(v) for v in np.geomspace(low, high, n))


def detector_anchors(model: nn.Module) -> Optional[list[list[float]]]:
    """The anchor sizes per level of ``model`` (saved with a run: they are not weights)."""
    holder = model.rpn if hasattr(model, "rpn") else model
    sizes = getattr(getattr(holder, "anchor_generator", None), "sizes", None)
    return [list(map(float, level)) for level in sizes] if sizes is not None else None


def _with_anchors(model: nn.Module, name: str, sides: np.ndarray,
                  given: Optional[Sequence[Sequence[float]]] = None) -> Optional[str]:
    """Replace the AnchorGenerator's sizes by ``anchor_sizes`` (same anchors per location,
    so the heads keep their shape); returns a sentence for the report, or None."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    holder = model.rpn if hasattr(model, "rpn") else model
    old = getattr(holder, "anchor_generator", None)
    if not isinstance(old, AnchorGenerator) or name.startswith("fcos"):
        return None  # FCOS is anchor-free (one point per location); SSD has default boxes
    levels, per_level = len(old.sizes), len(old.sizes[0])
    if given is not None:  # a saved run's anchors
        grouped = tuple(tuple(level) for level in given)
    elif len(set(old.sizes)) == 1:  # the same sizes on every level (the mobilenet FPN's)
        grouped = (anchor_sizes(sides, per_level),) * levels
    else:  # small anchors on the fine levels, large on the coarse ones, as in the FPN paper
        sizes = anchor_sizes(sides, levels * per_level)
        grouped = tuple(tuple(sizes[i * per_level:(i + 1) * per_level]) for i in range(levels))
    holder.anchor_generator = AnchorGenerator(grouped, old.aspect_ratios)
    flat = sorted({round(s) for g in grouped for s in g})
    return (f"anchor sizes {flat} px from the training boxes' sides (2nd-98th percentile, "
            "widened by a quarter), aspect ratios as torchvision's")


def build_detector(name: str, n_classes: int, image_size: Sequence[int],
                   box_sides: np.ndarray, weights: Optional[str] = None,
                   kwargs: Optional[dict] = None,
                   anchors: Optional[Sequence[Sequence[float]]] = None
                   ) -> tuple[nn.Module, list[str]]:
    """The detector ``name`` for ``n_classes`` classes at ``image_size`` (H, W), and the
    sentences the report shows about it (anchors, weights).

    ``box_sides``: the training boxes' sides (sqrt of the area) at the model's input size;
    ``anchors``: a saved run's anchor sizes per level instead (``detector_anchors``).
    """
    import torchvision.models.detection as tvd

    key = detector_name(name)
    options: dict[str, Any] = dict(kwargs or {})
    if not key.startswith("ssdlite"):  # SSD-lite works at its own 320x320
        options.setdefault("min_size", int(min(image_size)))
        options.setdefault("max_size", int(max(image_size)))
    fewer = key.startswith("fasterrcnn") and max(image_size) <= SMALL_SIDE
    if fewer:
        for option, value in SMALL_PROPOSALS.items():
            options.setdefault(option, value)
    if key.startswith("fasterrcnn"):  # 128 sampled regions per image, not COCO's 512: a
        # smear holds tens of objects, and the box head's cost grows with the regions
        options.setdefault("box_batch_size_per_image", 128)
    try:
        model = getattr(tvd, key)(weights=None, weights_backbone=None,
                                  num_classes=n_classes + 1, **options)
    except TypeError as exc:
        raise ConfigError(f"model.kwargs do not fit {key}: {exc}") from None
    notes = [f"{key} (torchvision), {n_classes} classes + background"
             + (f", {options['box_batch_size_per_image']} sampled regions per image"
                if "box_batch_size_per_image" in options else "")]
    if fewer:
        notes.append(f"proposals for images up to {SMALL_SIDE} px: "
                     f"{options['rpn_pre_nms_top_n_train']} / "
                     f"{options['rpn_post_nms_top_n_train']} before / after NMS in training, "
                     f"{options['rpn_pre_nms_top_n_test']} / "
                     f"{options['rpn_post_nms_top_n_test']} in evaluation")
    said = _with_anchors(model, key, box_sides, anchors)
    if said:
        notes.append(said)
    if weights:
        notes.append(load_detector_weights(model, weights))
    else:
        notes.append("trained from scratch (no pretrained weights)")
    return model, notes


def load_detector_weights(model: nn.Module, path: str) -> str:
    """Load a local torchvision detector checkpoint into ``model``; tensors of the class
    head whose shape differs (another class count) keep their fresh initialisation."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"model.weights='{path}' does not exist; give a local torchvision "
                         "detector checkpoint (.pth)") from None
    except Exception as exc:
        raise ModelError(f"model.weights='{path}' cannot be read as a PyTorch state dict: "
                         f"{str(exc).splitlines()[0]}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a deepfit or torchvision training checkpoint
    own = model.state_dict()
    fresh = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    other = [k for k in fresh if not k.startswith(_CLASS_HEADS)]
    if other:
        raise ModelError(f"model.weights='{path}' does not fit the detector: '{other[0]}' has "
                         f"shape {tuple(state[other[0]].shape)}, the model "
                         f"{tuple(own[other[0]].shape)}; is it the same model.name?")
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        first = (f"'{missing[0]}' is missing" if missing else f"'{unexpected[0]}' is unknown")
        raise ModelError(f"model.weights='{path}' does not fit the detector: {first} "
                         f"({len(missing)} missing, {len(unexpected)} unknown); is it the "
                         "same model.name?")
    model.load_state_dict({k: v for k, v in state.items() if k not in fresh}, strict=False)
    if fresh:
        return (f"weights from '{path}'; the class head ({len(fresh)} tensors) re-initialised "
                "for this data's classes")
    return f"weights from '{path}' (backbone and heads)"
