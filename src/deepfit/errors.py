"""User-facing errors: one line that names the culprit and the fix.

Every error a user can cause (bad data, bad config, bad model) is a ``DeepfitError``;
what is suspicious but still usable is a ``DeepfitWarning`` (``warnings.warn``).
The CLI prints ``error: <message>`` and exits non-zero, without a traceback unless
``--debug`` is given. Anything else escaping is a bug in deepfit.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DeepfitError(Exception):
    """Base class of every error caused by the user's input."""


class ConfigError(DeepfitError):
    """A configuration key or value is invalid."""


class DataError(DeepfitError):
    """The data cannot be loaded, parsed or split as asked."""


class ModelError(DeepfitError):
    """The model cannot be built or does not fit the task."""


class RunError(DeepfitError):
    """A run directory is missing, incomplete or inconsistent."""


class DeepfitWarning(UserWarning):
    """Base class of deepfit's warnings: something suspicious that did not stop the work."""


class DataWarning(DeepfitWarning):
    """Suspicious data that do not stop a run: new data holding what training never saw
    (an unknown category, a gap in a column that had none, images stretched out of shape),
    or look-alike feature categories; the message names the column or file, the count of
    rows and what was done."""


class TrainingInterrupted(DeepfitError):
    """SIGINT or SIGTERM arrived; ``last_epoch`` is the last complete (checkpointed) epoch."""

    def __init__(self, last_epoch: int, message: str = "") -> None:
        super().__init__(message or f"interrupted; the last complete epoch is {last_epoch}")
        self.last_epoch = last_epoch


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``; case does not
    count (``CNN`` finds ``cnn``)."""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
    if close:  # as written first: 'Diabetis' finds 'Diabetes' before 'diabetes'
        return f" (did you mean '{close[0]}'?)"
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    close = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1, cutoff=0.5)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""


def one_of(choices: Iterable[str]) -> str:
    """Format a list of allowed values for a message."""
    return ", ".join(f"'{c}'" for c in choices)
