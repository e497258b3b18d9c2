"""Numerical policies of the training loop, driven by the user's own models.

``train.on_nonfinite``: a step whose loss or gradient is NaN/Inf either stops the run with a
message naming the step (``stop``) or is skipped without touching the weights (``skip``).
``train.on_oom``: running out of GPU memory either stops with one line naming the batch size
(``stop``) or splits every batch into twice as many micro-batches and retries (``halve``),
which leaves the gradient, and so the weights, as they would have been.

The models below raise or poison their outputs themselves (a real ``torch.OutOfMemoryError``
on CPU is the only way to exercise the OOM policy without a GPU); the trainer is deepfit's,
unchanged. The fp16 GradScaler and the real CUDA out-of-memory tests need a GPU.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import deepfit
from deepfit.config import TrainConfig
from deepfit.errors import RunError
from deepfit.task import TaskHead
from deepfit.train.builtin.nan_guard import TrainingDiverged
from deepfit.train.callbacks import Callback
from deepfit.train.checkpoint import load_checkpoint, save_checkpoint
from deepfit.train.loop_parts import batch_slices
from deepfit.train.trainer import MAX_SKIPPED_IN_A_ROW, Trainer

OOM_TEXT = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
            "79.11 GiB of which 1.03 GiB is free.")


def _data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    return X, (X[:, 0] - X[:, 1] > 0).float()


def _trainer(model: nn.Module, callbacks=(), device="cpu", eval_batch_size=4096,
             **cfg) -> Trainer:
    options = {"epochs": 1, "batch_size": 16, "progress": False, **cfg}
    cfg = TrainConfig(**options).resolved("table", torch.device(device).type)
    return Trainer(model, TaskHead("binary"), cfg, task="binary", n_outputs=1, device=device,
                   callbacks=callbacks, eval_batch_size=eval_batch_size)


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


class PoisonedSteps(nn.Module):
    """A linear model whose training forward returns ``poison`` (NaN or Inf) times its output
    on the chosen global steps; the ``StepClock`` callback tells it the step."""

    def __init__(self, bad_steps=(), poison: float = math.nan, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.lin = nn.Linear(4, 1)
        self.bad_steps, self.poison, self.step = set(bad_steps), poison, -1

    def forward(self, x):
        out = self.lin(x)
        if self.training and self.step in self.bad_steps:
            return out * self.poison
        return out


class InfGrad(torch.autograd.Function):
    """Identity forward (a finite loss); an infinite gradient on the way back."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * math.inf


class InfGradSteps(PoisonedSteps):
    def forward(self, x):
        out = self.lin(x)
        if self.training and self.step in self.bad_steps:
            return InfGrad.apply(out)
        return out


class StepWatch(Callback):
    """Tells the model the global step, snapshots the weights before every step, and records
    per step the loss and whether the weights changed."""

    def __init__(self):
        self.losses, self.changed = [], []

    def on_batch_begin(self, trainer, step, **kwargs):
        trainer.model.step = trainer.global_step
        self.before = _params(trainer.model)

    def on_batch_end(self, trainer, step, loss, **kwargs):
        self.losses.append(float(loss))
        self.changed.append(not _same(self.before, _params(trainer.model)))


# -- train.on_nonfinite ---------------------------------------------------------------------

@pytest.mark.parametrize("poison", [math.nan, math.inf], ids=["nan", "inf"])
def test_skip_leaves_the_weights_alone_on_exactly_the_bad_steps(poison):
    X, y = _data(96)  # 6 steps an epoch
    bad = {2, 9}  # step 3 of epoch 1 and step 4 of epoch 2
    watch = StepWatch()
    t = _trainer(PoisonedSteps(bad, poison), [watch], epochs=2, on_nonfinite="skip")
    history = t.fit(X, y, X, y)
    assert len(history) == 2 and t.epoch == 2  # training finished
    assert t.skipped_steps == len(bad)
    assert [i for i, c in enumerate(watch.changed) if not c] == sorted(bad)
    assert all(math.isnan(watch.losses[i]) for i in bad)
    # The epoch's loss is the size-weighted mean over its good steps only.
    sizes = [c.stop - c.start for c in batch_slices(len(X), 16)]
    for epoch, losses in enumerate((watch.losses[:6], watch.losses[6:]), start=1):
        good = [(loss, n) for loss, n in zip(losses, sizes) if math.isfinite(loss)]
        expected = sum(loss * n for loss, n in good) / sum(n for _, n in good)
        assert history.rows[epoch - 1]["train_loss"] == pytest.approx(expected, rel=1e-6)
    assert all(math.isfinite(v) for v in history.column("train_loss"))
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


