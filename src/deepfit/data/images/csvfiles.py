"""A CSV / TSV listing image files and their labels (and optionally a split column)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

import pandas as pd

from deepfit.data.images.batch import ImageList, build_image_set
from deepfit.data.images.decode import is_image_name
from deepfit.data.images.imageset import ImageSet
from deepfit.data.images.options import ImageOptions, encode_labels, split_name
from deepfit.data.sources.tabular import read_csv_checked, sniff_format, text_sample
from deepfit.errors import DataError, did_you_mean

CSV_SUFFIXES = (".csv", ".tsv")
_IMAGE_NAMES = ("path", "file", "filename", "file_name", "filepath", "image", "img",
                "image_path", "img_path")
LABEL_NAMES = ("label", "class", "target", "y", "labels", "category")
_HEAD_ROWS = 50  # rows read to recognise an image CSV


def is_image_csv(path: Path, opts: ImageOptions) -> bool:
    """True when the CSV has a column of image paths (or ``opts.image_column`` is set).

    Reads only the first rows; a CSV that cannot be parsed is left to the table loader.
    """
    if opts.image_column:
        return True
    try:
        head = _head_columns(path)
    except (DataError, OSError, csv.Error):
        return False
    return _find_image_column(head) is not None


def _head_columns(path: Path) -> dict[str, list[str]]:
    """The first rows as text, column by column, read with the csv module: pandas takes
    seconds for the first rows of a table thousands of columns wide (an omics CSV)."""
    sample = text_sample(path, lines=_HEAD_ROWS + 1)
    sep, _ = sniff_format(sample, "\t" if path.suffix.lower() == ".tsv" else None)
    rows = [r for r in csv.reader(io.StringIO(sample), delimiter=sep, skipinitialspace=True)
            if r]
    if not rows:
        return {}
    return {name.strip(): [r[j] if j < len(r) else "" for r in rows[1:]]
            for j, name in enumerate(rows[0])}


def load_image_csv(path: Path, opts: ImageOptions) -> ImageSet:
    """Read the images a CSV lists; relative paths start from the CSV's folder.

    Raises:
        DataError: a missing column, an empty cell, a path to a missing file, or an unknown
            split value (each naming the row).
    """
    frame = _read(path)
    if frame.empty:
        raise DataError(f"'{path}' has a header but no rows")
    image_col = image_column(frame, path, opts)
    split_col = next((c for c in frame.columns if c.strip().lower() == "split"
                      and c != image_col), None)
    group_col = opts.group_column
    if group_col is not None and group_col not in frame.columns:
        raise DataError(f"'{path}' has no column '{group_col}' (data.group_column)"
                        f"{did_you_mean(group_col, frame.columns)}; columns are "
                        f"{list(frame.columns)}")
    label_col = _label_column(frame, path, opts, {image_col, split_col, group_col})
    files, ids = [], []
    for row, value in enumerate(frame[image_col].tolist(), start=1):
        file, image_id = listed_image(path, row, value, image_col)
        files.append(file)
        ids.append(image_id)
    raw_labels = [v.strip() for v in frame[label_col].tolist()]
    empty = next((i for i, v in enumerate(raw_labels, start=1) if not v), None)
    if empty is not None:
        raise DataError(f"'{path}' row {empty}: the label column '{label_col}' is empty; "
                        "label the image or remove the row")
    labels, class_names = encode_labels(raw_labels)
    split = None
    if split_col is not None:
        split = []
        for row, value in enumerate(frame[split_col].tolist(), start=1):
            name = split_name(value)
            if name is None:
                raise DataError(f"'{path}' row {row}: split '{value}' in column '{split_col}' "
                                "is not train, val or test")
            split.append(name)
    groups = None
    if group_col is not None:
        groups = [v.strip() for v in frame[group_col].tolist()]
        blank = next((i for i, v in enumerate(groups, start=1) if not v), None)
        if blank is not None:
            raise DataError(f"'{path}' row {blank}: the group column '{group_col}' "
                            "(data.group_column) is empty; every image needs its group")
    items = ImageList(names=files, ids=ids, paths=files)
    return build_image_set(
        items, labels, class_names, name=path.stem, opts=opts, split=split, groups=groups,
        description=f"images listed in '{path}' (column '{image_col}', labels from "
                    f"'{label_col}', {len(class_names)} classes)")


def listed_image(path: Path, row: int, value: str, image_col: str) -> tuple[str, str]:
    """The file and id of the image named ``value`` at ``row`` (from 1) of the image CSV
    ``path``; a relative path starts from the CSV's folder.

    Raises:
        DataError: the cell is empty or the file does not exist (naming the row)."""
    value = value.strip()
    if not value:
        raise DataError(f"'{path}' row {row}: the image column '{image_col}' is empty; "
                        "give a file path or remove the row")
    file = Path(value).expanduser()
    file = file if file.is_absolute() else path.parent / file
    if not file.is_file():
        raise DataError(f"'{path}' row {row}: image file '{value}' does not exist (looked "
                        f"for '{file}'); fix the path (relative paths start from the "
                        "CSV's folder)")
    return str(file), Path(value).as_posix()


def read_image_csv(path: Path, **options) -> "pd.DataFrame | pd.io.parsers.TextFileReader":
    """The image CSV as text columns (``chunksize=`` in ``options``: in parts)."""
    sep, _ = sniff_format(text_sample(path), "\t" if path.suffix.lower() == ".tsv" else None)
    return read_csv_checked(path, sep=sep, dtype=str, keep_default_na=False, **options)


def _read(path: Path, nrows: Optional[int] = None) -> pd.DataFrame:
    """The CSV as text columns: labels and paths are compared as written."""
    frame = read_image_csv(path, nrows=nrows)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _find_image_column(frame: "pd.DataFrame | dict[str, list[str]]") -> Optional[str]:
    """The first column of image file names: among the usual names (``path``, ``image``,
    ...) any path counts; elsewhere every value must end in an image extension."""
    def path_like(value: str, named: bool) -> bool:
        return is_image_name(value) or (named and ("/" in value or "\\" in value))

    def all_paths(col: str, named: bool) -> bool:
        first = next((v.strip() for v in frame[col] if v.strip()), None)
        # The first value rules out most columns at once (a wide table has thousands).
        if first is None or not path_like(first, named):
            return False
        return all(path_like(v.strip(), named) for v in frame[col] if v.strip())

    columns = list(frame)  # a DataFrame's column names, or a dict's keys
    named = [col for col in columns if col.lower() in _IMAGE_NAMES]
    return (next((col for col in named if all_paths(col, True)), None)
            or next((col for col in columns if all_paths(col, False)), None))


def image_column(frame: pd.DataFrame, path: Path, opts: ImageOptions) -> str:
    """The column of image paths: ``opts.image_column``, else the one found by its values."""
    if opts.image_column:
        if opts.image_column not in frame.columns:
            raise DataError(f"'{path}' has no column '{opts.image_column}' (data.image_column)"
                            f"{did_you_mean(opts.image_column, frame.columns)}; columns are "
                            f"{list(frame.columns)}")
        return opts.image_column
    found = _find_image_column(frame)
    if found is None:
        raise DataError(f"no column of '{path}' holds image paths (columns: "
                        f"{list(frame.columns)}); name it with data.image_column")
    return found


def _label_column(frame: pd.DataFrame, path: Path, opts: ImageOptions,
                  taken: set[Optional[str]]) -> str:
    if opts.label_column:
        if opts.label_column not in frame.columns:
            raise DataError(f"'{path}' has no label column '{opts.label_column}'"
                            f"{did_you_mean(opts.label_column, frame.columns)}; columns are "
                            f"{list(frame.columns)}")
        return opts.label_column
    others = [c for c in frame.columns if c not in taken]
    named = next((c for c in others if c.lower() in LABEL_NAMES), None)
    if named is not None:
        return named
    if len(others) == 1:
        return others[0]
    raise DataError(f"cannot tell which column of '{path}' holds the labels (candidates: "
                    f"{others}); name it with data.target")
