"""TensorBoard and MLflow tracking, read back through the libraries' own readers: event
files through TensorBoard's EventAccumulator, runs through MlflowClient on a local store.
Tiny data, a few epochs; one shared tracked run for the read-back tests."""

from __future__ import annotations

import json
import socket
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import deepfit
from deepfit.errors import ConfigError, DeepfitWarning
from deepfit.track import final_metrics

mlflow = pytest.importorskip("mlflow")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

from image_samples import class_folders  # noqa: E402

QUICK = {"train.progress": False, "eval.plots": False, "eval.report": False,
         "eval.bootstrap": 30, "train.epochs": 3, "train.batch_size": 16,
         "model.hidden": [8]}
IMAGE_QUICK = {k: v for k, v in QUICK.items() if k != "model.hidden"}  # not an mlp


def table(n=90, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.where(X[:, 0] - X[:, 1] > 0, "yes", "no")
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": y})


def client(store: Path):
    from mlflow.tracking import MlflowClient
    import os
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the local folder store
    return MlflowClient(tracking_uri=store.resolve().as_uri())


def runs_of(store: Path, experiment="deepfit"):
    c = client(store)
    exp = c.get_experiment_by_name(experiment)
    return c, c.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def events(folder: Path):
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0,
        event_accumulator.IMAGES: 0})
    acc.Reload()
    return acc


