"""``TrainState``: everything a checkpoint holds to continue a run exactly, as one object.

Saved as a plain dict of tensors and plain values (``to_dict``), so a checkpoint loads with
``torch.load(weights_only=True)``; its keys are the ones deepfit has always written, so older
checkpoints resume too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from deepfit.errors import RunError
from deepfit.train import rng


@dataclass
class TrainState:
    """A run's training state between two steps.

    Attributes:
        model, optimizer, scaler: the ``state_dict`` of each.
        schedule: the learning-rate schedule's state.
        epoch: the last complete epoch.
        mid_epoch: inside an epoch, its row order and the finished steps' losses and outputs
            (``{"epoch", "step", "order", "losses", "outs"}``), else None.
        global_step: optimiser steps so far.
        generator: the data-order generator's state.
        inputs: the image-input pipeline's state (its augmentation generator), or None.
        micro_batches, oom_events: what out-of-memory halving did.
        skipped_steps: non-finite steps skipped.
        rng: every global random generator (``deepfit.train.rng``).
        history: the rows of history.csv so far.
        callbacks: ``[[class name, state], ...]`` in the trainer's order.
    """

    model: dict
    optimizer: dict
    scaler: dict
    schedule: dict
    epoch: int
    global_step: int
    generator: Any
    rng: dict
    history: list
    callbacks: list
    mid_epoch: Optional[dict] = None
    inputs: Optional[dict] = None
    micro_batches: int = 1
    oom_events: list = field(default_factory=list)
    skipped_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "optimizer": self.optimizer, "scaler": self.scaler,
                "schedule": self.schedule, "epoch": self.epoch, "mid_epoch": self.mid_epoch,
                "global_step": self.global_step, "generator": self.generator,
                "inputs": self.inputs, "micro_batches": self.micro_batches,
                "oom_events": self.oom_events, "skipped_steps": self.skipped_steps,
                "rng": self.rng, "history": self.history, "callbacks": self.callbacks}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TrainState:
        """From a checkpoint's dict, including those written before the schedule had its
        own key (its state was then the ``LRSchedule`` callback's)."""
        callbacks = [list(item) for item in state["callbacks"]]
        schedule = state.get("schedule")
        if schedule is None:
            old = next((item for item in callbacks if item[0] == "LRSchedule"), None)
            schedule = old[1] if old else {}
        callbacks = [item for item in callbacks if item[0] != "LRSchedule"]
        return cls(model=state["model"], optimizer=state["optimizer"], scaler=state["scaler"],
                   schedule=schedule, epoch=state["epoch"], global_step=state["global_step"],
                   generator=state["generator"], rng=state["rng"], history=state["history"],
                   callbacks=callbacks, mid_epoch=state.get("mid_epoch"),
                   inputs=state.get("inputs"), micro_batches=state.get("micro_batches", 1),
                   oom_events=list(state.get("oom_events", [])),
                   skipped_steps=state.get("skipped_steps", 0))


def capture(trainer: Any) -> TrainState:
    """The trainer's state now (between steps)."""
    partial = trainer.partial if trainer.partial and trainer.partial["step"] else None
    mid = None
    if partial is not None:  # inside an epoch: its order and the finished steps' stats
        done = partial["step"]
        mid = {"epoch": trainer.epoch, "step": done, "order": partial["order"].cpu(),
               "losses": partial["losses"][:done].cpu(), "outs": torch.cat(partial["outs"]).cpu()}
    inputs = trainer.inputs
    return TrainState(
        model=trainer.model.state_dict(), optimizer=trainer.optimizer.state_dict(),
        scaler=trainer.scaler.state_dict(),
        schedule=trainer.schedule.state_dict() if trainer.schedule is not None else {},
        epoch=trainer.epoch - 1 if mid else trainer.epoch, mid_epoch=mid,
        global_step=trainer.global_step, generator=trainer.generator.get_state(),
        inputs=inputs.state_dict() if hasattr(inputs, "state_dict") else None,
        micro_batches=trainer.micro_batches, oom_events=trainer.oom_events,
        skipped_steps=trainer.skipped_steps, rng=rng.capture(), history=trainer.history.rows,
        callbacks=[[type(cb).__name__, cb.state_dict()] for cb in trainer.callbacks.callbacks])


def restore_callbacks(callbacks: list, saved: list) -> None:
    """Give each callback its saved state, matched by class name in order. A user's
    stateless callback may come or go; a saved state with no callback to take it would
    silently change the run, so that is an error."""
    saved = [list(item) for item in saved]
    for cb in callbacks:
        match = next((item for item in saved if item[0] == type(cb).__name__), None)
        if match is not None:
            cb.load_state_dict(match[1])
            saved.remove(match)
    lost = [name for name, state in saved if state]
    if lost:
        raise RunError(f"the checkpoint holds the state of callback(s) {lost} that this run "
                       "does not have; resume with the same callbacks")
