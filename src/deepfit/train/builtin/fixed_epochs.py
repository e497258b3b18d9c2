"""A fit with no validation split (the final fit of a tuned config on training and validation
rows together): nothing can choose its epoch or lower its rate on a plateau, so both come from
the validated run it repeats."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from deepfit.train.callbacks import Callback


class FixedEpochs(Callback):
    """Stops after ``epochs`` epochs; ``lrs`` (the learning rate of each epoch of the
    validated run) replace reduce-on-plateau's decisions, which need a validation loss."""

    def __init__(self, epochs: int, lrs: Optional[Sequence[float]] = None,
                 why: str = "") -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, not {epochs}")
        self.epochs, self.lrs, self.why = epochs, list(lrs) if lrs else None, why

    def on_train_begin(self, trainer: Any, **kwargs: Any) -> None:
        if self.lrs is not None:
            trainer.schedule.replay = self.lrs

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        if epoch >= self.epochs:
            trainer.should_stop = True
            trainer.stop_reason = f"stopped after epoch {epoch}" + (f": {self.why}"
                                                                    if self.why else "")