def deepfit_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, DeepfitWarning)]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One table run with both trackers on (the report too: its files are artifacts)."""
    root = tmp_path_factory.mktemp("tracked")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run = deepfit.train(data=table(), out=str(root / "runs"), **{
            **QUICK, "eval.report": True, "track.tensorboard": True,
            "track.mlflow": str(root / "mlruns")})
    return run, root / "mlruns", deepfit_warnings(record)


def test_tensorboard_scalars_match_history_and_histograms_are_written(tracked):
    run, _, warned = tracked
    assert warned == []
    acc = events(run.path / "tensorboard")
    history = pd.read_csv(run.path / "history.csv")
    tags = acc.Tags()
    for column in history.columns.drop("epoch"):
        points = acc.Scalars(column)
        assert [p.step for p in points] == history["epoch"].tolist(), column
        np.testing.assert_allclose([p.value for p in points], history[column], rtol=1e-6)
    names = [n for n, _ in run.model.named_parameters()]
    for name in names:
        assert len(acc.Histograms(f"weights/{name}")) == len(history)
        assert len(acc.Histograms(f"gradients/{name}")) == len(history)
    assert acc.Graph() is not None  # the model graph, traced once
    metrics = json.loads((run.path / "metrics.json").read_text())
    test = acc.Scalars("test_accuracy")
    assert test[0].value == pytest.approx(metrics["test"]["accuracy"], rel=1e-6)
    assert "test_accuracy_ci_low" in tags["scalars"]


def test_mlflow_run_holds_params_metrics_per_epoch_results_and_artifacts(tracked):
    run, store, _ = tracked
    c, found = runs_of(store)
    assert len(found) == 1
    logged = found[0]
    assert logged.info.run_name == run.path.name and logged.info.status == "FINISHED"
    params = logged.data.params
    assert params["train.epochs"] == "3" and params["model.hidden"] == "[8]"
    assert params["train.schedule"] == "plateau"  # the resolved config, not "auto"
    assert logged.data.tags["deepfit.run_dir"] == str(run.path.resolve())
    history = pd.read_csv(run.path / "history.csv")
    for column in ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"):
        points = sorted(c.get_metric_history(logged.info.run_id, column), key=lambda m: m.step)
        assert [m.step for m in points] == history["epoch"].tolist()
        np.testing.assert_allclose([m.value for m in points], history[column], rtol=1e-9)
    metrics = json.loads((run.path / "metrics.json").read_text())
    final = logged.data.metrics
    assert final["test_accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert final["test_accuracy_ci_low"] == pytest.approx(metrics["ci"]["accuracy"]["low"])
    assert final["test_accuracy_ci_high"] == pytest.approx(metrics["ci"]["accuracy"]["high"])
    assert final_metrics(metrics).items() <= final.items()
    files = {a.path for a in c.list_artifacts(logged.info.run_id)}
    assert {"config.yaml", "report.html", "report.md", "model.safetensors",
            "metrics.json"} <= files


def test_undefined_metrics_are_left_out_never_zero():
    metrics = {"test": {"accuracy": 0.5, "mcc": None, "roc_auc": float("nan"), "n": 4,
                        "per_class": {"a": 1}},
               "ci": {"accuracy": {"low": 0.2, "high": None}}, "threshold": 0.5}
    assert final_metrics(metrics) == {"test_accuracy": 0.5, "test_n": 4.0,
                                      "test_accuracy_ci_low": 0.2, "threshold": 0.5}


def test_image_run_writes_grids_and_tracking_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFIT_CACHE", str(tmp_path / "cache"))
    images = class_folders(tmp_path / "img", {"a": 24, "b": 24})
    options = {**IMAGE_QUICK, "train.epochs": 2, "data.augment": ["hflip", "crop:1"],
               "model.channels": [4]}
    plain = deepfit.train(data=str(images), out=str(tmp_path / "a"), **options)
    tracked = deepfit.train(data=str(images), out=str(tmp_path / "b"), **options,
                            **{"track.tensorboard": True})
    acc = events(tracked.path / "tensorboard")
    assert {"images/train", "images/train_augmented"} <= set(acc.Tags()["images"])
    assert any(t.startswith("weights/") for t in acc.Tags()["histograms"])
    # The graph, the grids and the histograms draw no random number the run uses.
    a, b = (pd.read_csv(r.path / "history.csv").drop(columns="time") for r in (plain, tracked))
    pd.testing.assert_frame_equal(a, b)
    for (_, p), (_, q) in zip(plain.model.state_dict().items(),
                              tracked.model.state_dict().items()):
        assert torch.equal(p, q)


class Untraceable(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.layer = nn.Linear(in_features, out_features)

    def forward(self, x):
        if torch.jit.is_tracing():
            raise RuntimeError("this model cannot be traced")
        return self.layer(x)


def test_a_model_that_cannot_be_traced_gets_one_warning_and_no_graph(tmp_path):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run = deepfit.train(data=table(), model=Untraceable(3, 1), out=str(tmp_path),
                            **{**IMAGE_QUICK, "track.tensorboard": True})
    warned = deepfit_warnings(record)
    assert len(warned) == 1 and "graph could not be traced" in warned[0], warned
    assert "cannot be traced" in warned[0]
    acc = events(run.path / "tensorboard")
    assert len(acc.Scalars("val_loss")) == 3  # everything else is written


def test_a_tuning_study_is_one_parent_run_with_a_child_per_trial(tmp_path):
    from deepfit.tune import tune
    store = tmp_path / "mlruns"
    result = tune(data=table(), space={"train.lr": {"low": 1e-3, "high": 0.1, "log": True}},
                  trials=2, pruner="none", out=str(tmp_path), name="study",
                  **{**QUICK, "train.epochs": 2, "track.mlflow": str(store),
                     "track.experiment": "tuning"})
    c, found = runs_of(store, "tuning")
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.run_name == "study"
    parent = parents[0].info.run_id
    children = {r.info.run_name: r for r in found if r.data.tags.get("mlflow.parentRunId")
                == parent}
    assert set(children) == {"trial-0", "trial-1", "final"}, [r.info.run_name for r in found]
    assert all(r.info.status == "FINISHED" for r in found)
    values = sorted(r.data.metrics["trial_roc_auc"] for name, r in children.items()
                    if name.startswith("trial-"))
    assert values == sorted(t.value for t in result.study.trials)
    assert len(c.get_metric_history(children["trial-0"].info.run_id, "val_loss")) == 2
    assert "test_roc_auc" in children["final"].data.metrics


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_gives_one_warning_and_a_finished_run(tmp_path):
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run = deepfit.train(data=table(), out=str(tmp_path), **{
            **QUICK, "track.mlflow": f"http://127.0.0.1:{closed_port()}"})
    warned = deepfit_warnings(record)
    assert len(warned) == 1, warned
    assert warned[0].startswith("MLflow at http://127.0.0.1:") and "goes on" in warned[0]
    assert (run.path / "summary.json").is_file() and run.metrics["test"]["accuracy"] is not None
    assert time.monotonic() - started < 30  # a few seconds of retries, not MLflow's minutes


def test_a_store_that_cannot_be_written_gives_one_warning_for_a_whole_study(tmp_path):
    from deepfit.tune import tune
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store should be")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = tune(data=table(), space={"train.lr": {"low": 1e-3, "high": 0.1}}, trials=2,
                      pruner="none", out=str(tmp_path), name="study",
                      **{**QUICK, "train.epochs": 2, "eval.bootstrap": 0,
                         "track.mlflow": str(blocked)})
    warned = deepfit_warnings(record)
    assert len(warned) == 1 and warned[0].startswith("MLflow at file://"), warned
    assert (result.final.path / "summary.json").is_file()  # trials and final run went on


@pytest.mark.parametrize("face, module, key, value", [
    ("train", "mlflow", "track.mlflow", "mlruns"),
    ("train", "torch.utils.tensorboard", "track.tensorboard", True),
    ("cross_validate", "mlflow", "track.mlflow", "mlruns"),
    ("tune", "mlflow", "track.mlflow", "mlruns")])
def test_a_missing_package_is_one_line_before_any_work(tmp_path, monkeypatch, face, module,
                                                       key, value):
    from deepfit.tune import tune
    call = {"train": deepfit.train, "cross_validate": deepfit.cross_validate, "tune": tune}
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'deepfit\[track\]'") as err:
        call[face](data=table(), out=str(tmp_path / "runs"), **{**QUICK, key: value})
    assert "\n" not in str(err.value) and key in str(err.value)
    assert not (tmp_path / "runs").exists()


def test_a_cross_validation_is_one_parent_run_with_a_child_per_fold(tmp_path):
    store = tmp_path / "mlruns"
    cv = deepfit.cross_validate(data=table(), folds=2, out=str(tmp_path), **{
        **QUICK, "train.epochs": 2, "eval.bootstrap": 0, "track.mlflow": str(store)})
    c, found = runs_of(store)
    parent = next(r for r in found if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.run_name == cv.path.name and parent.data.tags["deepfit.kind"] == "cv"
    children = sorted(r.info.run_name for r in found
                      if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id)
    assert children == sorted(r.path.name for r in cv.runs) and len(found) == 3
    assert parent.data.metrics["cv_accuracy_mean"] == pytest.approx(
        cv.summary["accuracy"]["mean"])


@pytest.mark.parametrize("uri, words", [
    ("htp://host:5000", "not a tracking URI"),
    ("https://me:secret@host:5000", "MLFLOW_TRACKING_PASSWORD")])
def test_a_wrong_or_secret_uri_is_refused(tmp_path, uri, words):
    with pytest.raises(ConfigError, match=words) as err:
        deepfit.train(data=table(), out=str(tmp_path / "runs"), **{**QUICK, "track.mlflow": uri})
    assert "secret" not in str(err.value)
    assert not (tmp_path / "runs").exists()


def test_a_resumed_run_logs_into_the_same_mlflow_run(tmp_path):
    from interrupts import SignalAt
    from deepfit.errors import TrainingInterrupted
    store = tmp_path / "mlruns"
    options = {**QUICK, "train.epochs": 4, "track.mlflow": str(store),
               "track.tensorboard": True}
    with pytest.raises(TrainingInterrupted):
        deepfit.train(data=table(), out=str(tmp_path / "runs"), callbacks=[SignalAt(2)],
                      **options)
    c, found = runs_of(store)
    assert [r.info.status for r in found] == ["KILLED"]
    run = deepfit.resume(next((tmp_path / "runs").iterdir()), data=table())
    c, found = runs_of(store)
    assert [r.info.status for r in found] == ["FINISHED"]  # the same run, finished
    history = pd.read_csv(run.path / "history.csv")
    points = sorted(c.get_metric_history(found[0].info.run_id, "val_loss"),
                    key=lambda m: m.step)
    assert [m.step for m in points] == [1, 2, 3, 4]
    np.testing.assert_allclose([m.value for m in points], history["val_loss"], rtol=1e-9)
    assert sorted(p.step for p in events(run.path / "tensorboard").Scalars("val_loss")) == \
        [1, 2, 3, 4]


def test_tracking_keys_cannot_be_searched():
    from deepfit.tune.space import SearchSpace
    with pytest.raises(ConfigError, match="track.mlflow cannot be searched"):
        SearchSpace.from_dict({"track.mlflow": ["a", "b"]})


def test_an_export_joins_the_runs_mlflow_run(tracked):
    run, store, _ = tracked
    exported = deepfit.load(run.path).export("safetensors")
    c, found = runs_of(store)
    assert len(found) == 1 and found[0].info.status == "FINISHED"  # the same run, no new one
    files = {a.path for a in c.list_artifacts(found[0].info.run_id, "export/safetensors")}
    assert files == {f"export/safetensors/{p.name}" for p in exported.folder.iterdir()}
