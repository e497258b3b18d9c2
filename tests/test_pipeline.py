"""End-to-end runs through ``deepfit.train``: the lectures' results, the run directory,
loading back, and predicting new rows."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import deepfit
from deepfit.errors import ConfigError, DataError, DataWarning, RunError


def test_linear_regression_neuron_recovers_slope_and_intercept(tmp_path, quick):
    # Lecture: y = 3x + 2 + noise, one neuron, MSE, SGD -> w ~ 2.90, b ~ 2.04.
    run = deepfit.train(data="linear", out=tmp_path, **quick, **{
        "model.hidden": [], "data.standardize": False, "data.scale_target": False,
        "train.optimizer": "sgd", "train.lr": 0.1, "train.weight_decay": 0.0,
        "train.epochs": 60})
    layer = run.model.net[0]
    assert layer.weight.item() == pytest.approx(3.0, abs=0.15)
    assert layer.bias.item() == pytest.approx(2.0, abs=0.1)
    assert run.task == "regression" and run.metrics["test"]["r2"] > 0.8


def test_two_two_one_network_solves_xor(tmp_path, quick):
    run = deepfit.train(data="xor", out=tmp_path, **quick, **{
        "model.hidden": [2], "model.activation": "tanh", "model.dropout": 0.0,
        "train.lr": 0.05, "train.epochs": 150, "train.weight_decay": 0.0,
        "train.early_stopping": False, "data.n_samples": 400})
    assert run.metrics["test"]["accuracy"] >= 0.97
    assert sum(p.numel() for p in run.model.parameters()) == 2 * 2 + 2 + 2 + 1


def test_a_separable_set_stops_when_its_loss_stops_improving(tmp_path, quick):
    # xor with the defaults is separated within a few epochs; its validation loss then
    # creeps towards zero for ever (1e-4, 1e-5, ...). With train.min_delta=0 it ran all 200
    # epochs; the automatic 1e-4 stops it once 20 epochs gain less than that.
    run = deepfit.train(data="xor", out=tmp_path, **quick)
    training = json.loads((run.path / "summary.json").read_text())["training"]
    assert run.config.train.min_delta == 1e-4
    assert training["early_stopping"] and training["epochs_run"] < 120, training
    assert "early stopping on val_loss (patience 20, gains above 0.0001)" in \
        training["regularisation"]  # the report says what counted as better
    assert training["stop_reason"].startswith(
        "early stop: val_loss did not improve by more than 0.0001 for 20 epochs")
    assert run.metrics["test"]["accuracy"] == 1.0


def test_breast_cancer_with_defaults_reaches_lecture_accuracy(tmp_path):
    # The lecture reports 0.96 on 114 test rows, where one row is 0.9 points: judge the
    # defaults over three seeds (three different splits), not one lucky or unlucky split.
    # On seed 0's split scikit-learn's LogisticRegression also scores 0.947.
    accuracies = []
    for seed in range(3):
        run = deepfit.train(data="breast_cancer", out=tmp_path, seed=seed, progress=False,
                            **{"eval.plots": False, "eval.report": False})
        assert run.metrics["test"]["n"] == 114  # the lecture's test size
        accuracies.append(run.metrics["test"]["accuracy"])
    assert np.mean(accuracies) >= 0.95 and min(accuracies) >= 0.94, accuracies
    assert run.schema.class_names == ["benign", "malignant"]  # malignant is the positive class


def test_multiclass_digits_matches_sklearn_mlp_on_the_same_split(tmp_path, quick):
    from sklearn.neural_network import MLPClassifier

    from deepfit.config import DataConfig
    from deepfit.data.bundle import build_bundle

    run = deepfit.train(data="digits", out=tmp_path, **quick)
    bundle = build_bundle(DataConfig(source="digits"), seed=0)
    sk = MLPClassifier(max_iter=1000, random_state=0).fit(bundle.train.X, bundle.train.y)
    sk_acc = sk.score(bundle.test.X, bundle.test.y)
    assert run.metrics["test"]["accuracy"] >= sk_acc - 0.005, (run.metrics["test"], sk_acc)


def test_run_directory_holds_every_artefact(tmp_path):
    run = deepfit.train(data="iris", out=tmp_path, name="iris-run", progress=False,
                        epochs=15)
    d = run.path
    for name in ("config.yaml", "schema.json", "history.csv", "metrics.json",
                 "predictions.csv", "summary.json", "report.html", "report.md",
                 "checkpoints/best.pt", "checkpoints/last.pt", "plots/learning_curves.png",
                 "plots/confusion_matrix.png", "plots/roc.png", "plots/pr.png"):
        assert (d / name).is_file(), name
    history = pd.read_csv(d / "history.csv")
    assert len(history) == 15 and list(history.columns)[:3] == ["epoch", "train_loss",
                                                                 "train_accuracy"]
    metrics = json.loads((d / "metrics.json").read_text())
    assert set(metrics) >= {"val", "test", "threshold", "ci", "calibration"}
    assert metrics["ci"]["accuracy"]["low"] <= metrics["test"]["accuracy"] <= metrics["ci"]["accuracy"]["high"]
    assert "rates" in metrics["test"] and "macro" in metrics["test"]["rates"]
    preds = pd.read_csv(d / "predictions.csv")
    assert len(preds) == metrics["test"]["n"]
    assert list(preds.columns) == ["id", "true", "predicted", "p_setosa", "p_versicolor",
                                   "p_virginica"]
    assert (preds["true"] == preds["predicted"]).mean() == pytest.approx(
        metrics["test"]["accuracy"])
    with pytest.raises(RunError, match="already exists"):
        deepfit.train(data="iris", out=tmp_path, name="iris-run", progress=False, epochs=1)
    assert len(pd.read_csv(d / "history.csv")) == 15  # the earlier run is untouched


def test_default_names_never_collide(tmp_path, quick):
    a = deepfit.train(data="iris", out=tmp_path, epochs=1, **quick)
    b = deepfit.train(data="iris", out=tmp_path, epochs=1, **quick)
    assert a.path != b.path and a.path.is_dir() and b.path.is_dir()


def test_saved_config_reruns_the_same_experiment(tmp_path, quick):
    first = deepfit.train(data="wine", out=tmp_path, epochs=5, **quick)
    again = deepfit.train(first.path / "config.yaml", out=tmp_path / "again")
    assert again.metrics["test"] == first.metrics["test"]
    assert again.history.column("train_loss") == first.history.column("train_loss")


def test_load_gives_back_the_same_predictions(tmp_path, tabular_csv, quick):
    run = deepfit.train(data=str(tabular_csv), out=tmp_path, epochs=20, **quick,
                        **{"data.id_column": "patient"})
    loaded = deepfit.load(run.path)
    frame = pd.read_csv(tabular_csv)
    assert np.allclose(run.predict_proba(frame), loaded.predict_proba(frame))
    assert set(loaded.predict(frame)) <= {"healthy", "sick"}
    assert loaded.evaluate(frame)["n"] == len(frame)
    ours = loaded.predictions(frame).to_frame()
    assert ours["patient"].tolist() == frame["patient"].tolist()


def test_prediction_input_is_checked(tmp_path, tabular_csv, quick):
    run = deepfit.train(data=str(tabular_csv), out=tmp_path, epochs=2, **quick,
                        **{"data.id_column": "patient"})
    frame = pd.read_csv(tabular_csv)
    with pytest.raises(DataError, match=r"missing column\(s\) \['colour'\]"):
        run.predict(frame.drop(columns=["colour"]))
    with pytest.raises(DataError, match=r"\['extra'\] were not seen in training"):
        run.predict(frame.assign(extra=1))
    with pytest.raises(DataError, match="not a known class"):
        run.evaluate(frame.assign(diagnosis="unknown"))
    unseen = frame.assign(colour="purple").drop(columns=["diagnosis"])
    with pytest.warns(DataWarning, match=r"column 'colour': 120 row\(s\) hold a category not "
                                         r"seen in training \('purple'\), encoded as 'no known"):
        assert len(run.predict(unseen)) == len(frame)  # unseen category -> all-zero one-hot


class LectureNet(nn.Module):
    """Written the way the lectures teach: __init__ + forward, sigmoid at the end."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(30, 15)
        self.out = nn.Linear(15, 1)

    def forward(self, x):
        return torch.sigmoid(self.out(torch.relu(self.hidden(x))))


