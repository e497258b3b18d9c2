"""The training loop: one function you can read top to bottom.

Data that fits in memory stays on the device as two tensors; each epoch draws one
permutation from a seeded generator, gathers the shuffled copy once, and slices mini-batches
as views. There is no per-sample Python work and no DataLoader in the loop (image sets too
large for memory stream through one; see ``deepfit.data.batches``). Images are stored as
uint8 and become network input batch by batch (``inputs``: scale, augment, normalise).
"""

from __future__ import annotations

import copy
import math
import re
import time
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from deepfit.config import TrainConfig
from deepfit.data.batches import eval_batches, epoch_batches
from deepfit.errors import ModelError, RunError, TrainingInterrupted
from deepfit.models.inference import autocast, predict_outputs
from deepfit.task import TaskHead
from deepfit.train import rng
from deepfit.train.builtin import RunFiles, default_callbacks
from deepfit.train.builtin.nan_guard import TrainingDiverged, checks_every_step, diverged
from deepfit.train.callbacks import Callback, CallbackList
from deepfit.train.device import nondeterministic_op
from deepfit.train.bn_stats import recompute_bn_stats, wants_precise_bn
from deepfit.train.history import EPOCH, LR, MAIN_METRIC, TIME, TRAIN_LOSS, VAL_LOSS, History
from deepfit.train.loop_parts import RunningMetric, stop_signals
from deepfit.train.optim import Schedule, build_optimizer
from deepfit.train.state import TrainState, capture, restore_callbacks
from deepfit.train.strategy import SingleDevice

# After this many non-finite steps in a row, skipping (train.on_nonfinite=skip) gives up.
MAX_SKIPPED_IN_A_ROW = 25


