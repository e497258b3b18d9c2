"""Multilayer perceptron: Linear -> [norm] -> activation -> [dropout], repeated.

With no hidden layer it is exactly the lectures' single neuron: linear regression
(identity output) or logistic regression (one logit, sigmoid inside the loss).
"""

from __future__ import annotations

import torch
from torch import nn

from deepfit.config import ModelConfig

ACTIVATIONS = {
    "linear": nn.Identity, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU,
    "selu": nn.SELU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
}


class MLP(nn.Module):
    """A fully connected network for flat inputs.

    Example:
        >>> net = MLP(30, 1, hidden=(15,))
        >>> net(torch.zeros(4, 30)).shape
        torch.Size([4, 1])
    """

    def __init__(self, in_features: int, out_features: int, hidden: tuple[int, ...] = (64, 32),
                 activation: str = "relu", dropout: float = 0.0, norm: str = "none",
                 init: str = "default") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(size))
            elif norm == "layer":
                layers.append(nn.LayerNorm(size))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)
        if init != "default":
            self.apply(lambda m: _init(m, init, activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F) -> (B, out)
        return self.net(x.flatten(1))


def _init(module: nn.Module, scheme: str, activation: str) -> None:
    if not isinstance(module, nn.Linear):
        return
    if scheme == "kaiming":
        # He init suits the ReLU family; the gain for others is looked up by name.
        nonlin = "leaky_relu" if activation == "leaky_relu" else "relu"
        nn.init.kaiming_normal_(module.weight, nonlinearity=nonlin)
    elif scheme == "xavier":
        gain = nn.init.calculate_gain("tanh" if activation == "tanh" else "linear")
        nn.init.xavier_uniform_(module.weight, gain=gain)
    elif scheme == "orthogonal":
        nn.init.orthogonal_(module.weight)
    nn.init.zeros_(module.bias)


def build_mlp(cfg: ModelConfig, in_features: int, out_features: int) -> MLP:
    return MLP(in_features, out_features, hidden=cfg.hidden, activation=cfg.activation,
               dropout=cfg.dropout, norm=cfg.norm, init=cfg.init)
