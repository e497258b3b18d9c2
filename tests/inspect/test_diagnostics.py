"""Training diagnostics: recorded per epoch by a callback, read as plain-language notes.
A deep sigmoid MLP is flagged as vanishing, a ReLU net with a huge negative bias as dead."""

from __future__ import annotations

import torch
from torch import nn

from deepfit.config import TrainConfig
from deepfit.models.mlp import MLP
from deepfit.report.diagnosis import diagnosis_notes
from deepfit.task import TaskHead
from deepfit.train.builtin import Diagnostics
from deepfit.train.builtin.diagnostics import probed
from deepfit.train.trainer import Trainer


def _data(n: int = 200, features: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, features, generator=g)
    return X, (X[:, 0] + X[:, 1] > 0).float()


def _fit(model: nn.Module, epochs: int = 2, **cfg) -> Trainer:
    X, y = _data(features=model.net[0].in_features if hasattr(model, "net") else 5)
    c = TrainConfig(epochs=epochs, progress=False, **cfg).resolved("table", "cpu")
    trainer = Trainer(model, TaskHead("binary"), c, task="binary", n_outputs=1)
    trainer.fit(X, y, X[:40], y[:40])
    return trainer


def _records(trainer: Trainer) -> list[dict]:
    diagnostics = trainer.find(Diagnostics)
    assert diagnostics is not None
    return diagnostics.records


def test_a_deep_sigmoid_mlp_is_flagged_as_vanishing():
    torch.manual_seed(0)
    records = _records(_fit(MLP(5, 1, hidden=(16,) * 10, activation="sigmoid")))
    assert [r["epoch"] for r in records] == [1, 2]
    layers = records[-1]["layers"]
    assert len(layers) == 11 and layers[0]["grad_norm"] < 1e-4 * layers[-1]["grad_norm"]
    notes = diagnosis_notes(records)
    assert any(n.startswith("Vanishing gradients: at epoch 2 the gradient of layer 1 (net.0)")
               and "of layer 11 (net.20)'s" in n and "ReLU" in n for n in notes), notes


def test_the_probe_pass_runs_about_once_per_fifty_training_steps():
    torch.manual_seed(0)
    trainer = _fit(MLP(5, 1, hidden=(16, 8)), epochs=12)  # 200 rows: 7 steps an epoch
    records = trainer.find(Diagnostics).records
    assert len(records) == 12 and all(r["layers"] for r in records)  # gradients: every epoch
    assert [r["epoch"] for r in records if not r["skipped"]] == [1, 9]  # every ceil(50/7)
    assert probed(records)["epoch"] == 9 and records[-1]["activations"] is None


def test_a_relu_net_with_a_huge_negative_bias_is_flagged_as_dead():
    torch.manual_seed(0)
    model = MLP(5, 1, hidden=(16, 16))
    with torch.no_grad():
        model.net[0].bias.fill_(-100.0)
    records = _records(_fit(model))
    first_relu = probed(records)["activations"][0]
    assert (first_relu["layer"], first_relu["dead"]) == ("net.1", 1.0)
    notes = diagnosis_notes(records)
    assert any(n.startswith("Dead ReLUs: 100% of the ReLU units of hidden layer 1 (net.1) "
                            "never fire on the 128 probe rows at epoch") for n in notes), notes
    assert any("No gradient reaches layer 1 (net.0)" in n for n in notes), notes
    assert any(n.startswith("Layers that barely moved in epoch 2: 1 (net.0, ") for n in notes)