class Trainer:
    """Fits ``model`` with ``head``'s loss under a resolved ``cfg``; callbacks observe and
    steer; a strategy (``deepfit.train.strategy``) places data and model on the hardware.

    The built-in callbacks (schedule, NaN guard, best model, early stopping, checkpoints,
    progress) come from ``deepfit.train.builtin.default_callbacks``; ``callbacks`` are the
    user's, called between the built-in ones that watch the epoch and the checkpoint that
    saves it.

    Example:
        >>> from deepfit.models import MLP
        >>> X, y = torch.randn(64, 3), torch.randint(0, 2, (64,)).float()
        >>> cfg = TrainConfig(epochs=2, progress=False).resolved("table", "cpu")
        >>> t = Trainer(MLP(3, 1, hidden=(8,)), TaskHead("binary"), cfg, task="binary",
        ...             n_outputs=1)
        >>> len(t.fit(X, y, X, y))
        2
    """

    def __init__(self, model: nn.Module, head: TaskHead, cfg: TrainConfig, *, task: str,
                 n_outputs: int, device: torch.device | str = "cpu",
                 strategy: Optional[SingleDevice] = None, callbacks: Sequence[Callback] = (),
                 files: Optional[RunFiles] = None, select_best: bool = True,
                 eval_batch_size: int = 4096,
                 inputs: Optional[Callable[..., torch.Tensor]] = None,
                 workers: Optional[int] = None) -> None:
        _check_resolved(cfg)
        self.strategy = strategy or SingleDevice(device)
        self.device = self.strategy.device
        prepared = self.strategy.prepare(model, cfg, images=inputs is not None)
        self.model, self.forward = prepared.model, prepared.forward  # checkpoints save .model
        self.graphed, self.graph_refusal = prepared.graphed, prepared.graph_refusal
        self.head, self.cfg, self.task, self.n_outputs = head, cfg, task, n_outputs
        self.inputs = inputs  # stored batch -> network input (images); None: as stored
        self.eval_batch_size = eval_batch_size
        self.workers = workers  # decoding processes for streamed images (None: the cores)
        self.micro_batches = 1  # > 1 after out-of-memory halving (train.on_oom=halve)
        self.oom_events: list[dict[str, int]] = []
        self.skipped_steps = 0  # non-finite steps skipped (train.on_nonfinite=skip)
        self._skipped_in_a_row = 0
        self.optimizer = build_optimizer(cfg, self.model)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=(
            cfg.precision == "fp16" and self.device.type == "cuda"))
        before, after = default_callbacks(cfg, task, self.device, files=files,
                                          select_best=select_best, main=self.strategy.is_main)
        self.callbacks = CallbackList(before + list(callbacks) + after)
        self.schedule: Optional[Schedule] = None  # built by fit(): it needs the epoch's steps
        self.history = History(task)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.epoch, self.global_step = 0, 0
        self.should_stop, self.stop_reason = False, None
        self.best_epoch: Optional[int] = None
        self.main = MAIN_METRIC[task]
        self._check_grads = checks_every_step(cfg, self.device)  # the NaN guard's rule
        self._pending: Optional[TrainState] = None  # resume state applied in fit()
        self._mid_epoch: Optional[dict[str, Any]] = None  # resume inside an epoch
        self.partial: Optional[dict[str, Any]] = None  # the running epoch, for checkpoints
        self.val_outputs: Optional[torch.Tensor] = None  # set by validate()

    def find(self, kind: type) -> Optional[Callback]:
        """The first callback of type ``kind`` (e.g. ``BestModel``), or None."""
        return next((cb for cb in self.callbacks.callbacks if isinstance(cb, kind)), None)

    # -- the loop ------------------------------------------------------------------------
    def fit(self, X: Any, y: torch.Tensor, X_val: Any, y_val: torch.Tensor) -> History:
        """Train on ``(X, y)``, validating on ``(X_val, y_val)`` after every epoch. ``X`` is a
        tensor (moved to the device once) or streamed ``ImageFiles``."""
        place = self.strategy.place
        X, y, X_val, y_val = place(X), y.to(self.device), place(X_val), y_val.to(self.device)
        self._check_model(X)
        cuts = self.strategy.batch_slices(len(X), self.cfg.batch_size)
        self.steps_per_epoch = len(cuts)
        self.precise_bn = wants_precise_bn(self.cfg.precise_bn, self.model, len(cuts))
        self.schedule = Schedule(self.cfg, self.optimizer, len(cuts))
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
            ys = y[order]
            self.partial = {"order": order, "losses": losses, "outs": outs, "step": first}
            batches = epoch_batches(X, order, cuts, first, self.device, self.workers)
            for step, xb in zip(range(first, len(cuts)), batches):
                yb = ys[cuts[step]]
                batch_begin(self, step=step)
                loss, out = self._step(xb, yb, step, epoch)
                self.global_step += 1
                losses[step] = loss
                outs.append(out)
                self.partial["step"] = step + 1
                batch_end(self, step=step, loss=losses[step])
                if self.strategy.agree(interrupted()):  # finish the step, then leave, together
                    raise TrainingInterrupted(epoch - 1)
            self.partial = None  # the epoch's steps are done: checkpoints are whole epochs
            # Epoch statistics in a few tensor ops, not per step (no device sync per step).
            seen = cuts[-1].stop
            sizes = torch.tensor([c.stop - c.start for c in cuts], device=self.device)
            tracker = RunningMetric(self.task, self.device)
            tracker.update(self.head.scores(torch.cat(outs)), ys[:seen])
            tracker.stats = self.strategy.sum(tracker.stats)  # every process's rows
            # No validation rows (a final refit): nothing to validate, nothing to select.
            if self.precise_bn:  # statistics of these weights, not of earlier ones
                recompute_bn_stats(self.model, X, self.cfg.batch_size, self.inputs,
                                   self.cfg.precision)
            val_loss, val_metric = self.validate(X_val, y_val) if len(y_val) else (None, None)
            train_loss = self._epoch_loss(losses, sizes)
            logs = {EPOCH: epoch, TRAIN_LOSS: train_loss,
                    f"train_{self.main}": tracker.value(), VAL_LOSS: val_loss,
                    f"val_{self.main}": val_metric, LR: self.schedule.lr,
                    TIME: time.perf_counter() - started}
            self.history.add(logs)
            self.callbacks.fire("on_epoch_end", self, epoch=epoch, logs=logs)
            if self.should_stop:
                break
        self.callbacks.fire("on_train_end", self)

    def _epoch_loss(self, losses: torch.Tensor, sizes: torch.Tensor) -> float:
        """The epoch's mean training loss over every process's rows. Skipped (non-finite)
        steps hold NaN: the mean is over the others."""
        kept = torch.isfinite(losses)
        total = self.strategy.sum(torch.stack([(losses[kept] * sizes[kept]).sum(),
                                               sizes[kept].sum().to(losses.dtype)]))
        if bool(kept.any()):
            return float(total[0]) / float(total[1])
        return float(losses.sum())

    def _step(self, xb: torch.Tensor, yb: torch.Tensor, step: int,
              epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step on a batch; returns the detached loss and outputs. Out of GPU
        memory with ``train.on_oom=halve``, the batch is split into twice as many
        micro-batches whose gradients add up to the same step, and the step is retried."""
        while True:
            try:
                return self._update(xb, yb, step, epoch)
            except torch.OutOfMemoryError as exc:
                self.optimizer.zero_grad(set_to_none=True)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.cfg.on_oom != "halve" or len(yb) < 2 * self.micro_batches:
                    raise RunError(_oom_message(exc, self.cfg.batch_size, self.micro_batches)
                                   ) from None
                self.micro_batches *= 2
                if self.graphed is not None and self.graphed.active:
                    self.graphed.release(f"out of GPU memory at step {step + 1} of epoch "
                                         f"{epoch}: the graphs' memory was freed for the "
                                         "smaller micro-batches")
                self.oom_events.append({"epoch": epoch, "step": step + 1,
                                        "micro_batch": -(-self.cfg.batch_size //
                                                         self.micro_batches)})

    def _update(self, xb: torch.Tensor, yb: torch.Tensor, step: int,
                epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        n, outs, total = len(yb), [], None
        parts = ([slice(None)] if self.micro_batches == 1 else  # the usual case: no extra ops
                 torch.arange(n, device=self.device).tensor_split(min(self.micro_batches, n)))
        for part in parts:
            xp, yp = (xb, yb) if self.micro_batches == 1 else (xb[part], yb[part])
            if self.inputs is not None:
                xp = self.inputs(xp, train=True)
            out = self.graphed(xp) if self.graphed is not None else None
            if out is None:  # no graph, or a batch of another shape
                with autocast(self.device, self.cfg.precision):
                    out = self.forward(xp)
            loss = self.head.loss(out, yp)
            if len(yp) < n:  # each part's mean loss weighted by its share: the gradients
                loss = loss * (len(yp) / n)  # add up to the whole batch's
            weight = self.strategy.step_weight(step)  # several processes: their shares
            self.scaler.scale(loss * weight if weight != 1.0 else loss).backward()
            total = loss.detach() if total is None else total + loss.detach()
            outs.append(out.detach())
        self.strategy.reduce_gradients(self.model)
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
        norm = None
        if self.cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        if self._check_grads and not self._finite(total, norm, step, epoch):
            self.optimizer.zero_grad(set_to_none=True)  # skipped: no update at all
            return torch.full((), math.nan, device=self.device), out
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return total, out

    def _finite(self, loss: torch.Tensor, norm: Optional[torch.Tensor], step: int,
                epoch: int) -> bool:
        """False (skip the step) or an error (stop) when the loss or gradients are not
        finite; checked before the update, so the weights stay good."""
        if norm is None and self.cfg.on_nonfinite == "skip":
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            norm = nn.utils.get_total_norm(grads) if grads else None
        value, gnorm = float(loss), float(norm) if norm is not None else 0.0
        if math.isfinite(value) and math.isfinite(gnorm):
            self._skipped_in_a_row = 0
            return True
        if self.cfg.on_nonfinite == "skip":
            self.skipped_steps += 1
            self._skipped_in_a_row += 1
            if self._skipped_in_a_row < MAX_SKIPPED_IN_A_ROW:
                return False
            raise TrainingDiverged(
                f"training diverged: {MAX_SKIPPED_IN_A_ROW} steps in a row had a non-finite "
                f"loss or gradient (up to step {step + 1} of epoch {epoch}); lower train.lr "
                "or standardise the inputs")
        if not math.isfinite(value):  # stop before the update: the weights stay good
            raise diverged(self, value, f"step {step + 1} of epoch {epoch}")
        raise TrainingDiverged(
            f"training diverged: the gradient norm became {gnorm} at step {step + 1} of "
            f"epoch {epoch} (the loss was {value:.4g}); a layer produced an infinite slope: "
            "check for sqrt/log/division at 0 in the model, or lower train.lr")

    # -- pieces --------------------------------------------------------------------------
    @property
    def cuda_graphs(self) -> Optional[dict[str, Any]]:
        """What ``train.cuda_graphs`` did, for the report; ``None`` when it was not asked for."""
        if not self.cfg.cuda_graphs:
            return None
        if self.graphed is None:
            return {"used": False, "replays": 0, "reason": self.graph_refusal}
        return {"used": self.graphed.replays > 0, "replays": self.graphed.replays,
                "reason": self.graphed.reason}

    @property
    def steps_done_in_epoch(self) -> int:
        """Optimiser steps finished in the running epoch (0 between epochs)."""
        return self.partial["step"] if self.partial else 0

    def _epoch_start(self, n: int, losses: torch.Tensor,
                     outs: list[torch.Tensor]) -> tuple[torch.Tensor, int]:
        """This epoch's row order and first step: a fresh permutation, or, when resuming in
        the middle of an epoch, the saved order and the finished steps' statistics."""
        mid = self._mid_epoch
        self._mid_epoch = None
        if mid is None:
            return self.strategy.epoch_order(n, self.generator), 0
        done = mid["step"]
        losses[:done] = mid["losses"].to(self.device)
        outs.append(mid["outs"].to(self.device))
        return mid["order"].to(self.device), done

    def validate(self, X: Any, y: torch.Tensor) -> tuple[float, float]:
        while True:
            try:
                out = predict_outputs(self.model, X, self.eval_batch_size, self.cfg.precision,
                                      self.inputs, self.forward)
                break
            except torch.OutOfMemoryError as exc:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.cfg.on_oom != "halve" or self.eval_batch_size < 2:
                    raise RunError(_oom_message(exc, self.eval_batch_size, 1, "evaluation ")
                                   ) from None
                self.eval_batch_size //= 2
        self.val_outputs = out  # the epoch's validation outputs, for callbacks (tuning)
        tracker = RunningMetric(self.task, self.device)
        tracker.update(self.head.scores(out), y)
        return float(self.head.loss(out, y)), tracker.value()

    def _check_model(self, X: Any) -> None:
        """Run two rows through the model first: a shape mistake becomes one clear line."""
        probe = next(eval_batches(X, 2, self.device))
        if self.inputs is not None:
            probe = self.inputs(probe, train=False)
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
        """Everything needed to continue this run exactly from where it is
        (``deepfit.train.state.TrainState``), as a checkpoint's plain dict."""
        return capture(self).to_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a ``state_dict``: the next ``fit`` starts at epoch ``epoch + 1``."""
        saved = TrainState.from_dict(state)
        self.model.load_state_dict(saved.model)
        # A copy: torch keeps the given moment tensors and updates them in place, which
        # would change the caller's state (e.g. one dict resumed twice).
        self.optimizer.load_state_dict(copy.deepcopy(saved.optimizer))
        self.scaler.load_state_dict(saved.scaler)
        self.epoch, self.global_step = saved.epoch, saved.global_step
        self.generator.set_state(saved.generator)
        if saved.inputs is not None and hasattr(self.inputs, "load_state_dict"):
            self.inputs.load_state_dict(saved.inputs)
        self.micro_batches, self.oom_events = saved.micro_batches, list(saved.oom_events)
        self.skipped_steps = saved.skipped_steps
        self.history = History(self.task, saved.history)
        self._mid_epoch = saved.mid_epoch
        self._pending = saved  # schedule, callbacks and RNGs: once fit() built the schedule

    def _apply_pending(self) -> None:
        saved, self._pending = self._pending, None
        self.schedule.load_state_dict(saved.schedule)
        restore_callbacks(self.callbacks.callbacks, saved.callbacks)
        rng.restore(saved.rng)


def _check_resolved(cfg: TrainConfig) -> None:
    """The trainer takes a config whose automatic values are decided (by the run, for its
    data and device): it never re-decides them."""
    auto = [name for name in ("epochs", "batch_size", "patience", "channels_last", "lr",
                              "min_delta")
            if getattr(cfg, name) is None]
    auto += [name for name in ("schedule", "precision") if getattr(cfg, name) == "auto"]
    if auto:
        raise ValueError(f"Trainer takes a resolved TrainConfig; {', '.join(auto)} "
                         "still automatic: pass cfg.resolved(kind, device_type)")


def _oom_message(exc: BaseException, batch_size: int, parts: int, what: str = "") -> str:
    """One line naming the batch size and the memory PyTorch asked for."""
    asked = re.search(r"[Tt]ried to allocate ([\d.]+ [KMGT]i?B)", str(exc))
    size = f"{batch_size}" + (f" in {parts} micro-batches" if parts > 1 else "")
    return (f"out of GPU memory at {what}batch size {size}"
            + (f" (it asked for {asked.group(1)} more)" if asked else "")
            + "; lower train.batch_size (or eval.batch_size), use train.precision=bf16, or set "
              "train.on_oom=halve to split batches automatically")


def _refuse_nondeterministic(exc: BaseException, device: torch.device) -> None:
    """Turn PyTorch's refusal of an operation in deterministic mode into one clear line."""
    refused = nondeterministic_op(exc)
    if refused is not None:
        raise ModelError(f"train.deterministic=true, but the model uses an operation without a "
                         f"deterministic implementation on {device}: {refused[:300]}; set "
                         "train.deterministic=false or replace that layer") from None
