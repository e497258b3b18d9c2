"""``train.cuda_graphs``: full training batches replay the network's captured forward and
backward (PyTorch's partial-network capture); everything else in the step stays eager.

On CPU the option is refused with a reason the report gives, and training is unchanged. The
CUDA tests (run by ``tools/gpu_checks.sh`` on a GPU machine) check that a graphed run trains
to the same weights as an eager one, that capture leaves the batch-norm statistics alone, and
that a network a graph cannot hold (it reads a value back to the host) falls back to the eager
step instead of stopping the run.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import deepfit
from deepfit.config import TrainConfig
from deepfit.models.cnn import SmallCNN
from deepfit.report.notes import warnings_for
from deepfit.task import TaskHead
from deepfit.train.callbacks import Callback
from deepfit.train.cuda_graph import GraphedForward, graph_refusal
from deepfit.train.device import deterministic_algorithms
from deepfit.train.trainer import Trainer

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
CUDA = torch.device("cuda")


def _images(n: int = 90, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Bright-left vs bright-right 1x12x12 images, standardised floats."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    X = torch.randn(n, 1, 12, 12, generator=g) * 0.3
    X[y == 1, :, :, :6] += 1.0
    X[y == 0, :, :, 6:] += 1.0
    return X, y


def _trainer(model: nn.Module, device, **cfg) -> Trainer:
    options = {"epochs": 2, "batch_size": 16, "progress": False, "seed": 3, **cfg}
    return Trainer(model, TaskHead("multiclass"), TrainConfig(**options).resolved(
                   "table", torch.device(device).type), task="multiclass", n_outputs=2,
                   device=device)


def _cnn(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(1, 2, channels=(8, 16), dropout=0.0)


def test_the_option_is_refused_with_a_reason_when_capture_cannot_be_right():
    model = _cnn()
    assert graph_refusal(False, CUDA, model, compiled=False) == "train.cuda_graphs is off"
    assert "not cpu" in graph_refusal(True, torch.device("cpu"), model, compiled=False)
    assert "train.compile" in graph_refusal(True, CUDA, model, compiled=True)
    assert graph_refusal(True, CUDA, model, compiled=False) is None
    hooked = _cnn()
    hooked.features[0].register_forward_hook(lambda module, args, out: None)
    assert "'features.0' has hooks" in graph_refusal(True, CUDA, hooked, compiled=False)
    frozen = _cnn().requires_grad_(False)
    assert "no trainable parameters" in graph_refusal(True, CUDA, frozen, compiled=False)


def test_on_cpu_the_option_changes_nothing_and_says_why():
    X, y = _images()
    plain, asked = _cnn(), _cnn()
    _trainer(plain, "cpu").fit(X, y, X, y)
    trainer = _trainer(asked, "cpu", cuda_graphs=True)
    trainer.fit(X, y, X, y)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                   asked.state_dict().values()))
    assert trainer.cuda_graphs == {"used": False, "replays": 0,
                                   "reason": "CUDA graphs need a CUDA device, not cpu"}
    assert _trainer(_cnn(), "cpu").cuda_graphs is None  # not asked for: nothing to report


def test_a_run_that_asked_for_graphs_and_got_none_says_so_in_its_report(tmp_path, tabular_csv):
    settings = {"data.id_column": "patient", "train.epochs": 2, "train.progress": False,
                "eval.plots": False, "train.device": "cpu"}
    with pytest.raises(deepfit.ConfigError, match=r"train.cuda_graphs=true \(it replays CUDA "
                                                  r"graphs, and this run trains on cpu\)"):
        deepfit.train(data=tabular_csv, target="diagnosis", out=tmp_path / "runs",
                      **settings, **{"train.cuda_graphs": True})
    run = deepfit.train(data=tabular_csv, target="diagnosis", out=tmp_path / "runs", **settings)
    summary = json.loads((run.path / "summary.json").read_text())
    # On a GPU, graphs can still be refused for the model (hooks, compile): the report says.
    summary["training"]["cuda_graphs"] = {"used": False, "replays": 0,
                                          "reason": "CUDA graphs need a CUDA device"}
    notes = warnings_for(summary)
    assert any("train.cuda_graphs was asked for but not used: CUDA graphs need a CUDA "
               "device" in n for n in notes)
    # Graphs that ran and were then turned off (see the out-of-memory test) are noted too.
    summary["training"]["cuda_graphs"] = {"used": True, "replays": 3,
                                          "reason": "out of GPU memory at step 4 of epoch 1"}
    assert "CUDA graphs replayed 3 training steps, then were turned off: out of GPU memory " \
           "at step 4 of epoch 1." in warnings_for(summary)


def _pretend_capture(module, sample_args, num_warmup_iters, allow_unused_input):
    """Stands in for ``torch.cuda.make_graphed_callables`` on a machine without a GPU: the
    same warm-up passes in training mode (they move batch-norm statistics, as the real ones
    do), then the module itself in place of the replayed graph."""
    params = [p for p in module.parameters() if p.requires_grad]
    for _ in range(num_warmup_iters):
        out = module(*sample_args)
        torch.autograd.grad(out.sum(), params, allow_unused=allow_unused_input)
    return module


def _pretend_graphs(trainer: Trainer, monkeypatch, capture=_pretend_capture) -> None:
    monkeypatch.setattr(torch.cuda, "make_graphed_callables", capture)
    trainer.graphed = GraphedForward(trainer.model, trainer.device, "fp32",
                                     trainer.cfg.batch_size)


def test_full_batches_replay_and_the_rest_run_eagerly_with_the_model_left_as_it_was(
        monkeypatch):
    X, y = _images()  # 90 rows, batch 16: five full batches, then 10 rows
    eager_model, graphed_model = _cnn(), _cnn()
    _trainer(eager_model, "cpu").fit(X, y, X, y)
    trainer = _trainer(graphed_model, "cpu")
    _pretend_graphs(trainer, monkeypatch)
    trainer.fit(X, y, X, y)
    assert trainer.graphed.replays == 2 * 5 and trainer.graphed.active
    # Bit-identical weights and batch-norm statistics: the capture's warm-up passes were undone.
    for (name, a), b in zip(eager_model.state_dict().items(),
                            graphed_model.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_failed_capture_turns_graphs_off_and_training_goes_on(monkeypatch):
    def refuse(module, sample_args, num_warmup_iters, allow_unused_input):
        module(*sample_args)  # a warm-up pass ran before the failure
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    X, y = _images()
    eager_model, model = _cnn(), _cnn()
    _trainer(eager_model, "cpu").fit(X, y, X, y)
    trainer = _trainer(model, "cpu")
    _pretend_graphs(trainer, monkeypatch, refuse)
    trainer.fit(X, y, X, y)
    assert trainer.graphed.reason == ("capture failed (RuntimeError: operation not permitted "
                                      "when stream is capturing)")
    assert trainer.graphed.replays == 0
    assert all(torch.equal(a, b) for a, b in zip(eager_model.state_dict().values(),
                                                   model.state_dict().values()))


class RunsOutOfMemory(nn.Module):
    """Raises PyTorch's out-of-memory error on full batches after ``fits`` of them."""

    def __init__(self, fits: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(144, 2))
        self.fits, self.full = fits, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and len(x) > 8:
            self.full += 1
            if self.full > self.fits:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.")
        return self.net(x)


