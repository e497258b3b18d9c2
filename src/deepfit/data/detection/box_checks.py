"""From the rows a reader found to a checked ``DetectionSet``: every format (challenge CSV,
COCO, YOLO) goes through ``assemble``, so a problem reads the same whatever the file.

Each kind of problem stops with one line naming its first occurrence (the CSV row as a
spreadsheet numbers it, the header being row 1; the COCO annotation id; the YOLO file and
line) and the image, with how many more there are and what to do. Boxes up to
``EDGE_TOLERANCE`` pixels outside the image (rounding of annotation tools) are clipped to
it and counted in a note; farther out is an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from deepfit.data.detection.boxes import NEG, DetectionSet, ImageBoxes, image_size
from deepfit.data.images.decode import IMAGE_SUFFIXES, SCANNER_ADVICE, scanner_format
from deepfit.data.labels import check_lookalikes, renamed
from deepfit.errors import DataError

EDGE_TOLERANCE = 1.0  # pixels: boxes this far outside the image are clipped, not refused


@dataclass(frozen=True)
class RawBox:
    """One box (or NEG marker, ``cls`` None) as a reader found it.

    ``where`` names it for the user ("'Train.csv' row 7", "'labels.json' annotation id 12",
    "'labels/a.txt' line 3"); coordinates are absolute pixels, NaN when absent."""

    where: str
    image_id: str
    cls: Optional[str]
    xyxy: tuple[float, float, float, float]


@dataclass
class ImageEntry:
    """An image a reader found: where it is first named, its size when the format gives
    one (COCO), its group (slide, patient) when asked for."""

    where: str
    size: Optional[tuple[int, int]] = None
    group: Optional[str] = None


def _first(problems: list[str], kind: str, fix: str) -> None:
    """Stop on the first of ``problems`` (each "where ... what"), counting the rest."""
    if problems:
        more = f" (and {len(problems) - 1} more {kind})" if len(problems) > 1 else ""
        raise DataError(f"{problems[0]}{more}; {fix}")


def check_image_name(image_id: str, where: str) -> None:
    """Stop on an image name without a known image extension."""
    if image_id.lower().endswith(IMAGE_SUFFIXES):
        return
    scanner = scanner_format(image_id)
    if scanner:
        raise DataError(f"{where}: image '{image_id}' is a {scanner} file, {SCANNER_ADVICE}")
    suffix = Path(image_id).suffix or "no extension"
    raise DataError(f"{where}: image '{image_id}' has {suffix!s}, not an image extension "
                    f"({' '.join(IMAGE_SUFFIXES)}); name the file with its extension or "
                    "convert it")


def _sizes(entries: dict[str, ImageEntry], image_dir: Path) -> dict[str, tuple[int, int]]:
    """Each image's (H, W) from its file's header; a size the format states must agree."""
    sizes = {}
    for image_id, entry in entries.items():
        check_image_name(image_id, entry.where)
        actual = image_size(image_dir / image_id, f"{entry.where} (image '{image_id}')")
        if entry.size is not None and tuple(entry.size) != actual:
            raise DataError(f"{entry.where}: image '{image_id}' is stated as {entry.size[1]}x"
                            f"{entry.size[0]} (width x height) but the file is {actual[1]}x"
                            f"{actual[0]}; fix the stated size or the file")
        sizes[image_id] = actual
    return sizes


def _box_problems(raws: list[RawBox], sizes: dict[str, tuple[int, int]]) -> None:
    """Stop on boxes without four numbers, inverted, of zero size, or outside their image
    by more than ``EDGE_TOLERANCE``."""
    missing, inverted, empty, outside = [], [], [], []
    for raw in raws:
        if raw.cls is None:
            continue
        x0, y0, x1, y1 = raw.xyxy
        name = f"{raw.where} (image '{raw.image_id}')"
        if not all(math.isfinite(v) for v in raw.xyxy):
            missing.append(f"{name}: a box coordinate is missing or not a number")
        elif x1 < x0 or y1 < y0:
            axis = "xmax < xmin" if x1 < x0 else "ymax < ymin"
            inverted.append(f"{name}: {axis} (xmin={x0:g}, ymin={y0:g}, xmax={x1:g}, "
                            f"ymax={y1:g})")
        elif x1 == x0 or y1 == y0:
            empty.append(f"{name}: the box has zero {'width' if x1 == x0 else 'height'} "
                         f"(xmin={x0:g}, ymin={y0:g}, xmax={x1:g}, ymax={y1:g})")
        else:
            h, w = sizes[raw.image_id]
            tol = EDGE_TOLERANCE
            if x0 < -tol or y0 < -tol or x1 > w + tol or y1 > h + tol:
                turned = (" (it would fit the image turned a quarter: are the boxes drawn on "
                          "the photo before its EXIF rotation?)"
                          if x1 <= h + tol and y1 <= w + tol else "")
                outside.append(f"{name}: box (xmin={x0:g}, ymin={y0:g}, xmax={x1:g}, "
                               f"ymax={y1:g}) lies outside the {w}x{h} image{turned}")
    _first(missing, "rows", "give all four coordinates as numbers")
    _first(inverted, "rows", "swap the two values (are xmin/xmax or the ymin/xmin columns "
           "mixed up?)")
    _first(empty, "rows", "remove the box or give it a size")
    _first(outside, "boxes", "fix the coordinates (absolute pixels of the image file)")


def assemble(raws: list[RawBox], entries: dict[str, ImageEntry], image_dir: Path,
             source: str, class_order: Optional[list[str]] = None,
             label_map: Optional[dict] = None, notes: Optional[list[str]] = None
             ) -> DetectionSet:
    """Check what a reader found and build the ``DetectionSet``.

    Args:
        raws: the boxes and NEG markers, in the source's order.
        entries: every image, boxes or not, in the source's order.
        image_dir: the folder the image ids start from.
        source: how the set was read ("challenge CSV 'Train.csv'"), for messages.
        class_order: the class names in label order when the format fixes it (COCO
            categories, YOLO names); else the sorted names.
        label_map: ``data.label_map`` ({old: new}) renaming or merging classes.
        notes: the reader's notes, extended here.

    Raises:
        DataError: one line for the first problem of each kind (see the module docstring).
    """
    notes = list(notes or [])
    if not entries:
        raise DataError(f"{source} lists no images; add rows or check the file")
    sizes = _sizes(entries, image_dir)
    _box_problems(raws, sizes)
    names = list(class_order) if class_order is not None else sorted(
        {r.cls for r in raws if r.cls is not None})
    bad_neg = next((r for r in raws if r.cls is not None and r.cls.strip().upper() == NEG), None)
    if bad_neg is not None:
        raise DataError(f"{bad_neg.where} (image '{bad_neg.image_id}'): class '{bad_neg.cls}' "
                        f"carries a box, but '{NEG}' marks an image with no objects; remove the "
                        "box or name its class")
    new_names = renamed(names, label_map or {}, f"{source}" if label_map else None)
    merged = list(dict.fromkeys(new_names))
    code = {old: merged.index(new) for old, new in zip(names, new_names)}
    counts = {n: 0 for n in merged}
    for r in raws:
        if r.cls is not None:
            counts[merged[code[r.cls]]] += 1
    check_lookalikes(counts, source, "boxes", label_map)
    by_image: dict[str, list[RawBox]] = {image_id: [] for image_id in entries}
    for r in raws:
        by_image[r.image_id].append(r)
    images, duplicates, clipped = [], [], 0
    for image_id, rows in by_image.items():
        boxes = [r for r in rows if r.cls is not None]
        negs = [r for r in rows if r.cls is None]
        if boxes and negs:
            notes.append(f"{negs[0].where}: image '{image_id}' is marked {NEG} but also has "
                         f"{len(boxes)} box(es); the {NEG} row is ignored")
        seen: dict[tuple, str] = {}
        for r in boxes:
            key = (code[r.cls], *r.xyxy)
            if key in seen:
                duplicates.append(f"{r.where} (image '{image_id}'): the same {r.cls} box as "
                                  f"{seen[key]}")
            seen.setdefault(key, r.where)
        h, w = sizes[image_id]
        xyxy = np.array([r.xyxy for r in boxes], dtype=np.float64).reshape(-1, 4)
        inside = np.clip(xyxy, 0, [w, h, w, h])
        clipped += int((inside != xyxy).any(axis=1).sum())
        images.append(ImageBoxes(image_id, (h, w), inside.astype(np.float32),
                                 np.array([code[r.cls] for r in boxes], dtype=np.int64)))
    _first(duplicates, "duplicates", "remove the repeated rows (a box counted twice is a "
           "false miss in mAP)")
    if clipped:
        notes.append(f"{source}: {clipped} box(es) reaching up to {EDGE_TOLERANCE:g} px past "
                     "the image edge were clipped to the image")
    groups = None
    if any(e.group is not None for e in entries.values()):
        groups = [str(e.group) for e in entries.values()]
    return DetectionSet(merged, images, image_dir, groups, source, notes)
