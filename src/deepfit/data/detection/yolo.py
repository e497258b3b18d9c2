"""YOLO (Ultralytics / Darknet) detection folders: ``images/`` and a mirrored ``labels/``
with one text file per image, a line ``class cx cy w h`` per box (class from 0, the rest
as fractions of the image's width and height), and the class names in ``data.yaml``
(``names``: a list or {index: name}) or ``classes.txt`` (one name a line). An image without
a label file, or with an empty one, has nothing to find (the challenge's NEG).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Optional

import yaml

from deepfit.data.detection.box_checks import ImageEntry, RawBox, assemble
from deepfit.data.detection.boxes import DetectionSet, image_size
from deepfit.data.images.decode import is_image_name
from deepfit.data.images.options import split_name
from deepfit.errors import DataError

NAME_FILES = ("data.yaml", "data.yml", "classes.txt")


def is_yolo_folder(root: Path) -> bool:
    """True for a folder with ``labels/`` and a file naming the classes."""
    return (root.is_dir() and (root / "labels").is_dir()
            and any((root / f).is_file() for f in NAME_FILES))


def _class_names(root: Path) -> list[str]:
    for name in NAME_FILES:
        file = root / name
        if not file.is_file():
            continue
        if name == "classes.txt":
            return [line.strip() for line in file.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
        try:
            spec = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise DataError(f"'{file}' is not valid YAML: {str(exc).splitlines()[0]}") from None
        names = spec.get("names") if isinstance(spec, dict) else None
        if isinstance(names, dict):
            keys = sorted(names, key=int)
            if [int(k) for k in keys] != list(range(len(keys))):
                raise DataError(f"'{file}': names has indices {keys}; they must run 0, 1, 2, ...")
            names = [names[k] for k in keys]
        if not isinstance(names, list) or not names:
            raise DataError(f"'{file}' has no 'names' list of classes; add names: [a, b, ...]")
        return [str(n).strip() for n in names]
    raise DataError(f"'{root}' has no {' or '.join(NAME_FILES)} naming the classes; add one")


def _parse_line(line: str, where: str, image_id: str, size: tuple[int, int],
                names: list[str]) -> RawBox:
    parts = line.split()
    if len(parts) != 5:
        raise DataError(f"{where} (image '{image_id}'): {len(parts)} values, expected 5 "
                        "(class cx cy w h); segmentation polygons are not boxes")
    try:
        code = int(parts[0])
        cx, cy, w, h = (float(v) for v in parts[1:])
    except ValueError:
        raise DataError(f"{where} (image '{image_id}'): '{line.strip()}' is not 'class cx cy "
                        "w h' with a whole class number and four numbers") from None
    if not 0 <= code < len(names):
        raise DataError(f"{where} (image '{image_id}'): class {code} is not among the "
                        f"{len(names)} names (0 to {len(names) - 1}); fix it or add the name")
    if not all(math.isfinite(v) for v in (cx, cy, w, h)):
        cx = math.nan
    height, width = size
    xyxy = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
            (cy + h / 2) * height)
    return RawBox(where, image_id, names[code], xyxy)


def read_yolo(root: "str | Path", label_map: Optional[dict] = None) -> DetectionSet:
    """Read a YOLO folder and check it (see ``box_checks``)."""
    root = Path(root)
    names = _class_names(root)
    images_dir, labels_dir = root / "images", root / "labels"
    if not images_dir.is_dir():
        raise DataError(f"'{root}' has labels/ but no images/ folder; put the images there")
    files = sorted(Path(d, f).relative_to(images_dir).as_posix()
                   for d, _, fs in os.walk(images_dir) for f in fs if is_image_name(f))
    if not files:
        raise DataError(f"'{images_dir}' holds no images")
    entries, raws, unlabelled = {}, [], 0
    for image_id in files:
        label = labels_dir / Path(image_id).with_suffix(".txt")
        shown = label.relative_to(root).as_posix()
        if not label.is_file():
            entries[image_id] = ImageEntry(f"'images/{image_id}'")
            unlabelled += 1
            continue
        size = image_size(images_dir / image_id, f"'{shown}'")  # scales the fractions
        entries[image_id] = ImageEntry(f"'{shown}'", size)
        for n, line in enumerate(label.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                raws.append(_parse_line(line, f"'{shown}' line {n}", image_id, size, names))
    stems = {Path(f).with_suffix("").as_posix() for f in files}
    orphans = sorted(p.relative_to(labels_dir).with_suffix("").as_posix()
                     for p in labels_dir.rglob("*.txt"))
    orphans = [o for o in orphans if o not in stems]
    if orphans:
        raise DataError(f"'labels/{orphans[0]}.txt' has no image in '{images_dir}' (and "
                        f"{len(orphans) - 1} more); add the image or remove the label file")
    notes = []
    if unlabelled:
        notes.append(f"'{root}': {unlabelled} image(s) without a label file read as having "
                     "nothing to find (NEG)")
    parts = [d.name for d in images_dir.iterdir() if d.is_dir() and split_name(d.name)]
    if parts:
        notes.append(f"'{root}': the folders {sorted(parts)} are read as one set; deepfit "
                     "draws its own split by image")
    return assemble(raws, entries, images_dir, f"YOLO folder '{root}'", names, label_map, notes)


def write_yolo(data: DetectionSet, root: "str | Path") -> Path:
    """Write ``data`` as a YOLO folder: ``images/`` (copied from the set's image folder
    unless it is already there), ``labels/*.txt``, ``classes.txt`` and ``data.yaml``.
    Coordinates are written to 9 significant digits."""
    root = Path(root)
    images_dir = root / "images"
    for i, im in enumerate(data.images):
        target = images_dir / im.image_id
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(data.path(i), target)
        label = root / "labels" / Path(im.image_id).with_suffix(".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        h, w = im.size
        lines = [f"{code} {(x0 + x1) / 2 / w:.9g} {(y0 + y1) / 2 / h:.9g} {(x1 - x0) / w:.9g} "
                 f"{(y1 - y0) / h:.9g}" for (x0, y0, x1, y1), code
                 in zip(im.boxes.astype("float64"), im.labels)]
        label.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (root / "classes.txt").write_text("".join(n + "\n" for n in data.class_names),
                                      encoding="utf-8")
    (root / "data.yaml").write_text(yaml.safe_dump(
        {"path": ".", "train": "images", "val": "images",
         "names": dict(enumerate(data.class_names))}, sort_keys=False), encoding="utf-8")
    return root
