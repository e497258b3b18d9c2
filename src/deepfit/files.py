"""Crash-safe file writes, shared by checkpoints, run files and the image cache.

A write goes to a temporary file in the target's folder, is flushed and fsync'ed, then
renamed over the target (and the folder fsync'ed, so the rename itself survives a power
cut): a crash leaves either the old file or the new one, never half of one, and never a
temporary file behind. The temporary file is created as ``open(path, "w")`` would create
it, mode 0666 less the user's umask (``tempfile.mkstemp`` makes it 0600, which would hide a
run's predictions from a colleague who can read its report).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | Path, write: Callable[[Any], Any]) -> Path:
    """Call ``write(binary_file)`` into a temporary file, then atomically replace ``path``.

    Raises:
        OSError: the folder cannot be made or the write, flush or rename failed; ``path``
            is then unchanged and the temporary file removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
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
        pass  # some file systems cannot fsync a folder; the data itself is on disk
    return path


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, uniquely named file beside ``path``, opened for writing; the kernel applies
    the umask to its 0666 mode, as for any file the user's programs create."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # another writer's name: draw again
            continue


def temporary_folder(path: Path) -> Path:
    """A new, uniquely named, empty folder beside ``path`` (to fill, then rename to ``path``),
    mode 0777 less the umask like any folder the user makes (``tempfile.mkdtemp`` makes it
    0700: a data set renamed from it would be private)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            tmp.mkdir(0o777)
            return tmp
        except FileExistsError:  # another writer's name: draw again
            continue