def test_a_dataframe_with_integer_names_and_nullable_columns_predicts_after_loading(
        tmp_path, quick):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 3)))  # columns 0, 1, 2 (integers)
    frame[3] = (frame[0] > 0).astype(int)
    frame[0] = frame[0].astype("Float64")  # pandas' nullable float, with a gap
    frame.loc[2, 0] = pd.NA
    frame["flag"] = pd.array([True, False, None] * 40, dtype="boolean")
    run = deepfit.train(data=frame, target="3", epochs=2, out=tmp_path, **quick)
    loaded = deepfit.load(run.path)
    rows = frame.drop(columns=[3]).head(5)  # the same DataFrame, integer names and all
    assert list(loaded.predict(rows)) == list(run.predict(frame.head(5)))
    assert set(loaded.predict(rows)) <= {"0", "1"}


def test_users_own_module_trains_through_the_api(tmp_path, quick):
    # The lecture's 30-15-1 breast-cancer network and SGD reach its published 0.96, judged
    # over three splits of 114 test rows as in the defaults test above.
    accuracies = []
    for seed in range(3):
        torch.manual_seed(seed)
        run = deepfit.train(model=LectureNet(), data="breast_cancer", out=tmp_path, seed=seed,
                            **quick, **{"model.outputs": "probabilities", "eval.bootstrap": 0,
                                        "train.optimizer": "sgd", "train.lr": 0.05,
                                        "train.epochs": 300})
        accuracies.append(run.metrics["test"]["accuracy"])
    assert np.mean(accuracies) >= 0.95 and min(accuracies) >= 0.93, accuracies
    assert run.config.model.name.endswith("test_pipeline:LectureNet")
    probs = run.predict_proba(np.zeros((2, 30)))
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1)


