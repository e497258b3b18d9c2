"""The training loop: one function you can read top to bottom.

Data that fits in memory stays on the device as two tensors; each epoch draws one
permutation from a seeded generator, gathers the shuffled copy once, and slices mini-batches
as views. There is no per-sample Python work and no DataLoader in the loop.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from typing import Any, Iterator, Optional, Sequence

import torch
from torch import nn

from deepfit.config import TrainConfig
from deepfit.errors import ModelError, RunError, TrainingInterrupted
from deepfit.models.inference import autocast, predict_outputs
from deepfit.task import TaskHead
from deepfit.train import rng
from deepfit.train.builtin.lr_schedule import LRSchedule
from deepfit.train.builtin.nan_guard import NanGuard, TrainingDiverged
from deepfit.train.device import nondeterministic_op
from deepfit.train.callbacks import Callback, CallbackList
from deepfit.train.history import EPOCH, LR, MAIN_METRIC, TIME, TRAIN_LOSS, VAL_LOSS, History
from deepfit.train.optim import Schedule, build_optimizer


@contextlib.contextmanager
def stop_signals() -> Iterator[Any]:
    """While training, SIGINT (Ctrl-C) and SIGTERM only set a flag that the loop checks after
    each step: nothing is written from inside a signal handler. A second Ctrl-C stops at
    once. Off the main thread (where handlers cannot be installed) this does nothing."""
    flag = {"set": False}
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum: int, frame: Any) -> None:
        if flag["set"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["set"] = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: flag["set"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Contiguous slices over ``n`` rows. A final batch of one row is dropped (it is
    reshuffled into the next epoch): batch norm cannot train on a single sample."""
    cuts = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    if len(cuts) > 1 and cuts[-1].stop - cuts[-1].start == 1:
        cuts.pop()
    return cuts


