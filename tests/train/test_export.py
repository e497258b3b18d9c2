"""Exported weights (``model.safetensors``): a faithful round trip, atomic writes, one clear
error for a damaged or foreign file, and a format that cannot carry code."""

from __future__ import annotations

import errno
import os
import pickle

import pytest
import torch
from safetensors import safe_open
from torch import nn

import deepfit
from deepfit.errors import RunError
from deepfit.train.checkpoint import load_checkpoint
from deepfit.train.export import load_weights, save_weights

QUICK = {"train.progress": False, "eval.plots": False, "eval.report": False,
         "eval.bootstrap": 0, "train.epochs": 3}


class Tied(nn.Module):
    """Two layers sharing one weight matrix, a buffer, and a non-contiguous parameter."""

    def __init__(self):
        super().__init__()
        self.lin1 = nn.Linear(4, 4)
        self.lin2 = nn.Linear(4, 4)
        self.lin2.weight = self.lin1.weight
        self.norm = nn.BatchNorm1d(4)
        self.proj = nn.Parameter(torch.randn(3, 4).t())  # a transposed view

    def forward(self, x):
        return self.lin2(torch.relu(self.norm(self.lin1(x)))) @ self.proj


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert len(message.splitlines()) == 1, message
    return message


def test_round_trip_keeps_every_tensor_including_tied_weights(tmp_path):
    torch.manual_seed(0)
    model = Tied()
    model.train()
    model(torch.randn(8, 4))  # the batch-norm buffers move away from their defaults
    path = save_weights(model, tmp_path / "model.safetensors", {"model": "tied", "size": 4})
    assert path == tmp_path / "model.safetensors"
    loaded = load_weights(path)
    state = model.state_dict()
    assert loaded.keys() == state.keys()
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name
    assert torch.equal(loaded["lin1.weight"], loaded["lin2.weight"])
    # Loaded into a fresh module it computes the same function.
    torch.manual_seed(1)
    fresh = Tied()
    fresh.load_state_dict(loaded)
    model.eval()
    fresh.eval()
    x = torch.randn(5, 4)
    assert torch.equal(model(x), fresh(x))
    with safe_open(str(path), "pt") as fh:  # metadata values are stored as strings
        assert fh.metadata() == {"model": "tied", "size": "4"}


def test_a_state_dict_saves_too_and_dtypes_survive(tmp_path):
    state = {"half": torch.randn(3, dtype=torch.float16), "ints": torch.arange(5),
             "flags": torch.tensor([True, False]), "empty": torch.zeros(0, 2)}
    loaded = load_weights(save_weights(state, tmp_path / "w.safetensors"))
    assert loaded.keys() == state.keys()
    assert all(loaded[k].dtype == v.dtype and torch.equal(loaded[k], v)
               for k, v in state.items())


def test_the_write_is_atomic_and_replaces_an_existing_file_whole(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\xff" * 1_000_000)  # an old, much larger file
    save_weights({"w": torch.ones(2, 2)}, path)
    assert path.stat().st_size < 1000  # nothing of the old file is left at its end
    assert torch.equal(load_weights(path)["w"], torch.ones(2, 2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file
    save_weights({"w": torch.zeros(3)}, path)  # and again over a good one
    assert torch.equal(load_weights(path)["w"], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save_weights({"w": torch.ones(2)}, path)
    before = path.read_bytes()

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)  # the operating system fails, not deepfit
    with pytest.raises(RunError, match="No space left on device") as info:
        save_weights({"w": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert "model.safetensors" in _one_line(info)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_a_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(RunError, match=r"weights file '.*nowhere\.safetensors' does not "
                                       r"exist") as info:
        load_weights(tmp_path / "nowhere.safetensors")
    _one_line(info)
    with pytest.raises(RunError, match="does not exist"):
        load_weights(tmp_path)  # a folder is not a weights file either


@pytest.mark.parametrize("damage", [
    lambda good: good[: len(good) // 2],
    lambda good: good[:6],
    lambda good: b"",
    lambda good: bytes(range(256)) * 4,
    lambda good: good[:8] + b"{not json at all" + good[24:],
], ids=["truncated", "header_cut", "empty", "garbage", "bad_header"])
def test_a_damaged_file_is_one_clear_error_naming_it(tmp_path, damage):
    good = tmp_path / "good.safetensors"
    save_weights({"a": torch.randn(16, 16), "b": torch.randn(8)}, good)
    bad = tmp_path / "damaged.safetensors"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(RunError) as info:
        load_weights(bad)
    message = _one_line(info)
    assert f"'{bad}' is not a readable safetensors file" in message
    assert "export the weights again" in message


def test_a_pickle_named_safetensors_is_refused_and_never_runs(tmp_path):
    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    for name, write in (("torch.safetensors", lambda p: torch.save({"w": Payload()}, p)),
                        ("plain.safetensors", lambda p: p.write_bytes(pickle.dumps(Payload())))):
        path = tmp_path / name
        write(path)
        assert not sentinel.exists()  # writing it did not open the file either
        with pytest.raises(RunError) as info:
            load_weights(path)
        assert name in _one_line(info)
        assert not sentinel.exists()


def test_a_finished_run_exports_its_best_checkpoint(tmp_path):
    run = deepfit.train(data="iris", out=tmp_path, name="iris", **QUICK)
    exported = load_weights(run.path / "model.safetensors")
    best = load_checkpoint(run.path / "checkpoints" / "best.pt")["model"]
    assert exported.keys() == best.keys() and exported
    assert all(torch.equal(exported[k], best[k].cpu()) for k in best)
    # The run's model holds those weights, and they predict as the run does.
    live = run.model.state_dict()
    assert all(torch.equal(exported[k], live[k].cpu()) for k in live)
    with safe_open(str(run.path / "model.safetensors"), "pt") as fh:
        meta = fh.metadata()
    assert meta["deepfit"] == deepfit.__version__ and meta["model"] == "mlp"
    assert meta["input_shape"] == "[4]"
    assert not list(run.path.glob(".*.tmp"))
