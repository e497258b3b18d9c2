"""A call that runs in a forked child process while this process goes on (``Forked``).

The tail of a small run is rendering its figures (matplotlib, one core, pure Python) and
building its summary (torch, scikit-learn). On a machine with two or more cores the two can
run side by side. A fork copies the process as it is, everything imported, so the child
starts at once; a fresh interpreter (multiprocessing's "spawn" and "forkserver", and so
``concurrent.futures``' pools there) would import matplotlib and scikit-learn again and
re-run the user's own script as its main module. Forking is safe only where no other thread
may hold a lock the child needs, so a call is forked only when:

- the platform forks cleanly (Linux; macOS's system libraries are not fork-safe),
- this is the process's only Python thread (no progress display, server, or tracker
  thread running),
- at least two cores are usable (``os.sched_getaffinity``, and a container's CPU quota).

Otherwise, or when no fork can be had (a process limit, memory), the call runs here, at
once. Either way ``result()`` gives the same value or raises the same exception (a child's
traceback is added to it as a note, shown with ``--debug``; an exception that cannot cross
back is named in a RuntimeError). A child that dies without answering (killed, out of
memory) costs nothing but time: the call is run again here. The child must run no torch
operation: torch's thread pools do not survive a fork (the figures use numpy and
matplotlib only). The child ends the way multiprocessing's do, with
``os._exit``, so this process's atexit functions never run twice. Only the result crosses
back (pickled); the call and its arguments are the child's copy of this process's memory.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable


def can_fork() -> bool:
    """Whether a call may run in a forked child here (see the module's docstring)."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    return usable_cores() >= 2


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> float:
    """The cores this process may use: those it may run on (``sched_getaffinity``), fewer
    where a container's CPU quota allows less (cgroup v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``; a one-CPU container on a large host
    would otherwise fork for nothing)."""
    cores = float(len(os.sched_getaffinity(0)))
    for quota_file, period_file in ((cgroup / "cpu.max", None),
                                    (cgroup / "cpu" / "cpu.cfs_quota_us",
                                     cgroup / "cpu" / "cpu.cfs_period_us")):
        try:
            if period_file is None:
                quota, period = quota_file.read_text().split()[:2]
            else:
                quota, period = quota_file.read_text().strip(), period_file.read_text().strip()
        except (OSError, ValueError):
            continue
        if quota not in ("max", "-1") and quota.isdigit() and period.isdigit() and int(period):
            cores = min(cores, int(quota) / int(period))
    return cores


def _child(send: Any, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    try:
        answer: tuple[bool, Any] = (True, fn(*args, **kwargs))
    except BaseException as exc:  # noqa: B036 - every outcome goes back to the parent
        _note(exc, "(raised in the forked process)\n" + traceback.format_exc().rstrip())
        answer = (False, exc)
    try:
        pickle.loads(pickle.dumps(answer))  # what the parent's recv() will do with it
    except Exception as exc:  # e.g. a value, or an exception whose __init__ takes other args
        kind = "exception" if not answer[0] else "answer"
        what = f"{type(answer[1]).__name__}: {answer[1]}" if not answer[0] else ""
        answer = (False, RuntimeError(f"the forked process's {kind} could not be sent back "
                                      f"({exc}){'; it was ' + what if what else ''}"))
    try:
        send.send(answer)
    finally:
        send.close()


def _note(exc: BaseException, text: str) -> None:
    """``exc.add_note(text)`` (Python 3.11+); on 3.10 the note is kept in ``__notes__``."""
    try:
        if hasattr(exc, "add_note"):
            exc.add_note(text)
        else:
            exc.__notes__ = [*getattr(exc, "__notes__", []), text]
    except Exception:  # an exception that takes no attributes: it goes back as it is
        pass


class Forked:
    """``Forked(fn, *args, **kwargs)`` starts ``fn(*args, **kwargs)`` in a forked child where
    ``can_fork()``, else runs it at once; ``result()`` waits for it. Use it as a context
    manager: leaving the block early (an error here, Ctrl-C) stops the child."""

    def __init__(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        self._call = (fn, args, kwargs)
        self._process: Any = None
        self._done, self._value = False, None
        if not can_fork():
            self._value, self._done = fn(*args, **kwargs), True
            return
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(send, fn, args, kwargs),
                                        daemon=True, name="deepfit-forked")
        gc.freeze()  # the child never collects (so never writes to) this process's objects:
        try:  # fewer pages copied on write, and no parent's tensor freed in the child
            with warnings.catch_warnings():
                # Python 3.12+ warns of a fork beside any other OS thread (torch's idle
                # thread pool is one); the child runs no torch (see the module's docstring).
                warnings.simplefilter("ignore", DeprecationWarning)
                self._process.start()
            started = True
        except OSError:  # no fork to be had (a process limit, memory): the call runs here
            started = False
        finally:
            gc.unfreeze()
        send.close()  # the child holds the only writing end: its death ends the pipe
        if not started:
            self._receive.close()
            self._process = None
            self._value, self._done = fn(*args, **kwargs), True

    @property
    def forked(self) -> bool:
        """Whether the call runs (or ran) in a child process."""
        return self._process is not None

    def result(self) -> Any:
        if self._done:
            return self._value
        try:
            ok, value = self._receive.recv()
        except EOFError:  # the child died without answering: run the call here
            fn, args, kwargs = self._call
            ok, value = True, fn(*args, **kwargs)
        finally:
            self._stop()
        if not ok:
            raise value
        self._value, self._done = value, True
        return value

    def _stop(self) -> None:
        if self._process is None or self._receive.closed:
            return
        self._receive.close()
        if self._process.is_alive():
            self._process.join(timeout=5)
        if self._process.is_alive():  # abandoned mid-call (an error or Ctrl-C here)
            self._process.kill()
            self._process.join()

    def __enter__(self) -> "Forked":
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self._process is not None and not self._receive.closed:
            self._process.kill()  # nobody will read its answer
            self._stop()
