"""What a run says while it trains when its output is not a terminal: an estimate of the
time once the first steps are timed, and a line at least every few seconds, inside long
epochs too; an image run on a CPU that will take long names the faster choices."""

import io
import time

import numpy as np
import torch
from PIL import Image

import deepfit
from deepfit.config import TrainConfig
from deepfit.models import MLP
from deepfit.task import TaskHead
from deepfit.train.builtin import progress
from deepfit.train.builtin.progress import Progress, duration
from deepfit.train.callbacks import Callback
from deepfit.train.trainer import Trainer


class Slow(Callback):
    def on_batch_end(self, trainer, step, loss, **kwargs):
        time.sleep(0.01)


def _fit(log, epochs=2, rows=96):
    X = torch.randn(rows, 3)
    y = (X[:, 0] > 0).float()
    cfg = TrainConfig(epochs=epochs, batch_size=4, progress=False).resolved()
    Trainer(MLP(3, 1, hidden=(4,)), TaskHead("binary"), cfg, task="binary", n_outputs=1,
            callbacks=[Slow(), log]).fit(X, y, X, y)


def test_a_piped_run_says_the_estimate_and_a_line_inside_each_epoch(monkeypatch):
    monkeypatch.setattr(progress, "ESTIMATE_MIN_S", 0.0)
    out = io.StringIO()
    _fit(Progress("accuracy", 2, stream=out, every_s=0.1))
    lines = out.getvalue().splitlines()
    estimate = [x for x in lines if x.startswith("estimated: about")]
    assert len(estimate) == 1 and "for 2 more epochs (early stopping may end it sooner)" in (
        estimate[0])
    assert any(x.startswith("epoch    1/2  step ") and "into the epoch" in x for x in lines)
    assert any(x.startswith("epoch    2/2  loss ") for x in lines)
    assert "on a CPU" not in out.getvalue()  # a table run: no advice about images


def test_a_short_run_gets_no_estimate_and_few_lines():
    out = io.StringIO()
    _fit(Progress("accuracy", 2, stream=out), rows=16)
    text = out.getvalue()
    assert "estimated" not in text and "step" not in text
    assert text.count("\n") == 2  # epoch 1, and every tenth of the run (epoch 2)


def test_a_long_image_run_on_a_cpu_names_the_faster_choices(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress, "ESTIMATE_MIN_S", 0.0)
    monkeypatch.setattr(progress, "LONG_CPU_S", 0.0)
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "img" / label).mkdir(parents=True)
        for i in range(12):
            Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(
                tmp_path / "img" / label / f"{i}.png")
    deepfit.train(data=str(tmp_path / "img"), model="lenet", epochs=2, out=tmp_path,
                  plots=False, report=False, bootstrap=0)
    err = capsys.readouterr().err
    assert "on a CPU that is long for images: --model lenet, fewer --epochs" in err


def test_durations_read_as_words():
    assert [duration(s) for s in (3.4, 75, 4000)] == ["3 s", "1 min 15 s", "1 h 06 min"]
