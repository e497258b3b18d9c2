"""Box-aware image transforms for detection, on ``torchvision.transforms.v2`` and its
``tv_tensors``: the geometry moves the boxes with the pixels.

* ``eval_transform(size)``: letterbox to the model's (H, W), the aspect ratio kept and the
  rest filled with black, as ``deepfit.data.images.decode.letterbox`` places it for
  classification; ``to_source_boxes`` maps predicted boxes back to the original image.
* ``train_transform(size, ...)``: horizontal and vertical flips (a smear has no up or
  left), scale-and-crop (half the time a random crop of ``min_scale``-100 % of the area and
  aspect 3/4-4/3, resized to the model size; else the letterbox), colour jitter and a
  Gaussian blur half the time.

After the geometry, boxes are clipped to the image, and a box keeping less than
``min_visible`` of its area inside (or less than 1 px of width or height) is dropped with
its label. Random draws come from torch's global generator, as torchvision's transforms
do: a DataLoader seeds it in each worker from its own ``generator``, so a seeded loader
repeats its augmentations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from deepfit.data.images.decode import letterbox


class Letterbox(v2.Transform):
    """Resize to fit inside ``size`` (H, W) with the aspect ratio kept, centred, black
    around (boxes follow)."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        image = next(x for x in flat_inputs if isinstance(x, (tv_tensors.Image, torch.Tensor))
                     and not isinstance(x, tv_tensors.BoundingBoxes))
        top, left, height, width = letterbox(tuple(image.shape[-2:]), self.size)
        return {"top": top, "left": left, "height": height, "width": width}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        out = TF.resize(inpt, [params["height"], params["width"]], antialias=True)
        bottom = self.size[0] - params["top"] - params["height"]
        right = self.size[1] - params["left"] - params["width"]
        return TF.pad(out, [params["left"], params["top"], right, bottom], fill=0)


def to_source_boxes(boxes: "np.ndarray | torch.Tensor", source: tuple[int, int],
                    size: tuple[int, int]) -> np.ndarray:
    """Boxes (N, 4) xyxy predicted on the letterboxed ``size`` image mapped back to the
    original image of ``source`` (H, W) pixels, clipped to it: what the metrics compare
    with the ground truth."""
    top, left, height, width = letterbox(tuple(source), tuple(size))
    xyxy = np.asarray(boxes.detach().cpu() if isinstance(boxes, torch.Tensor) else boxes,
                      dtype=np.float64).reshape(-1, 4)
    scale = np.array([source[1] / width, source[0] / height] * 2)
    shift = np.array([left, top] * 2)
    out = (xyxy - shift) * scale
    return np.clip(out, 0, [source[1], source[0]] * 2).astype(np.float32)


def clip_and_drop(boxes: torch.Tensor, labels: torch.Tensor, size: tuple[int, int],
                  min_visible: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes clipped to an image of ``size`` (H, W), without those keeping less than
    ``min_visible`` of their area (or under 1 px wide or high), and their labels."""
    boxes = boxes.as_subclass(torch.Tensor).float().reshape(-1, 4)
    h, w = size
    clipped = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                           boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], dim=1)
    sides = clipped[:, 2:] - clipped[:, :2]
    area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(dim=1)
    visible = sides.clamp(min=0).prod(dim=1) / area.clamp(min=1e-12)
    keep = (sides >= 1).all(dim=1) & (visible >= min_visible)
    return clipped[keep], labels[keep]


class DetectionTransform:
    """An image and its boxes through the geometry, clip-and-drop, then the photometry.

    Called with a uint8 (C, H, W) tensor, boxes (N, 4) xyxy in its pixels and labels (N,);
    returns the float image in [0, 1] of ``size``, float32 boxes and int64 labels (0-based,
    as given: the shift for torchvision's models is the dataset's).
    """

    def __init__(self, size: tuple[int, int], geometry: list, photometry: list,
                 min_visible: float = 0.5, describe: list[str] | None = None) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.geometry = v2.Compose(geometry) if geometry else v2.Identity()
        self.photometry = v2.Compose(photometry) if photometry else v2.Identity()
        self.min_visible = float(min_visible)
        self.lines = list(describe or [])

    def __call__(self, image: torch.Tensor, boxes: "np.ndarray | torch.Tensor",
                 labels: "np.ndarray | torch.Tensor"
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        canvas = tuple(image.shape[-2:])
        bb = tv_tensors.BoundingBoxes(torch.tensor(np.asarray(boxes), dtype=torch.float32)
                                      .reshape(-1, 4), format="XYXY", canvas_size=canvas,
                                      clamping_mode=None)
        img, bb = self.geometry(tv_tensors.Image(image), bb)
        out_boxes, out_labels = clip_and_drop(
            bb, torch.tensor(np.asarray(labels), dtype=torch.int64).reshape(-1),
            tuple(img.shape[-2:]), self.min_visible)
        img = self.photometry(TF.to_dtype(img, torch.float32, scale=True))
        return img.as_subclass(torch.Tensor).clamp(0, 1), out_boxes, out_labels

    def describe(self) -> list[str]:
        """One line per step, for the report."""
        return list(self.lines)


def eval_transform(size: tuple[int, int]) -> DetectionTransform:
    """Letterbox to ``size`` (H, W) and nothing random: validation, test and prediction."""
    return DetectionTransform(size, [Letterbox(size)], [], min_visible=0.0,
                              describe=[f"letterbox to {size[1]}x{size[0]} (aspect kept, "
                                        "black around)"])


def train_transform(size: tuple[int, int], hflip: float = 0.5, vflip: float = 0.5,
                    min_scale: float = 0.3, jitter: float = 0.2, blur: float = 1.0,
                    min_visible: float = 0.5) -> DetectionTransform:
    """The random training transform (see the module docstring); a parameter of 0 (for
    ``min_scale``: 1) leaves its step out."""
    size = (int(size[0]), int(size[1]))
    geometry: list = []
    lines = []
    if hflip:
        geometry.append(v2.RandomHorizontalFlip(hflip))
        lines.append(f"horizontal flip (p={hflip:g})")
    if vflip:
        geometry.append(v2.RandomVerticalFlip(vflip))
        lines.append(f"vertical flip (p={vflip:g})")
    if min_scale < 1:
        geometry.append(v2.RandomChoice([Letterbox(size), v2.RandomResizedCrop(
            size, scale=(min_scale, 1.0), ratio=(3 / 4, 4 / 3), antialias=True)]))
        lines.append(f"half the time a random crop ({min_scale:.0%}-100% of the area, aspect "
                     f"3/4-4/3) resized to {size[1]}x{size[0]}, else the letterbox")
    else:
        geometry.append(Letterbox(size))
        lines.append(f"letterbox to {size[1]}x{size[0]}")
    lines.append(f"boxes clipped; dropped when less than {min_visible:.0%} stays in the image")
    photometry: list = []
    if jitter:
        photometry.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
        lines.append(f"colour jitter: brightness, contrast, saturation x[{1 - jitter:g}, "
                     f"{1 + jitter:g}]")
    if blur:
        kernel = 2 * int(np.ceil(3 * blur)) + 1
        photometry.append(v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, blur))], p=0.5))
        lines.append(f"Gaussian blur (p=0.5, sigma 0.1-{blur:g})")
    return DetectionTransform(size, geometry, photometry, min_visible, lines)
