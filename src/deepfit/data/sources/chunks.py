"""Tables read in parts of at most ``rows`` rows, for prediction on files larger than
memory.

CSV / TSV / TXT go through pandas' chunked reader and Parquet through pyarrow's record
batches: memory is bounded by the part, not the file. Excel workbooks and NumPy files are
read whole (their readers cannot stream) and handed out in parts. Every part is cleaned
as ``read_frame`` cleans a whole table and carries the row numbers of the whole file (a
``RangeIndex`` that goes on from the part before), so errors name the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pandas as pd

from deepfit.data.sources.tabular import (csv_errors, read_csv_checked, read_frame,
                                          sniff_format, text_sample, tidy_text_frame)
from deepfit.errors import DataError

TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class TableChunks:
    """The parts of one table file. ``rows``: its row count when known before reading
    (Parquet's footer, a table read whole), else None; ``streamed``: False when the file
    was read whole."""

    parts: Iterator[pd.DataFrame]
    rows: Optional[int]
    streamed: bool


def table_chunks(path: str | Path, rows: int, sheet: Optional[str] = None,
                 text_columns: Sequence[str] = ()) -> TableChunks:
    """The table at ``path`` in parts of ``rows`` rows. ``text_columns``: columns read as
    text in a CSV (a model's categorical columns: a part holding only numbers, or numbers
    and gaps, would otherwise read '1' as 1.0 where the whole file read it as '1').

    Raises:
        DataError: as ``read_frame``, for the file or for the part that cannot be read.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    readable = path.is_file() and path.stat().st_size > 0
    if readable and suffix in TEXT_SUFFIXES:
        return TableChunks(_text_parts(path, rows, text_columns), None, True)
    if readable and suffix in PARQUET_SUFFIXES:
        return _parquet_parts(path, rows)
    frame = read_frame(path, sheet)  # the errors of a bad path, and the formats read whole
    frame.index = pd.RangeIndex(len(frame))
    parts = (frame.iloc[start:start + rows] for start in range(0, len(frame), rows))
    return TableChunks(parts, len(frame), False)


def _text_parts(path: Path, rows: int, text_columns: Sequence[str]) -> Iterator[pd.DataFrame]:
    sample = text_sample(path)
    sep, decimal = sniff_format(sample, "\t" if path.suffix.lower() == ".tsv" else None)
    wanted = set(text_columns)
    # Header names as pandas reads them (stripped later): the text columns among them.
    header = read_csv_checked(path, sep=sep, decimal=decimal, nrows=0).columns
    dtype = {name: str for name in header if str(name).strip() in wanted}
    reader = read_csv_checked(path, sep=sep, decimal=decimal, dtype=dtype or None,
                              chunksize=rows)
    seen = 0
    with reader:
        while True:
            with csv_errors(path):
                part = next(reader, None)
            if part is None:
                break
            seen += len(part)
            yield tidy_text_frame(part, path, sample, sep)
    if not seen:
        raise DataError(f"'{path}' has a header but no data rows")


def _parquet_parts(path: Path, rows: int) -> TableChunks:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading Parquet needs pyarrow: pip install 'deepfit[parquet]'") from None

    def unreadable(exc: Exception) -> DataError:
        return DataError(f"'{path}' is not a readable Parquet file ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})")

    try:
        file = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises many types for damaged files
        raise unreadable(exc) from None
    total = file.metadata.num_rows
    if not total:
        raise DataError(f"'{path}' has no rows")

    def parts() -> Iterator[pd.DataFrame]:
        start = 0
        batches = file.iter_batches(batch_size=rows)
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:
                raise unreadable(exc) from None
            if batch is None:
                return
            frame = pa.Table.from_batches([batch]).to_pandas()
            frame.columns = [str(c) for c in frame.columns]
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame

    return TableChunks(parts(), total, True)