def test_model_output_that_does_not_fit_the_task_is_a_clear_error(tmp_path, quick):
    with pytest.raises(deepfit.ModelError, match="needs"):
        deepfit.train(model=nn.Linear(4, 5), data="iris", out=tmp_path, **quick)


def test_unknown_keyword_and_monitor_are_config_errors(tmp_path, quick):
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        deepfit.train(data="iris", epoch=3, out=tmp_path, **quick)
    with pytest.raises(ConfigError, match="val_r2"):
        deepfit.train(data="diabetes", out=tmp_path, monitor="val_accuracy", **quick)
    assert not any(tmp_path.iterdir())  # validation failed before any run folder was made


def test_diverging_training_names_the_cause(tmp_path, quick):
    from deepfit.train.builtin.nan_guard import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="lower train.lr"):
        deepfit.train(data="diabetes", out=tmp_path, **quick, **{
            "train.optimizer": "sgd", "train.lr": 1e6, "data.scale_target": False})


def test_class_weights_and_regression_report(tmp_path):
    run = deepfit.train(data="diabetes", out=tmp_path, progress=False, epochs=30)
    assert (run.path / "plots" / "predicted_vs_true.png").is_file()
    assert run.metrics["test"]["rmse"] > 0 and run.metrics["test"]["r2"] > 0.2
    weighted = deepfit.train(data="breast_cancer", out=tmp_path, progress=False, epochs=5,
                             eval={"plots": False}, class_weights="balanced")
    assert "balanced class weights" in json.loads(
        (weighted.path / "summary.json").read_text())["model"]["loss"]


