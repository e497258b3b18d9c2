"""What every image source is told (``ImageOptions``) and the small rules they share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from deepfit.config import DataConfig
from deepfit.data.split import SPLIT_ALIASES
from deepfit.errors import ConfigError, DataError, one_of

CHANNEL_MODES = ("auto", "gray", "rgb")
BAD_IMAGE_POLICIES = ("error", "skip")
RESIZE_MODES = ("stretch", "pad")


@dataclass(frozen=True)
class ImageOptions:
    """How to read an image source.

    Attributes:
        size: resize every image to (H, W); None keeps the native size, which must then be
            the same for every image.
        resize: how an image of another aspect ratio than ``size`` is resized: "stretch"
            to ``size``, or "pad" (letterbox: scaled to fit, aspect ratio kept, centred,
            black around). "pad" needs ``size``.
        channels: "auto" (1 channel if every image is grayscale, else 3), "gray" or "rgb".
        bad_images: "error" stops at the first unreadable image; "skip" leaves it out and
            records ``(file, reason)`` in ``ImageSet.skipped``.
        root: folder where named datasets are found or downloaded to (default:
            ``$DEEPFIT_DATA`` or ``~/.cache/deepfit/datasets``).
        cache_dir: folder of the decoded-image cache; None disables the cache.
        image_column: CSV / Parquet / Hugging Face column of the images (found when None).
        label_column: CSV / Parquet / Hugging Face column of the labels (found when None).
        group_column: image CSV column whose images must stay in one split (e.g. a patient).
        trust_remote_code: let a Hugging Face hub dataset run its own loading script.
        download: named, MedMNIST and hub sources may download missing files.
        max_memory_bytes: a file-based set larger than this once decoded is streamed from
            disk (``ImageFiles``) instead of decoded into one tensor.
    """

    size: Optional[tuple[int, int]] = None
    resize: str = "stretch"
    channels: str = "auto"
    bad_images: str = "error"
    root: Optional[str] = None
    cache_dir: Optional[str] = None
    image_column: Optional[str] = None
    label_column: Optional[str] = None
    group_column: Optional[str] = None
    trust_remote_code: bool = False
    download: bool = True
    max_memory_bytes: int = 8 * 2**30

    def __post_init__(self) -> None:
        if self.channels not in CHANNEL_MODES:
            raise ConfigError(f"data.color is '{self.channels}'; use one of "
                              f"{one_of(CHANNEL_MODES)}")
        if self.bad_images not in BAD_IMAGE_POLICIES:
            raise ConfigError(f"data.bad_images is '{self.bad_images}'; use one of "
                              f"{one_of(BAD_IMAGE_POLICIES)}")
        if self.size is not None:
            size = tuple(self.size)
            if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
                raise ConfigError(f"data.image_size is {list(self.size)}; give [height, width] "
                                  "as two positive integers")
            object.__setattr__(self, "size", (int(size[0]), int(size[1])))
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"data.resize is '{self.resize}'; use one of "
                              f"{one_of(RESIZE_MODES)}")
        if self.resize == "pad" and self.size is None:
            # Without a size every image must already have one size: nothing to pad to.
            raise ConfigError("data.resize=pad needs data.image_size: without it images are "
                              "kept at their stored size (which must be one size), so there "
                              "is nothing to pad to; set data.image_size=[H, W] or drop "
                              "data.resize")

    @property
    def fixed_channels(self) -> Optional[int]:
        """1 or 3 when ``channels`` forces a layout, None for "auto"."""
        return {"gray": 1, "rgb": 3}.get(self.channels)


def cache_dir() -> Path:
    """Where decoded images are cached: ``$DEEPFIT_CACHE`` or ``~/.cache/deepfit/images``."""
    env = os.environ.get("DEEPFIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "deepfit" / "images"


def image_options(cfg: DataConfig) -> ImageOptions:
    """The data config's image settings as the sources' options."""
    if len(cfg.image_size) > 2:
        raise ConfigError(f"data.image_size = {list(cfg.image_size)} must be [S] or [H, W]")
    size = None
    if cfg.image_size:
        size = (cfg.image_size[0], cfg.image_size[-1])
    return ImageOptions(size=size, resize=cfg.resize, channels=cfg.color,
                        bad_images=cfg.bad_images,
                        root=cfg.root, cache_dir=str(cache_dir()) if cfg.cache else None,
                        image_column=cfg.image_column, label_column=cfg.target,
                        group_column=cfg.group_column,
                        trust_remote_code=cfg.trust_remote_code,
                        max_memory_bytes=int(cfg.max_memory_gb * 2**30))


def data_root(opts: ImageOptions) -> Path:
    """The folder of named datasets: ``opts.root``, else ``$DEEPFIT_DATA``, else the user cache."""
    if opts.root:
        return Path(opts.root).expanduser()
    env = os.environ.get("DEEPFIT_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "deepfit" / "datasets"


def split_name(value: object) -> Optional[str]:
    """``"train" | "val" | "test"`` for a known spelling of a split (any case), else None."""
    return SPLIT_ALIASES.get(str(value).strip().lower())


def encode_labels(values: Sequence[object]) -> tuple[np.ndarray, list[str]]:
    """Class codes and names for raw label values.

    Integer-like values (``3``, ``3.0``, ``"3"``) sort numerically so that code ``k`` is the
    k-th smallest number; anything else sorts as text. Callers reject missing values first.
    """
    texts = [str(v).strip() for v in values]
    uniques = sorted(set(texts))
    numbers = {}
    for text in uniques:
        try:
            number = float(text)
        except ValueError:
            break
        if not number.is_integer():
            break
        numbers[text] = int(number)
    if len(numbers) == len(uniques) and len(set(numbers.values())) == len(uniques):
        uniques = sorted(uniques, key=numbers.__getitem__)
        names = [str(numbers[u]) for u in uniques]
    else:
        names = uniques
    index = {u: i for i, u in enumerate(uniques)}
    return np.array([index[t] for t in texts], dtype=np.int64), names


def digit_names(count: int) -> list[str]:
    """Class names "0".."count-1" for sources that only store codes."""
    return [str(i) for i in range(count)]


def check_codes(labels: np.ndarray, where: str) -> np.ndarray:
    """Class codes as int64, rejecting negative ones (Hugging Face uses -1 for "no label")."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise DataError(f"{where}: labels must be whole class numbers; found {labels.dtype}"
                            " values that are not")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        count = int((labels < 0).sum())
        raise DataError(f"{where}: {count:,} image(s) have no label (negative code "
                        f"{int(labels.min())}); drop that split or label them")
    return labels
