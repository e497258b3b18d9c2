"""Tables from files (CSV, TSV, Parquet, .npz, .npy) and from Python objects."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import pandas as pd

from deepfit.data.sources.excel import EXCEL_SUFFIXES, read_excel
from deepfit.data.table import Table
from deepfit.errors import DataError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".npz", ".npy", *EXCEL_SUFFIXES)
# Array names tried in an .npz, in order: features, then target.
_NPZ_X = ("X", "x", "features", "data", "inputs")
_NPZ_Y = ("y", "Y", "target", "targets", "labels", "label")


def strip_text_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip spaces around text cells and read a blank cell as missing, in place.

    Files exported from spreadsheets often carry stray spaces: 'yes ' and 'yes' would
    otherwise be two classes (or two categories of a feature). Training and prediction files
    both pass through here, so they agree."""
    for col, dtype in frame.dtypes.items():
        if dtype != object and not isinstance(dtype, pd.StringDtype):
            continue
        values = frame[col]
        if pd.api.types.infer_dtype(values, skipna=True) == "string":  # text and gaps only
            stripped = values.str.strip()  # vectorised; the same cells and dtype as below
            stripped = stripped.infer_objects() if values.dtype == object else stripped
        else:  # numbers or other objects mixed in (Excel): strip only the text cells
            stripped = values.map(lambda v: v.strip() if isinstance(v, str) else v,
                                  na_action="ignore")
        frame[col] = stripped.mask(stripped.eq(""))
    return frame


