"""Crash-safe file writes, shared by checkpoints, run files and the image cache.

A write goes to a temporary file in the target's folder, is flushed and fsync'ed, then
renamed over the target (and the folder fsync'ed, so the rename itself survives a power
cut): a crash leaves either the old file or the new one, never half of one, and never a
temporary file behind. The file gets the mode a plain ``open(path, "w")`` would give
(0666 less the user's umask): ``mkstemp`` alone makes it 0600, which would hide a run's
predictions from a colleague who can read its report.
"""

from __future__ import annotations

import os
import tempfile
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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
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


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux reports
    it in /proc; elsewhere it is set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

