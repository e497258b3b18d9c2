import textwrap

import pytest
import torch
from torch import nn

from deepfit.config import ModelConfig
from deepfit.errors import ModelError
from deepfit.models import MLP, build_model, register_model
from deepfit.models.summary import layer_table


def test_mlp_without_hidden_layers_is_one_linear_neuron():
    net = MLP(1, 1, hidden=())
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and linears[0].weight.shape == (1, 1)


@pytest.mark.parametrize("activation", ["linear", "relu", "leaky_relu", "elu", "selu", "gelu",
                                        "tanh", "sigmoid"])
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_mlp_shapes_for_every_activation_and_norm(activation, norm):
    net = MLP(5, 3, hidden=(8, 4), activation=activation, norm=norm, dropout=0.2)
    assert net(torch.randn(6, 5)).shape == (6, 3)
    kinds = {type(m).__name__ for m in net.modules()}
    assert ("BatchNorm1d" in kinds) == (norm == "batch")
    assert ("LayerNorm" in kinds) == (norm == "layer")
    assert "Dropout" in kinds


@pytest.mark.parametrize("init", ["kaiming", "xavier", "orthogonal"])
def test_init_schemes_zero_biases_and_change_weights(init):
    torch.manual_seed(0)
    default = MLP(16, 2, hidden=(16,))
    torch.manual_seed(0)
    custom = MLP(16, 2, hidden=(16,), init=init)
    assert torch.all(custom.net[0].bias == 0)
    assert not torch.equal(default.net[0].weight, custom.net[0].weight)


def test_build_model_unknown_name_suggests_close_one():
    with pytest.raises(ModelError, match="did you mean 'mlp'"):
        build_model(ModelConfig(name="mpl"), 3, 1)


def test_registered_model_is_built_by_name():
    register_model("tiny", lambda cfg, shape, o: nn.Linear(shape[0], o))
    assert isinstance(build_model(ModelConfig(name="tiny"), 4, 2), nn.Linear)


def _write_module(tmp_path, monkeypatch, body: str, name: str = "usernet") -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_custom_model_by_path_gets_sizes_and_kwargs(tmp_path, monkeypatch):
    _write_module(tmp_path, monkeypatch, """
        from torch import nn
        class Net(nn.Module):
            def __init__(self, in_features, out_features, width=4):
                super().__init__()
                self.width = width
                self.body = nn.Sequential(nn.Linear(in_features, width), nn.ReLU(),
                                          nn.Linear(width, out_features))
            def forward(self, x):
                return self.body(x)
    """)
    net = build_model(ModelConfig(name="usernet:Net", kwargs={"width": 7}), 3, 2)
    assert net.width == 7 and net(torch.zeros(2, 3)).shape == (2, 2)


def test_custom_model_from_a_file_path(tmp_path):
    (tmp_path / "netfile.py").write_text(
        "from torch import nn\nclass Net(nn.Linear):\n    def __init__(self):\n"
        "        super().__init__(2, 1)\n")
    net = build_model(ModelConfig(name=f"{tmp_path / 'netfile.py'}:Net"), 2, 1)
    assert isinstance(net, nn.Linear)


@pytest.mark.parametrize("name, message", [
    ("nosuchmodule_xyz:Net", "cannot import module 'nosuchmodule_xyz'"),
    ("usernet2:Missing", "has no attribute 'Missing'"),
    ("usernet2:NOT_A_MODULE", "not a torch nn.Module"),
    ("usernet2:Needs", "could not be built"),
])
def test_custom_model_errors_name_the_problem(tmp_path, monkeypatch, name, message):
    _write_module(tmp_path, monkeypatch, """
        NOT_A_MODULE = lambda: 3
        class Needs:
            def __init__(self, depth):
                pass
    """, name="usernet2")
    with pytest.raises(ModelError, match=message):
        build_model(ModelConfig(name=name), 3, 1)


def test_layer_table_lists_output_shapes_and_parameters():
    rows = layer_table(MLP(3, 2, hidden=(4,), dropout=0.0), (3,))
    assert [r["output"] for r in rows] == ["(B, 4)", "(B, 4)", "(B, 2)"]
    assert sum(r["parameters"] for r in rows) == 3 * 4 + 4 + 4 * 2 + 2


def test_tv_prefix_reaches_torchvisions_model_where_deepfit_has_one_of_the_same_name():
    import torchvision

    ours = build_model(ModelConfig(name="resnet18"), (3, 32, 32), 4)
    theirs = build_model(ModelConfig(name="tv:resnet18"), (3, 32, 32), 4)
    assert not isinstance(ours, torchvision.models.ResNet)
    assert isinstance(theirs, torchvision.models.ResNet) and theirs.fc.out_features == 4
    assert theirs(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    with pytest.raises(ModelError, match="model.name=tv:resnet18"):
        build_model(ModelConfig(name="resnet18", pretrained=True), (3, 32, 32), 4)
