"""Oracle tests: the task head's losses equal plain torch's."""

import pytest
import torch
from torch import nn

from deepfit.errors import ConfigError, ModelError
from deepfit.task import TaskHead, balanced_class_weights


def test_binary_loss_is_bce_with_logits_and_scores_are_sigmoid():
    out, y = torch.randn(8, 1), torch.randint(0, 2, (8,)).float()
    head = TaskHead("binary")
    assert torch.allclose(head.loss(out, y), nn.BCEWithLogitsLoss()(out[:, 0], y))
    assert torch.allclose(head.scores(out), torch.sigmoid(out[:, 0]))


def test_binary_model_that_outputs_probabilities_uses_plain_bce():
    p, y = torch.rand(8, 1) * 0.98 + 0.01, torch.randint(0, 2, (8,)).float()
    head = TaskHead("binary", outputs="probabilities")
    assert torch.allclose(head.loss(p, y), nn.BCELoss()(p[:, 0], y))
    assert torch.allclose(head.scores(p), p[:, 0])


def test_multiclass_cross_entropy_and_nll_agree_with_torch():
    out, y = torch.randn(10, 4), torch.randint(0, 4, (10,))
    ce = TaskHead("multiclass").loss(out, y)
    nll = TaskHead("multiclass", loss="nll").loss(out, y)
    logp = TaskHead("multiclass", outputs="log_probabilities").loss(out.log_softmax(1), y)
    assert torch.allclose(ce, nn.CrossEntropyLoss()(out, y))
    assert torch.allclose(nll, ce) and torch.allclose(logp, ce)
    assert torch.allclose(TaskHead("multiclass").scores(out).sum(1), torch.ones(10))


@pytest.mark.parametrize("loss, fn", [("mse", nn.MSELoss()), ("l1", nn.L1Loss()),
                                      ("huber", nn.HuberLoss())])
def test_regression_losses(loss, fn):
    out, y = torch.randn(6, 1), torch.randn(6)
    assert torch.allclose(TaskHead("regression", loss=loss).loss(out, y), fn(out[:, 0], y))


def test_class_weights_match_torch_weighted_losses():
    y = torch.tensor([0, 0, 0, 1])
    w = balanced_class_weights(y, 2)
    assert torch.allclose(w, torch.tensor([4 / 6, 4 / 2]))
    out = torch.randn(4, 2)
    head = TaskHead("multiclass", class_weights=w)
    assert torch.allclose(head.loss(out, y), nn.CrossEntropyLoss(weight=w)(out, y))
    logits = torch.randn(4, 1)
    per = nn.BCEWithLogitsLoss(reduction="none")(logits[:, 0], y.float())
    expected = (w[y] * per).sum() / w[y].sum()
    assert torch.allclose(TaskHead("binary", class_weights=w).loss(logits, y.float()), expected)


def test_incompatible_loss_is_a_config_error():
    with pytest.raises(ConfigError, match="does not fit a binary task"):
        TaskHead("binary", loss="mse")
    with pytest.raises(ConfigError, match="regression"):
        TaskHead("regression", outputs="probabilities")


def test_wrong_output_shape_is_named():
    with pytest.raises(ModelError, match=r"returns shape \(4, 3\).*needs \(4, 1\)"):
        TaskHead("binary").check_output(torch.zeros(4, 3), 4, 1)
    TaskHead("binary").check_output(torch.zeros(4), 4, 1)  # (B,) is fine for one output
