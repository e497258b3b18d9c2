"""The image sources' entry point: recognise a ``data.source`` and load it as an ``ImageSet``.

Recognised sources:

* a folder: class folders (ImageFolder), train/val/test folders of class folders, a Hugging
  Face ``save_to_disk`` folder or a folder of Parquet / Arrow files, or a folder holding
  the four MNIST-style IDX files;
* a .csv / .tsv with a column of image paths;
* a MedMNIST .npz, or ``medmnist:<name>[_<size>]``;
* a Parquet / Arrow file in the Hugging Face image layout, or ``hf:owner/name[@config]``;
* a name: mnist, fashion-mnist, kmnist, cifar10, cifar100, svhn.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Optional

from deepfit.data.images import hf, hfhub, medmnist
from deepfit.data.images.csvfiles import CSV_SUFFIXES, is_image_csv, load_image_csv
from deepfit.data.images.decode import decode_image
from deepfit.data.images.folders import load_image_folders
from deepfit.data.images.idx import has_idx_files, load_idx_dir
from deepfit.data.images.imageset import ImageSet
from deepfit.data.images.named import NAMED, load_named, named_key
from deepfit.data.images.options import ImageOptions
from deepfit.errors import DataError

__all__ = ["ImageOptions", "ImageSource", "decode_image", "image_source", "is_image_source",
           "load_images"]


@dataclass(frozen=True)
class ImageSource:
    """A ``data.source`` string read as an image source.

    Attributes:
        kind: one of ``deepfit.config_scope.IMAGE_SOURCES`` (``image-folder``,
            ``image-table``: a CSV / Parquet / Arrow file or folder with named columns,
            ``image-hub``: hf:..., ``image-medmnist``, ``image-named``: mnist, cifar10, ...),
            or None when the source is not images (then a table loader may read it).
        load: reads it as an ``ImageSet`` with the given options, or raises the
            ``DataError`` that says why it cannot be.
    """

    kind: Optional[str]
    load: Callable[[ImageOptions], ImageSet]


def image_source(source: str, opts: ImageOptions) -> ImageSource:
    """What ``source`` is and how it loads; cheap (headers and schemas, no decoding).

    The one place that reads an image source's string. A CSV, Parquet or .npz that is not
    an image table has kind None, for the table loader. Every folder is images: no other
    loader reads folders, and loading one explains what it lacks.
    """
    text = str(source).strip()
    lower = text.lower()
    if lower.startswith(medmnist.PREFIX):
        return ImageSource("image-medmnist", partial(medmnist.load_medmnist_name, text))
    if lower.startswith(hfhub.PREFIX):
        return ImageSource("image-hub", partial(hfhub.load_hub, text))
    path = Path(text).expanduser()
    if path.is_dir():  # a Hugging Face folder names its columns, as an image table does
        return ImageSource("image-table" if hf.is_hf_directory(path) else "image-folder",
                           partial(_load_folder, path))
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in CSV_SUFFIXES:
            return ImageSource("image-table" if is_image_csv(path, opts) else None,
                               partial(load_image_csv, path))
        if suffix == ".npz":
            if medmnist.is_medmnist_npz(path):
                return ImageSource("image-medmnist", partial(medmnist.load_medmnist_npz, path))
            return _refused(f"'{path}' has no 'train_images' / 'train_labels' arrays; an "
                            "image .npz uses MedMNIST's layout")
        if suffix in hf.TABLE_SUFFIXES:
            return ImageSource("image-table" if hf.is_image_table_file(path, opts) else None,
                               partial(_load_table_file, path))
        return _refused(f"'{path}' is not an image source; give a folder of images, a CSV of "
                        "image paths, a MedMNIST .npz or a Parquet / Arrow image table")
    key = named_key(text)
    if key is not None:
        return ImageSource("image-named", partial(load_named, key))
    names = ", ".join(display for _, display, _ in NAMED.values())
    return _refused(f"image source '{text}' does not exist; give a folder or file, "
                    f"medmnist:<name>, hf:owner/name, or one of: {names}")


def is_image_source(source: str, opts: ImageOptions) -> bool:
    """True when ``source`` is an image dataset (``image_source``'s kind is not None)."""
    return image_source(source, opts).kind is not None


def load_images(source: str, opts: ImageOptions) -> ImageSet:
    """Load an image source (see the module docstring) as one ``ImageSet``.

    Raises:
        DataError: the source does not exist, is not an image source, or cannot be read;
            the message names the file, column or key and what to do.
    """
    return image_source(source, opts).load(opts)


def _refused(message: str) -> ImageSource:
    def load(_: ImageOptions) -> ImageSet:
        raise DataError(message)
    return ImageSource(None, load)


def _load_table_file(path: Path, opts: ImageOptions) -> ImageSet:
    return hf.load_table_files([path], opts, path.stem, f"'{path}'")


def _load_folder(folder: Path, opts: ImageOptions) -> ImageSet:
    if hf.is_hf_directory(folder):
        return hf.load_hf_directory(folder, opts)
    if has_idx_files(folder):
        return load_idx_dir(folder, opts)
    return load_image_folders(folder, opts)
