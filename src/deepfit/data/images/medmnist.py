"""MedMNIST ``.npz`` files (by path, or ``medmnist:<name>[_<size>]`` found or downloaded)."""

from __future__ import annotations

import http.client
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from deepfit.data.images.cache import cached_arrays
from deepfit.data.images.imageset import ImageSet
from deepfit.data.images.options import ImageOptions, check_codes, data_root, digit_names
from deepfit.errors import DataError
from deepfit.files import atomic_write

PREFIX = "medmnist:"
SIZES = (28, 64, 128, 224)
_URL = "https://zenodo.org/records/10519652/files/{file}"
_TIMEOUT_S = 60
_ORGANS = ["bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right",
           "liver", "lung-left", "lung-right", "pancreas", "spleen"]
# Label names of the 2-D MedMNIST v2 subsets, in code order.
MEDMNIST_CLASSES = {
    "pathmnist": ["adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
                  "normal colon mucosa", "cancer-associated stroma",
                  "colorectal adenocarcinoma epithelium"],
    "chestmnist": ["atelectasis", "cardiomegaly", "effusion", "infiltration", "mass",
                   "nodule", "pneumonia", "pneumothorax", "consolidation", "edema",
                   "emphysema", "fibrosis", "pleural", "hernia"],
    "dermamnist": ["actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
                   "benign keratosis-like lesions", "dermatofibroma", "melanoma",
                   "melanocytic nevi", "vascular lesions"],
    "octmnist": ["choroidal neovascularization", "diabetic macular edema", "drusen",
                 "normal"],
    "pneumoniamnist": ["normal", "pneumonia"],
    "retinamnist": ["0", "1", "2", "3", "4"],  # diabetic retinopathy grades
    "breastmnist": ["malignant", "normal, benign"],
    "bloodmnist": ["basophil", "eosinophil", "erythroblast", "immature granulocytes",
                   "lymphocyte", "monocyte", "neutrophil", "platelet"],
    "tissuemnist": ["collecting duct, connecting tubule", "distal convoluted tubule",
                    "glomerular endothelial cells", "interstitial endothelial cells",
                    "leukocytes", "podocytes", "proximal tubule segments",
                    "thick ascending limb"],
    "organamnist": _ORGANS,
    "organcmnist": _ORGANS,
    "organsmnist": _ORGANS,
}
_SPLITS = ("train", "val", "test")


