"""Checkpoint files: atomic writes, safe loads.

A write goes to a temporary file in the same folder, is flushed and fsync'ed, then renamed
over the target: a crash leaves either the old file or the new one, never half of one.
Loading uses ``weights_only=True``: a checkpoint can hold tensors and plain values, never
code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import torch

from deepfit.errors import RunError
from deepfit.files import atomic_write


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(file_object)`` into a temp file, then atomically replace ``path``; a
    failure is one clear line naming the path (the previous file is unchanged)."""
    try:
        atomic_write(path, write)
    except OSError as exc:
        raise RunError(f"could not write '{path}': {exc.strerror or exc}; the previous file (if "
                       "any) is unchanged") from None


def save_checkpoint(state: dict[str, Any], path: Path, keep_previous: bool = False) -> None:
    """Write ``state`` atomically. With ``keep_previous`` the file it replaces is kept as
    ``<name>.prev<suffix>`` until the new one is complete, so a damaged newest checkpoint
    still leaves a good one to fall back to (``load_latest``)."""
    if not keep_previous:
        atomic_write_bytes(path, lambda fh: torch.save(state, fh))
        return
    path = Path(path)
    previous = previous_path(path)
    staged = path.with_name(f".{path.name}.new")
    atomic_write_bytes(staged, lambda fh: torch.save(state, fh))  # complete and fsync'ed
    if path.exists():
        os.replace(path, previous)
    os.replace(staged, path)  # a crash between the two renames leaves previous intact


def previous_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def load_latest(path: Path) -> tuple[dict[str, Any], Optional[str]]:
    """The newest readable checkpoint among ``path``, its staged copy and the previous one,
    and a note when it is not ``path`` itself (None otherwise)."""
    path = Path(path)
    errors = []
    for candidate, note in ((path, None),
                            (path.with_name(f".{path.name}.new"),
                             "the run stopped while replacing its checkpoint; using the complete "
                             "new copy"),
                            (previous_path(path), "the newest checkpoint is damaged or missing; "
                             "falling back to the previous one")):
        if not candidate.is_file():
            continue
        try:
            return load_checkpoint(candidate), note
        except RunError as exc:
            errors.append(str(exc))
    raise RunError(errors[0] if errors else f"checkpoint '{path}' does not exist")


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
