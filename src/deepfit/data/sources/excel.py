"""Excel workbooks (.xlsx, .xlsm) as tables, through pandas and the optional ``openpyxl``.

One sheet is one table: the first sheet, or the one named by ``data.sheet``. The first row is
the header, as in a CSV. Old binary ``.xls`` files are not read (that needs another engine):
the error says to save them as ``.xlsx`` or CSV.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Optional

import pandas as pd

from deepfit.errors import DataError

EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def read_excel(path: Path, sheet: Optional[str] = None) -> pd.DataFrame:
    """The sheet ``sheet`` (default: the first) of the workbook at ``path``.

    Raises:
        DataError: openpyxl is missing, the file is not a readable workbook, the sheet does
            not exist, it is empty, or its header repeats a name (each naming the file).
    """
    try:
        import openpyxl  # noqa: F401  (pandas' engine for .xlsx)
    except ImportError:
        raise DataError(f"reading the Excel file '{path}' needs openpyxl: pip install "
                        "'deepfit[excel]', or save the sheet as CSV") from None
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise DataError(f"'{path}' is not a readable Excel workbook ({type(exc).__name__}); "
                        "open and re-save it in Excel, or save the sheet as CSV") from None
    with book:
        names = [str(n) for n in book.sheet_names]
        if sheet is not None and sheet not in names:
            raise DataError(f"'{path}' has no sheet '{sheet}' (data.sheet); its sheets are "
                            f"{names}")
        chosen = sheet if sheet is not None else names[0]
        header = pd.read_excel(book, sheet_name=chosen, header=None, nrows=1)
        frame = pd.read_excel(book, sheet_name=chosen)
    if frame.empty or frame.shape[1] == 0:
        raise DataError(f"sheet '{chosen}' of '{path}' has no data rows under a header row")
    names_in_header = [str(v).strip() for v in header.iloc[0].dropna()] if len(header) else []
    dupes = sorted({n for n in names_in_header if names_in_header.count(n) > 1})
    if dupes:
        raise DataError(f"sheet '{chosen}' of '{path}' has duplicate column names: {dupes}; "
                        "rename them")
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.attrs.update(sheet=chosen, sheets=names)  # for the table's description
    return frame
