import math

import pytest
import torch

from deepfit.config import TrainConfig
from deepfit.errors import RunError
from deepfit.models import MLP
from deepfit.task import TaskHead
from deepfit.train.builtin import BestModel, EarlyStopping, LastCheckpoint
from deepfit.train.builtin.nan_guard import TrainingDiverged
from deepfit.train.callbacks import HOOKS, Callback
from deepfit.train.checkpoint import load_checkpoint, save_checkpoint
from deepfit.train.optim import parameter_groups
from deepfit.train.loop_parts import batch_slices
from deepfit.train.trainer import Trainer


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).float()
    return X, y


def _trainer(callbacks=(), hidden=(8,), **cfg):
    torch.manual_seed(0)
    options = {"epochs": 5, "batch_size": 16, "progress": False, **cfg}
    return Trainer(MLP(4, 1, hidden=hidden, dropout=0.0), TaskHead("binary"),
                   TrainConfig(**options).resolved(), task="binary", n_outputs=1,
                   callbacks=callbacks)


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def _log(name):
        def hook(self, trainer, **kwargs):
            self.events.append(name)
        return hook

    on_train_begin = _log("on_train_begin")
    on_epoch_begin = _log("on_epoch_begin")
    on_batch_begin = _log("on_batch_begin")
    on_batch_end = _log("on_batch_end")
    on_epoch_end = _log("on_epoch_end")
    on_train_end = _log("on_train_end")


def test_callback_order_is_pinned():
    rec = Recorder()
    X, y = _data(32)
    _trainer([rec], epochs=2, batch_size=16).fit(X, y, X, y)
    epoch = ["on_epoch_begin"] + ["on_batch_begin", "on_batch_end"] * 2 + ["on_epoch_end"]
    assert rec.events == ["on_train_begin"] + epoch * 2 + ["on_train_end"]
    assert set(rec.events) == set(HOOKS)


def test_loss_falls_and_history_has_fixed_columns():
    X, y = _data()
    history = _trainer(epochs=30, lr=0.01).fit(X, y, X, y)
    losses = history.column("train_loss")
    assert losses[-1] < 0.5 * losses[0]
    assert history.columns == ["epoch", "train_loss", "train_accuracy", "val_loss",
                               "val_accuracy", "lr", "time"]
    with pytest.raises(Exception, match="did you mean 'val_accuracy'"):
        history.column("val_acc")


def test_same_seed_gives_identical_weights():
    X, y = _data()
    a, b = _trainer(epochs=3), _trainer(epochs=3)
    a.fit(X, y, X, y)
    b.fit(X, y, X, y)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


def test_early_stopping_stops_and_restores_the_best_weights():
    X, y = _data()
    # Validation labels are noise, so val_loss soon stops improving.
    y_val = torch.randint(0, 2, (len(y),), generator=torch.Generator().manual_seed(1)).float()
    trainer = _trainer(epochs=200, lr=0.05, patience=3)  # built in: best model, early stop
    best = trainer.find(BestModel)
    history = trainer.fit(X, y, X, y_val)
    assert len(history) < 200 and trainer.should_stop
    assert len(history) - best.best_epoch == 3
    assert trainer.best_epoch == best.best_epoch
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], best.best_state[k]) for k in state)
    assert best.best_value == min(history.column("val_loss"))
    assert f"best at epoch {best.best_epoch}" in trainer.stop_reason


def test_default_callbacks_are_declared_once_and_their_order_does_not_matter():
    """Early stopping reads the best epoch from the history by the best model's rule, so
    reversing the two changes nothing; the checkpoint and progress come after the user's."""
    X, y = _data()
    y_val = torch.randint(0, 2, (len(y),), generator=torch.Generator().manual_seed(1)).float()

    class Mine(Callback):
        pass

    trainer = _trainer([Mine()], epochs=60, lr=0.05, patience=4, min_delta=0.01)
    names = [type(cb).__name__ for cb in trainer.callbacks.callbacks]
    assert names == ["LRSchedule", "NanGuard", "BestModel", "EarlyStopping", "Diagnostics", "Mine"]
    first = trainer.fit(X, y, X, y_val)
    swapped = _trainer([Mine()], epochs=60, lr=0.05, patience=4, min_delta=0.01)
    cbs = swapped.callbacks.callbacks
    cbs[2], cbs[3] = cbs[3], cbs[2]
    second = swapped.fit(X, y, X, y_val)
    assert first.rows[-1]["epoch"] == second.rows[-1]["epoch"] < 60
    assert trainer.stop_reason == swapped.stop_reason