def read_frame(path: str | Path, sheet: Optional[str] = None) -> pd.DataFrame:
    """Read one table file into a DataFrame, turning every parse failure into a ``DataError``.
    ``sheet``: the sheet of an Excel workbook (default: the first)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file '{path}' does not exist; check the path or pass a built-in "
                        "name (see 'deepfit datasets')")
    if path.is_dir():
        raise DataError(f"'{path}' is a folder; tabular data must be a CSV, TSV, Excel, Parquet, "
                        ".npz or .npy file")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        from deepfit.data.images.decode import SCANNER_ADVICE, scanner_format  # they import us
        kind = scanner_format(path.name)
        hint = f"; it is a {kind} file, {SCANNER_ADVICE}" if kind else ""
        if suffix in (".xls", ".ods"):
            hint = ("; it is an older or OpenDocument spreadsheet: save it as .xlsx or CSV "
                    "(File > Save As) and pass that file")
        raise DataError(f"'{path}' has an unsupported extension '{suffix}'{hint}; use a table "
                        "(" + ", ".join(TABLE_SUFFIXES) + "), or an image folder or CSV of "
                        "image paths")
    if path.stat().st_size == 0:
        raise DataError(f"data file '{path}' is empty (0 bytes)")
    if suffix in (".npz", ".npy"):
        return _read_numpy(path)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    if suffix in EXCEL_SUFFIXES:
        return strip_text_cells(read_excel(path, sheet))
    return _read_text(path, sep="\t" if suffix == ".tsv" else None)


def _not_utf8(path: Path, position: int) -> DataError:
    return DataError(f"'{path}' is not UTF-8 text (bad byte at position {position}); re-save "
                     "it as UTF-8")


def text_sample(path: Path, size: int = 1 << 20, lines: int = 50) -> str:
    """The first ``lines`` whole lines of a text file, within its first ``size`` bytes (a line
    cut by that limit is left out unless it is the only one); a byte that is not UTF-8 there
    is an error naming the file and the position."""
    with open(path, "rb") as fh:
        head = fh.read(size)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut in two at the end of the sample is not an error.
        if not (len(head) == size and exc.reason == "unexpected end of data"):
            raise _not_utf8(path, exc.start) from None
        text = head[:exc.start].decode("utf-8")
    kept = text.splitlines(keepends=True)
    if len(head) == size and len(kept) > 1 and not kept[-1].endswith(("\n", "\r")):
        kept.pop()
    return "".join(kept[:lines])


def read_csv_checked(path: Path, **options: Any) -> pd.DataFrame:
    """``pd.read_csv(path, encoding="utf-8", skipinitialspace=True, **options)`` with every
    way a text table can be unreadable turned into one line naming the file."""
    with csv_errors(path):
        return pd.read_csv(path, encoding="utf-8", skipinitialspace=True, **options)


@contextlib.contextmanager
def csv_errors(path: Path) -> Iterator[None]:
    """Reading the text table ``path`` (whole or a chunk of it): every way it can be
    unreadable turned into one ``DataError`` naming the file."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc.start) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"'{path}' has no columns; is it a CSV file with a header row?") from None
    except (pd.errors.ParserError, csv.Error, ValueError, TypeError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(f"'{path}' could not be parsed as a table: {detail}; check that every "
                        "row has the same number of fields as the header") from None


_DECIMAL_COMMA = re.compile(r"-?\d+,\d+")
_DECIMAL_POINT = re.compile(r"-?\d*\.\d+")


def sniff_format(sample: str, sep: Optional[str] = None) -> tuple[str, str]:
    """The field delimiter (',', ';', tab or '|') and decimal mark of a text table, judged
    on ``sample``, its first lines (``text_sample``). A one-column file, which has no delimiter, is ','. The decimal mark
    is ',' only when fields are not comma-separated and numbers like ``1,5`` appear with none
    like ``1.5`` (a spreadsheet saved in a German or French locale). pandas' own sniffing
    (``sep=None``) looks at one line with any character allowed, split a one-column file on
    a letter of its header, and forces pandas' slow Python parser."""
    if sep is None:
        try:
            sep = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            sep = ","
    if sep == ",":
        return sep, "."
    fields = [f.strip().strip('"') for row in csv.reader(io.StringIO(sample), delimiter=sep)
              for f in row[:1000]][:20000]
    comma = any(_DECIMAL_COMMA.fullmatch(f) for f in fields)
    point = any(_DECIMAL_POINT.fullmatch(f) for f in fields)
    return sep, "," if comma and not point else "."


def _read_text(path: Path, sep: Optional[str]) -> pd.DataFrame:
    sample = text_sample(path)  # read once: the format, and the header as written
    sep, decimal = sniff_format(sample, sep)
    frame = read_csv_checked(path, sep=sep, decimal=decimal)
    if frame.empty:
        raise DataError(f"'{path}' has a header but no data rows")
    return tidy_text_frame(frame, path, sample, sep)


def tidy_text_frame(frame: pd.DataFrame, path: Path, sample: str, sep: str) -> pd.DataFrame:
    """A table (or a part of one) as read from a text file, cleaned as every text table is:
    text cells stripped, an empty unnamed last column dropped, a repeated column name an
    error. ``sample``: the file's first lines (``text_sample``), delimited by ``sep``."""
    strip_text_cells(frame)
    # A delimiter at the end of every line (common in exports) makes an empty, unnamed last
    # column: drop it instead of carrying an all-missing feature (or target).
    empty = [c for c in frame.columns
             if str(c).startswith("Unnamed: ") and frame[c].isna().all()]
    if empty:
        frame = frame.drop(columns=empty)
    frame.columns = [str(c).strip() for c in frame.columns]
    dupes = frame.columns[frame.columns.duplicated()].tolist()
    if not dupes:  # pandas silently renames a repeated 'a' to 'a.1': check the header row itself
        rows = csv.reader(io.StringIO(sample), delimiter=sep, skipinitialspace=True)
        header = next((row for row in rows if row), [])
        names = pd.Index([name.strip() for name in header if name.strip()])
        dupes = names[names.duplicated()].tolist()
    if dupes:
        raise DataError(f"'{path}' has duplicate column names: {dupes}; rename them")
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401  (pandas needs an engine)
    except ImportError:
        raise DataError("reading Parquet needs pyarrow: pip install 'deepfit[parquet]'") from None
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for damaged files
        raise DataError(f"'{path}' is not a readable Parquet file ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if frame.empty:
        raise DataError(f"'{path}' has no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read_numpy(path: Path) -> pd.DataFrame:
    try:
        loaded = np.load(path, allow_pickle=False)  # never unpickle user files
    except ValueError as exc:
        raise DataError(f"'{path}' holds Python objects (pickled) that deepfit will not load; "
                        f"save plain numeric arrays ({exc})") from None
    except Exception as exc:
        raise DataError(f"'{path}' is not a readable NumPy file ({type(exc).__name__})") from None
    if isinstance(loaded, np.ndarray):
        if loaded.ndim != 2 or loaded.shape[1] < 2:
            raise DataError(f"'{path}' holds an array of shape {loaded.shape}; a .npy table must "
                            "be 2-D with the target in the last column")
        return arrays_to_frame(loaded[:, :-1], loaded[:, -1], origin=str(path))
    with loaded:
        keys = list(loaded.keys())
        x_key = next((k for k in _NPZ_X if k in keys), None)
        y_key = next((k for k in _NPZ_Y if k in keys), None)
        if x_key is None or y_key is None:
            raise DataError(f"'{path}' has arrays {keys}; name the features 'X' and the target 'y'")
        try:  # an .npz reads its arrays lazily: a pickled one fails only here
            X, y = loaded[x_key], loaded[y_key]
        except ValueError as exc:
            raise DataError(f"'{path}' holds Python objects (pickled) that deepfit will not load; "
                            f"save plain numeric arrays ({exc})") from None
        return arrays_to_frame(X, y, origin=f"{path}")


def arrays_to_frame(X: Any, y: Any, origin: str = "arrays") -> pd.DataFrame:
    """Join a feature matrix and a target vector into one frame with target column 'target'."""
    if isinstance(X, pd.DataFrame):
        frame = X.reset_index(drop=True).copy()
    else:
        X = np.asarray(X)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise DataError(f"{origin}: features have shape {X.shape}; tabular features must be "
                            "2-D (rows, columns)")
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    y = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{origin}: target has shape {y.shape}; it must be one value per row")
    if len(y) != len(frame):
        raise DataError(f"{origin}: features have {len(frame)} rows but the target has {len(y)}")
    if "target" in frame.columns:
        raise DataError(f"{origin}: a feature column is already called 'target'; rename it")
    frame["target"] = y
    return frame


def load_file(path: str, sheet: Optional[str] = None) -> Table:
    frame = read_frame(path, sheet)
    kind = "NumPy arrays" if Path(path).suffix.lower() in (".npz", ".npy") else "table"
    where = str(path)
    if "sheet" in frame.attrs:  # an Excel workbook: which sheet, of which
        where = f"sheet '{frame.attrs['sheet']}' of {path} (sheets: " \
                f"{', '.join(frame.attrs['sheets'])})"
    return Table(frame=frame, target="target" if kind == "NumPy arrays" else frame.columns[-1],
                 target_guessed=kind != "NumPy arrays",
                 name=Path(path).stem, description=f"{kind} from {where}")


def load_object(data: Any) -> Table:
    """A DataFrame (target chosen later), an ``(X, y)`` pair, or a ``{'X':..., 'y':...}`` dict."""
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise DataError("the DataFrame passed as data is empty")
        frame = data.reset_index(drop=True).copy()
        frame.columns = [str(c) for c in frame.columns]
        return Table(frame=frame, target=frame.columns[-1], name="dataframe", target_guessed=True,
                     description=f"pandas DataFrame, {len(frame)} rows")
    if _is_torch_dataset(data):
        data = _dataset_arrays(data)
    if isinstance(data, dict) and {"X", "y"} <= set(data):
        data = (data["X"], data["y"])
    if isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = (np.asarray(v.detach().cpu()) if hasattr(v, "detach") else v for v in data)
        frame = arrays_to_frame(X, y, origin="data (X, y)")
        return Table(frame=frame, target="target", name="arrays",
                     description=f"arrays passed from Python, {len(frame)} rows")
    raise DataError(f"cannot use an object of type {type(data).__name__} as data; pass a file "
                    "path, a built-in name, a pandas DataFrame, an (X, y) pair, or a torch "
                    "Dataset of (features, target) pairs")


def _is_torch_dataset(data: Any) -> bool:
    try:
        from torch.utils.data import Dataset
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(data, Dataset)


def _dataset_arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Read a map-style torch Dataset of ``(features, target)`` pairs into two arrays, once."""
    try:
        n = len(dataset)
    except TypeError:
        raise DataError("an iterable torch Dataset has no length; pass a map-style Dataset or "
                        "arrays") from None
    if n == 0:
        raise DataError("the torch Dataset passed as data is empty")
    xs, ys = [], []
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(f"item {i} of the torch Dataset is {type(item).__name__}; each item "
                            "must be a (features, target) pair")
        x, y = (np.asarray(v.detach().cpu()) if hasattr(v, "detach") else np.asarray(v)
                for v in item)
        xs.append(x.reshape(-1))
        ys.append(y.reshape(()) if y.size == 1 else y)
    try:
        return np.stack(xs), np.stack(ys)
    except ValueError as exc:
        raise DataError(f"the torch Dataset's items differ in shape ({exc}); every item must "
                        "have the same number of features") from None
