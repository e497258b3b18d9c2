"""Images given to a trained model: decoded to its size and channels, and their labels (if
any) matched to its classes by name."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from deepfit.data.images.batch import ImageList, decode_list
from deepfit.data.images.decode import arrays_to_tensor, is_image_name
from deepfit.data.images.imageset import (STRETCH_NOTE_FACTOR, Aspects, ImageSet,
                                          measure_aspects)
from deepfit.data.images.inputs import ImageSpec
from deepfit.data.images.load import ImageOptions, load_images
from deepfit.data.images.options import split_name
from deepfit.data.labels import renamed
from deepfit.errors import DataError, DataWarning


def images_for_model(data: Any, spec: ImageSpec, class_names: list[str],
                     label_map: Optional[dict] = None, origin: str = "input",
                     multilabel: bool = False
                     ) -> tuple[torch.Tensor, np.ndarray, Optional[np.ndarray]]:
    """``(X, ids, y)``: uint8 images (N, C, H, W) of the model's size, their ids, and label
    codes in ``class_names`` order (None when the data carry no labels).

    ``data``: an image file, a folder of images (loose files: unlabelled; class folders:
    labelled), any image source ``deepfit train`` reads, an ``ImageSet``, or an array /
    tensor of images (N, H, W), (N, H, W, C) or (N, C, H, W).
    """
    opts = ImageOptions(size=spec.size, resize=spec.resize,  # as the run resized its images
                        channels="gray" if spec.channels == 1 else "rgb")
    if isinstance(data, (np.ndarray, torch.Tensor)):
        return _from_array(data, spec, opts, origin), np.arange(len(data)), None
    if isinstance(data, ImageSet):
        images = data
    else:
        path = Path(str(data)).expanduser()
        listed = list_new_images(path, class_names, label_map or {}, multilabel)
        if listed is not None and listed.codes is None:
            items = ImageList(names=listed.paths, ids=listed.ids, paths=listed.paths)
            decoded = decode_list(items, opts)
            warn_if_reshaped(decoded.aspects, spec, origin)
            return decoded.images, np.asarray(items.ids, dtype=str)[decoded.kept], None
        images = load_images(str(data), opts)
    X = images.images
    warn_if_reshaped(images.aspects, spec, origin)
    if not isinstance(X, torch.Tensor):
        raise DataError(f"{origin}: too many images to predict at once; give them in parts")
    if tuple(X.shape[1:]) != (spec.channels, *spec.size):
        X = arrays_to_tensor(X.numpy(), "NCHW", spec.size,
                             "gray" if spec.channels == 1 else "rgb", origin, spec.resize)
    return X, np.asarray(images.ids), _codes(images, class_names, label_map or {}, origin,
                                             multilabel)


def warn_if_reshaped(aspects: Optional[Aspects], spec: ImageSpec, origin: str) -> None:
    """Say when new images are stretched out of shape to the run's size (a
    ``DataWarning``): the model sees them distorted, as it saw its training images only if
    they were distorted the same way."""
    if aspects is None or spec.resize != "stretch" or aspects.change <= STRETCH_NOTE_FACTOR:
        return
    h, w = spec.size
    factor = f"{aspects.change:.2f}".rstrip("0").rstrip(".")
    warnings.warn(f"{origin}: {aspects.other:,} of {aspects.images:,} image(s) have another "
                  f"shape than the run's {h}×{w} and were stretched to it, changing their "
                  f"aspect ratio by up to ×{factor}; crop them to its shape, or train with "
                  "data.resize=pad", DataWarning, stacklevel=3)


def _from_array(data: Any, spec: ImageSpec, opts: ImageOptions, origin: str) -> torch.Tensor:
    arr = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if arr.dtype != np.uint8:
        raise DataError(f"{origin}: images must be uint8 (0-255), got {arr.dtype}; give the "
                        "images as stored, deepfit scales and normalises them")
    if arr.ndim == 3:
        layout = "NHW"
    elif arr.ndim == 4:
        layout = "NCHW" if arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3) else "NHWC"
    else:
        raise DataError(f"{origin}: got an array of shape {arr.shape}; give images as "
                        "(N, H, W), (N, H, W, C) or (N, C, H, W)")
    h_axis = 2 if layout == "NCHW" else 1
    warn_if_reshaped(measure_aspects([arr.shape[h_axis:h_axis + 2]], spec.size), spec, origin)
    return arrays_to_tensor(arr, layout, spec.size, opts.channels, origin, spec.resize)


@dataclass
class NewImages:
    """Image files given to a trained model: their paths, ids (the path below the folder
    given, or the file's name) and, for class folders, label codes in the model's order."""

    paths: list[str]
    ids: list[str]
    codes: Optional[np.ndarray] = None


def list_new_images(path: Path, class_names: list[str], label_map: Optional[dict] = None,
                    multilabel: bool = False, stacklevel: int = 4) -> Optional[NewImages]:
    """The image files of a single file or, recursively, of a folder (hidden files and
    folders left out, files that are not images named in one ``DataWarning``). A folder
    that holds only sub-folders, one of them named as a class of the model, is class
    folders: labelled by them. None for anything else: a table, a CSV of image paths, a
    train / val / test folder tree, class folders of a class the model does not know
    (all read whole by ``load_images``, which names the class)."""
    if path.is_file():
        return NewImages([str(path)], [path.name]) if is_image_name(path.name) else None
    if not path.is_dir():
        return None
    top = [p for p in path.iterdir() if not p.name.startswith(".")]
    subdirs = [p.name for p in top if p.is_dir()]
    if subdirs and all(split_name(name) for name in subdirs):
        return None
    files, others = [], []
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".")):
            (files if is_image_name(name) else others).append(os.path.join(folder, name))
    if not files:
        return None
    ids = [Path(f).relative_to(path).as_posix() for f in files]
    mapped = {name: str(new) for name, new in zip(subdirs, renamed(subdirs, label_map or {}))}
    known = [mapped[name] in class_names for name in subdirs]
    codes = None
    if not multilabel and any(known) and all("/" in i for i in ids):
        if not all(known):  # class folders, one of a class the model does not know:
            return None     # load_images names it
        codes = np.asarray([class_names.index(mapped[i.split("/")[0]]) for i in ids])
    if others:  # predicted rows are what the user gets back: say what is missing
        warnings.warn(f"{path}: {len(others)} file(s) are not images by their name and get "
                      f"no prediction (e.g. '{Path(others[0]).relative_to(path).as_posix()}');"
                      f" {len(files)} image(s) are predicted", DataWarning,
                      stacklevel=stacklevel)
    return NewImages(files, ids, codes)


def _codes(images: ImageSet, class_names: list[str], label_map: dict, origin: str,
           multilabel: bool) -> np.ndarray:
    if multilabel:
        missing = [c for c in class_names if c not in images.class_names]
        if missing:
            raise DataError(f"{origin}: the labels {missing} of the model are not in the data")
        order = [images.class_names.index(c) for c in class_names]
        return np.asarray(images.labels)[:, order].astype(np.float32)
    mapped = [str(name) for name in renamed(images.class_names, label_map)]
    lookup = np.full(len(mapped), -1, dtype=np.int64)
    for i, name in enumerate(mapped):
        if name in class_names:
            lookup[i] = class_names.index(name)
    codes = lookup[np.asarray(images.labels)]
    unknown = np.flatnonzero(codes < 0)
    if len(unknown):
        first = unknown[0]
        raise DataError(f"{origin}: image '{images.ids[first]}' has class "
                        f"'{mapped[images.labels[first]]}', which the model was not trained on "
                        f"(its classes: {class_names})")
    return codes
