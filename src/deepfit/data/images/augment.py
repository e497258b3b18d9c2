"""Batched, device-side augmentation of image training batches.

The training set lives on the device as one uint8 tensor, so whole batches are augmented
there: each op draws per-sample parameters as (B,) tensors from the caller's
``torch.Generator`` (never the global RNG) and applies them with a few batched kernels.

Ops run in one fixed order, whatever the spec's order: flips, pad-and-crop, the affine warp
(rotate and resized_crop fused in one ``grid_sample``), colour jitter, blur, noise, erasing:
geometry before photometry (as torchvision recipes do), erasing last so the patch stays clean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from deepfit.errors import ConfigError, did_you_mean, one_of


@dataclass(frozen=True)
class _OpSpec:
    """How one op's parameter is named, bounded and defaulted."""

    param: str
    low: float
    high: float
    default: Optional[float]  # None: depends on the image size (crop)
    low_open: bool = False    # the low bound itself is not allowed
    integer: bool = False


# Insertion order is the execution order (see the module docstring).
_OPS: dict[str, _OpSpec] = {
    "hflip": _OpSpec("P", 0.0, 1.0, 0.5),
    "vflip": _OpSpec("P", 0.0, 1.0, 0.5),
    "crop": _OpSpec("PAD", 0.0, math.inf, None, integer=True),
    "rotate": _OpSpec("DEG", 0.0, 180.0, 15.0),
    "resized_crop": _OpSpec("MINSCALE", 0.0, 1.0, 0.35, low_open=True),
    "jitter": _OpSpec("S", 0.0, 1.0, 0.3),
    "blur": _OpSpec("SIGMA", 0.1, 10.0, 1.0),
    "noise": _OpSpec("STD", 0.0, 1.0, 0.05),
    "erase": _OpSpec("P", 0.0, 1.0, 0.25),
}

# Presets for 1-channel images. Grayscale sets are mostly digits, letters and scans, where a
# mirrored '2' or 'R' is no longer the same class, so no preset flips them; small shifts and
# rotations are safe. Colour jitter waits until "strong": such images are usually already
# normalised in brightness, and gray has no saturation to jitter.
PRESETS: dict[str, list[str]] = {
    "none": [],
    "light": ["crop"],
    "standard": ["crop", "rotate:10"],
    "strong": ["crop", "rotate:10", "jitter:0.4", "blur:1.0", "noise:0.03", "erase:0.25"],
}

# Presets for 3-channel images: natural photos, where a horizontal mirror keeps the label
# (the classic CIFAR/ImageNet recipe) and lighting varies, so flips and jitter join earlier.
COLOUR_PRESETS: dict[str, list[str]] = {
    "none": [],
    "light": ["hflip", "crop"],
    "standard": ["hflip", "crop", "rotate:10", "jitter:0.2"],
    "strong": ["hflip", "crop", "rotate:10", "jitter:0.4", "blur:1.0", "noise:0.03",
               "erase:0.25"],
}

_PRESET_NAMES = ("auto", *PRESETS)  # "auto" is "light": safe for any data set


@dataclass(frozen=True)
class AugmentOp:
    """One parsed augmentation op: its name and its resolved parameter."""

    name: str
    param: float

    def __str__(self) -> str:
        return f"{self.name}:{self.param:g}"


def _bad(message: str) -> ConfigError:
    return ConfigError(f"data.augment: {message}")


def _parse_op(text: str, image_size: tuple[int, int]) -> AugmentOp:
    """Turn ``name`` or ``name:param`` into an ``AugmentOp`` with a checked parameter."""
    name, sep, raw = text.partition(":")
    name, raw = name.strip(), raw.strip()
    if name not in _OPS:
        raise _bad(f"unknown preset or op '{name}'{did_you_mean(name, (*_PRESET_NAMES, *_OPS))}; "
                   f"use a preset ({one_of(_PRESET_NAMES)}) or a list of ops ({one_of(_OPS)}), "
                   f"each optionally 'op:PARAM'")
    spec = _OPS[name]
    low, high, default = spec.low, spec.high, spec.default
    if name == "crop":  # reflection cannot reach past the opposite edge; default ~ size / 8
        high = min(image_size) - 1
        default = min(max(1, round(min(image_size) / 8)), high)
    if not sep:
        return AugmentOp(name, float(default))
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    ok = math.isfinite(value) and (value > low if spec.low_open else value >= low) \
        and value <= high and (not spec.integer or value == int(value))
    if not ok:
        kind = "a whole number of pixels" if spec.integer else "a number"
        bounds = f"({low:g}, {high:g}]" if spec.low_open else f"[{low:g}, {high:g}]"
        raise _bad(f"op '{text}': {spec.param} must be {kind} in {bounds}, got '{raw}'")
    return AugmentOp(name, value)


