"""Where a run's data come from: ``resolve_source`` reads ``data.source`` (or looks at the
Python object given) once and says what kind of source it is and how it loads. The
config's scope rules (``deepfit.config_scope``) use its kind before anything is loaded;
``build_bundle`` and ``load_table`` use it to load. Nothing else reads the source string."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from deepfit.config import DataConfig
from deepfit.config_scope import IMAGE_SOURCES
from deepfit.data.detection.source import detection_kind
from deepfit.data.images.imageset import ImageSet
from deepfit.data.images.load import ImageSource, image_source
from deepfit.data.images.options import image_options
from deepfit.data.sources import PYTHON_SOURCE
from deepfit.data.sources.builtin import BUILTIN
from deepfit.data.sources.toy2d import TOY
from deepfit.errors import DataError, did_you_mean


@dataclass(frozen=True)
class Source:
    """A resolved data source.

    Attributes:
        kind: one of ``deepfit.config_scope.TABLE_SOURCES`` (``table-file``, ``builtin``,
            ``toy``, ``object``), ``DETECTION_SOURCES`` or ``IMAGE_SOURCES`` (``image-folder``, ``image-table``,
            ``image-hub``, ``image-named``, ``image-medmnist``, ``image-object``).
        text: ``data.source`` as given ("" for a Python object).
        data: the Python object (a DataFrame, ``(X, y)``, an ``ImageSet``), or None.
        key: the registry key of a built-in dataset or toy generator ("breast_cancer").
        images: how an image file, folder or name loads (``ImageSource``).
        problem: why this source cannot be loaded (an unknown name, a config trained on a
            Python object); said when it is loaded, so that the config's scope is checked
            first.
    """

    kind: str
    text: str = ""
    data: Any = None
    key: Optional[str] = None
    images: Optional[ImageSource] = None
    problem: Optional[str] = None

    @property
    def is_images(self) -> bool:
        return self.kind in IMAGE_SOURCES

    def check(self) -> None:
        """Raise the one-line ``DataError`` of a source that cannot be loaded."""
        if self.problem:
            raise DataError(self.problem)


def resolve_source(cfg: DataConfig, data: Any = None, table: bool = False) -> Source:
    """What ``cfg.source`` (or ``data``, when given) is; cheap: a file's header or schema
    at most, nothing decoded. ``table=True`` reads it as a table source only (a folder or
    a CSV of image paths is then a table file, which the table loader refuses or reads).

    Example:
        >>> resolve_source(DataConfig(source="breast-cancer")).kind
        'builtin'
    """
    if data is not None:
        if isinstance(data, ImageSet) and not table:
            return Source("image-object", data=data)
        return Source("object", data=data)
    text = cfg.source
    # Recognising a source needs none of the resize settings: not validated here, so that
    # an image-only value on a table is refused as not applying, not as a bad image setting.
    if not table and (boxes := detection_kind(text)) is not None:
        return Source(boxes, text)  # boxes per image: before an image folder's reading
    if not table:
        images = image_source(text, image_options(dataclasses.replace(cfg, resize="stretch")))
        if images.kind is not None:
            return Source(images.kind, text, images=images)
    if text.startswith(PYTHON_SOURCE):
        return Source("table-file", text, problem=(
            f"this config was trained on a Python object ({text[len(PYTHON_SOURCE):]}); "
            "pass the data again: deepfit.train(config, data=...)"))
    key = text.lower().replace("-", "_")
    if key in BUILTIN:
        return Source("builtin", text, key=key)
    if key in TOY:
        return Source("toy", text, key=key)
    if Path(text).exists() or any(c in text for c in "/\\."):
        return Source("table-file", text)
    names = list(BUILTIN) + list(TOY)
    return Source("table-file", text, problem=(
        f"unknown dataset '{text}'{did_you_mean(key, names)}; give a file path or one of: "
        f"{', '.join(names)}"))


def source_kind(cfg: DataConfig, data: Any = None) -> str:
    """One of ``deepfit.config_scope.TABLE_SOURCES`` or ``IMAGE_SOURCES``."""
    return resolve_source(cfg, data).kind
