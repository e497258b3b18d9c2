"""The user's own network is run once before training: a forward that contradicts
``model.outputs`` (a sigmoid or softmax with logits, raw scores with probabilities) stops
with one line naming the class, what was seen and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import deepfit
from deepfit.cli import main
from deepfit.data.images.inputs import ImageInputs, ImageSpec
from deepfit.errors import ModelError
from deepfit.models.outputs_check import check_outputs, users_own
from deepfit.sklearn import NeuralClassifier

CPU = torch.device("cpu")


class LectureNet(nn.Module):
    """A small table network; ``end`` is what its forward applies last."""

    def __init__(self, n_in=30, n_out=1, end=None):
        super().__init__()
        self.hidden = nn.Linear(n_in, 15)
        self.out = nn.Linear(15, n_out)
        self.end = end

    def forward(self, x):
        z = self.out(torch.relu(self.hidden(x)))
        return z if self.end is None else self.end(z)


def _rows(n=80, features=30, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, features))).float()


def _check(model, task="binary", outputs="logits", X=None, **kw):
    check_outputs(model, _rows() if X is None else X, task, outputs, "nets:Net", CPU, **kw)


@pytest.mark.parametrize("end", [torch.sigmoid, nn.Sigmoid(), lambda z: z.sigmoid().squeeze(1)])
def test_a_final_sigmoid_with_logits_stops_with_the_fix(end):
    with pytest.raises(ModelError, match=r"model LectureNet: forward ends in a sigmoid .* all lie "
                       r"in \(0, 1\).*set model.outputs=probabilities \(from Python: "
                       r"outputs=\"probabilities\"\) or remove the final sigmoid"):
        _check(LectureNet(end=end))
    _check(LectureNet(end=end), outputs="probabilities")  # declared: fine


def test_a_final_softmax_with_logits_stops_with_the_fix():
    net = LectureNet(n_out=3, end=nn.Softmax(dim=1))
    with pytest.raises(ModelError, match=r"each row of 3 is non-negative and sums to 1.*"
                                         r"model.outputs=probabilities"):
        _check(net, task="multiclass")
    _check(net, task="multiclass", outputs="probabilities")
    wrong_dim = LectureNet(n_out=3, end=nn.Softmax(dim=0))
    with pytest.raises(ModelError, match=r"softmax over the wrong dimension.*dim=1"):
        _check(wrong_dim, task="multiclass")
    with pytest.raises(ModelError, match=r"sum to .* not 1; end forward with torch.softmax"):
        _check(wrong_dim, task="multiclass", outputs="probabilities")
    with pytest.raises(ModelError, match="single output, which is always 1"):
        _check(LectureNet(end=nn.Softmax(dim=1)))  # a softmax over one logit


def test_plain_logits_are_not_flagged_on_many_seeds():
    # Untrained logit networks often have all 64 outputs inside (0, 1) (a small spread around
    # a positive bias): values alone would refuse them; the trace sees no sigmoid.
    architectures = [lambda: LectureNet(),
                     lambda: nn.Sequential(nn.Linear(30, 8), nn.Tanh(), nn.Linear(8, 8),
                                           nn.Tanh(), nn.Linear(8, 1)),
                     lambda: nn.Sequential(nn.Linear(30, 16), nn.Sigmoid(), nn.Linear(16, 1))]
    for make in architectures:
        for seed in range(25):
            torch.manual_seed(seed)
            _check(make())
            _check(make(), task="multilabel")
    for seed in range(10):
        torch.manual_seed(seed)
        _check(LectureNet(n_out=3), task="multiclass")
        _check(LectureNet(n_out=3, end=nn.LogSoftmax(dim=1)), task="multiclass")  # same loss


def test_the_reverse_mistakes_stop_too():
    with pytest.raises(ModelError, match=r"outputs=probabilities, but its outputs .* outside "
                                         r"\[0, 1\].*set model.outputs=logits"):
        _check(LectureNet(), outputs="probabilities")
    with pytest.raises(ModelError, match=r"log-probabilities are <= 0"):
        _check(LectureNet(n_out=3), task="multiclass", outputs="log_probabilities")
    with pytest.raises(ModelError, match=r"exp\(\) of its rows .* not 1"):
        _check(LectureNet(n_out=3, end=lambda z: -z.abs()), task="multiclass",
               outputs="log_probabilities")
    _check(LectureNet(n_out=3, end=nn.LogSoftmax(dim=1)), task="multiclass",
           outputs="log_probabilities")


def test_the_check_changes_nothing():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(30, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 1))
    net[1].eval()  # a user's frozen layer stays frozen, the rest stays in train mode
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    _check(net)
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert [m.training for m in net] == [True, False, True, True]


def test_failures_and_wrong_shapes_are_left_to_the_trainer():
    _check(nn.Linear(4, 1))  # the forward fails on 30 columns: the trainer names it
    _check(nn.Linear(30, 5))  # 5 outputs for a binary task: the trainer names it
    _check(nn.Linear(30, 1), task="regression", outputs="logits")


def test_images_are_checked_as_the_network_sees_them():
    spec = ImageSpec((8, 8), 1, [0.5], [0.25])
    images = torch.randint(0, 256, (20, 1, 8, 8), dtype=torch.uint8)
    inputs = ImageInputs(spec, CPU, seed=0)

    def net(end=None):
        layers = [nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                  nn.Linear(4, 3)]
        return nn.Sequential(*layers, *([end] if end else []))

    with pytest.raises(ModelError, match="the first 16 training images"):
        _check(net(nn.Softmax(dim=1)), task="multiclass", X=images, inputs=inputs)
    _check(net(), task="multiclass", X=images, inputs=inputs)


def test_only_the_users_own_modules_are_checked(monkeypatch):
    from deepfit.models import registry

    monkeypatch.setitem(registry._REGISTRY, "my_net", lambda cfg, shape, n: nn.Linear(1, n))
    assert users_own("nets:Net") and users_own("my_net")  # register_model's are the user's
    assert not any(users_own(n) for n in ("mlp", "cnn", "resnet18", "tv:resnet18", "resnet50"))
    check_outputs(nn.Sequential(nn.Linear(30, 1), nn.Sigmoid()), _rows(), "binary", "logits",
                  "mlp", CPU)  # not looked at: deepfit's networks return logits
    with pytest.raises(ModelError, match="applies to your own nn.Module only"):
        check_outputs(nn.Linear(30, 1), _rows(), "binary", "probabilities", "mlp", CPU)


# -- through the three faces ------------------------------------------------------------------
def test_train_stops_before_any_run_folder_and_trains_when_declared(tmp_path, quick):
    torch.manual_seed(0)
    with pytest.raises(ModelError, match=r"model LectureNet: forward ends in a sigmoid"):
        deepfit.train(model=LectureNet(end=torch.sigmoid), data="breast_cancer", out=tmp_path,
                      epochs=2, **quick)
    assert not any(tmp_path.iterdir())
    run = deepfit.train(model=LectureNet(end=torch.sigmoid), data="breast_cancer",
                        out=tmp_path, epochs=2, outputs="probabilities", bootstrap=0, **quick)
    assert run.metrics["test"]["n"] == 114


def test_the_command_line_says_it_in_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "nets.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, in_features, out_features):\n"
        "        super().__init__()\n"
        "        self.layer = nn.Linear(in_features, out_features)\n\n"
        "    def forward(self, x):\n"
        "        return torch.softmax(self.layer(x), dim=1)\n")
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--data", "iris", "--model", "nets.py:Net", "--quiet",
                 "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: model Net: its outputs on the first") and "probabilities" in err


def test_the_scikit_learn_face_checks_the_module_too():
    X, y = _rows(60, 4).numpy(), np.repeat(["a", "b", "c"], 20)
    softmax = lambda n_in, n_out: nn.Sequential(nn.Linear(n_in, n_out), nn.Softmax(dim=1))  # noqa: E731
    with pytest.raises(ModelError, match=r"model Sequential: .*set outputs=\"probabilities\""):
        NeuralClassifier(module=softmax, epochs=1, device="cpu").fit(X, y)
    NeuralClassifier(module=softmax, outputs="probabilities", epochs=1, device="cpu").fit(X, y)
    with pytest.raises(ModelError, match="outputs=probabilities applies to your own"):
        NeuralClassifier(outputs="probabilities", epochs=1, device="cpu").fit(X, y)


class Members(nn.Module):
    """Returns (B, 4, outputs): four ensemble members, if it says so."""

    def __init__(self, declared):
        super().__init__()
        self.heads = nn.Linear(30, 4)
        if declared:
            self.ensemble_outputs = True

    def forward(self, x):
        return self.heads(x)[:, :, None]


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_a_three_dimensional_output_is_read_as_members_only_when_declared(task):
    with pytest.raises(ModelError, match=r"model Members returns shape \(64, 4, 1\): deepfit "
                       r"reads \(batch, k, outputs\) as k ensemble members .* only from a "
                       r"module that says so with the attribute ensemble_outputs = True"):
        _check(Members(declared=False), task=task)
    _check(Members(declared=True), task=task)