def _resolve(spec: "str | Sequence[str]", channels: int,
             image_size: tuple[int, int]) -> list[AugmentOp]:
    if isinstance(spec, str):
        key = spec.strip().lower()
        items = [key] if key in _PRESET_NAMES else [s for s in key.split(",") if s.strip()]
    elif isinstance(spec, Sequence):
        bad = [s for s in spec if not isinstance(s, str)]
        if bad:
            raise _bad(f"ops must be strings like 'rotate:10', got {bad[0]!r}")
        # An item may itself be comma-separated: the command line's data.augment=hflip,crop
        # arrives as the one-item list ['hflip,crop'].
        items = [part.strip().lower() for s in spec for part in s.split(",") if part.strip()]
    else:
        raise _bad(f"expected a preset name or a list of ops, got {type(spec).__name__}")
    if len(items) == 1 and items[0] in _PRESET_NAMES:
        name = "light" if items[0] == "auto" else items[0]
        items = (COLOUR_PRESETS if channels == 3 else PRESETS)[name]
    ops: dict[str, AugmentOp] = {}
    for item in items:
        if item in _PRESET_NAMES:
            raise _bad(f"preset '{item}' cannot be mixed with ops; give it alone, or list ops "
                       f"from {one_of(_OPS)}")
        op = _parse_op(item, image_size)
        if op.name in ops:
            raise _bad(f"op '{op.name}' is given twice ('{ops[op.name]}', '{op}'); keep one")
        ops[op.name] = op
    return [ops[name] for name in _OPS if name in ops]


def resolve_augment(spec: "str | Sequence[str]", channels: int,
                    image_size: tuple[int, int]) -> list[str]:
    """Resolve a preset (``"auto"`` is ``"light"``) or op list into checked op strings.

    Args:
        spec: a preset name (``auto``, ``none``, ``light``, ``standard``, ``strong``), a
            comma-separated string of ops, or a list of ops ``"name"`` / ``"name:PARAM"``.
        channels: image channels; 3-channel images get the colour presets.
        image_size: ``(H, W)``; sets the default and the maximum ``crop`` padding.

    Returns:
        ``"name:PARAM"`` strings with every default filled in, in execution order.

    Raises:
        ConfigError: an unknown preset or op, a bad parameter, or an op given twice.
    """
    return [str(op) for op in _resolve(spec, channels, tuple(image_size))]


