"""Hugging Face image tables: Parquet / Arrow files, folders of them, ``save_to_disk`` output.

Read with pyarrow alone (the ``datasets`` package is only needed for the hub). The image
column holds ``{bytes, path}`` structs (the ``Image`` feature), raw bytes or file paths; class
names come from the ``ClassLabel`` feature in the schema's "huggingface" metadata (or the
folder's ``dataset_info.json``), else from the sorted distinct label values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from deepfit.data.images.batch import ImageList, build_image_set
from deepfit.data.images.imageset import ImageSet
from deepfit.data.images.options import ImageOptions, check_codes, digit_names, encode_labels
from deepfit.data.images.options import split_name
from deepfit.errors import DataError, did_you_mean

TABLE_SUFFIXES = (".parquet", ".pq", ".arrow")
_MARKERS = ("dataset_dict.json", "state.json", "dataset_info.json")
_IMAGE_NAMES = ("image", "img")
_LABEL_NAMES = ("label", "labels", "class", "target", "fine_label")


@dataclass
class Part:
    """One table of a dataset: a file (or a hub split) with its split and feature metadata."""

    table: object  # pyarrow.Table
    split: Optional[str]
    source: str  # the file path (or hub split), naming it and its rows in messages
    base: Optional[Path]  # folder that relative image paths start from
    features: dict
    stem: str = "rows"  # id prefix of its rows when it has no split

    @property
    def where(self) -> str:
        return f"'{self.source}'"


def is_image_table_file(path: Path, opts: ImageOptions) -> bool:
    """True when a .parquet / .arrow file's schema has an image column (no rows are read)."""
    try:
        schema = _schema(path)
    except Exception:  # unreadable: the table loader reports it
        return False
    return _image_column(schema, table_features(schema), opts) is not None


def is_hf_directory(folder: Path) -> bool:
    """True for ``save_to_disk`` output or a folder holding .parquet / .arrow files."""
    return any((folder / m).is_file() for m in _MARKERS) or bool(_table_files(folder))


def load_table_files(files: list[Path], opts: ImageOptions, name: str, origin: str,
                     splits: Optional[list[Optional[str]]] = None) -> ImageSet:
    """Read Parquet / Arrow files as one image set; ``splits`` gives each file's split."""
    parts = []
    for i, path in enumerate(files):
        schema = _schema(path)
        features = table_features(schema) or _info_features(path.parent)
        split = splits[i] if splits is not None else None
        parts.append(Part(_read(path, schema, features, opts), split, str(path), path.parent,
                          features, stem=path.stem))
    return assemble(parts, opts, name=name, description=f"Hugging Face image table {origin}")


def load_hf_directory(folder: Path, opts: ImageOptions) -> ImageSet:
    """A ``save_to_disk`` folder (Dataset or DatasetDict) or a folder of Parquet / Arrow files.

    The split of a file comes from the DatasetDict split, else the file name's prefix
    (``train-00000-of-00001.parquet``), else its folder name.

    Raises:
        DataError: a split name that is not train / validation / test, or files of which
            only some name a split.
    """
    dict_file = folder / "dataset_dict.json"
    if dict_file.is_file():
        try:
            names = json.loads(dict_file.read_text(encoding="utf-8"))["splits"]
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(f"'{dict_file}' is not a readable dataset_dict.json (no 'splits' "
                            "list); save the dataset again") from None
        files, splits = [], []
        for raw in names:
            split = split_name(raw)
            if split is None:
                raise DataError(f"split '{raw}' of '{folder}' is not train, validation or test;"
                                " remove it or rename it")
            shards = _arrow_shards(folder / str(raw))
            files += shards
            splits += [split] * len(shards)
        return load_table_files(files, opts, folder.name, f"'{folder}' (save_to_disk)", splits)
    if (folder / "state.json").is_file() or (folder / "dataset_info.json").is_file():
        files = _arrow_shards(folder)
        return load_table_files(files, opts, folder.name, f"'{folder}' (save_to_disk)")
    files = _table_files(folder)
    if not files:
        raise DataError(f"'{folder}' has no .parquet or .arrow files")
    guesses = [_split_of(f, folder) for f in files]
    if any(guesses) and not all(guesses):
        odd = files[guesses.index(None)]
        raise DataError(f"cannot tell the split of '{odd}' (name it train-*, validation-* or "
                        "test-*, or put it in a train/validation/test folder)")
    splits = guesses if any(guesses) else None
    return load_table_files(files, opts, folder.name, f"files in '{folder}'", splits)