def test_stop_names_the_step_where_the_loss_became_nan():
    X, y = _data(96)
    t = _trainer(PoisonedSteps({2, 9}), [StepWatch()], epochs=2, on_nonfinite="stop")
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at step 3 of epoch 1 "
                                               r"\(learning rate"):
        t.fit(X, y, X, y)
    assert t.skipped_steps == 0


def test_good_steps_in_between_reset_the_skip_count():
    X, y = _data(100)
    steps = len(batch_slices(100, 2))  # 50 steps, one epoch
    bad = set(range(steps)) - {MAX_SKIPPED_IN_A_ROW - 1, steps - 1}  # 24 bad, 1 good, 24 bad
    t = _trainer(PoisonedSteps(bad), [StepWatch()], batch_size=2, on_nonfinite="skip")
    history = t.fit(X, y, X, y)
    assert t.skipped_steps == len(bad) == 2 * (MAX_SKIPPED_IN_A_ROW - 1)
    assert math.isfinite(history.rows[0]["train_loss"])


def test_skip_gives_up_after_too_many_bad_steps_in_a_row():
    X, y = _data(120)  # 30 steps of 4 rows: more than the limit in one epoch
    model = PoisonedSteps(range(1000))
    before = _params(model)
    t = _trainer(model, [StepWatch()], batch_size=4, on_nonfinite="skip")
    with pytest.raises(TrainingDiverged, match=rf"{MAX_SKIPPED_IN_A_ROW} steps in a row had a "
                                               rf"non-finite loss or gradient \(up to step "
                                               rf"{MAX_SKIPPED_IN_A_ROW} of epoch 1\)"):
        t.fit(X, y, X, y)
    assert t.skipped_steps == MAX_SKIPPED_IN_A_ROW
    assert _same(before, _params(model))  # not one bad update reached the weights


@pytest.mark.parametrize("clip", [None, 1.0], ids=["no_clip", "clip"])
def test_an_infinite_gradient_with_a_finite_loss_is_skipped(clip):
    X, y = _data(96)
    watch = StepWatch()
    t = _trainer(InfGradSteps({1}), [watch], on_nonfinite="skip", grad_clip=clip)
    history = t.fit(X, y, X, y)
    assert t.skipped_steps == 1
    assert watch.changed == [True, False, True, True, True, True]
    assert math.isfinite(history.rows[0]["train_loss"])
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


def test_an_infinite_gradient_stops_before_the_update_under_stop():
    X, y = _data(96)
    watch = StepWatch()
    model = InfGradSteps({1})
    after_first = []

    class AfterFirst(Callback):
        def on_batch_end(self, trainer, step, loss, **kwargs):
            after_first.append(_params(trainer.model))

    t = _trainer(model, [watch, AfterFirst()], on_nonfinite="stop", grad_clip=1.0)
    with pytest.raises(TrainingDiverged, match=r"the gradient norm became (inf|nan) at step 2 "
                                               r"of epoch 1 \(the loss was [0-9.]+\)"):
        t.fit(X, y, X, y)
    assert len(after_first) == 1  # step 2 never finished
    assert _same(after_first[0], _params(model))  # and its update was never applied


# -- train.on_oom ---------------------------------------------------------------------------