def _rand(generator: torch.Generator, like: torch.Tensor, *shape: int) -> torch.Tensor:
    """Uniform [0, 1) draws from ``generator`` on ``like``'s device and dtype."""
    return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luminance (B, 1, H, W): ITU-R 601 weights for RGB (as torchvision), the mean otherwise."""
    if x.shape[1] == 3:
        return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    return x.mean(dim=1, keepdim=True)


def _reflect_index(i: torch.Tensor, n: int) -> torch.Tensor:
    """Mirror indices in [-(n-1), 2(n-1)] into [0, n), edge not repeated (like F.pad reflect)."""
    i = i.abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


def _flip(x: torch.Tensor, g: torch.Generator, p: float, dim: int) -> torch.Tensor:
    """Flip each sample along ``dim`` with probability ``p``: exact pixels, no resampling."""
    hit = _rand(g, x, x.shape[0]) < p  # (B,); rand < 1 always, so p=1 flips every sample
    return torch.where(hit.view(-1, 1, 1, 1), x.flip(dim), x)


def _pad_crop(x: torch.Tensor, g: torch.Generator, pad: float) -> torch.Tensor:
    """Reflect-pad by ``pad`` and crop back at a random offset, as one exact index gather."""
    B, C, H, W = x.shape
    p = int(pad)
    # Offsets in [0, 2p] per sample; the clamp catches float rounding of rand * (2p+1) upward.
    off = (_rand(g, x, 2, B) * (2 * p + 1)).long().clamp_(max=2 * p)  # (2, B)
    rows = _reflect_index(torch.arange(H, device=x.device) + off[0, :, None] - p, H)  # (B, H)
    cols = _reflect_index(torch.arange(W, device=x.device) + off[1, :, None] - p, W)  # (B, W)
    idx = (rows[:, :, None] * W + cols[:, None, :]).view(B, 1, H * W)  # flat source pixels
    return x.reshape(B, C, H * W).gather(2, idx.expand(B, C, H * W)).view(B, C, H, W)


def _affine(x: torch.Tensor, g: torch.Generator, warp: tuple[float, float]) -> torch.Tensor:
    """Rotate (±degrees) and resized-crop (area >= min_scale) in one ``grid_sample``."""
    B, C, H, W = x.shape
    degrees, min_scale = warp
    u = _rand(g, x, 5, B)  # (5, B): angle, area, aspect, centre x, centre y
    angle = (2 * u[0] - 1) * math.radians(degrees)
    area = min_scale + (1 - min_scale) * u[1]  # fraction of the image area
    # Pixel aspect w/h is log-uniform in [3/4, 4/3], narrowed per sample so the box fits in the
    # image (torchvision redraws; this needs no loop). Area 1 on a square image: the identity.
    img_aspect = W / H
    lo = torch.log(area * img_aspect).clamp(min=math.log(3 / 4))
    hi = torch.log(img_aspect / area).clamp(max=math.log(4 / 3))
    hi = torch.maximum(hi, lo)  # an empty range (very elongated images): take its low end
    aspect = torch.exp(lo + (hi - lo) * u[2])
    fw = torch.sqrt(area * aspect / img_aspect).clamp(max=1)  # box width / W   (B,)
    fh = torch.sqrt(area * img_aspect / aspect).clamp(max=1)  # box height / H  (B,)
    tx = (2 * u[3] - 1) * (1 - fw)  # box centre, normalised to [-1, 1]
    ty = (2 * u[4] - 1) * (1 - fh)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Output coords -> input coords in the [-1, 1] frame; the H/W factors make the rotation
    # rigid in pixel space on non-square images instead of a shear.
    theta = torch.stack([cos * fw, -sin * fh * (H / W), tx,
                         sin * fw * (W / H), cos * fh, ty], dim=1).view(B, 2, 3)
    grid = F.affine_grid(theta, [B, C, H, W], align_corners=False)  # (B, H, W, 2)
    # Out-of-image samples are mirrored rather than zero-filled: black corners would be an
    # artificial cue a model can learn, while reflection keeps the image statistics.
    if x.device.type == "mps":  # MPS has no 'reflection' kernel: mirror the grid ourselves
        return F.grid_sample(x, _mirror_grid(grid), mode="bilinear", padding_mode="border",
                             align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _mirror_grid(grid: torch.Tensor) -> torch.Tensor:
    """Mirror grid coordinates at the image edges (±1) as ``padding_mode="reflection"`` does."""
    t = grid + 1  # a triangle wave of period 4: f(g) = 1 - |((g + 1) mod 4) - 2|
    t = t - 4 * torch.floor(t * 0.25)  # t mod 4; torch.remainder is several times slower on CPU
    return 1 - (t - 2).abs()


def _jitter(x: torch.Tensor, g: torch.Generator, strength: float) -> torch.Tensor:
    """Brightness, contrast, then (RGB only) saturation, each clamped like torchvision."""
    B = x.shape[0]
    f = (1 + strength * (2 * _rand(g, x, 3, B) - 1)).view(3, B, 1, 1, 1)  # (3, B, 1, 1, 1)
    # Each blend is one addcmul, f*y + (1-f)*anchor, clamped in place on that fresh tensor.
    y = (x * f[0]).clamp_(0, 1)
    # Gray is linear, so the mean gray level comes from the channel means: no gray image needed.
    mean = _gray(y.mean(dim=(2, 3), keepdim=True))  # (B, 1, 1, 1)
    y = torch.addcmul(mean * (1 - f[1]), y, f[1]).clamp_(0, 1)
    if y.shape[1] == 3:
        gray = _gray(y)  # (B, 1, H, W)
        y = torch.addcmul(gray * (1 - f[2]), y, f[2]).clamp_(0, 1)
    return y


def _blur(x: torch.Tensor, g: torch.Generator, max_sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with per-sample sigma, as two depthwise convolutions."""
    B, C, H, W = x.shape
    # One kernel width for the batch, sized for the largest sigma; reflect padding cannot
    # exceed the image, so tiny images get a truncated (still normalised) kernel.
    r = min(math.ceil(3 * max_sigma), H - 1, W - 1)
    u = _rand(g, x, 2, B)  # (2, B): sigma, apply?
    sigma = 0.1 + (max_sigma - 0.1) * u[0]
    taps = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)  # (K,)
    k = torch.exp(-0.5 * (taps / sigma[:, None]) ** 2)  # (B, K)
    k = k / k.sum(dim=1, keepdim=True)
    # Unblurred samples get a delta kernel: exact copies, and no data-dependent shapes
    # (selecting a subset would force a host sync on GPU).
    k = torch.where((u[1] < 0.5)[:, None], k, (taps == 0).to(x.dtype))
    w = k.repeat_interleave(C, dim=0)  # (B*C, K): one kernel per (sample, channel) group
    y = F.pad(x.reshape(1, B * C, H, W), (r, r, r, r), mode="reflect")  # (1, B*C, H+2r, W+2r)
    y = F.conv2d(y, w.view(B * C, 1, 1, -1), groups=B * C)  # (1, B*C, H+2r, W)
    y = F.conv2d(y, w.view(B * C, 1, -1, 1), groups=B * C)  # (1, B*C, H, W)
    return y.view(B, C, H, W)


