"""IDX files (the MNIST format), plain or gzipped, parsed with NumPy."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from deepfit.data.images.cache import cached_arrays
from deepfit.data.images.imageset import ImageSet
from deepfit.data.images.options import ImageOptions, check_codes, digit_names
from deepfit.errors import DataError

# IDX type byte -> big-endian dtype.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# split -> (images, labels) base names; Kaggle's copies spell "-idx" as ".idx".
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
# Where each IDX dataset may already be: folder names below the data root, torchvision's
# class name (its raw files live in root/<Class>/raw), and system-wide installs.
IDX_DATASETS = {
    "mnist": {"display": "mnist", "folders": ("mnist",), "torchvision": "MNIST",
              "system": (), "classes": digit_names(10)},
    "fashionmnist": {"display": "fashion-mnist",
                     "folders": ("fashion-mnist", "fashion_mnist", "fashionmnist"),
                     "torchvision": "FashionMNIST",
                     # Debian's dataset-fashion-mnist package
                     "system": ("/usr/share/datasets/fashion-mnist",),
                     "classes": FASHION_CLASSES},
    "kmnist": {"display": "kmnist", "folders": ("kmnist",), "torchvision": "KMNIST",
               "system": (), "classes": KMNIST_CLASSES},
}


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (gzipped or not) into an array of its declared type and shape.

    Raises:
        DataError: unreadable, not IDX (bad magic), or truncated / with trailing bytes.
    """
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
            raw = gzip.decompress(raw)
    except OSError as exc:  # includes gzip.BadGzipFile
        raise DataError(f"cannot read IDX file '{path}': {exc.strerror or exc}") from None
    except (EOFError, zlib.error):
        raise DataError(f"IDX file '{path}' is a damaged or truncated gzip file; download it "
                        "again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES or raw[3] == 0:
        raise DataError(f"'{path}' is not an IDX file (magic number "
                        f"{raw[:4].hex() or 'missing'}); expected e.g. 00000803 for images")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file '{path}' is truncated inside its header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        state = "truncated" if len(raw) - header < expected else "longer than its header says"
        raise DataError(f"IDX file '{path}' is {state}: shape {list(dims)} needs {expected:,} "
                        f"bytes of data, found {len(raw) - header:,}; download it again")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def find_idx_file(folder: Path, base: str) -> Optional[Path]:
    """The file for ``base`` in ``folder``, trying plain, ``.gz`` and Kaggle's ".idx" names."""
    for name in (base, base.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def has_idx_files(folder: Path) -> bool:
    """True when ``folder`` holds all four MNIST-style IDX files."""
    return all(find_idx_file(folder, base) is not None
               for pair in IDX_FILES.values() for base in pair)


def find_idx_dataset(key: str, root: Path) -> Optional[Path]:
    """The first folder holding the IDX files of dataset ``key`` ("mnist", "fashionmnist",
    "kmnist"): the root, root/<name>, root/<TorchvisionClass>/raw, then system installs."""
    spec = IDX_DATASETS[key]
    candidates = [root] + [root / f for f in spec["folders"]]
    candidates += [root / spec["torchvision"] / "raw"] + [Path(s) for s in spec["system"]]
    return next((c for c in candidates if c.is_dir() and has_idx_files(c)), None)


def load_idx_dir(folder: Path, opts: ImageOptions, key: Optional[str] = None) -> ImageSet:
    """Read the four IDX files of ``folder``; official train rows get split "train", t10k
    rows "test".

    Args:
        folder: the folder holding the files.
        opts: resize and channel options.
        key: the dataset ("mnist", "fashionmnist", "kmnist") for its name and class names;
            None guesses it from the folder name, else numbers the classes.
    """
    if key is None:
        guess = folder.name.lower().replace("-", "").replace("_", "")
        key = guess if guess in IDX_DATASETS else None
    images, labels, split, ids = [], [], [], []
    for part, (image_base, label_base) in IDX_FILES.items():
        image_file = find_idx_file(folder, image_base)
        label_file = find_idx_file(folder, label_base)
        if image_file is None or label_file is None:
            missing = image_base if image_file is None else label_base
            raise DataError(f"'{folder}' lacks the IDX file '{missing}' (or '{missing}.gz'); "
                            "MNIST-style data needs the train and t10k image and label files")
        x, y = read_idx(image_file), read_idx(label_file)
        if x.ndim != 3 or x.dtype != np.uint8:
            raise DataError(f"IDX file '{image_file}' holds {x.dtype} of shape {list(x.shape)}; "
                            "images must be unsigned bytes of shape (N, H, W)")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"IDX file '{label_file}' holds labels of shape {list(y.shape)} for "
                            f"{len(x):,} images in '{image_file.name}'; they must match")
        images.append(x)
        labels.append(check_codes(y, f"IDX file '{label_file}'"))
        split += [part] * len(x)
        ids += [f"{part}/{i}" for i in range(len(x))]
    if images[0].shape[1:] != images[1].shape[1:]:
        raise DataError(f"'{folder}': train images are {images[0].shape[1:]} but test images "
                        f"{images[1].shape[1:]}; set data.image_size to resize them to one size")
    codes = np.concatenate(labels)
    names = IDX_DATASETS[key]["classes"] if key else digit_names(int(codes.max()) + 1)
    if int(codes.max()) >= len(names):
        names = digit_names(int(codes.max()) + 1)
    display = IDX_DATASETS[key]["display"] if key else folder.name
    tensor, cached, aspects = cached_arrays(np.concatenate(images), "NHW", opts,
                              f"IDX files in '{folder}'")
    return ImageSet(images=tensor, labels=codes, class_names=list(names), name=display,
                    description=f"{display}: IDX files in '{folder}' ({len(names)} classes, "
                                "official train/test split)",
                    ids=np.asarray(ids), split=np.asarray(split), aspects=aspects,
                    origin=f"read {len(codes):,} images from IDX files in '{folder}'" + cached)