def assemble(parts: list[Part], opts: ImageOptions, name: str, description: str) -> ImageSet:
    """Decode the images of ``parts`` and combine their labels into one ``ImageSet``.

    A part whose every label is missing (None, or -1: Hugging Face's "no label", as in many
    test splits) is left out and named in the description; a part with only some labels
    missing is an error.
    """
    names: list[str] = []
    ids: list[str] = []
    blobs: list[Optional[bytes]] = []
    paths: list[Optional[str]] = []
    raw_labels: list = []
    split: list[Optional[str]] = []
    counters: dict[str, int] = {}
    class_names: Optional[list[str]] = None
    multilabel = False
    unlabelled = []
    for part in parts:
        image_col = _image_column(part.table.schema, part.features, opts)
        if image_col is None:
            raise _no_image_column(part, opts)
        label_col, names_here, multi = _label_column(part.table.schema, part.features, opts,
                                                     image_col, part.where)
        labels = part.table.column(label_col).to_pylist()
        absent = [v is None or (isinstance(v, int) and v < 0) for v in labels]
        if labels and all(absent):
            unlabelled.append(part.source)
            continue
        if any(absent):
            row = absent.index(True)
            raise DataError(f"{part.where} row {row}: no label ({labels[row]}) in column "
                            f"'{label_col}', and {sum(absent):,} row(s) in all; label them or "
                            "remove them")
        if class_names is not None and names_here is not None and names_here != class_names:
            raise DataError(f"{part.where} names its classes {names_here[:5]}... unlike the "
                            f"other files ({class_names[:5]}...); all files must share one "
                            "ClassLabel")
        class_names = names_here or class_names
        multilabel = multilabel or multi
        part_blobs, part_paths = _images(part, image_col)
        key = part.split or part.stem
        start = counters.get(key, 0)
        counters[key] = start + len(labels)
        ids += [f"{key}/{start + i}" for i in range(len(labels))]
        names += [f"{part.source} row {i}" for i in range(len(labels))]
        blobs += part_blobs
        paths += part_paths
        raw_labels += labels
        split += [part.split] * len(labels)
    if not raw_labels:
        raise DataError(f"{parts[0].where} has no labelled rows" if len(parts) == 1 else
                        f"none of the {len(parts)} tables of {name} has labelled rows")
    if unlabelled:
        description += f"; left out unlabelled {', '.join(unlabelled)}"
    codes, class_names, hint = _codes(raw_labels, class_names, multilabel, parts[0].where)
    items = ImageList(names=names, ids=ids, paths=paths, blobs=blobs)
    return build_image_set(items, codes, class_names, name=name, description=description,
                           opts=opts, split=None if None in split else split,
                           task_hint=hint, what="encoded images")


def _codes(raw: list, names: Optional[list[str]], multilabel: bool, where: str):
    if multilabel:
        if not all(isinstance(v, list) for v in raw):
            raise DataError(f"{where}: a multi-label column must hold a list of labels per row")
        flat = [int(c) for row in raw for c in row]
        width = len(names) if names else (max(flat) + 1 if flat else 0)
        if flat and (min(flat) < 0 or max(flat) >= width):
            raise DataError(f"{where}: label code {max(flat) if max(flat) >= width else min(flat)}"
                            f" is outside the {width} ClassLabel names")
        multi = np.zeros((len(raw), width), dtype=np.uint8)
        for i, row in enumerate(raw):
            multi[i, [int(c) for c in row]] = 1
        return multi, list(names or digit_names(width)), "multilabel"
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in raw):
        codes = check_codes(np.asarray(raw, dtype=np.int64), where)
        if names is None:
            return (*encode_labels(codes.tolist()), None)
        if codes.size and codes.max() >= len(names):
            raise DataError(f"{where}: label code {int(codes.max())} is outside the "
                            f"{len(names)} ClassLabel names")
        return codes, list(names), None
    codes, found = encode_labels(raw)
    return codes, found, None


def _images(part: Part, column: str) -> tuple[list[Optional[bytes]], list[Optional[str]]]:
    """Per row: the encoded bytes, or the file path to read them from."""
    import pyarrow as pa

    col = part.table.column(column).combine_chunks()
    n = len(col)
    if pa.types.is_struct(col.type):
        fields = {col.type.field(i).name for i in range(col.type.num_fields)}
        blobs = col.field("bytes").to_pylist() if "bytes" in fields else [None] * n
        paths = col.field("path").to_pylist() if "path" in fields else [None] * n
    elif pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        blobs, paths = col.to_pylist(), [None] * n
    else:
        blobs, paths = [None] * n, col.to_pylist()
    resolved: list[Optional[str]] = []
    for i, (blob, path) in enumerate(zip(blobs, paths)):
        if blob is None and not path:
            raise DataError(f"{part.where} row {i}: the image column '{column}' is empty")
        if blob is None:
            file = Path(path).expanduser()
            file = file if file.is_absolute() or part.base is None else part.base / file
            if not file.is_file():
                raise DataError(f"{part.where} row {i}: image file '{path}' does not exist "
                                f"(looked for '{file}'); fix the path or embed the bytes")
            resolved.append(str(file))
        else:
            resolved.append(None)
    return blobs, resolved