def test_the_trainer_takes_a_resolved_config_only():
    with pytest.raises(ValueError, match="Trainer takes a resolved TrainConfig; epochs, "
                                         "batch_size"):
        Trainer(MLP(4, 1), TaskHead("binary"), TrainConfig(), task="binary", n_outputs=1)


def test_checkpoints_are_written_and_load_safely(tmp_path):
    X, y = _data()
    best = BestModel("val_accuracy", path=tmp_path / "best.pt")
    trainer = _trainer([best, LastCheckpoint(tmp_path / "last.pt")], epochs=3)
    trainer.fit(X, y, X, y)
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 3 and len(last["history"]) == 3
    assert set(last) >= {"model", "optimizer", "generator", "callbacks", "global_step"}
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == best.best_epoch
    assert not list(tmp_path.glob("*.tmp"))  # no temporary files left behind


def test_damaged_or_malicious_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="cannot be loaded safely"):
        load_checkpoint(bad)

    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    evil = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, evil)
    with pytest.raises(RunError):
        load_checkpoint(evil)
    assert not sentinel.exists()


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint({"v": torch.tensor(1)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_checkpoint({"v": Unpicklable()}, path)
    assert load_checkpoint(path)["v"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_nan_loss_stops_training_with_a_clear_message():
    X, y = _data()
    X[5, 0] = math.inf
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step \d+ of epoch 1"):
        _trainer(epochs=2).fit(X, y, X, y)


def test_weight_decay_skips_biases_and_norm_parameters():
    net = MLP(4, 1, hidden=(8,), norm="batch")
    decay, no_decay = parameter_groups(net, 0.1)
    assert decay["weight_decay"] == 0.1 and all(p.ndim == 2 for p in decay["params"])
    assert no_decay["weight_decay"] == 0.0 and all(p.ndim == 1 for p in no_decay["params"])
    assert len(no_decay["params"]) == 4  # two biases + batch-norm weight and bias


def test_step_schedule_and_warmup_follow_the_config():
    X, y = _data(64)
    t = _trainer(epochs=4, schedule="step", step_size=2, gamma=0.5, lr=0.1)
    lrs = t.fit(X, y, X, y).column("lr")
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05])  # the rate used in each epoch
    seen = []

    class Spy(Callback):
        def on_batch_end(self, trainer, step, loss, **kw):
            seen.append(trainer.optimizer.param_groups[0]["lr"])

    warm = _trainer([Spy()], epochs=3, schedule="constant", warmup_epochs=2, lr=0.1)
    warm.fit(X, y, X, y)
    steps = len(batch_slices(64, 16))
    assert seen[:2 * steps] == sorted(seen[:2 * steps]) and seen[0] < 0.1 / steps * 1.01
    assert seen[2 * steps:] == [pytest.approx(0.1)] * steps


@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "plateau"])
def test_other_schedules_lower_the_rate(schedule):
    X, y = _data(64)
    lrs = _trainer(epochs=12, schedule=schedule, lr=0.1, plateau_patience=0).fit(
        X, y, X, torch.rand(64).round()).column("lr")
    assert min(lrs) < 0.1


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "adadelta", "rmsprop"])
def test_every_optimizer_trains(optimizer):
    X, y = _data()
    lr = 1.0 if optimizer == "adadelta" else 0.02
    history = _trainer(epochs=15, optimizer=optimizer, lr=lr, nesterov=True).fit(X, y, X, y)
    assert history.column("train_loss")[-1] < history.column("train_loss")[0]


def test_gradient_clipping_bounds_the_update():
    X, y = _data(32)
    X = X * 1e4  # huge inputs: huge gradients
    t = _trainer(epochs=1, batch_size=32, optimizer="sgd", momentum=0.0, lr=1.0, grad_clip=0.5,
                 weight_decay=0.0,
                 hidden=())
    before = [p.detach().clone() for p in t.model.parameters()]
    t.fit(X, y, X, y)
    step = torch.cat([(p - b).flatten() for p, b in zip(t.model.parameters(), before)])
    assert step.norm() <= 0.5 * (1 + 1e-4)


def test_model_with_wrong_input_size_fails_before_training():
    X, y = _data()
    trainer = Trainer(MLP(7, 1), TaskHead("binary"), TrainConfig(progress=False).resolved(),
                      task="binary", n_outputs=1)
    with pytest.raises(Exception, match=r"input batch of shape \(2, 4\)"):
        trainer.fit(X, y, X, y)


def test_batch_slices_never_leave_a_single_row_batch():
    assert [s.stop - s.start for s in batch_slices(33, 16)] == [16, 16]
    assert [s.stop - s.start for s in batch_slices(34, 16)] == [16, 16, 2]
    assert [s.stop - s.start for s in batch_slices(1, 16)] == [1]


