"""Callbacks: small objects with named no-op hooks, called by the trainer in one place each.

Hook order for one run (pinned by a test, printable with ``describe_loop()``)::

    on_train_begin
      on_epoch_begin
        on_batch_begin, on_batch_end      (once per mini-batch)
      on_epoch_end                         (after validation; logs hold the epoch's row)
    on_train_end                           (also after an early stop)

Stopping is a flag: a callback sets ``trainer.should_stop = True``.
"""

from __future__ import annotations

from typing import Any

from deepfit.errors import ConfigError, did_you_mean

HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_begin", "on_batch_end", "on_epoch_end",
         "on_train_end")


class Callback:
    """Base class: override the hooks you need. Each receives the trainer and keywords."""

    def on_train_begin(self, trainer: Any, **kwargs: Any) -> None: ...
    def on_epoch_begin(self, trainer: Any, epoch: int, **kwargs: Any) -> None: ...
    def on_batch_begin(self, trainer: Any, step: int, **kwargs: Any) -> None: ...
    def on_batch_end(self, trainer: Any, step: int, loss: Any, **kwargs: Any) -> None: ...
    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None: ...
    def on_train_end(self, trainer: Any, **kwargs: Any) -> None: ...

    def state_dict(self) -> dict:
        """What a checkpoint must hold to resume this callback exactly."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class CallbackList:
    """Calls a hook on every callback, in list order."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            check_callback(cb)

    def fire(self, hook: str, trainer: Any, **kwargs: Any) -> None:
        if hook not in HOOKS:
            raise ValueError(f"unknown hook {hook!r}; hooks are {HOOKS}")
        for cb in self.callbacks:
            getattr(cb, hook)(trainer, **kwargs)


    def bound(self, hook: str) -> Any:
        """One callable that runs ``hook`` on every callback; for the per-step hot path."""
        if hook not in HOOKS:
            raise ValueError(f"unknown hook {hook!r}; hooks are {HOOKS}")
        methods = [getattr(cb, hook) for cb in self.callbacks]

        def call(trainer: Any, **kwargs: Any) -> None:
            for method in methods:
                method(trainer, **kwargs)
        return call


def check_callback(cb: Any) -> None:
    """A callback is a ``Callback``, and every ``on_*`` method it defines is a hook the
    trainer calls: a misspelt hook (``on_epoch_ended``) would otherwise never run."""
    name = type(cb).__name__
    if not isinstance(cb, Callback):
        raise ConfigError(f"callback {name} is not a deepfit.Callback; subclass "
                          "deepfit.Callback and override the hooks you need")
    for attr in dir(type(cb)):
        if attr.startswith("on_") and attr not in HOOKS and callable(getattr(cb, attr)):
            raise ConfigError(f"callback {name} defines {attr}, which the trainer never calls"
                              f"{did_you_mean(attr, HOOKS)}; hooks are {', '.join(HOOKS)}")


def describe_loop() -> str:
    """The training loop's event order, as text."""
    return ("on_train_begin\n"
            "for each epoch:\n"
            "    on_epoch_begin\n"
            "    for each mini-batch: on_batch_begin -> forward, loss, backward, step -> "
            "on_batch_end\n"
            "    validation pass\n"
            "    on_epoch_end (logs = the epoch's history row)\n"
            "    stop if trainer.should_stop\n"
            "on_train_end")
