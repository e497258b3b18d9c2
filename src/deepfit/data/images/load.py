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

from pathlib import Path

from deepfit.data.images import hf, hfhub, medmnist
from deepfit.data.images.csvfiles import CSV_SUFFIXES, is_image_csv, load_image_csv
from deepfit.data.images.decode import decode_image
from deepfit.data.images.folders import load_image_folders
from deepfit.data.images.idx import has_idx_files, load_idx_dir
from deepfit.data.images.imageset import ImageSet
from deepfit.data.images.named import NAMED, load_named, named_key
from deepfit.data.images.options import ImageOptions
from deepfit.errors import DataError

__all__ = ["ImageOptions", "decode_image", "is_image_source", "load_images"]


def is_image_source(source: str, opts: ImageOptions) -> bool:
    """True when ``source`` is an image dataset; cheap (headers and schemas, no decoding).

    A CSV, Parquet or .npz that is not an image table answers False, for the table loader.
    Every folder answers True: no other loader reads folders, and ``load_images`` explains
    what a folder lacks.
    """
    return image_source_kind(source, opts) is not None


def image_source_kind(source: str, opts: ImageOptions) -> str | None:
    """What kind of image source ``source`` is (None: not images): ``image-folder``,
    ``image-table`` (CSV / Parquet / Arrow with named columns), ``image-hub`` (hf:...),
    ``image-medmnist`` or ``image-named`` (mnist, cifar10, ...). Cheap, as
    ``is_image_source``."""
    text = str(source).strip()
    if text.lower().startswith(medmnist.PREFIX):
        return "image-medmnist"
    if text.lower().startswith(hfhub.PREFIX):
        return "image-hub"
    path = Path(text).expanduser()
    if path.is_dir():  # a Hugging Face folder names its columns, as an image table does
        return "image-table" if hf.is_hf_directory(path) else "image-folder"
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in CSV_SUFFIXES:
            return "image-table" if is_image_csv(path, opts) else None
        if suffix == ".npz":
            return "image-medmnist" if medmnist.is_medmnist_npz(path) else None
        if suffix in hf.TABLE_SUFFIXES:
            return "image-table" if hf.is_image_table_file(path, opts) else None
        return None
    return "image-named" if named_key(text) is not None else None


def load_images(source: str, opts: ImageOptions) -> ImageSet:
    """Load an image source (see the module docstring) as one ``ImageSet``.

    Raises:
        DataError: the source does not exist, is not an image source, or cannot be read;
            the message names the file, column or key and what to do.
    """
    text = str(source).strip()
    lower = text.lower()
    if lower.startswith(medmnist.PREFIX):
        return medmnist.load_medmnist_name(text, opts)
    if lower.startswith(hfhub.PREFIX):
        return hfhub.load_hub(text, opts)
    path = Path(text).expanduser()
    if path.is_dir():
        return _load_folder(path, opts)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in CSV_SUFFIXES:
            return load_image_csv(path, opts)
        if suffix == ".npz":
            if not medmnist.is_medmnist_npz(path):
                raise DataError(f"'{path}' has no 'train_images' / 'train_labels' arrays; an "
                                "image .npz uses MedMNIST's layout")
            return medmnist.load_medmnist_npz(path, opts)
        if suffix in hf.TABLE_SUFFIXES:
            return hf.load_table_files([path], opts, path.stem, f"'{path}'")
        raise DataError(f"'{path}' is not an image source; give a folder of images, a CSV of "
                        "image paths, a MedMNIST .npz or a Parquet / Arrow image table")
    key = named_key(text)
    if key is not None:
        return load_named(key, opts)
    names = ", ".join(display for _, display, _ in NAMED.values())
    raise DataError(f"image source '{text}' does not exist; give a folder or file, "
                    f"medmnist:<name>, hf:owner/name, or one of: {names}")


def _load_folder(folder: Path, opts: ImageOptions) -> ImageSet:
    if hf.is_hf_directory(folder):
        return hf.load_hf_directory(folder, opts)
    if has_idx_files(folder):
        return load_idx_dir(folder, opts)
    return load_image_folders(folder, opts)
