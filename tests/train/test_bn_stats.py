"""Batch-norm statistics recomputed before validation (``train.precise_bn``): the small
image set whose running averages never settle is evaluated right; the recomputation is the
plain average over the training rows and leaves training untouched."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import deepfit
from deepfit.errors import ConfigError
from deepfit.models import MLP
from deepfit.train.bn_stats import FEW_STEPS, recompute_bn_stats, wants_precise_bn


def stripes(root, n=60, size=16):
    """Two easy classes: a bright horizontal or vertical stripe on noise."""
    rng = np.random.default_rng(0)
    for label in ("h", "v"):
        (root / label).mkdir(parents=True)
        for i in range(n):
            a = (rng.random((size, size)) * 80).astype(np.uint8)
            r = rng.integers(1, size - 3)
            if label == "h":
                a[r:r + 2, :] = 255
            else:
                a[:, r:r + 2] = 255
            Image.fromarray(a).save(root / label / f"{i}.png")
    return root


def test_a_small_image_set_is_evaluated_with_statistics_of_its_weights(tmp_path):
    """120 images at batch 128: one step an epoch. The running averages (momentum 0.1) have
    seen six steps after six epochs: evaluation-mode outputs are near 0.5 although the
    ranking is perfect. Recomputed statistics give the probabilities their ceiling."""
    data = str(stripes(tmp_path / "img"))
    common = dict(data=data, model="cnn", epochs=6, batch_size=128, out=tmp_path, progress=False,
                  plots=False, report=False, bootstrap=0)
    fixed = deepfit.train(**common, name="auto")
    trap = deepfit.train(**common, name="off", **{"train.precise_bn": False})
    # The same training (the statistics are not used by training-mode batches) ...
    assert fixed.history.column("train_loss") == trap.history.column("train_loss")
    # ... evaluated right: the trap keeps the ranking and loses the probabilities.
    assert trap.metrics["test"]["roc_auc"] == fixed.metrics["test"]["roc_auc"] == 1.0
    assert trap.metrics["val"]["log_loss"] > 0.5
    assert fixed.metrics["val"]["log_loss"] < 0.15 and fixed.metrics["test"]["accuracy"] == 1.0
    summary = (fixed.path / "summary.json").read_text()
    assert '"precise_bn": true' in summary


def test_the_recomputed_statistics_are_the_training_rows_average():
    torch.manual_seed(0)
    model = MLP(3, 1, hidden=(4,), norm="batch")
    X = torch.randn(40, 3) * 3 + 1
    rng_before = torch.get_rng_state()
    recompute_bn_stats(model, X, batch_size=40)
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    with torch.no_grad():
        hidden = model.net[0](X)  # the layer before the batch norm
    assert torch.allclose(bn.running_mean, hidden.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, hidden.var(0, unbiased=True), atol=1e-4)
    assert bn.momentum == 0.1 and not model.training
    assert torch.equal(torch.get_rng_state(), rng_before)  # dropout drew nothing


def test_when_statistics_are_recomputed():
    bn_model, plain = MLP(3, 1, hidden=(4,), norm="batch"), MLP(3, 1, hidden=(4,))
    assert wants_precise_bn(None, bn_model, FEW_STEPS - 1)
    assert not wants_precise_bn(None, bn_model, FEW_STEPS)
    assert not wants_precise_bn(None, plain, 1) and not wants_precise_bn(False, bn_model, 1)
    with pytest.raises(ConfigError, match="train.precise_bn=true .* no batch-norm layer"):
        wants_precise_bn(True, plain, 1)
