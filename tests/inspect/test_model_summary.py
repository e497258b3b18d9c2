"""The model summary: parameter counts equal ``sum(p.numel())``, FLOPs equal hand counts,
activation memory follows the batch, and a failing model gives a reason, not an error."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from deepfit.config import ModelConfig
from deepfit.models import build_model
from deepfit.models.mlp import MLP
from deepfit.models.summary import model_summary


def _counts(model: nn.Module) -> tuple[int, int]:
    params = list(model.parameters())
    return (sum(p.numel() for p in params if p.requires_grad),
            sum(p.numel() for p in params if not p.requires_grad))


def test_flops_and_parameters_of_a_tiny_mlp_match_hand_counts():
    s = model_summary(MLP(3, 1, hidden=(4,)), (3,), batch_size=10)
    # Linear(3, 4): 3*4 multiply-adds, 2 FLOPs each; Linear(4, 1): 4*1.
    assert s.flops == 2 * 3 * 4 + 2 * 4 * 1 == 32
    assert [r["flops"] for r in s.rows] == [24, None, 8]
    assert s.parameters == (3 * 4 + 4) + (4 + 1) == 21
    # Activation memory for a batch of 10: fp32 outputs (10 x 4, 10 x 4, 10 x 1).
    assert [r["activation_bytes"] for r in s.rows] == [160, 160, 40]
    assert s.activation_bytes == 360


def test_flops_of_a_tiny_cnn_match_hand_counts():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    s = model_summary(net, (1, 6, 6))
    conv = 2 * 2 * (4 * 4) * (1 * 3 * 3)  # 2 FLOPs x C_out x output pixels x (C_in k k)
    linear = 2 * 32 * 3
    assert (s.flops, s.rows[0]["flops"], s.rows[-1]["flops"]) == (conv + linear, conv, linear)
    assert s.rows[0]["output"] == "(B, 2, 4, 4)"
    assert s.parameters == sum(p.numel() for p in net.parameters())


class Own(nn.Module):
    """The user's module: a parameter of its own beside children, a frozen part, a shared
    layer called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(5))
        self.frozen = nn.Linear(5, 5)
        self.frozen.requires_grad_(False)
        self.shared = nn.Linear(5, 5)
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.shared(self.shared(self.frozen(x * self.scale))))


def test_parameter_totals_equal_the_models_for_every_kind_of_network():
    models = [(MLP(6, 3, hidden=(8, 4)), (6,)), (Own(), (5,)),
              (build_model(ModelConfig(name="cnn"), (3, 16, 16), 4), (3, 16, 16)),
              (build_model(ModelConfig(name="resnet9"), (3, 16, 16), 4), (3, 16, 16)),
              (torchvision.models.resnet18(num_classes=3), (3, 32, 32))]
    for model, shape in models:
        s = model_summary(model, shape, batch_size=4)
        assert s.error is None
        assert (s.trainable, s.frozen) == _counts(model), type(model).__name__
        assert sum(r["trainable"] for r in s.rows) == s.trainable, type(model).__name__
        assert sum(r["frozen"] for r in s.rows) == s.frozen, type(model).__name__
        assert s.flops and sum(r["flops"] or 0 for r in s.rows) == s.flops, type(model).__name__


def test_the_users_module_counts_shared_layers_once_and_frozen_ones_apart():
    s = model_summary(Own(), (5,))
    assert (s.trainable, s.frozen) == (5 + 30 + 12, 30)
    shared = [r for r in s.rows if r["layer"] == "shared"]
    assert len(shared) == 2 and [r["parameters"] for r in shared] == [30, 0]
    assert s.rows[-1]["layer"] == "Own"  # its own parameter (the scale); hooks fire on return
    text = str(s)
    assert "total" in text and "47" in text and "30" in text
    assert "<table>" in s._repr_html_()


def test_a_model_that_fails_on_the_zero_batch_gives_a_reason_not_an_error():
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("no\nsecond line")

    s = model_summary(Broken(), (3,))
    assert s.rows == [] and s.parameters == 4
    assert s.error == "the model failed on a zero batch: no"
    assert str(s) == "model summary unavailable: the model failed on a zero batch: no"