def test_layers_moving_little_together_are_a_schedules_end_not_a_fault():
    def record(ratios):
        return {"epoch": 9, "probe_rows": 0, "activations": None, "skipped": True,
                "unavailable": None, "layers": [
                    {"layer": f"l{i}", "type": "Linear", "grad_norm": 0.1, "update_ratio": r}
                    for i, r in enumerate(ratios)]}

    assert diagnosis_notes([record([1e-7, 2e-7, 1e-7])]) == []  # one-cycle's last epoch
    assert diagnosis_notes([record([1e-7, 2e-3, 1e-3])]) == [
        "Layers that barely moved in epoch 9: 1 (l0, 1e-07), against 1e-03 of their size for "
        "the model's median layer; they are not learning (no gradient reaches them, e.g. "
        "through dead units, or they are cut off from the loss)."]
    assert "more than their own size in epoch 9: 2 (l1, 3.0 times)" in diagnosis_notes(
        [record([1e-2, 3.0, 1e-2])])[0]


def test_a_healthy_relu_net_gets_no_note():
    torch.manual_seed(0)
    records = _records(_fit(MLP(5, 1, hidden=(16, 8)), epochs=3))
    assert diagnosis_notes(records) == []
    last = records[-1]
    assert all(r["grad_norm"] > 0 and 0 < r["update_ratio"] < 1 for r in last["layers"])
    assert probed(records)["unavailable"] is None and last["probe_rows"] == 128


def test_saturated_tanh_units_are_flagged():
    torch.manual_seed(0)
    model = MLP(5, 1, hidden=(16,), activation="tanh")
    with torch.no_grad():
        model.net[0].weight.mul_(200.0)
    notes = diagnosis_notes(_records(_fit(model)))
    assert any(n.startswith("Saturation: ") and "Tanh outputs of hidden layer 1 (net.1)" in n
               for n in notes), notes


class FailsOnLargeBatches(nn.Module):
    """Trains on batches of 32 but fails on the probe's 128 rows: a model whose probe
    pass fails must not stop the run."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) > 100:
            raise RuntimeError("too many rows")
        return self.net(x)


def test_a_failing_probe_is_recorded_as_unavailable_and_training_goes_on():
    trainer = _fit(FailsOnLargeBatches(), epochs=2)
    records = _records(trainer)
    assert len(records) == 2 and records[-1]["activations"] is None
    assert probed(records)["unavailable"] == "the probe pass failed (too many rows)"
    assert records[-1]["layers"][0]["grad_norm"] is not None  # gradients still recorded
    assert diagnosis_notes(records)[-1] == ("Activation statistics (dead units, saturation) "
                                            "are unavailable: the probe pass failed (too many "
                                            "rows).")
    assert not trainer.model._forward_pre_hooks and not trainer.model._forward_hooks


def test_records_survive_a_resume_and_diagnostics_can_be_turned_off():
    torch.manual_seed(0)
    first = _fit(MLP(5, 1, hidden=(8,)), epochs=2)
    state = first.state_dict()
    X, y = _data()
    c = TrainConfig(epochs=4, progress=False).resolved("table", "cpu")
    again = Trainer(MLP(5, 1, hidden=(8,)), TaskHead("binary"), c, task="binary", n_outputs=1)
    again.load_state_dict(state)
    again.fit(X, y, X[:40], y[:40])
    records = _records(again)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[:2] == _records(first)
    assert not records[0]["skipped"]  # the first epoch always runs the probe pass
    off = _fit(MLP(5, 1, hidden=(8,)), diagnostics=False)
    assert off.find(Diagnostics) is None


def test_exploding_gradients_are_named_with_the_ratio():
    record = {"epoch": 3, "probe_rows": 0, "activations": None, "skipped": True,
              "unavailable": None, "layers": [
                  {"layer": "a", "type": "Linear", "grad_norm": 5e3, "update_ratio": 1e-2},
                  {"layer": "bn", "type": "BatchNorm1d", "grad_norm": 1e-9, "update_ratio": 1e-2},
                  {"layer": "b", "type": "Linear", "grad_norm": 1.0, "update_ratio": 1e-2}]}
    assert diagnosis_notes([record]) == [
        "Exploding gradients: at epoch 3 the gradient of layer 1 (a) is 5e+03 times layer 2 "
        "(b)'s. Lower train.lr, set train.grad_clip=1.0, or add normalisation "
        "(model.norm=batch)."]