def is_medmnist_npz(path: Path) -> bool:
    """True when the .npz has MedMNIST's ``train_images`` and ``train_labels`` arrays."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {"train_images", "train_labels"} <= set(archive.files)
    except Exception:  # not a readable .npz: the table loader reports it
        return False


def load_medmnist_name(spec: str, opts: ImageOptions) -> ImageSet:
    """``medmnist:<name>`` or ``medmnist:<name>_<size>``: a local file, else a download.

    Looked for in the data root, ``<root>/medmnist`` and MedMNIST's own ``~/.medmnist``;
    downloaded into ``<root>/medmnist`` when ``opts.download`` allows.

    Raises:
        DataError: a malformed name, or the file is missing and cannot be downloaded.
    """
    text = spec[len(PREFIX):].strip().lower()
    match = re.fullmatch(r"([a-z0-9]+?)(?:_(\d+))?", text)
    if not match or (match.group(2) and int(match.group(2)) not in SIZES):
        raise DataError(f"'{spec}' is not a MedMNIST name; use medmnist:<name> or "
                        f"medmnist:<name>_<size> with size one of {list(SIZES)}, e.g. "
                        "medmnist:pathmnist_64")
    name, size = match.group(1), int(match.group(2) or 28)
    file = f"{name}.npz" if size == 28 else f"{name}_{size}.npz"
    root = data_root(opts)
    folders = [root, root / "medmnist", Path.home() / ".medmnist"]
    found = next((f / file for f in folders if (f / file).is_file()), None)
    if found is None:
        if not opts.download:
            raise DataError(f"MedMNIST file '{file}' is not in {', '.join(map(str, folders))} "
                            "and downloading is off; put the file there or pass data.root")
        found = _download(_URL.format(file=file), root / "medmnist" / file)
    return load_medmnist_npz(found, opts, name=name)


def load_medmnist_npz(path: Path, opts: ImageOptions, name: str | None = None) -> ImageSet:
    """Read a MedMNIST .npz with its official train / val / test split.

    Labels of shape (N, 1) are class codes; (N, L) with L > 1 are 0/1 multi-label rows
    (ChestMNIST), giving ``task_hint`` "multilabel".

    Raises:
        DataError: a missing, pickled or mis-shaped array (naming its key).
    """
    stem = path.stem.lower()
    name = name or re.sub(r"_(\d+)$", "", stem)
    images, labels, split, ids, layout = [], [], [], [], None
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"'{path}' is not a readable .npz file ({type(exc).__name__})") from None
    with archive:
        present = set(archive.files)
        for part in _SPLITS:
            ikey, lkey = f"{part}_images", f"{part}_labels"
            if ikey not in present and lkey not in present and part != "train":
                continue
            for key in (ikey, lkey):
                if key not in present:
                    raise DataError(f"'{path}' has no array '{key}'; a MedMNIST file has "
                                    "train/val/test _images and _labels arrays")
            x = _images(_array(archive, ikey, path), ikey, path)
            y = _array(archive, lkey, path)
            if len(y) != len(x):
                raise DataError(f"'{path}': '{lkey}' has {len(y):,} rows but '{ikey}' has "
                                f"{len(x):,} images; they must match")
            here = "NHW" if x.ndim == 3 else "NHWC"
            if images and (x.shape[1:] != images[0].shape[1:]):
                raise DataError(f"'{path}': '{ikey}' images are {list(x.shape[1:])} but "
                                f"train_images are {list(images[0].shape[1:])}; they must match")
            layout = here
            images.append(x)
            labels.append(y)
            split += [part] * len(x)
            ids += [f"{part}/{i}" for i in range(len(x))]
    codes, class_names, hint = _labels(labels, name, path)
    tensor, cached, aspects = cached_arrays(np.concatenate(images), layout, opts,
                              f"'{path}'")
    return ImageSet(images=tensor, labels=codes, class_names=class_names, name=stem,
                    description=f"MedMNIST {stem} from '{path}' ({len(class_names)} "
                                f"{'labels' if hint else 'classes'}, official splits)",
                    ids=np.asarray(ids), split=np.asarray(split), task_hint=hint,
                    aspects=aspects,
                    origin=f"read {len(codes):,} images from '{path}'" + cached)


def _array(archive, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError:
        raise DataError(f"'{path}': array '{key}' holds Python objects (pickled), which "
                        "deepfit will not load; save plain numeric arrays") from None
    except Exception as exc:
        raise DataError(f"'{path}': array '{key}' cannot be read ({type(exc).__name__}); "
                        "the file may be damaged") from None


def _images(x: np.ndarray, key: str, path: Path) -> np.ndarray:
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] == 3)):
        raise DataError(f"'{path}': '{key}' has shape {list(x.shape)}; expected (N, H, W) gray "
                        "or (N, H, W, 3) RGB images")
    if x.dtype == np.uint8:
        return x
    if x.size and (x.dtype.kind not in "iuf" or not np.all(np.isfinite(x))
                   or x.min() < 0 or x.max() > 255 or not np.all(x == np.round(x))):
        raise DataError(f"'{path}': '{key}' holds {x.dtype} values that are not whole numbers "
                        "in 0..255; store the images as uint8")
    return x.astype(np.uint8)


def _labels(parts: list[np.ndarray], name: str, path: Path):
    widths = {p.shape[1] if p.ndim == 2 else 1 for p in parts}
    if any(p.ndim > 2 for p in parts) or len(widths) != 1:
        raise DataError(f"'{path}': label arrays have shapes {[list(p.shape) for p in parts]}; "
                        "expected (N, 1) class codes or (N, L) 0/1 labels in every split")
    table = MEDMNIST_CLASSES.get(name)
    width = widths.pop()
    if width == 1:
        codes = np.concatenate([check_codes(p, f"'{path}' labels") for p in parts])
        count = int(codes.max()) + 1 if codes.size else 0
        names = table if table and count <= len(table) else digit_names(count)
        return codes, list(names), None
    multi = np.concatenate(parts)
    if multi.size and not np.isin(multi, (0, 1)).all():
        raise DataError(f"'{path}': multi-label arrays (N, {width}) must hold only 0 and 1")
    names = table if table and len(table) == width else digit_names(width)
    return multi.astype(np.uint8), list(names), "multilabel"


def _download(url: str, target: Path) -> Path:
    """Fetch ``url`` to ``target`` atomically; a clear DataError when offline."""
    def fetch(out: Any) -> None:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)

    try:
        atomic_write(target, fetch)
    except (OSError, http.client.HTTPException, socket.timeout, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DataError(f"could not download {url} to {target.parent} (offline?): {reason}; "
                        "put the file there or pass data.root") from None
    return target
