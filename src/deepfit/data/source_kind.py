"""What kind of source a run's data come from, cheaply, before anything is loaded: the
config's scope rules (``deepfit.config_scope``) refuse options that do not apply to it."""

from __future__ import annotations

import dataclasses
from typing import Any

from deepfit.config import DataConfig
from deepfit.data.images.bundle import image_options
from deepfit.data.images.imageset import ImageSet
from deepfit.data.images.load import image_source_kind
from deepfit.data.sources.builtin import BUILTIN
from deepfit.data.sources.toy2d import TOY


def source_kind(cfg: DataConfig, data: Any = None) -> str:
    """One of ``deepfit.config_scope.TABLE_SOURCES`` or ``IMAGE_SOURCES``."""
    if data is not None:
        return "image-object" if isinstance(data, ImageSet) else "object"
    # Recognising a source needs none of the resize settings: not validated here, so that
    # an image-only value on a table is refused as not applying, not as a bad image setting.
    kind = image_source_kind(cfg.source, image_options(dataclasses.replace(cfg, resize="stretch")))
    if kind is not None:
        return kind
    key = str(cfg.source).lower().replace("-", "_")
    if key in BUILTIN:
        return "builtin"
    if key in TOY:
        return "toy"
    return "table-file"
