"""The trainer's seam: a strategy places data and model, orders each epoch's rows, combines
gradients and says which process writes; the training state is one object."""

from __future__ import annotations

import torch

from deepfit.config import TrainConfig
from deepfit.models import MLP
from deepfit.task import TaskHead
from deepfit.train.state import TrainState
from deepfit.train.strategy import SingleDevice
from deepfit.train.trainer import Trainer


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    return X, (X[:, 0] - X[:, 1] > 0).float()


def _trainer(strategy=None, epochs=3, **cfg):
    torch.manual_seed(0)
    config = TrainConfig(epochs=epochs, batch_size=16, progress=False, **cfg).resolved()
    return Trainer(MLP(4, 1, hidden=(8,), dropout=0.0), TaskHead("binary"), config,
                   task="binary", n_outputs=1, strategy=strategy)


class Counting(SingleDevice):
    """A strategy that counts what the loop asks of it and freezes the gradients."""

    def __init__(self) -> None:
        super().__init__("cpu")
        self.calls = {"place": 0, "order": 0, "reduce": 0}

    def place(self, X):
        self.calls["place"] += 1
        return super().place(X)

    def epoch_order(self, n, generator):
        self.calls["order"] += 1
        return super().epoch_order(n, generator)

    def reduce_gradients(self, model):
        self.calls["reduce"] += 1
        for p in model.parameters():
            if p.grad is not None:
                p.grad.zero_()


def test_the_loop_asks_the_strategy_for_placement_order_and_gradients():
    X, y = _data()
    strategy = Counting()
    trainer = _trainer(strategy, weight_decay=0.0)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit(X, y, X, y)
    steps = trainer.steps_per_epoch * 3
    assert strategy.calls == {"place": 2, "order": 3, "reduce": steps}
    after = trainer.model.state_dict()  # zeroed gradients: AdamW without decay moves nothing
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_default_strategy_is_the_plain_loop():
    X, y = _data()
    a = _trainer().fit(X, y, X, y)
    b = _trainer(SingleDevice("cpu")).fit(X, y, X, y)
    assert [r["val_loss"] for r in a.rows] == [r["val_loss"] for r in b.rows]
    assert SingleDevice("cpu").is_main and SingleDevice("cpu").world_size == 1


def test_a_checkpoint_from_before_the_state_object_resumes_the_same():
    """Checkpoints written before TrainState kept the schedule's state under the LRSchedule
    callback; they load to the same continuation."""
    X, y = _data()
    first = _trainer(epochs=2, schedule="step", step_size=1, gamma=0.5)
    first.fit(X, y, X, y)
    state = first.state_dict()
    old = {k: v for k, v in state.items() if k != "schedule"}
    old["callbacks"] = [["LRSchedule", state["schedule"]]] + state["callbacks"] + [
        ["EarlyStopping", {}]]
    assert TrainState.from_dict(old).schedule == state["schedule"]

    def resumed(saved):
        t = _trainer(epochs=4, schedule="step", step_size=1, gamma=0.5)
        t.load_state_dict(saved)
        return t.fit(X, y, X, y).rows

    new_rows, old_rows = resumed(state), resumed(old)
    assert [r["lr"] for r in new_rows] == [r["lr"] for r in old_rows] == [
        0.001, 0.0005, 0.00025, 0.000125]
    assert [r["val_loss"] for r in new_rows] == [r["val_loss"] for r in old_rows]


def test_only_the_main_process_writes_checkpoints(tmp_path):
    from deepfit.train.builtin import RunFiles

    class Worker(SingleDevice):
        rank = 1

    X, y = _data()
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=2, batch_size=16, progress=False).resolved()
    files = RunFiles(tmp_path / "best.pt", tmp_path / "last.pt")
    Trainer(MLP(4, 1, hidden=(8,)), TaskHead("binary"), cfg, task="binary", n_outputs=1,
            strategy=Worker("cpu"), files=files).fit(X, y, X, y)
    assert not list(tmp_path.iterdir())
    Trainer(MLP(4, 1, hidden=(8,)), TaskHead("binary"), cfg, task="binary", n_outputs=1,
            strategy=SingleDevice("cpu"), files=files).fit(X, y, X, y)
    assert {p.name for p in tmp_path.iterdir()} >= {"best.pt", "last.pt"}
