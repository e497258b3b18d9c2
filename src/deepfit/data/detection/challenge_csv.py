"""The Lacuna Malaria Detection Challenge layout: a folder of images and a CSV with one row
per box, ``Image_ID, class, ymin, xmin, ymax, xmax`` (absolute pixels), where a row of class
``NEG`` marks an image with nothing to find (its coordinates are ignored).

The images are looked for in an ``images/`` folder next to the CSV, else next to the CSV.
Rows are named as a spreadsheet numbers them: the header is row 1, the first box row 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from deepfit.data.detection.box_checks import ImageEntry, RawBox, assemble
from deepfit.data.detection.boxes import NEG, DetectionSet
from deepfit.data.images.csvfiles import read_image_csv
from deepfit.errors import DataError, did_you_mean

ID_COLUMN, CLASS_COLUMN = "Image_ID", "class"
COORD_COLUMNS = ("ymin", "xmin", "ymax", "xmax")  # the challenge's order
REQUIRED = (ID_COLUMN, CLASS_COLUMN, *COORD_COLUMNS)
IGNORED = ("confidence",)  # the challenge's Train.csv has it (always 1): not used


def is_challenge_csv(path: Path) -> bool:
    """True when ``path`` is a CSV whose header has the challenge's columns (any case)."""
    if path.suffix.lower() not in (".csv", ".tsv") or not path.is_file():
        return False
    try:
        header = read_image_csv(path, nrows=0).columns
    except (DataError, OSError):
        return False
    lower = {str(c).strip().lower() for c in header}
    return all(c.lower() in lower for c in REQUIRED)


def default_image_dir(csv_path: Path) -> Path:
    """``images/`` next to the CSV when it exists, else the CSV's folder."""
    beside = csv_path.parent / "images"
    return beside if beside.is_dir() else csv_path.parent


def _columns(frame: pd.DataFrame, path: Path, group_column: Optional[str]) -> dict[str, str]:
    """{expected name: the CSV's column}, matching case and surrounding spaces loosely."""
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    found = {}
    for name in REQUIRED + ((group_column,) if group_column else ()):
        column = by_lower.get(name.strip().lower())
        if column is None:
            what = " (data.group_column)" if name == group_column else ""
            raise DataError(f"'{path}' has no column '{name}'{what}"
                            f"{did_you_mean(name, map(str, frame.columns))}; a detection CSV "
                            f"needs {', '.join(REQUIRED)}; columns are {list(frame.columns)}")
        found[name] = column
    return found


def read_challenge_csv(path: "str | Path", image_dir: "str | Path | None" = None,
                       group_column: Optional[str] = None,
                       label_map: Optional[dict] = None) -> DetectionSet:
    """Read a challenge-layout CSV and check it (see ``box_checks``).

    Args:
        path: the CSV (e.g. ``Train.csv``).
        image_dir: the folder the ``Image_ID`` names start from (default:
            ``default_image_dir``).
        group_column: a column naming each image's slide or patient (one value per image).
        label_map: ``data.label_map`` renaming or merging classes.

    Raises:
        DataError: a missing column, an empty cell, two groups for one image, and everything
            ``box_checks.assemble`` refuses, each naming the row and the Image_ID.
    """
    path = Path(path)
    frame = read_image_csv(path)
    if frame.empty:
        raise DataError(f"'{path}' has a header but no rows")
    cols = _columns(frame, path, group_column)
    used = set(cols.values())
    notes = []
    extra = [str(c) for c in frame.columns if c not in used]
    unused = [c for c in extra if c.strip().lower() not in IGNORED]
    if unused:
        notes.append(f"'{path}': column(s) {unused} not used (a detection CSV uses "
                     f"{', '.join(REQUIRED)}; a slide or patient column goes in "
                     "data.group_column)")
    coords = {c: pd.to_numeric(frame[cols[c]].str.strip(), errors="coerce").to_numpy(np.float64)
              for c in COORD_COLUMNS}
    raws, entries = [], {}
    ids = frame[cols[ID_COLUMN]].str.strip().tolist()
    classes = frame[cols[CLASS_COLUMN]].str.strip().tolist()
    groups = frame[cols[group_column]].str.strip().tolist() if group_column else None
    for i, (image_id, cls) in enumerate(zip(ids, classes)):
        where = f"'{path.name}' row {i + 2}"
        if not image_id:
            raise DataError(f"{where}: the {ID_COLUMN} cell is empty; name the image or "
                            "remove the row (rows counted as a spreadsheet does, header = row 1)")
        if not cls:
            raise DataError(f"{where} (image '{image_id}'): the {CLASS_COLUMN} cell is empty; "
                            f"name the class, or write {NEG} for an image with no objects")
        group = groups[i] if groups else None
        if groups is not None and not group:
            raise DataError(f"{where} (image '{image_id}'): the group column '{group_column}' "
                            "is empty; every image needs its slide or patient")
        entry = entries.setdefault(image_id, ImageEntry(where, group=group))
        if group is not None and group != entry.group:
            raise DataError(f"{where}: image '{image_id}' is in group '{group}' but "
                            f"{entry.where} puts it in '{entry.group}'; one image belongs to "
                            f"one slide or patient (column '{group_column}')")
        is_neg = cls.upper() == NEG
        xyxy = tuple(float(coords[c][i]) for c in ("xmin", "ymin", "xmax", "ymax"))
        raws.append(RawBox(where, image_id, None if is_neg else cls, xyxy))
    folder = Path(image_dir) if image_dir is not None else default_image_dir(path)
    return assemble(raws, entries, folder, f"challenge CSV '{path}'", label_map=label_map,
                    notes=notes)


def number(value: float) -> str:
    """A float32 coordinate as its shortest text that reads back to the same float32."""
    return np.format_float_positional(np.float32(value), trim="-")


def write_challenge_csv(data: DetectionSet, path: "str | Path",
                        group_column: str = "group") -> Path:
    """Write ``data`` as a challenge CSV: one row per box in image order, one ``NEG`` row
    (coordinates 0) per image without boxes, and ``group_column`` when the set has groups.
    Reading it back (with the same image folder) gives ``data`` again."""
    path = Path(path)
    rows = []
    for i, im in enumerate(data.images):
        group = {group_column: data.groups[i]} if data.groups is not None else {}
        if im.is_negative:
            rows.append({ID_COLUMN: im.image_id, CLASS_COLUMN: NEG,
                         **{c: "0" for c in COORD_COLUMNS}, **group})
        for (x0, y0, x1, y1), code in zip(im.boxes, im.labels):
            rows.append({ID_COLUMN: im.image_id, CLASS_COLUMN: data.class_names[code],
                         "ymin": number(y0), "xmin": number(x0), "ymax": number(y1),
                         "xmax": number(x1), **group})
    columns = [*REQUIRED, *([group_column] if data.groups is not None else [])]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path
