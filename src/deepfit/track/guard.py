"""The rule every tracker follows: a tracker that fails never stops training.

A ``Tracker`` is a training callback whose every call to its tracking library goes through
``Tracker.guarded``: the first exception (a server down, a full disk, a permission denied)
becomes ONE ``DeepfitWarning`` line naming the tracker and the cause, the tracker closes and
is off for the rest of the run, and training goes on. While a library call runs, its own
log lines and warnings (MLflow's "creating experiment", urllib3's retries, SQLAlchemy's
deprecations) are held back, so the one line is all the user sees.

Trackers still open when the process ends (a crash after training) are closed then, an
MLflow run marked KILLED rather than left RUNNING forever.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import warnings
from typing import Any, Callable, Iterator, Optional

from deepfit.errors import DeepfitWarning
from deepfit.train.callbacks import Callback

# Loggers of the tracking libraries and what they use, quiet during their calls.
LIBRARY_LOGGERS = ("mlflow", "urllib3", "requests", "alembic", "sqlalchemy", "tensorboard")
# Trackers not closed yet, held until they are (a crash after training: closed at exit).
_OPEN: set = set()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Hold back the libraries' log lines, warnings and prints (TensorBoard's graph tracer
    prints its error before raising it) while they run."""
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``ExceptionType: first line of its message``, at most ``limit`` characters."""
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit - 3] + "..."


class Tracker(Callback):
    """A callback that logs to a tracking library and is switched off by its first failure.

    Subclasses name themselves in ``label`` ("MLflow at URI", "TensorBoard in FOLDER") and
    implement ``close(status)``; ``finish(metrics, files)`` logs the run's final results.
    """

    label = "tracker"

    def __init__(self) -> None:
        self.failed = False
        _OPEN.add(self)

    def guarded(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)``, or None after a failure (now or earlier)."""
        if self.failed:
            return None
        try:
            with quiet():
                return call(*args, **kwargs)
        except Exception as exc:  # any failure of the library: warn once, then go on
            self.failed = True
            warnings.warn(f"{self.label}: {what} failed ({one_line(exc)}); the run goes on "
                          "without it", DeepfitWarning, stacklevel=3)
            self.end("FAILED", quietly=True)
            return None

    def end(self, status: str, quietly: bool = False) -> None:
        """Close the tracker; ``status`` (FINISHED, FAILED, KILLED) is the run's outcome."""
        _OPEN.discard(self)
        if quietly:
            with contextlib.suppress(Exception), quiet():
                self.close(status)
        else:
            self.guarded("closing", self.close, status)

    def close(self, status: str) -> None:  # pragma: no cover - every tracker overrides it
        raise NotImplementedError

    def finish(self, metrics: dict[str, float], files: list,
               tags: Optional[dict[str, str]] = None) -> None:
        """Log the final ``metrics``, ``files`` (``(path, folder)``) and ``tags``, then close as
        FINISHED."""
        raise NotImplementedError  # pragma: no cover


def aborted_status(exc_type: Optional[type]) -> str:
    """KILLED for an interruption (Ctrl-C, SIGTERM), FAILED for an error."""
    from deepfit.errors import TrainingInterrupted
    interrupted = exc_type is not None and issubclass(exc_type, (TrainingInterrupted,
                                                                 KeyboardInterrupt))
    return "KILLED" if interrupted else "FAILED"


@atexit.register
def _close_left_open() -> None:
    for tracker in list(_OPEN):
        tracker.end("KILLED", quietly=True)