def _noise(x: torch.Tensor, g: torch.Generator, max_std: float) -> torch.Tensor:
    """Additive Gaussian noise, per-sample std uniform in [0, max_std], clamped to [0, 1]."""
    std = max_std * _rand(g, x, x.shape[0]).view(-1, 1, 1, 1)  # (B, 1, 1, 1)
    noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)  # (B, C, H, W)
    return noise.mul_(std).add_(x).clamp_(0, 1)


def _erase(x: torch.Tensor, g: torch.Generator, p: float) -> torch.Tensor:
    """Random erasing: one rectangle per hit sample, filled with mid-gray 0.5."""
    B, C, H, W = x.shape
    u = _rand(g, x, 5, B)  # (5, B): apply?, area, aspect, top, left
    area = (0.02 + 0.31 * u[1]) * (H * W)
    aspect = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * u[2])
    # Boxes that would not fit are clamped to the image (torchvision redraws), which only
    # trims extreme aspects on small images.
    h = torch.sqrt(area * aspect).round().clamp(1, H)
    w = torch.sqrt(area / aspect).round().clamp(1, W)
    top = ((H - h + 1) * u[3]).floor()
    left = ((W - w + 1) * u[4]).floor()
    rows = torch.arange(H, device=x.device, dtype=x.dtype)
    cols = torch.arange(W, device=x.device, dtype=x.dtype)
    in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])  # (B, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])  # (B, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & (u[0] < p)[:, None, None]  # (B, H, W)
    # A constant fill (not per-pixel noise) is the occlusion signal; the noise op covers noise.
    return torch.where(mask[:, None], 0.5, x)


_APPLY = {"hflip": partial(_flip, dim=3), "vflip": partial(_flip, dim=2), "crop": _pad_crop,
          "jitter": _jitter, "blur": _blur, "noise": _noise, "erase": _erase}


