"""``Table``: what every tabular source hands to the rest of the data stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pandas as pd


@dataclass
class Table:
    """A loaded dataset before splitting and preprocessing.

    Attributes:
        frame: every column, features and target (and the split column, if any).
        target: name of the target column in ``frame``.
        name: short dataset name used in run names and reports.
        description: one line for the report (source, what it is).
        split: optional per-row ``"train" | "val" | "test"`` labels fixed by the source.
        task_hint: the task when the source knows it (e.g. a regression benchmark).
        class_names: display names for integer class codes, when the source has them.
        positive_class: the class that counts as "positive" for binary metrics.
        targets: the label columns of a multi-label source (then ``target`` is unused).
        target_guessed: ``target`` is only the last column of a file or DataFrame (no
            source-defined target): another column may be the real one.
    """

    frame: pd.DataFrame
    target: str
    name: str
    description: str
    split: Optional[pd.Series] = None
    task_hint: Optional[str] = None
    class_names: dict = field(default_factory=dict)
    positive_class: Optional[str] = None
    targets: list = field(default_factory=list)  # several 0/1 columns: multi-label
    target_guessed: bool = False
