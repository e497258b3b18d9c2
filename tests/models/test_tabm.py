"""model.name=tabm: TabM (the authors' tabm package) trained by deepfit's trainer, saved,
loaded, resumed and exported like every other model."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from interrupts import SignalAt, SignalAtStep

import deepfit
from deepfit.errors import ConfigError, ModelError, TrainingInterrupted
from deepfit.models.tabm import TabMNet, missing_message
from deepfit.task import TaskHead
from deepfit.train.checkpoint import load_checkpoint

pytest.importorskip("tabm")
pytest.importorskip("rtdl_num_embeddings")

SMALL = {"model.name": "tabm", "model.kwargs": {"k": 4, "d_block": 16}, "train.epochs": 3,
         "eval.bootstrap": 0}


def _frame(task: str, n: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                          "c": rng.choice(["red", "blue"], size=n)})
    signal = frame["a"] + (frame["c"] == "red")
    if task == "binary":
        frame["y"] = np.where(signal > 0.5, "yes", "no")
    elif task == "multiclass":
        frame["y"] = np.digitize(signal, [0.0, 1.0]).astype(str)
    else:
        frame["y"] = 2.0 * signal + 0.1 * rng.normal(size=n)
    return frame


@pytest.mark.parametrize("task, embeddings", [("binary", "piecewise"), ("multiclass", "none"),
                                              ("regression", "periodic")])
def test_tabm_trains_predicts_and_loads_the_same(tmp_path, quick, task, embeddings):
    frame = _frame(task)
    run = deepfit.train(data=frame, out=tmp_path, **quick, **SMALL,
                        **{"model.embeddings": embeddings})
    assert run.schema.task == task and isinstance(run.model, TabMNet)
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["model"]["description"].startswith("TabM (4 members sharing weights")
    run.model.eval()
    with torch.no_grad():
        out = run.model(torch.zeros(3, run.schema.input_shape[0]))
    assert out.shape[:2] == (3, 4)  # every member's own output
    x = torch.randn(5, run.schema.input_shape[0])
    with torch.no_grad():  # deepfit's forward is the package's own TabM.forward
        assert torch.equal(run.model(x), run.model.net(x))
    rows = frame.drop(columns="y").head(20)
    loaded = deepfit.load(run.path)
    if task == "regression":
        np.testing.assert_array_equal(loaded.predict(rows), run.predict(rows))
        return
    proba = run.predict_proba(rows)
    assert np.all((proba >= 0) & (proba <= 1))
    if task == "multiclass":
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(loaded.predict_proba(rows), proba)


def test_scores_average_the_members_probabilities_not_their_logits():
    head = TaskHead("multiclass")
    out = torch.tensor([[[4.0, 0.0], [0.0, 0.0]]])  # one row, two members, two classes
    each = torch.softmax(out[0], dim=1)
    assert torch.allclose(head.scores(out), each.mean(dim=0, keepdim=True))
    assert not torch.allclose(head.scores(out), torch.softmax(out.mean(dim=1), dim=1))
    y = torch.tensor([0])
    members = (head.loss(out[:, 0], y) + head.loss(out[:, 1], y)) / 2
    assert torch.allclose(head.loss(out, y), members)  # the mean of the members' losses
    binary = TaskHead("binary")
    logits = torch.tensor([[[3.0], [-1.0]], [[0.0], [2.0]]])
    assert torch.allclose(binary.scores(logits), torch.sigmoid(logits).mean(dim=1)[:, 0])


def test_bins_come_from_the_training_rows_only(tmp_path, quick):
    frame = _frame("binary", n=120)
    frame.insert(0, "split", ["train"] * 80 + ["val"] * 20 + ["test"] * 20)
    settings = {**quick, **SMALL, "train.epochs": 1, "model.embeddings": "piecewise",
                "model.bins": 8, "data.split_column": "split"}
    clean = deepfit.train(data=frame, out=tmp_path, name="clean", **settings)
    poisoned = frame.copy()
    poisoned.loc[80:, ["a", "b"]] = 1e3  # validation and test rows far off
    dirty = deepfit.train(data=poisoned, out=tmp_path, name="dirty", **settings)
    edges = clean.model.bin_edges
    assert torch.equal(edges.isnan(), dirty.model.bin_edges.isnan())
    assert torch.equal(edges.nan_to_num(), dirty.model.bin_edges.nan_to_num())
    assert edges.shape == (4, 9) and not edges.isnan().all(dim=1).any()
    # A TabMNet passed as the model object gets its bins from the same rows.
    given = deepfit.train(data=frame, out=tmp_path, name="given", model=TabMNet(
        4, 1, embeddings="piecewise", n_bins=8, k=4, d_block=16),
        **{k: v for k, v in settings.items() if not k.startswith("model.")})
    assert torch.equal(given.model.bin_edges.nan_to_num(), edges.nan_to_num())
    # The bins are saved with the weights: the loaded run embeds with them.
    saved = load_checkpoint(clean.path / "checkpoints" / "last.pt")["model"]["bin_edges"]
    assert torch.equal(saved.nan_to_num(), edges.cpu().nan_to_num())


@pytest.mark.parametrize("signal", [SignalAt(2), SignalAtStep(5)], ids=["epoch-end", "step"])
def test_resume_after_sigterm_is_exact(tmp_path, quick, signal):
    frame = _frame("multiclass")
    settings = {**quick, **SMALL, "train.epochs": 4, "train.early_stopping": False,
                "model.embeddings": "piecewise", "model.bins": 8}
    whole = deepfit.train(data=frame, out=tmp_path, name="whole", **settings)
    with pytest.raises(TrainingInterrupted):
        deepfit.train(data=frame, out=tmp_path, name="cut", callbacks=[signal], **settings)
    resumed = deepfit.resume(tmp_path / "cut", data=frame)
    a = load_checkpoint(whole.path / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(resumed.path / "checkpoints" / "last.pt")["model"]
    assert set(a) == set(b) and all(torch.equal(a[k].nan_to_num(), b[k].nan_to_num())
                                    for k in a)  # the bins are NaN-padded
    assert resumed.metrics["test"] == whole.metrics["test"]


def test_options_that_do_not_apply_are_refused(tmp_path, quick):
    frame = _frame("binary")
    with pytest.raises(ConfigError, match=r"model.hidden=\[8\] \(it applies to the mlp's "
                                          r"hidden layers, not to deepfit's tabm"):
        deepfit.train(data=frame, out=tmp_path, **quick, **SMALL, **{"model.hidden": [8]})
    with pytest.raises(ConfigError, match=r"model.dropout=0.5 .*model.kwargs=\{dropout"):
        deepfit.train(data=frame, out=tmp_path, **quick, **SMALL, **{"model.dropout": 0.5})
    with pytest.raises(ConfigError, match=r"model.embeddings=piecewise \(it applies to tabm"):
        deepfit.train(data=frame, out=tmp_path, **quick, **{"model.embeddings": "piecewise"})
    with pytest.raises(ConfigError, match=r"model.bins=8 \(it applies to piecewise"):
        deepfit.train(data=frame, out=tmp_path, **quick, **SMALL, **{"model.bins": 8})
    with pytest.raises(ModelError, match=r"model.kwargs \['width'\] are not TabM settings"):
        deepfit.train(data=frame, out=tmp_path, **quick,
                      **{**SMALL, "model.kwargs": {"width": 3}})


def test_missing_package_message_names_the_extra(tmp_path, quick, monkeypatch):
    line = missing_message("tabm")
    assert "\n" not in line and "pip install 'deepfit[tabm]'" in line and "tabm" in line
    for package in ("tabm", "rtdl_num_embeddings"):
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, package, None)  # as if not installed: import fails
            with pytest.raises(ModelError, match=r"needs the TabM packages .* is not "
                                                 r"installed\): pip install 'deepfit\[tabm\]'"):
                deepfit.train(data="missing.csv", out=tmp_path, **quick, **SMALL)


def test_onnx_export_gives_the_ensembles_probabilities(tmp_path, quick):
    ort = pytest.importorskip("onnxruntime")
    frame = _frame("multiclass").drop(columns="c")
    run = deepfit.train(data=frame, out=tmp_path, **quick, **SMALL,
                        **{"model.embeddings": "piecewise"})
    rows = frame.drop(columns="y").head(5)
    want = run.predict_proba(rows)
    done = run.export("onnx", tmp_path / "onnx")
    session = ort.InferenceSession(str(done.model), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: rows.to_numpy(np.float32)})[0]
    assert got.shape == want.shape == (5, 3) and np.abs(got - want).max() <= 1e-5
    # TorchScript's tracer stops at a shape check inside the tabm package: the refusal
    # says the code is the package's, not the user's, and which formats work.
    with pytest.raises(ModelError, match=r"as torchscript: at .* the tracer warns: .* that code "
                       r"is in the installed package '(tabm|rtdl_num_embeddings)[^']*', not "
                       r"yours: export with --format onnx or exported-program"):
        run.export("torchscript", tmp_path / "ts")