class Augmenter:
    """Random label-preserving transforms applied to a whole batch, per-sample parameters.

    Args:
        spec: a preset (``auto`` = ``light``, ``none``, ``standard``, ``strong``), a
            comma-separated op string, or a list of ops ``"name"`` / ``"name:PARAM"``:
            ``hflip:P``, ``vflip:P`` (flip probability, 0.5); ``rotate:DEG`` (uniform in
            ±DEG, 15); ``crop:PAD`` (reflect-pad and random crop back, about H/8 px);
            ``resized_crop:MINSCALE`` (area in [MINSCALE, 1], aspect 3/4–4/3, 0.35);
            ``jitter:S`` (brightness, contrast, RGB saturation in [1-S, 1+S], 0.3);
            ``blur:SIGMA`` (p=0.5, sigma in [0.1, SIGMA], 1.0); ``noise:STD`` (std in
            [0, STD], 0.05); ``erase:P`` (a 2–33 % rectangle set to 0.5, 0.25).
        channels: image channels (1 or 3); only 3-channel presets flip and jitter early.
        image_size: ``(H, W)`` of every image.

    Raises:
        ConfigError: an unknown preset or op, or a bad parameter (see ``resolve_augment``).

    Example:
        >>> import torch
        >>> aug = Augmenter("light", channels=3, image_size=(32, 32))
        >>> aug.describe()
        ['horizontal flip (p=0.5)', 'pad 4 px (reflect) and random-crop back']
        >>> x = torch.rand(8, 3, 32, 32)
        >>> y = aug(x, torch.Generator().manual_seed(0))
        >>> y.shape, bool(y.min() >= 0 and y.max() <= 1)
        (torch.Size([8, 3, 32, 32]), True)
    """

    def __init__(self, spec: "str | Sequence[str]", channels: int,
                 image_size: tuple[int, int]) -> None:
        self.channels = int(channels)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        if self.channels < 1 or min(self.image_size) < 1:
            raise ValueError(f"channels and image_size must be positive: {channels}, {image_size}")
        self._ops = _resolve(spec, self.channels, self.image_size)
        by_name = {op.name: op.param for op in self._ops}
        self._steps: list[tuple[Callable[..., torch.Tensor], object]] = []
        for op in self._ops:
            if op.name in _APPLY:
                self._steps.append((_APPLY[op.name], op.param))
            elif not any(fn is _affine for fn, _ in self._steps):  # one warp for both ops
                warp = (by_name.get("rotate", 0.0), by_name.get("resized_crop", 1.0))
                self._steps.append((_affine, warp))

    @property
    def ops(self) -> list[AugmentOp]:
        """The parsed ops, defaults filled in, in execution order."""
        return list(self._ops)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch.

        Args:
            x: float (B, C, H, W) in [0, 1] on any device (bfloat16/float16 are computed in
                float32 and converted back).
            generator: the only source of randomness; must live on ``x.device``.

        Returns:
            A new tensor of ``x``'s shape, dtype and device with values in [0, 1]; ``x`` is
            never modified.
        """
        expected = (self.channels, *self.image_size)
        if not x.is_floating_point() or x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected a float batch (B, {expected[0]}, {expected[1]}, "
                             f"{expected[2]}), got {x.dtype} {tuple(x.shape)}")
        # Half precision is too coarse for grid coordinates and kernel weights.
        y = x if x.dtype in (torch.float32, torch.float64) else x.float()
        for fn, param in self._steps:
            y = fn(y, generator, param)
        # clamp always allocates, so the result never aliases x even with no ops.
        return y.clamp(0, 1).to(x.dtype)

    def describe(self) -> list[str]:
        """One human-readable line per op, in execution order, for the report."""
        text = {
            "hflip": "horizontal flip (p={v:g})",
            "vflip": "vertical flip (p={v:g})",
            "crop": "pad {v:g} px (reflect) and random-crop back",
            "rotate": "rotate uniformly within ±{v:g}°",
            "resized_crop": "random resized crop (area {v:.0%}–100%, aspect 3/4–4/3)",
            "jitter": "colour jitter: brightness, contrast"
                      + (", saturation" if self.channels == 3 else "") + " ×[{lo:g}, {hi:g}]",
            "blur": "Gaussian blur (p=0.5, sigma 0.1–{v:g})",
            "noise": "Gaussian noise (std 0–{v:g})",
            "erase": "random erasing (p={v:g}, 2–33% of the area, filled with 0.5)",
        }
        return [text[op.name].format(v=op.param, lo=1 - op.param, hi=1 + op.param)
                for op in self._ops]

    def __repr__(self) -> str:
        return f"Augmenter({[str(op) for op in self._ops]}, channels={self.channels}, " \
               f"image_size={self.image_size})"