def test_running_out_of_memory_frees_the_graphs_for_the_micro_batches(monkeypatch):
    X, y = _images()
    # Capture's 3 warm-up passes and 3 replays fit; the 4th replay runs out of memory.
    trainer = _trainer(RunsOutOfMemory(fits=6), "cpu", on_oom="halve", cuda_graphs=True)
    _pretend_graphs(trainer, monkeypatch)
    history = trainer.fit(X, y, X, y)
    assert len(history) == 2 and trainer.micro_batches == 2
    assert trainer.cuda_graphs == {
        "used": True, "replays": 3,
        "reason": "out of GPU memory at step 4 of epoch 1: the graphs' memory was freed for "
                  "the smaller micro-batches"}


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_graphed_run_trains_to_the_eager_runs_weights(precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    X, y = _images()  # 90 rows, batch 16: five full batches replay, the last 10 run eagerly
    runs = {}
    for graphs in (False, True):
        model = _cnn()
        trainer = _trainer(model, CUDA, cuda_graphs=graphs, precision=precision)
        with deterministic_algorithms(True):  # the same kernels in both runs
            history = trainer.fit(X, y, X, y)
        runs[graphs] = (model, trainer, history)
    (eager, _, eager_hist), (graphed, trainer, graphed_hist) = runs[False], runs[True]
    assert trainer.cuda_graphs == {"used": True, "replays": 2 * 5, "reason": None}
    tol = {"rtol": 1e-4, "atol": 1e-5} if precision == "fp32" else {"rtol": 2e-2, "atol": 2e-3}
    for (name, a), b in zip(eager.state_dict().items(), graphed.state_dict().values()):
        # Batch-norm statistics included: capture's warm-up passes must not have moved them.
        assert torch.allclose(a.float(), b.float(), **tol), name
    for a, b in zip(eager_hist.rows, graphed_hist.rows):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3 if precision ==
                                                "fp32" else 3e-2)
        assert a["train_accuracy"] == pytest.approx(b["train_accuracy"], abs=0.03)


