"""Checkpoint files: atomic writes, safe loads.

A write goes to a temporary file in the same folder, is flushed and fsync'ed, then renamed
over the target: a crash leaves either the old file or the new one, never half of one.
Loading uses ``weights_only=True``: a checkpoint can hold tensors and plain values, never
code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from deepfit.errors import RunError


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(file_object)`` into a temp file, then atomically replace ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise RunError(f"could not write '{path}': {exc.strerror or exc}; the previous file (if "
                       "any) is unchanged") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    atomic_write_bytes(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by deepfit; never executes code from the file."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint '{path}' does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"checkpoint '{path}' cannot be loaded safely ({first[:200]}); it is "
                       "damaged or was not written by deepfit") from None
