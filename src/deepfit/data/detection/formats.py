"""Which detection format a path holds, and reading it whatever it is.

A path may be the annotation file itself (a challenge CSV, a COCO JSON, a YOLO
``data.yaml``) or a folder holding one: a challenge CSV (``Train.csv`` first), a COCO JSON
(at the top or in ``annotations/``), or a YOLO layout (``labels/`` + ``data.yaml`` or
``classes.txt``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from deepfit.data.detection.boxes import DetectionSet
from deepfit.data.detection.challenge_csv import is_challenge_csv, read_challenge_csv
from deepfit.data.detection.coco import is_coco_json, read_coco
from deepfit.data.detection.yolo import NAME_FILES, is_yolo_folder, read_yolo
from deepfit.errors import DataError

FORMATS = ("challenge-csv", "coco", "yolo")
_LAYOUTS = ("a challenge CSV (Image_ID, class, ymin, xmin, ymax, xmax) with its images, "
            "a COCO JSON (images, annotations, categories), or a YOLO folder (images/, "
            f"labels/ and {' or '.join(NAME_FILES)})")


def _one(found: list[Path], kind: str, folder: Path) -> Optional[Path]:
    """The single file of ``kind`` in ``folder`` (a train file first), else None; several
    equal candidates are an error naming them."""
    if len(found) <= 1:
        return found[0] if found else None
    train = [p for p in found if "train" in p.stem.lower()]
    if len(train) == 1:
        return train[0]
    names = ", ".join(p.name for p in found)
    raise DataError(f"'{folder}' holds {len(found)} {kind} files ({names}); give the one to "
                    "use as --data")


def detect_format(path: "str | Path") -> tuple[str, Path]:
    """(format, file or folder to read) for ``path``; the format is one of ``FORMATS``.

    Raises:
        DataError: the path does not exist, holds none of the formats, or holds several
            candidates of one.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"'{path}' does not exist; give a detection CSV, a COCO JSON or a "
                        "YOLO folder")
    if path.is_file():
        if is_challenge_csv(path):
            return "challenge-csv", path
        if is_coco_json(path):
            return "coco", path
        if path.name in NAME_FILES and is_yolo_folder(path.parent):
            return "yolo", path.parent
        raise DataError(f"'{path}' is not a detection annotation file; expected {_LAYOUTS}")
    csv = _one(sorted(p for p in path.iterdir() if is_challenge_csv(p)), "detection CSV", path)
    if csv is not None:
        return "challenge-csv", csv
    jsons = [p for d in (path, path / "annotations") if d.is_dir()
             for p in sorted(d.glob("*.json")) if is_coco_json(p)]
    coco = _one(jsons, "COCO JSON", path)
    if coco is not None:
        return "coco", coco
    if is_yolo_folder(path):
        return "yolo", path
    raise DataError(f"'{path}' holds no detection data set; expected {_LAYOUTS}")


def load_detection(path: "str | Path", group_column: Optional[str] = None,
                   label_map: Optional[dict] = None) -> DetectionSet:
    """Read and check the detection data set at ``path`` in whichever format it is.

    Args:
        path: a file or folder (see the module docstring).
        group_column: the CSV column or COCO image key naming each image's slide or patient
            (YOLO has no place for one: refused).
        label_map: ``data.label_map`` renaming or merging classes.
    """
    kind, where = detect_format(path)
    if kind == "challenge-csv":
        return read_challenge_csv(where, group_column=group_column, label_map=label_map)
    if kind == "coco":
        return read_coco(where, group_column=group_column, label_map=label_map)
    if group_column:
        raise DataError(f"data.group_column='{group_column}' does not apply to the YOLO folder "
                        f"'{where}' (YOLO labels name no slide or patient); convert to a CSV "
                        "with a group column, or leave data.group_column unset")
    return read_yolo(where, label_map=label_map)