def test_deterministic_mode_names_a_refused_operation_and_restores_settings(tmp_path):
    import deepfit
    from deepfit.errors import ModelError

    class Refuses(torch.nn.Module):
        """Stands in for a CUDA kernel without a deterministic version (CPU has almost none)."""

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 1)

        def forward(self, x):
            if torch.are_deterministic_algorithms_enabled():
                # PyTorch's own wording when an operation has no deterministic kernel.
                raise RuntimeError("Refuses.forward does not have a deterministic "
                                   "implementation, but you set "
                                   "'torch.use_deterministic_algorithms(True)'.")
            return self.linear(x)

    quick = {"train.progress": False, "eval.plots": False, "eval.report": False}
    X = torch.randn(60, 4)
    y = (X[:, 0] > 0).long()
    before = torch.are_deterministic_algorithms_enabled()
    with pytest.raises(ModelError, match="Refuses.forward does not have a deterministic "
                                         "implementation"):
        deepfit.train(model=Refuses(), data=(X, y), out=tmp_path, epochs=1,
                      **{**quick, "train.deterministic": True})
    assert torch.are_deterministic_algorithms_enabled() == before
    run = deepfit.train(data=(X, y), out=tmp_path, epochs=2, **{**quick,
                                                                 "train.deterministic": True})
    assert run.history.rows and torch.are_deterministic_algorithms_enabled() == before


def test_a_full_disk_names_the_path_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno
    import os as _os

    path = tmp_path / "last.pt"
    save_checkpoint({"v": torch.tensor(1)}, path, keep_previous=True)

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_os, "fsync", no_space)  # the operating system, not deepfit, fails
    with pytest.raises(RunError, match=r"could not write '.*last\.pt\.new': No space left"):
        save_checkpoint({"v": torch.tensor(2)}, path, keep_previous=True)
    monkeypatch.undo()
    assert load_checkpoint(path)["v"].item() == 1
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_an_infinite_gradient_with_a_finite_loss_stops_before_the_update():
    class SqrtAtZero(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):  # d/dw sqrt(w) at w = 0 is infinite; the value is finite
            return torch.sqrt(self.w).expand(len(x), 1) + x[:, :1]

    X, y = _data(32)
    model = SqrtAtZero()
    t = Trainer(model, TaskHead("binary"), TrainConfig(epochs=1, batch_size=32, grad_clip=1.0,
                                                        progress=False).resolved(),
                task="binary", n_outputs=1)
    with pytest.raises(TrainingDiverged, match=r"gradient norm became (inf|nan) at step 1 of "
                                               r"epoch 1 \(the loss was"):
        t.fit(X, y, X, y)
    assert model.w.item() == 0.0  # the bad update was never applied


def test_progress_in_a_terminal_shows_epochs_and_the_steps_of_long_epochs():
    import io

    from deepfit.train.builtin.progress import STEP_BAR_MIN_STEPS, Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    X = torch.randn(STEP_BAR_MIN_STEPS * 4, 3)
    y = (X[:, 0] > 0).float()
    trainer = Trainer(MLP(3, 1, hidden=(4,)), TaskHead("binary"),
                      TrainConfig(epochs=2, batch_size=4, progress=False).resolved(), task="binary",
                      n_outputs=1, callbacks=[Progress("accuracy", 2, stream=screen)])
    trainer.fit(X, y, X, y)
    text = screen.getvalue()
    assert "epoch" in text and "2/2" in text and "val_accuracy" in text
    assert "step" in text and f"{STEP_BAR_MIN_STEPS * 4 // 4}" in text


def test_a_misspelt_hook_or_a_non_callback_is_refused(tmp_path):
    """A hook the trainer never calls would be silently dead code."""
    import deepfit
    from deepfit.errors import ConfigError

    class Late(deepfit.Callback):
        def on_epoch_ended(self, trainer, epoch, logs, **kw):  # the hook is on_epoch_end
            raise AssertionError("never called")

    with pytest.raises(ConfigError, match=r"callback Late defines on_epoch_ended, which the "
                                          r"trainer never calls \(did you mean 'on_epoch_end'"):
        deepfit.train(data="iris", epochs=1, progress=False, out=str(tmp_path),
                      callbacks=[Late()])

    class Duck:
        def on_epoch_end(self, trainer, epoch, logs, **kw):
            pass

    with pytest.raises(ConfigError, match="callback Duck is not a deepfit.Callback"):
        deepfit.train(data="iris", epochs=1, progress=False, out=str(tmp_path),
                      callbacks=[Duck()])
