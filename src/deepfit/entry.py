"""The ``deepfit`` command's process: ``run`` calls ``cli.main`` and ends the process.

A training command's process holds PyTorch (with its compiler, when an optimiser was built),
scikit-learn and matplotlib. Letting the interpreter finalise it (tear down every module,
collect every object, run the C++ libraries' destructors) takes 1-1.5 s on a 2-core machine:
a fifth of a small run, spent after the last result was written. ``run`` instead finishes
the way the interpreter would, in the order it would, and then leaves with ``os._exit``:

1. the atexit functions (logging's flush, multiprocessing's clean-up of its children,
   weakref finalizers such as temporary folders', TensorBoard's and MLflow's own);
2. stdout and stderr flushed (an error here, e.g. a closed pipe, gives exit code 120 as
   CPython's own exit does);
3. ``os._exit(code)``.

What is skipped is only the teardown of objects nobody will use again. The normal exit is
kept where something may still need the interpreter: another thread is running, or a
profiler or tracer is attached (cProfile, coverage, a debugger write their results after the
program returns).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

from deepfit.cli import main


def _can_leave_early() -> bool:
    return (threading.active_count() == 1 and sys.getprofile() is None
            and sys.gettrace() is None)


def run() -> None:
    """The console entry point (``deepfit`` and ``python -m deepfit``)."""
    code = main()
    if not _can_leave_early():
        sys.exit(code)
    atexit._run_exitfuncs()
    status = 0 if code is None else code if isinstance(code, int) else 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # e.g. the reader closed the pipe: as CPython's own exit does
            status = 120
    os._exit(status)
