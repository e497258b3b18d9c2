"""COCO JSON detection annotations: ``images`` (id, file_name, width, height),
``annotations`` (id, image_id, category_id, bbox = [x, y, width, height] in pixels) and
``categories`` (id, name). Classes are the categories in id order; an image without
annotations has nothing to find (the challenge's NEG). A category named ``NEG`` marks such
images too and is not a class. Crowd regions (``iscrowd: 1``) are left out, with a note.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

from deepfit.data.detection.box_checks import ImageEntry, RawBox, assemble
from deepfit.data.detection.boxes import NEG, DetectionSet
from deepfit.errors import DataError


def is_coco_json(path: Path) -> bool:
    """True for a JSON file whose top level has ``images`` and ``annotations``; reads only
    the first 64 kB to decide."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    with open(path, "rb") as fh:
        head = fh.read(65536)
    return b'"images"' in head or b'"annotations"' in head


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"'{path}' cannot be read as JSON: {exc}; check the file") from None
    missing = [k for k in ("images", "annotations", "categories")
               if not isinstance(data, dict) or not isinstance(data.get(k), list)]
    if missing:
        raise DataError(f"'{path}' is not COCO detection JSON: no list '{missing[0]}' at its "
                        "top level (expected images, annotations, categories)")
    return data


def _field(item: Any, key: str, what: str, path: Path) -> Any:
    if not isinstance(item, dict) or key not in item:
        raise DataError(f"'{path.name}' {what} has no '{key}'; every entry of its list needs it")
    return item[key]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_coco(path: "str | Path", image_dir: "str | Path | None" = None,
              group_column: Optional[str] = None, label_map: Optional[dict] = None
              ) -> DetectionSet:
    """Read a COCO JSON file and check it (see ``box_checks``).

    Args:
        path: the JSON file.
        image_dir: the folder ``file_name`` starts from (default: ``images/`` next to the
            JSON when it exists, else the JSON's folder).
        group_column: a key of each image entry naming its slide or patient.
        label_map: ``data.label_map`` renaming or merging classes.
    """
    path = Path(path)
    data = _load(path)
    name = path.name
    categories = {}
    for cat in data["categories"]:
        cid = _field(cat, "id", "a category", path)
        categories[cid] = str(_field(cat, "name", f"category {cid}", path)).strip()
    classes = [categories[c] for c in sorted(categories, key=_number)
               if categories[c].upper() != NEG]
    entries: dict[str, ImageEntry] = {}
    by_id: dict[Any, str] = {}
    for img in data["images"]:
        iid = _field(img, "id", "an image", path)
        file_name = str(_field(img, "file_name", f"image id {iid}", path)).strip()
        where = f"'{name}' image id {iid}"
        if iid in by_id:
            raise DataError(f"{where}: the id is given twice ('{by_id[iid]}', '{file_name}'); "
                            "give each image its own id")
        if file_name in entries:
            raise DataError(f"{where}: file '{file_name}' is listed twice "
                            f"({entries[file_name].where}); list each image once")
        size = None
        if "width" in img and "height" in img:
            size = (int(_number(img["height"])), int(_number(img["width"])))
        group = None
        if group_column:
            group = img.get(group_column)
            if group is None or not str(group).strip():
                raise DataError(f"{where}: no '{group_column}' (data.group_column); every "
                                "image needs its slide or patient")
            group = str(group).strip()
        by_id[iid] = file_name
        entries[file_name] = ImageEntry(where, size, group)
    raws, crowd = [], 0
    for ann in data["annotations"]:
        aid = ann.get("id", "?") if isinstance(ann, dict) else "?"
        where = f"'{name}' annotation id {aid}"
        iid = _field(ann, "image_id", f"annotation id {aid}", path)
        cid = _field(ann, "category_id", f"annotation id {aid}", path)
        if iid not in by_id:
            raise DataError(f"{where}: image_id {iid} is not in 'images'; add the image or "
                            "remove the annotation")
        if cid not in categories:
            raise DataError(f"{where}: category_id {cid} is not in 'categories' (ids "
                            f"{sorted(categories, key=str)}); fix the id or add the category")
        if ann.get("iscrowd"):
            crowd += 1
            continue
        bbox = ann.get("bbox")
        x, y, w, h = ([_number(v) for v in bbox] if isinstance(bbox, list) and len(bbox) == 4
                      else [math.nan] * 4)
        cls = None if categories[cid].upper() == NEG else categories[cid]
        raws.append(RawBox(where, by_id[iid], cls, (x, y, x + w, y + h)))
    notes = []
    if crowd:
        notes.append(f"'{path}': {crowd} crowd region(s) (iscrowd=1) left out: deepfit "
                     "trains and scores single objects")
    if image_dir is None:
        image_dir = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    return assemble(raws, entries, Path(image_dir), f"COCO JSON '{path}'", classes, label_map,
                    notes)


def _plain(value: float) -> "int | float":
    """A coordinate for JSON: an integer when whole, else the float64 of the float32."""
    value = float(value)
    return int(value) if value.is_integer() else value


def write_coco(data: DetectionSet, path: "str | Path", group_column: str = "group") -> Path:
    """Write ``data`` as COCO JSON (image and category ids from 1, bbox [x, y, w, h]); the
    image folder is not copied. Reading it back gives ``data`` again."""
    path = Path(path)
    images, annotations = [], []
    for i, im in enumerate(data.images, start=1):
        entry = {"id": i, "file_name": im.image_id, "height": im.size[0], "width": im.size[1]}
        if data.groups is not None:
            entry[group_column] = data.groups[i - 1]
        images.append(entry)
        for box, code in zip(im.boxes.astype("float64"), im.labels):
            x0, y0, x1, y1 = box
            annotations.append({"id": len(annotations) + 1, "image_id": i,
                                "category_id": int(code) + 1,
                                "bbox": [_plain(x0), _plain(y0), _plain(x1 - x0),
                                         _plain(y1 - y0)],
                                "area": _plain((x1 - x0) * (y1 - y0)), "iscrowd": 0})
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(data.class_names)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories}, indent=1), encoding="utf-8")
    return path
