"""Data sources: one module per kind. ``load_table`` picks the right one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pandas as pd

from deepfit.config import DataConfig
from deepfit.data.sources.builtin import describe_builtin, load_builtin
from deepfit.data.sources.excel import EXCEL_SUFFIXES
from deepfit.data.sources.tabular import load_file, load_object, read_frame
from deepfit.data.sources.toy2d import TOY, load_toy
from deepfit.data.table import Table
from deepfit.errors import DataError

SPLIT_COLUMN = "__split__"
# data.source of a run trained on a Python object: a re-run must be given the object again.
PYTHON_SOURCE = "python:"


def load_table(cfg: DataConfig, data: Optional[Any] = None, seed: int = 0) -> Table:
    """Load the configured source (or the Python object ``data``) as one ``Table``.

    Separate validation / test files are stacked under the main file with their split
    recorded in ``Table.split``.
    """
    # Imported here: the resolver reads image sources too, whose CSV reader uses this
    # package's CSV helpers (an import at the top would be circular).
    from deepfit.data.source_kind import resolve_source
    source = resolve_source(cfg, data, table=True)
    source.check()
    if source.kind == "object":
        table = load_object(source.data)
    elif source.kind == "builtin":
        table = load_builtin(source.key)
    elif source.kind == "toy":
        table = load_toy(source.key, cfg.n_samples, cfg.noise, seed)
    else:
        if cfg.sheet and Path(source.text).suffix.lower() not in EXCEL_SUFFIXES:
            raise DataError(f"data.sheet={cfg.sheet} is for Excel workbooks; '{source.text}' is "
                            "not one: remove data.sheet")
        table = load_file(source.text, cfg.sheet)
    if cfg.val_file or cfg.test_file:
        table = _stack_split_files(table, cfg)
    return table


def _stack_split_files(table: Table, cfg: DataConfig) -> Table:
    parts = [table.frame.assign(**{SPLIT_COLUMN: "train"})]
    for split, path in (("val", cfg.val_file), ("test", cfg.test_file)):
        if path:
            extra = read_frame(path, cfg.sheet)
            missing = [c for c in table.frame.columns if c not in extra.columns]
            if missing:
                raise DataError(f"'{path}' lacks column(s) {missing} that the training file has")
            parts.append(extra[list(table.frame.columns)].assign(**{SPLIT_COLUMN: split}))
    frame = pd.concat(parts, ignore_index=True)
    split = frame.pop(SPLIT_COLUMN)
    table.frame, table.split = frame, split
    table.description += " (+ separate " + " and ".join(
        s for s, p in (("validation", cfg.val_file), ("test", cfg.test_file)) if p) + " file)"
    return table


def list_datasets() -> list[tuple[str, str, str]]:
    """``(name, task, description)`` for every built-in dataset and toy generator."""
    toys = [(name, spec[2], spec[3]) for name, spec in TOY.items()]
    return describe_builtin() + toys


__all__ = ["load_table", "list_datasets", "Table", "SPLIT_COLUMN", "PYTHON_SOURCE"]
