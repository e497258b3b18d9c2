"""Datasets by name (mnist, fashion-mnist, kmnist, cifar10, cifar100, svhn) via torchvision.

MNIST-style names are first looked for as IDX files (see ``idx.find_idx_dataset``, which
includes Debian's ``/usr/share/datasets/fashion-mnist``); otherwise torchvision reads (and,
when allowed, downloads) them under the data root. Only the raw arrays are taken, never
per-sample ``__getitem__``.
"""

from __future__ import annotations

import http.client
import socket
import tarfile
import zipfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from deepfit.data.images.cache import cached_arrays
from deepfit.data.images.idx import IDX_DATASETS, find_idx_dataset, load_idx_dir
from deepfit.data.images.imageset import ImageSet
from deepfit.data.images.options import ImageOptions, check_codes, data_root, digit_names
from deepfit.errors import DataError

# normalised name -> (torchvision class, display name, array layout)
NAMED = {"mnist": ("MNIST", "mnist", "NHW"),
         "fashionmnist": ("FashionMNIST", "fashion-mnist", "NHW"),
         "kmnist": ("KMNIST", "kmnist", "NHW"),
         "cifar10": ("CIFAR10", "cifar10", "NHWC"),
         "cifar100": ("CIFAR100", "cifar100", "NHWC"),
         "svhn": ("SVHN", "svhn", "NCHW")}
_TIMEOUT_S = 60  # per network operation of a download: an offline machine fails fast


def named_key(source: str) -> Optional[str]:
    """The normalised dataset name ("fashion_mnist" -> "fashionmnist"), or None."""
    key = source.strip().lower().replace("-", "").replace("_", "")
    return key if key in NAMED else None


def load_named(key: str, opts: ImageOptions) -> ImageSet:
    """Load a named dataset with its official train / test split.

    Raises:
        DataError: the files are missing and cannot be downloaded, or are damaged.
    """
    root = data_root(opts)
    if key in IDX_DATASETS:
        found = find_idx_dataset(key, root)
        if found is not None:
            return load_idx_dir(found, opts, key)
    cls_name, display, layout = NAMED[key]
    images, labels, split, ids = [], [], [], []
    class_names: list[str] = []
    for part in ("train", "test"):
        dataset = _open(key, part, root, opts)
        data = dataset.data
        data = data.numpy() if hasattr(data, "numpy") else np.asarray(data)
        targets = getattr(dataset, "targets", None)
        if targets is None:
            targets = dataset.labels
        targets = np.asarray(targets.numpy() if hasattr(targets, "numpy") else targets)
        images.append(data)
        labels.append(check_codes(targets, f"{cls_name} in '{root}'"))
        split += [part] * len(data)
        ids += [f"{part}/{i}" for i in range(len(data))]
        if key in ("mnist", "svhn"):
            class_names = digit_names(10)  # torchvision says "0 - zero"; SVHN has no names
        else:
            class_names = [str(c) for c in dataset.classes]
    tensor, cached, aspects = cached_arrays(np.concatenate(images), layout, opts,
                              f"{cls_name} in '{root}'")
    codes = np.concatenate(labels)
    return ImageSet(images=tensor, labels=codes, class_names=class_names, name=display,
                    description=f"{display} (torchvision {cls_name}) in '{root}' "
                                f"({len(class_names)} classes, official train/test split)",
                    ids=np.asarray(ids), split=np.asarray(split), aspects=aspects,
                    origin=f"read {len(codes):,} images with torchvision from '{root}'" + cached)


def _open(key: str, part: str, root: Path, opts: ImageOptions):
    """The torchvision dataset object for one split, downloading it when missing."""
    import torchvision.datasets as tvd

    cls_name = NAMED[key][0]
    cls = getattr(tvd, cls_name)

    def make(download: bool):
        if key == "svhn":
            return cls(str(root), split=part, download=download)
        return cls(str(root), train=part == "train", download=download)

    try:
        return make(False)
    except RuntimeError as exc:
        if "not found" not in str(exc).lower():
            raise DataError(f"could not read {cls_name} from '{root}': {_reason(exc)}; delete its "
                            "files there to download them again") from None
    except Exception as exc:  # damaged files fail in torchvision's readers in many ways
        raise DataError(f"could not read {cls_name} from '{root}': {_reason(exc)}; delete its "
                        "files there to download them again") from None
    if not opts.download:
        raise DataError(f"{cls_name} is not in '{root}' and downloading is off; put the files "
                        "there or pass data.root")
    return _download(cls_name, root, lambda: make(True))


def _download(cls_name: str, root: Path, make: Callable):
    # torchvision opens URLs without a timeout; a default one bounds a silent network.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_TIMEOUT_S)
    try:
        root.mkdir(parents=True, exist_ok=True)
        return make()
    except (OSError, RuntimeError, ValueError, EOFError, http.client.HTTPException,
            tarfile.TarError, zipfile.BadZipFile) as exc:
        raise DataError(f"could not download {cls_name} to {root} (offline?): {_reason(exc)}; "
                        "put the files there or pass data.root") from None
    finally:
        socket.setdefaulttimeout(previous)


def _reason(exc: BaseException) -> str:
    # torchvision's download errors list every mirror; the last line is the latest failure.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:200]