class Trainer:
    """Fits ``model`` with ``head``'s loss under ``cfg``; callbacks observe and steer.

    Example:
        >>> from deepfit.models import MLP
        >>> X, y = torch.randn(64, 3), torch.randint(0, 2, (64,)).float()
        >>> t = Trainer(MLP(3, 1, hidden=(8,)), TaskHead("binary"),
        ...             TrainConfig(epochs=2, progress=False), task="binary", n_outputs=1)
        >>> len(t.fit(X, y, X, y))
        2
    """

    def __init__(self, model: nn.Module, head: TaskHead, cfg: TrainConfig, *, task: str,
                 n_outputs: int, device: torch.device | str = "cpu",
                 callbacks: Sequence[Callback] = (), eval_batch_size: int = 4096) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.head, self.cfg, self.task, self.n_outputs = head, cfg, task, n_outputs
        self.eval_batch_size = eval_batch_size
        self.optimizer = build_optimizer(cfg, self.model)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=(
            cfg.precision == "fp16" and self.device.type == "cuda"))
        self.user_callbacks = list(callbacks)
        self.history = History(task)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.epoch, self.global_step = 0, 0
        self.should_stop, self.stop_reason = False, None
        self.best_epoch: Optional[int] = None
        self.main = MAIN_METRIC[task]
        self._check_grads = self.device.type == "cpu" and cfg.precision != "fp16"
        self._pending: Optional[dict[str, Any]] = None  # resume state applied in fit()
        self._mid_epoch: Optional[dict[str, Any]] = None  # resume inside an epoch
        self._partial: Optional[dict[str, Any]] = None  # the running epoch, for checkpoints

    # -- the loop ------------------------------------------------------------------------
    def fit(self, X: torch.Tensor, y: torch.Tensor, X_val: torch.Tensor,
            y_val: torch.Tensor) -> History:
        """Train on ``(X, y)``, validating on ``(X_val, y_val)`` after every epoch."""
        X, y = X.to(self.device), y.to(self.device)
        X_val, y_val = X_val.to(self.device), y_val.to(self.device)
        self._check_model(X)
        cuts = batch_slices(len(X), self.cfg.batch_size)
        self.steps_per_epoch = len(cuts)
        self.schedule = Schedule(self.cfg, self.optimizer, len(cuts))
        self.callbacks = CallbackList([LRSchedule(self.schedule),
                                       NanGuard(every_step=self.device.type == "cpu")]
                                      + self.user_callbacks)
        if self._pending is not None:
            self._apply_pending()
        # The per-step hooks, bound once (CallbackList.fire checks names on every call).
        batch_begin = self.callbacks.bound("on_batch_begin")
        batch_end = self.callbacks.bound("on_batch_end")
        with stop_signals() as interrupted:
            try:
                self._loop(X, y, X_val, y_val, cuts, batch_begin, batch_end, interrupted)
            except RuntimeError as exc:
                _refuse_nondeterministic(exc, self.device)
                raise
        return self.history

    def _loop(self, X: torch.Tensor, y: torch.Tensor, X_val: torch.Tensor, y_val: torch.Tensor,
              cuts: list[slice], batch_begin: Any, batch_end: Any, interrupted: Any) -> None:
        self.callbacks.fire("on_train_begin", self)
        for epoch in range(self.epoch + 1, self.cfg.epochs + 1):
            self.epoch = epoch
            self.callbacks.fire("on_epoch_begin", self, epoch=epoch)
            started = time.perf_counter()
            self.model.train()
            losses = torch.empty(len(cuts), device=self.device)
            outs: list[torch.Tensor] = []
            order, first = self._epoch_start(len(X), losses, outs)
            Xs, ys = X[order], y[order]  # one gather per epoch; batches are views
            self._partial = {"order": order, "losses": losses, "outs": outs, "step": first}
            for step in range(first, len(cuts)):
                xb, yb = Xs[cuts[step]], ys[cuts[step]]
                batch_begin(self, step=step)
                with autocast(self.device, self.cfg.precision):
                    out = self.model(xb)
                loss = self.head.loss(out, yb)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if self.cfg.grad_clip is not None:
                    self.scaler.unscale_(self.optimizer)
                    norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
                    # The norm is computed anyway: a non-finite one stops before the update
                    # (on CPU, where reading it costs no device sync; AMP's scaler skips such
                    # steps itself).
                    if self._check_grads and not math.isfinite(float(norm)):
                        raise TrainingDiverged(
                            f"training diverged: the gradient norm became {float(norm)} at "
                            f"step {step + 1} of epoch {epoch} (the loss was {loss.item():.4g});"
                            " a layer produced an infinite slope: check for sqrt/log/division "
                            "at 0 in the model, or lower train.lr")
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.global_step += 1
                losses[step] = loss.detach()
                outs.append(out.detach())
                self._partial["step"] = step + 1
                batch_end(self, step=step, loss=losses[step])
                if interrupted():  # finish the step, then leave; the signal handler only flags
                    raise TrainingInterrupted(epoch - 1)
            self._partial = None  # the epoch's steps are done: checkpoints are whole epochs
            # Epoch statistics in a few tensor ops, not per step (no device sync per step).
            seen = cuts[-1].stop
            sizes = torch.tensor([c.stop - c.start for c in cuts], device=self.device)
            tracker = _RunningMetric(self.task, self.device)
            tracker.update(self.head.scores(torch.cat(outs)), ys[:seen])
            val_loss, val_metric = self.validate(X_val, y_val)
            logs = {EPOCH: epoch, TRAIN_LOSS: float((losses * sizes).sum()) / seen,
                    f"train_{self.main}": tracker.value(), VAL_LOSS: val_loss,
                    f"val_{self.main}": val_metric, LR: self.schedule.lr,
                    TIME: time.perf_counter() - started}
            self.history.add(logs)
            self.callbacks.fire("on_epoch_end", self, epoch=epoch, logs=logs)
            if self.should_stop:
                break
        self.callbacks.fire("on_train_end", self)

    # -- pieces --------------------------------------------------------------------------
    @property
    def steps_done_in_epoch(self) -> int:
        """Optimiser steps finished in the running epoch (0 between epochs)."""
        return self._partial["step"] if self._partial else 0

    def _epoch_start(self, n: int, losses: torch.Tensor,
                     outs: list[torch.Tensor]) -> tuple[torch.Tensor, int]:
        """This epoch's row order and first step: a fresh permutation, or, when resuming in
        the middle of an epoch, the saved order and the finished steps' statistics."""
        mid = self._mid_epoch
        self._mid_epoch = None
        if mid is None:
            return torch.randperm(n, generator=self.generator).to(self.device), 0
        done = mid["step"]
        losses[:done] = mid["losses"].to(self.device)
        outs.append(mid["outs"].to(self.device))
        return mid["order"].to(self.device), done

    def validate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        out = predict_outputs(self.model, X, self.eval_batch_size, self.cfg.precision)
        tracker = _RunningMetric(self.task, self.device)
        tracker.update(self.head.scores(out), y)
        return float(self.head.loss(out, y)), tracker.value()

    def _check_model(self, X: torch.Tensor) -> None:
        """Run two rows through the model first: a shape mistake becomes one clear line."""
        probe = X[: min(2, len(X))]
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model(probe)
        except Exception as exc:
            _refuse_nondeterministic(exc, self.device)
            raise ModelError(f"the model failed on an input batch of shape {tuple(probe.shape)}: "
                             f"{str(exc).splitlines()[0]}; check that its first layer expects "
                             f"{tuple(probe.shape[1:])} inputs") from None
        finally:
            self.model.train(was_training)
        if not isinstance(out, torch.Tensor):
            raise ModelError(f"the model's forward returned {type(out).__name__}, not a tensor")
        self.head.check_output(out, len(probe), self.n_outputs)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly from where it is: weights,
        optimiser, schedule and callbacks, grad scaler, the data-order generator, every RNG,
        the history, and inside an epoch (``mid_epoch``) the epoch's row order and the
        finished steps' losses and outputs (see ``LastCheckpoint``)."""
        partial = self._partial if self._partial and self._partial["step"] else None
        mid = None
        if partial is not None:  # inside an epoch: its order and the finished steps' stats
            done = partial["step"]
            mid = {"epoch": self.epoch, "step": done, "order": partial["order"].cpu(),
                   "losses": partial["losses"][:done].cpu(),
                   "outs": torch.cat(partial["outs"]).cpu()}
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "epoch": self.epoch - 1 if mid else self.epoch, "mid_epoch": mid,
                "global_step": self.global_step, "generator": self.generator.get_state(),
                "rng": rng.capture(), "history": self.history.rows,
                "callbacks": [[type(cb).__name__, cb.state_dict()]
                              for cb in self.callbacks.callbacks]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a ``state_dict``: the next ``fit`` starts at epoch ``epoch + 1``."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.generator.set_state(state["generator"])
        self.history = History(self.task, state["history"])
        self._mid_epoch = state.get("mid_epoch")
        self._pending = state  # callbacks and RNGs: once fit() has built the callbacks

    def _apply_pending(self) -> None:
        """Give each callback its saved state, matched by class name in order. A user's
        stateless callback may come or go; a saved state with no callback to take it would
        silently change the run, so that is an error."""
        saved = [list(item) for item in self._pending["callbacks"]]
        for cb in self.callbacks.callbacks:
            match = next((item for item in saved if item[0] == type(cb).__name__), None)
            if match is not None:
                cb.load_state_dict(match[1])
                saved.remove(match)
        lost = [name for name, state in saved if state]
        if lost:
            raise RunError(f"the checkpoint holds the state of callback(s) {lost} that this run "
                           "does not have; resume with the same callbacks")
        rng.restore(self._pending["rng"])
        self._pending = None