def test_data_seed_fixes_the_split_independently_of_the_training_seed(tmp_path, quick):
    a = deepfit.train(data="iris", out=tmp_path, epochs=1, seed=1, **quick, **{"data.seed": 7})
    b = deepfit.train(data="iris", out=tmp_path, epochs=1, seed=2, **quick, **{"data.seed": 7})
    ids = [pd.read_csv(r.path / "predictions.csv")["id"].tolist() for r in (a, b)]
    assert ids[0] == ids[1]


def _multilabel_frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["effusion"] = (X[:, 0] > 0).astype(int)
    frame["edema"] = (X[:, 1] + X[:, 2] > 0.5).astype(int)
    frame["nodule"] = (X[:, 3] < -1).astype(int)
    return frame


def test_multilabel_task_from_several_label_columns(tmp_path, quick):
    frame = _multilabel_frame()
    path = tmp_path / "xray.csv"
    frame.to_csv(path, index=False)
    run = deepfit.train(data=str(path), out=tmp_path, epochs=60, **quick,
                        **{"data.targets": ["effusion", "edema", "nodule"]})
    assert run.task == "multilabel" and run.schema.class_names == ["effusion", "edema", "nodule"]
    test = run.metrics["test"]
    assert test["roc_auc_macro_defined"] > 0.9 and test["f1_micro"] > 0.8
    assert set(test["per_class"]) == {"effusion", "edema", "nodule"}
    assert run.predict_proba(frame).shape == (300, 3)
    assert set(np.unique(run.predict(frame))) <= {0, 1}
    loaded = deepfit.load(run.path)
    assert loaded.evaluate(frame)["n"] == 300
    preds = pd.read_csv(run.path / "predictions.csv", keep_default_na=False)
    assert list(preds.columns) == ["id", "true", "predicted", "p_effusion", "p_edema", "p_nodule"]


def test_multilabel_values_must_be_zero_or_one(tmp_path, quick):
    frame = _multilabel_frame().astype({"edema": object})
    frame.loc[7, "edema"] = "maybe"
    with pytest.raises(DataError, match=r"label column 'edema' has value 'maybe' at row 7"):
        deepfit.train(data=frame, out=tmp_path, **quick,
                      **{"data.targets": ["effusion", "edema", "nodule"]})


def test_multilabel_toy_dataset_runs_with_defaults(tmp_path):
    run = deepfit.train(data="multilabel", out=tmp_path, progress=False, epochs=10)
    assert run.task == "multilabel" and (run.path / "report.html").is_file()


def test_data_from_tensors_and_a_torch_dataset(tmp_path, quick):
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 3, generator=g)
    y = (X[:, 0] > 0).long()
    from_tensors = deepfit.train(data=(X, y), out=tmp_path, epochs=30, **quick)
    from_dataset = deepfit.train(data=TensorDataset(X, y), out=tmp_path, epochs=30, **quick)
    assert from_tensors.metrics["test"] == from_dataset.metrics["test"]
    assert from_dataset.metrics["test"]["accuracy"] > 0.9


def test_config_of_a_run_on_a_python_object_asks_for_the_object_again(tmp_path, quick):
    frame = pd.DataFrame({"x": np.arange(60.0), "y": np.arange(60) % 2})
    run = deepfit.train(data=frame, out=tmp_path, epochs=1, **quick)
    assert run.config.data.source == "python:DataFrame"
    with pytest.raises(DataError, match="trained on a Python object"):
        deepfit.train(run.path / "config.yaml")
    again = deepfit.train(run.path / "config.yaml", data=frame, out=tmp_path / "again")
    assert again.metrics["test"] == run.metrics["test"]


def test_a_compiled_model_trains_and_saves_plain_weights(tmp_path, quick):
    """train.compile=true runs the steps through torch.compile; checkpoints and the exported
    weights hold the plain module's names, so the run loads back without compiling."""
    run = deepfit.train(data="iris", out=tmp_path, name="compiled", epochs=3, compile=True,
                        **quick)
    best = torch.load(run.path / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert best and not any(k.startswith("_orig_mod") for k in best)
    loaded = deepfit.load(run.path)
    assert loaded.predict(np.zeros((2, 4))).shape == (2,)
