"""From stored uint8 images to what the network sees, one whole batch at a time on the
training device: scale to [0, 1], augment (training batches only), normalise per channel,
and lay out channels-last when asked. ``ImageSpec`` holds the settings as plain values (it
is saved in the run's schema); ``ImageInputs`` applies them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Optional

import numpy as np
import torch

from deepfit.data.images.augment import Augmenter
from deepfit.data.images.imageset import Aspects, ImageFiles

# Normalisation statistics of a streamed set come from this many training images.
STATS_SAMPLE = 4096


@dataclass
class ImageSpec:
    """What every image given to the model must be: its size, channels, and statistics.

    ``resize``: how images of another shape are brought to ``size``, "stretch" or "pad"
    (letterbox); runs saved before it existed stretched.
    """

    size: tuple[int, int]
    channels: int
    mean: list[float]
    std: list[float]
    augment: list[str] = field(default_factory=list)
    channel_mode: str = "auto"
    resized: bool = False
    resize: str = "stretch"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["size"] = list(self.size)
        return out

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ImageSpec:
        return cls(**{**state, "size": tuple(state["size"])})

    def describe(self, aspects: Optional[Aspects] = None) -> list[str]:
        """Lines for the report's preprocessing section; ``aspects`` (the stored images'
        shapes) says what resizing did to them."""
        mean = ", ".join(f"{m:.3f}" for m in self.mean)
        std = ", ".join(f"{s:.3f}" for s in self.std)
        lines = [f"images {self._sizing(aspects)}, "
                 f"{'1 channel (grayscale)' if self.channels == 1 else '3 channels (RGB)'}",
                 f"scaled to [0, 1], then normalised per channel: mean ({mean}), std ({std})"]
        if self.augment:
            ops = Augmenter(self.augment, self.channels, self.size).describe()
            lines.append("augmentation of training batches only, on the training device: "
                         + "; ".join(ops))
        else:
            lines.append("no augmentation")
        return lines

    def _sizing(self, aspects: Optional[Aspects]) -> str:
        """"kept at 28×28", "resized to 64×64 by stretching (aspect ratio not kept: ...)",
        "letterboxed to 64×64 (aspect ratio kept, padded with black)"."""
        size = f"{self.size[0]}×{self.size[1]}"
        if not self.resized:
            return f"kept at {size}"
        pad = self.resize == "pad"
        if aspects is None or not aspects.images:
            return (f"letterboxed to {size} (aspect ratio kept, padded with black)" if pad
                    else f"resized to {size} by stretching")
        shape = "square" if abs(aspects.target - 1) < 1e-9 else aspects_ratio(aspects.target)
        counted = (f"{aspects.other:,} of {aspects.images:,}"
                   + (" sampled" if aspects.sampled else ""))
        if not aspects.other:
            return (f"resized to {size} (aspect ratio kept: every image"
                    f"{' sampled' if aspects.sampled else ''} was {shape} already)")
        if pad:
            return (f"letterboxed to {size} (aspect ratio kept, padded with black: "
                    f"{counted} images were not {shape})")
        extreme = (aspects.hi if aspects.hi / aspects.target >= aspects.target / aspects.lo
                   else aspects.lo)
        return (f"resized to {size} by stretching (aspect ratio not kept: {counted} images "
                f"were not {shape}, up to {aspects_ratio(extreme)})")


def aspects_ratio(ratio: float) -> str:
    """A width / height ratio as the report writes it: "2.1:1" (wide), "1:1.5" (tall)."""
    wide = max(ratio, 1 / ratio)
    text = f"{wide:.{2 if wide < 1.1 else 1}f}".rstrip("0").rstrip(".")
    return f"{text}:1" if ratio >= 1 else f"1:{text}"


class ImageInputs:
    """Applies an ``ImageSpec`` to uint8 batches; owns the augmentation random generator.

    Example:
        >>> spec = ImageSpec((8, 8), 1, [0.5], [0.25], ["crop:1"])
        >>> inputs = ImageInputs(spec, torch.device("cpu"), seed=0)
        >>> inputs(torch.full((2, 1, 8, 8), 255, dtype=torch.uint8), train=False).max().item()
        2.0
    """

    def __init__(self, spec: ImageSpec, device: torch.device, seed: int,
                 channels_last: bool = False) -> None:
        self.spec, self.device, self.channels_last = spec, device, channels_last
        self.augmenter = (Augmenter(spec.augment, spec.channels, spec.size)
                          if spec.augment else None)
        shape = (1, spec.channels, 1, 1)
        self.mean = torch.tensor(spec.mean, dtype=torch.float32, device=device).view(shape)
        self.inv_std = 1.0 / torch.tensor(spec.std, dtype=torch.float32,
                                          device=device).view(shape)
        # Its own generator, on the device: augmentation draws never disturb the data order
        # or dropout, and a checkpoint can save and restore exactly this stream.
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def __call__(self, xb: torch.Tensor, train: bool) -> torch.Tensor:
        x = xb.to(self.device, non_blocking=True).float().div_(255.0)  # (B, C, H, W) in [0, 1]
        if train and self.augmenter is not None:
            x = self.augmenter(x, self.generator)
        x = (x - self.mean) * self.inv_std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def channel_stats(images: torch.Tensor | ImageFiles, rows: np.ndarray,
                  batches: Optional[Iterable[torch.Tensor]] = None) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (in [0, 1] units) of the training images ``rows``.

    In-memory images are summed in float64 chunks (exact, no float copy of the whole set);
    a streamed set uses the given ``batches`` of up to ``STATS_SAMPLE`` training images.
    """
    total = sq = None
    count = 0
    if isinstance(images, torch.Tensor):
        chunks = (images[torch.as_tensor(rows[i:i + 8192])]
                  for i in range(0, len(rows), 8192))
    else:
        chunks = batches or ()
    for chunk in chunks:
        x = chunk.to(torch.float64).div_(255.0)  # (b, C, H, W)
        s, s2 = x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3))
        total = s if total is None else total + s
        sq = s2 if sq is None else sq + s2
        count += x.shape[0] * x.shape[2] * x.shape[3]
    if not count:
        raise ValueError("no training images to compute normalisation statistics from")
    mean = total / count
    std = (sq / count - mean * mean).clamp_min(0).sqrt()
    # A constant channel (e.g. an all-black border set) must not divide by zero.
    std = torch.where(std < 1e-3, torch.ones_like(std), std)
    return [float(m) for m in mean], [float(s) for s in std]