def _refuse_nondeterministic(exc: BaseException, device: torch.device) -> None:
    """Turn PyTorch's refusal of an operation in deterministic mode into one clear line."""
    refused = nondeterministic_op(exc)
    if refused is not None:
        raise ModelError(f"train.deterministic=true, but the model uses an operation without a "
                         f"deterministic implementation on {device}: {refused[:300]}; set "
                         "train.deterministic=false or replace that layer") from None


class _RunningMetric:
    """Accuracy or R² over an epoch, computed on the device."""

    def __init__(self, task: str, device: torch.device) -> None:
        self.task = task
        # float64 for exact sums; Apple MPS has no float64.
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.stats = torch.zeros(4, dtype=self.dtype, device=device)

    def update(self, scores: torch.Tensor, y: torch.Tensor) -> None:
        if self.task == "regression":
            yd, sd = y.to(self.dtype), scores.to(self.dtype)
            self.stats += torch.stack([((yd - sd) ** 2).sum(), yd.sum(), (yd ** 2).sum(),
                                       torch.tensor(float(len(y)), device=y.device,
                                                    dtype=self.dtype)])
        else:
            pred = TaskHead.predict(self.task, scores)
            self.stats[0] += (pred == y.long()).sum()
            self.stats[3] += y.numel()  # multi-label: every (row, label) cell counts

    def value(self) -> float:
        sse, s, s2, n = self.stats.tolist()
        if n == 0:
            return math.nan
        if self.task != "regression":
            return sse / n
        sst = s2 - s * s / n
        return 1.0 - sse / sst if sst > 0 else math.nan
