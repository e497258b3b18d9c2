"""A fit with no validation rows (the final fit of a tuned config): a fixed number of epochs,
reduce-on-plateau's rates replayed, and a clear error where validation is needed."""

import pytest
import torch

from deepfit.config import TrainConfig
from deepfit.errors import RunError
from deepfit.models import MLP
from deepfit.task import TaskHead
from deepfit.train.builtin import FixedEpochs
from deepfit.train.trainer import Trainer


def _data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 3, generator=g)
    return X, (X[:, 0] > 0).float()


def _trainer(schedule="plateau", select_best=False, callbacks=()):
    cfg = TrainConfig(epochs=10, progress=False, schedule=schedule, lr=0.1,
                      batch_size=16).resolved("table", "cpu")
    return Trainer(MLP(3, 1, hidden=(8,)), TaskHead("binary"), cfg, task="binary",
                   n_outputs=1, select_best=select_best, callbacks=callbacks)


def test_fixed_epochs_replay_the_plateau_rates_and_validate_nothing():
    X, y = _data()
    empty = X[:0], y[:0]
    trainer = _trainer(callbacks=[FixedEpochs(4, lrs=[0.1, 0.1, 0.01, 0.001], why="trial 2")])
    history = trainer.fit(X, y, *empty)
    assert len(history) == 4 and trainer.stop_reason == "stopped after epoch 4: trial 2"
    assert history.column("lr") == pytest.approx([0.1, 0.1, 0.01, 0.001])
    assert history.column("val_loss") == [None] * 4
    assert all(v is not None for v in history.column("train_loss"))


def test_without_validation_rows_plateau_and_best_epoch_are_refused():
    X, y = _data()
    with pytest.raises(RunError, match="train.schedule=plateau .* no validation rows"):
        _trainer().fit(X, y, X[:0], y[:0])
    with pytest.raises(RunError, match="train.monitor=val_loss needs a validation split"):
        _trainer(schedule="cosine", select_best=True).fit(X, y, X[:0], y[:0])


def test_fixed_epochs_must_be_positive():
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        FixedEpochs(0)