def _schema(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix.lower() in (".parquet", ".pq"):
        return pq.read_schema(path)
    with pa.memory_map(str(path)) as source:
        try:
            return pa.ipc.open_stream(source).schema
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_file(source).schema


def _read(path: Path, schema, features: dict, opts: ImageOptions):
    """The image and label columns of one file as a pyarrow Table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    image_col = _image_column(schema, features, opts)
    if image_col is None:
        raise _no_image_column(Part(None, None, str(path), None, features), opts, schema)
    label_col, _, _ = _label_column(schema, features, opts, image_col, f"'{path}'")
    columns = [image_col, label_col]
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pq.read_table(path, columns=columns)
        with pa.memory_map(str(path)) as source:
            try:
                table = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                table = pa.ipc.open_file(source).read_all()
        return table.select(columns)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"'{path}' cannot be read ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); the file may be "
                        "damaged") from None


def table_features(schema) -> dict:
    raw = (schema.metadata or {}).get(b"huggingface")
    try:
        features = json.loads(raw)["info"]["features"] if raw else {}
    except (ValueError, KeyError, TypeError):
        return {}  # damaged metadata only loses class names; labels still work
    return features if isinstance(features, dict) else {}


def _info_features(folder: Path) -> dict:
    try:
        features = json.loads((folder / "dataset_info.json").read_text("utf-8"))["features"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return features if isinstance(features, dict) else {}


def _image_column(schema, features: dict, opts: ImageOptions) -> Optional[str]:
    import pyarrow as pa

    names = list(schema.names)
    if opts.image_column and opts.image_column in names:
        return opts.image_column
    for name in names:
        if isinstance(features.get(name), dict) and features[name].get("_type") == "Image":
            return name
    for name in names:
        kind = schema.field(name).type
        if pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0:
            return name
    for name in names:
        kind = schema.field(name).type
        if name.lower() in _IMAGE_NAMES and (pa.types.is_binary(kind) or pa.types.is_string(kind)
                                             or pa.types.is_large_binary(kind)):
            return name
    return None


def _no_image_column(part: Part, opts: ImageOptions, schema=None) -> DataError:
    columns = list((schema or part.table.schema).names)
    if opts.image_column:
        return DataError(f"{part.where} has no column '{opts.image_column}'"
                         f"{did_you_mean(opts.image_column, columns)}; columns are {columns}")
    return DataError(f"{part.where} has no image column (columns: {columns}); name it with "
                     "data.image_column")


def _label_column(schema, features: dict, opts: ImageOptions, image_col: str, where: str):
    """(column, ClassLabel names or None, multi-label?) of a table."""
    import pyarrow as pa

    names = [n for n in schema.names if n != image_col]
    if opts.label_column:
        if opts.label_column not in names:
            raise DataError(f"{where} has no label column '{opts.label_column}'"
                            f"{did_you_mean(opts.label_column, names)}; columns are {names}")
        chosen = [opts.label_column]
    else:
        chosen = [n for n in names if _class_names(features.get(n))[0] is not None]
        chosen += [n for n in names if n.lower() in _LABEL_NAMES and n not in chosen]
        if not chosen and len(names) == 1:
            chosen = names
        if not chosen:
            raise DataError(f"cannot tell which column of {where} holds the labels (columns: "
                            f"{names}); name it with data.target")
    column = chosen[0]
    class_names, multi = _class_names(features.get(column))
    kind = schema.field(column).type
    multi = multi or pa.types.is_list(kind) or pa.types.is_large_list(kind)
    return column, class_names, multi


def _class_names(feature) -> tuple[Optional[list[str]], bool]:
    """ClassLabel names of a feature (or of a Sequence / List of ClassLabel) and multi-ness."""
    if not isinstance(feature, dict):
        return None, False
    if feature.get("_type") == "ClassLabel" and feature.get("names"):
        return [str(n) for n in feature["names"]], False
    if feature.get("_type") in ("Sequence", "List", "LargeList"):
        inner, _ = _class_names(feature.get("feature"))
        return inner, inner is not None
    return None, False


def _table_files(folder: Path) -> list[Path]:
    """Parquet files up to three levels down, else Arrow files (one kind, never mixed)."""
    for suffixes in ((".parquet", ".pq"), (".arrow",)):
        found = sorted(p for depth in ("*", "*/*", "*/*/*") for p in folder.glob(depth)
                       if p.suffix.lower() in suffixes and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        if found:
            return found
    return []


def _arrow_shards(folder: Path) -> list[Path]:
    shards = sorted(p for p in folder.glob("*.arrow") if not p.name.startswith("."))
    if not shards:
        raise DataError(f"'{folder}' has no .arrow files; is it a complete save_to_disk folder?")
    return shards


def _split_of(path: Path, root: Path) -> Optional[str]:
    prefix = path.name.split("-")[0].split("_")[0].split(".")[0]
    if split_name(prefix):
        return split_name(prefix)
    for parent in path.relative_to(root).parts[:-1][::-1]:
        if split_name(parent):
            return split_name(parent)
    return None
