"""The computational graph: traced with torch.fx (skip connections included), the module
hierarchy where tracing fails (said so), drawn as SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import torch
import torchvision
from torch import nn

from deepfit.models.graph import model_graph
from deepfit.models.mlp import MLP
from deepfit.report.graph_svg import graph_svg


def test_an_mlp_is_traced_in_order():
    g = model_graph(MLP(3, 1, hidden=(4,)))
    assert g["method"] == "torch.fx" and g["reason"] is None
    assert [n["label"] for n in g["nodes"]] == ["input", "flatten", "net.0: Linear",
                                                "net.1: ReLU", "net.2: Linear", "output"]
    assert g["edges"] == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]


def test_a_resnet_shows_its_skip_connections():
    g = model_graph(torchvision.models.resnet18(num_classes=2))
    adds = [n["id"] for n in g["nodes"] if n["label"] == "+"]
    assert len(adds) == 8  # one per basic block
    for add in adds:  # each sum has two inputs: the block's path and the shortcut
        assert sum(1 for a, b in g["edges"] if b == add) == 2
    svg = graph_svg(g)
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag.endswith("svg") and svg.count("<rect") == len(g["nodes"])
    assert " C" in svg  # the shortcut drawn as a curve beside the block


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 2), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) if x.sum() > 0 else self.b(x)


def test_an_untraceable_forward_falls_back_to_the_hierarchy_and_says_why():
    g = model_graph(DataDependent())
    assert g["method"] == "module hierarchy" and g["reason"]
    assert [n["label"] for n in g["nodes"]] == ["model: DataDependent", "a: Linear",
                                                "b: Sequential", "b.0: Linear", "b.1: ReLU"]
    assert g["edges"] == [[0, 1], [0, 2], [2, 3], [2, 4]]
    assert ET.fromstring(graph_svg(g)).tag.endswith("svg")