@needs_cuda
def test_a_graphed_run_with_dropout_resumes_to_the_uninterrupted_weights():
    # Capture draws dropout masks in its warm-up passes; restoring the generator afterwards
    # is what makes a resumed run (which captures again) replay the original's masks.
    X, y = _images()

    class StopAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer, epoch, logs, **kwargs):
            trainer.should_stop = True

    def trainer(model, callbacks=()):
        return Trainer(model, TaskHead("multiclass"),
                       TrainConfig(epochs=3, batch_size=16, progress=False, seed=3,
                                   cuda_graphs=True).resolved("table", "cuda"),
                       task="multiclass", n_outputs=2, device=CUDA, callbacks=callbacks)

    torch.manual_seed(0)
    whole = SmallCNN(1, 2, channels=(8, 16), dropout=0.3)
    with deterministic_algorithms(True):
        trainer(whole).fit(X, y, X, y)
        torch.manual_seed(0)
        part = trainer(SmallCNN(1, 2, channels=(8, 16), dropout=0.3), [StopAfterFirstEpoch()])
        part.fit(X, y, X, y)
        state = part.state_dict()
        torch.manual_seed(123)  # the resumed process starts from other RNG states
        resumed_model = SmallCNN(1, 2, channels=(8, 16), dropout=0.3)
        resumed = trainer(resumed_model)
        resumed.load_state_dict(state)
        resumed.fit(X, y, X, y)
    assert resumed.graphed.replays == 2 * 5
    for (name, a), b in zip(whole.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name


class HostReading(nn.Module):
    """Reads a value back to the host in every forward: a graph cannot hold that."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(144, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 if float(x.abs().max()) < 1e6 else 0.5
        return self.net(x) * scale


@needs_cuda
def test_a_network_a_graph_cannot_hold_trains_eagerly_and_the_reason_is_kept():
    X, y = _images()
    model = HostReading()
    trainer = _trainer(model, CUDA, cuda_graphs=True)
    history = trainer.fit(X, y, X, y)
    assert len(history) == 2 and trainer.graphed.replays == 0
    assert trainer.cuda_graphs["used"] is False
    assert trainer.cuda_graphs["reason"].startswith("capture failed")
    # The eager steps that followed still trained the model.
    assert history.rows[-1]["train_loss"] < history.rows[0]["train_loss"] * 1.5