class RaisesOOM(nn.Module):
    """A linear model that runs out of "GPU memory" (raises PyTorch's own exception) on a
    training batch of more than ``max_train`` rows, or an evaluation batch of more than
    ``max_eval`` rows; it counts the times it did."""

    def __init__(self, max_train: float = math.inf, max_eval: float = math.inf, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.lin = nn.Linear(4, 1)
        self.max_train, self.max_eval, self.raised = max_train, max_eval, 0

    def forward(self, x):
        limit = self.max_train if self.training else self.max_eval
        if len(x) > limit:
            self.raised += 1
            raise torch.OutOfMemoryError(OOM_TEXT)
        return self.lin(x)


FIRST_STEP_EVENTS = [{"epoch": 1, "step": 1, "micro_batch": 8},
                     {"epoch": 1, "step": 1, "micro_batch": 4}]


def test_halve_finds_the_micro_batch_that_fits_and_trains_the_same_weights():
    X, y = _data(96)
    oom = _trainer(RaisesOOM(max_train=5), on_oom="halve", batch_size=16)
    plain = _trainer(RaisesOOM(), batch_size=16)
    h_oom = oom.fit(X, y, X, y)
    h_plain = plain.fit(X, y, X, y)
    assert oom.micro_batches == 4  # 16 -> 8 -> 4 rows: the smallest power of two that fits
    assert oom.oom_events == FIRST_STEP_EVENTS
    assert oom.model.raised == 2 and plain.model.raised == 0 and plain.micro_batches == 1
    # Micro-batches add up to the batch's gradient: the same step as without running out.
    for a, b in zip(oom.model.parameters(), plain.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert h_oom.rows[0]["train_loss"] == pytest.approx(h_plain.rows[0]["train_loss"],
                                                        rel=1e-6)


def test_a_last_batch_smaller_than_the_micro_batch_count_still_trains():
    X, y = _data(98)  # batches of 16 and a last one of 2 rows, split into 4 micro-batches
    assert [c.stop - c.start for c in batch_slices(98, 16)][-1] == 2
    oom = _trainer(RaisesOOM(max_train=5), on_oom="halve", epochs=2)
    plain = _trainer(RaisesOOM(), epochs=2)
    history = oom.fit(X, y, X, y)
    plain.fit(X, y, X, y)
    assert oom.micro_batches == 4 and oom.skipped_steps == 0
    assert all(math.isfinite(v) for v in history.column("train_loss"))
    for a, b in zip(oom.model.parameters(), plain.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def _one_line_error(t: Trainer) -> str:
    """Fit ``t`` on the usual data; the RunError it must raise, checked to be one line."""
    X, y = _data(96)
    with pytest.raises(RunError) as info:
        t.fit(X, y, X, y)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    return message


def test_halve_gives_up_when_one_row_does_not_fit():
    message = _one_line_error(_trainer(RaisesOOM(max_train=0), on_oom="halve", batch_size=16))
    assert "out of GPU memory at batch size 16 in 16 micro-batches" in message
    assert "2.00 GiB" in message


def test_stop_is_one_line_naming_the_batch_size_the_request_and_the_fix():
    t = _trainer(RaisesOOM(max_train=5), on_oom="stop", batch_size=16)
    message = _one_line_error(t)
    assert "out of GPU memory at batch size 16 (it asked for 2.00 GiB more)" in message
    assert "train.on_oom=halve" in message and "train.batch_size" in message
    assert t.micro_batches == 1 and t.oom_events == []


def test_validation_out_of_memory_halves_the_evaluation_batch():
    X, y = _data(96)
    t = _trainer(RaisesOOM(max_eval=20), on_oom="halve", eval_batch_size=64)
    history = t.fit(X, y, X, y)
    assert t.eval_batch_size == 16 and t.micro_batches == 1  # 64 -> 32 -> 16 rows
    assert math.isfinite(history.rows[0]["val_loss"])
    with pytest.raises(RunError, match=r"out of GPU memory at evaluation batch size 64 \(it "
                                       r"asked for 2\.00 GiB more\).*train\.on_oom=halve"):
        _trainer(RaisesOOM(max_eval=20), on_oom="stop", eval_batch_size=64).fit(X, y, X, y)


def test_a_resumed_run_keeps_its_micro_batches(tmp_path):
    X, y = _data(96)
    first = _trainer(RaisesOOM(max_train=5), on_oom="halve", epochs=1)
    first.fit(X, y, X, y)
    save_checkpoint(first.state_dict(), tmp_path / "last.pt")
    state = load_checkpoint(tmp_path / "last.pt")  # weights_only: plain values survive
    assert state["micro_batches"] == 4 and state["oom_events"] == FIRST_STEP_EVENTS

    resumed = _trainer(RaisesOOM(max_train=5, seed=1), on_oom="halve", epochs=2)
    resumed.load_state_dict(state)
    assert resumed.micro_batches == 4
    resumed.fit(X, y, X, y)
    assert resumed.model.raised == 0  # it never had to find the size again
    assert resumed.micro_batches == 4 and resumed.oom_events == FIRST_STEP_EVENTS
    whole = _trainer(RaisesOOM(max_train=5), on_oom="halve", epochs=2)
    whole.fit(X, y, X, y)
    for a, b in zip(resumed.model.parameters(), whole.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_the_pipeline_records_micro_batches_and_oom_events(tmp_path):
    X, y = _data(200)
    run = deepfit.train(model=RaisesOOM(max_train=5), data=(X, y.long()), out=tmp_path,
                        name="oom", on_oom="halve", batch_size=16, epochs=2,
                        **{"train.progress": False, "eval.plots": False, "eval.report": True,
                           "eval.bootstrap": 0})
    training = json.loads((run.path / "summary.json").read_text())["training"]
    assert training["micro_batches"] == 4
    assert training["oom_events"] == FIRST_STEP_EVENTS
    assert training["skipped_steps"] == 0
    assert "on_oom: halve" in (run.path / "config.yaml").read_text()
    report = (run.path / "report.md").read_text()
    assert "each batch of 16 was then split into 4 micro-batches" in report


# -- CUDA only: the fp16 GradScaler and a real out-of-memory --------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@needs_cuda
def test_fp16_grad_scaler_skips_an_infinite_step_and_lowers_the_scale():
    X, y = _data(96)
    scales = []

    class Scale(Callback):
        def on_batch_begin(self, trainer, step, **kwargs):
            self.before = trainer.scaler.get_scale()

        def on_batch_end(self, trainer, step, loss, **kwargs):
            scales.append((self.before, trainer.scaler.get_scale()))

    watch = StepWatch()
    t = _trainer(PoisonedSteps({3}, math.inf), [watch, Scale()], device="cuda", epochs=2,
                 precision="fp16")
    assert t.scaler.is_enabled()
    history = t.fit(X, y, X, y)
    before, after = scales[3]
    assert after < before  # the scaler backed off after the overflow
    assert watch.changed[3] is False  # and that step left the weights alone
    assert sum(watch.changed) >= len(watch.changed) - 2  # the other steps did train
    assert len(history) == 2
    assert all(math.isfinite(v) for v in history.column("train_loss"))
    assert all(math.isfinite(v) for v in history.column("val_loss"))
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


class ConvNet(nn.Module):
    """Wide convolutions at full resolution: activation memory grows with the batch."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, 1)

    def forward(self, x):
        return self.head(self.body(x.float() / 255))


@needs_cuda
def test_a_real_cuda_out_of_memory_is_survived_by_halving():
    device = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    # 64 images 3x128x128, stored as uint8 on the device (3 MiB): one step an epoch.
    X = torch.randint(0, 256, (64, 3, 128, 128), generator=g, dtype=torch.uint8)
    y = (X[:, 0].float().mean((1, 2)) > 127.5).float()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(device).total_memory
    # A full batch needs about 1 GiB of activations; allow ~300 MiB above what is in use.
    cap = torch.cuda.memory_reserved(device) + 300 * 2 ** 20
    torch.cuda.set_per_process_memory_fraction(cap / total, torch.cuda.current_device())
    try:
        t = _trainer(ConvNet(), device=device, batch_size=64, epochs=2, on_oom="halve",
                     precision="fp32", optimizer="sgd", lr=0.01)
        history = t.fit(X, y, X, y)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, torch.cuda.current_device())
        torch.cuda.empty_cache()
    assert t.micro_batches > 1 and t.oom_events
    assert t.oom_events[0]["epoch"] == 1 and t.oom_events[0]["step"] == 1
    assert t.oom_events[-1]["micro_batch"] == 64 // t.micro_batches
    assert t.eval_batch_size < 4096  # validation ran out too and halved its batch
    assert len(history) == 2
    assert all(math.isfinite(v) for v in history.column("train_loss"))


def test_on_an_accelerator_a_nan_loss_is_caught_one_step_later_naming_its_step():
    """Accelerators read each loss a step late (no stall per step): the guard, fed the
    losses a device would produce, stops at the next step and names the bad one."""
    from deepfit.train.builtin.nan_guard import NanGuard

    trainer = _trainer(nn.Linear(3, 1))
    trainer.epoch = 2
    guard = NanGuard(every_step=False, lagged=True)
    guard.on_batch_end(trainer, step=0, loss=torch.tensor(0.5))
    guard.on_batch_end(trainer, step=1, loss=torch.tensor(float("nan")))  # not read yet
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 2 of epoch 2"):
        guard.on_batch_end(trainer, step=2, loss=torch.tensor(0.4))
    # The epoch's last step is read at the epoch's end.
    guard = NanGuard(every_step=False, lagged=True)
    guard.on_batch_end(trainer, step=0, loss=torch.tensor(float("inf")))
    with pytest.raises(TrainingDiverged, match=r"loss became inf at step 1 of epoch 2"):
        guard.on_epoch_end(trainer, epoch=2, logs={"train_loss": 0.3})
    # Under the skip policy the trainer has skipped such steps already.
    guard = NanGuard(every_step=False, skip=True, lagged=True)
    guard.on_batch_end(trainer, step=0, loss=torch.tensor(float("nan")))
    guard.on_batch_end(trainer, step=1, loss=torch.tensor(0.2))
    guard.on_epoch_end(trainer, epoch=2, logs={"train_loss": 0.2})
