"""Cross-validation: folds are honest (each row tested once, groups kept together), each
fold is a full run with its own preprocessing, and the summary is the folds' mean ± sd."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import deepfit
from deepfit.cli import main
from deepfit.cv import fold_splits
from deepfit.errors import DataError

QUICK = {"train.progress": False, "eval.plots": False, "eval.report": False, "eval.bootstrap": 0}


def test_every_row_is_tested_exactly_once_per_repeat_and_folds_are_stratified():
    labels = np.array(["a"] * 60 + ["b"] * 30)
    splits = fold_splits(90, labels, None, folds=3, repeats=2, seed=0)
    assert [name for name, _ in splits] == [f"fold{r}-{k}" for r in (1, 2) for k in (1, 2, 3)]
    for r in range(2):
        tested = np.concatenate([np.flatnonzero(s.to_numpy() == "test")
                                 for _, s in splits[3 * r:3 * r + 3]])
        assert sorted(tested) == list(range(90))
    for _, s in splits:
        fold = labels[s.to_numpy() == "test"]
        assert (fold == "a").sum() == 20 and (fold == "b").sum() == 10
    assert not splits[0][1].equals(splits[3][1])  # repeats reshuffle


def test_groups_never_straddle_folds():
    groups = np.repeat([f"patient{i}" for i in range(30)], 3)
    labels = np.tile(["x", "y", "x"], 30)
    for _, s in fold_splits(90, labels, groups, folds=5, repeats=1, seed=0):
        test_groups = set(groups[s.to_numpy() == "test"])
        train_groups = set(groups[s.to_numpy() == "train"])
        assert not test_groups & train_groups


def test_cross_validate_runs_each_fold_with_its_own_preprocessing(tmp_path):
    result = deepfit.cross_validate(data="wine", folds=3, out=tmp_path, epochs=10, **QUICK)
    assert len(result.per_fold) == 3
    accs = [f["accuracy"] for f in result.per_fold]
    assert result.summary["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert result.summary["accuracy"]["sd"] == pytest.approx(np.std(accs, ddof=1))
    centres = [json.loads((tmp_path.glob("wine-cv-*").__next__() / f["fold"] / "schema.json")
                          .read_text())["preprocessor"]["center_"]["alcohol"]
               for f in result.per_fold]
    assert len(set(centres)) == 3  # standardisation fitted on each fold's own training rows
    folder = tmp_path / result.path.name
    assert (folder / "cv.html").is_file() and (folder / "cv.json").is_file()
    n_test = sum(json.loads((folder / f["fold"] / "metrics.json").read_text())["test"]["n"]
                 for f in result.per_fold)
    assert n_test == 178


def test_grouped_cv_drops_the_group_column_from_the_features(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"patient": np.repeat(np.arange(40), 3), "x": rng.normal(size=120)})
    frame["y"] = (frame["x"] > 0).astype(int)
    result = deepfit.cross_validate(data=frame, folds=4, groups="patient", out=tmp_path,
                                    epochs=5, **QUICK)
    schema = json.loads((result.path / "fold1-1" / "schema.json")
                        .read_text())
    assert schema["preprocessor"]["columns_"] == ["x"]
    with pytest.raises(DataError, match="group column 'patiant' is not in the data"):
        deepfit.cross_validate(data=frame, folds=4, groups="patiant", out=tmp_path, **QUICK)


def test_cv_command(tmp_path, capsys):
    code = main(["cv", "--data", "iris", "--folds", "3", "--epochs", "5", "--out", str(tmp_path),
                 "--quiet", "eval.plots=false", "eval.report=false"])
    assert code == 0
    out = capsys.readouterr().out
    assert "±" in out and "cv.html" in out
    assert main(["cv", "--data", "iris", "--folds", "1", "--out", str(tmp_path)]) == 2


def test_cross_val_score_agrees_with_deepfit_cv_on_the_same_folds(tmp_path):
    """The scikit-learn face and deepfit's own CV score the same folds alike. They are not
    bit-identical: deepfit's CV holds out part of each training fold for early stopping and
    its report, the estimator trains on all of it."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import PredefinedSplit, cross_val_score

    from deepfit.sklearn import NeuralClassifier

    X, y = load_wine(return_X_y=True)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]).assign(y=y)
    result = deepfit.cross_validate(data=frame, folds=3, out=tmp_path, epochs=40, **QUICK)
    splits = fold_splits(len(y), y.astype(str), None, folds=3, repeats=1, seed=0)
    fold_of = np.zeros(len(y), dtype=int)
    for k, (_, s) in enumerate(splits):
        fold_of[s.to_numpy() == "test"] = k
    sk = cross_val_score(NeuralClassifier(epochs=40, random_state=0), X, y,
                         cv=PredefinedSplit(fold_of))
    ours = [f["accuracy"] for f in result.per_fold]
    assert np.mean(sk) == pytest.approx(np.mean(ours), abs=0.04), (sk, ours)


@pytest.mark.parametrize("args, message", [
    (["--folds", "100"], "--folds 100 is more than the 50 rows of the smallest class "
                         "'0' (every test fold needs one of each class); use at most 50"),
    (["--folds", "4", "--groups", "site"], "--folds 4 is more than the 3 groups in 'site'"),
    # Groups that cannot work are said in deepfit's words (no scikit-learn n_splits).
    (["--folds", "3", "--groups", "site"],
     "group column 'site': the training part of fold1-1 holds only 2 of the 3 groups, and "
     "carving its validation rows by whole groups, about data.val_size=0.15 of them, needs at least 7"),
    (["--groups", "sit"], "group column 'sit' is not in the data (did you mean "
                          "'site'?); its columns are 'site', 'x', 'y'"),
])
def test_impossible_folds_are_one_line_before_any_folder(tmp_path, capsys, args, message):
    frame = pd.DataFrame({"site": np.tile(["a", "b", "c"], 50), "x": np.arange(150.0),
                          "y": np.repeat([0, 1, 2], 50)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "runs"
    assert main(["cv", "--data", str(tmp_path / "t.csv"), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and len(err.splitlines()) == 1, err
    assert "n_splits" not in err and (not out.exists() or not any(out.iterdir()))


def test_a_failing_first_fold_leaves_no_folder(tmp_path):
    # Class 'c' has 2 rows: 2 folds are possible, but each fold's training part holds one
    # 'c' row, too few to carve a stratified validation split from.
    frame = pd.DataFrame({"x": np.arange(42.0), "y": ["a"] * 20 + ["b"] * 20 + ["c"] * 2})
    with pytest.raises(DataError):
        deepfit.cross_validate(data=frame, folds=2, out=tmp_path, epochs=2, **QUICK)
    assert not any(tmp_path.iterdir())


def test_mean_over_folds_says_where_it_is_undefined():
    from deepfit.cv import mean_sd as _mean_sd
    from deepfit.report.format import mean_sd_cell

    entry = _mean_sd([0.8, 0.82, None, 0.79, 0.83])
    assert entry["folds"] == 4
    assert mean_sd_cell(entry, 5).endswith("(4 of 5 folds; undefined in 1)")
    assert mean_sd_cell(_mean_sd([0.8] * 5), 5) == "0.8000 ± 0.0000"
    assert mean_sd_cell(_mean_sd([None, 0.7]), 2) == "0.7000 ± undefined (1 of 2 folds; undefined in 1)"
    assert mean_sd_cell(_mean_sd([None, None]), 2) == "undefined (in all 2 folds)"


# -- cross_validate takes train's arguments and returns a CVResult ---------------------------

class TinyNet(nn.Module):
    """Two features in, one logit out."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def forward(self, x):
        return self.layer(x)


class CountStarts(deepfit.Callback):
    def __init__(self):
        self.starts = 0

    def on_train_begin(self, trainer):
        self.starts += 1


def _two_feature_csv(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    frame["y"] = np.where(frame["a"] > 0, "yes", "no")
    path = tmp_path / "two.csv"
    frame.to_csv(path, index=False)
    return path


def test_cross_validate_takes_a_path_and_a_model_name_and_returns_a_cv_result(tmp_path):
    from deepfit.cv import CVResult
    from deepfit.report.cv import render_cv

    cv = deepfit.cross_validate(data=_two_feature_csv(tmp_path), model="mlp", folds=2,
                                epochs=2, out=tmp_path / "runs", lr=0.01, **QUICK)
    assert isinstance(cv, CVResult)
    assert (cv.task, cv.folds, cv.repeats, cv.groups) == ("binary", 2, 1, None)
    assert cv.path.is_dir() and cv.path.parent == tmp_path / "runs"
    assert [f["fold"] for f in cv.per_fold] == ["fold1-1", "fold1-2"]
    assert cv.fold_paths == [r.path for r in cv.runs] == [cv.path / "fold1-1", cv.path / "fold1-2"]
    assert set(cv.summary) >= {"accuracy"} and cv.summary["accuracy"]["folds"] == 2
    for run in cv.runs:  # the path, the model name and the bare lr reached every fold
        assert run.config.data.source == str(tmp_path / "two.csv")
        assert run.config.model.name == "mlp" and run.config.train.lr == 0.01
    assert cv.report_path == cv.path / "cv.html" and cv.report_path.is_file()
    # cv.json keeps the keys of the first cv folders, and such a folder renders from it.
    saved = json.loads((cv.path / "cv.json").read_text())
    assert list(saved) == ["task", "folds", "repeats", "groups", "data", "path", "summary",
                           "per_fold", "collapsed_folds"]
    assert saved["collapsed_folds"] == [] and "collapsed" in saved["per_fold"][0]
    assert saved == json.loads(json.dumps(cv.to_dict()))
    assert "Cross-validation" in render_cv(saved, {f["fold"]: [] for f in saved["per_fold"]})


def test_cross_validate_trains_a_fresh_copy_of_a_module_in_every_fold(tmp_path):
    torch.manual_seed(0)
    net = TinyNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    counter = CountStarts()
    cv = deepfit.cross_validate(data=_two_feature_csv(tmp_path), model=net, folds=3,
                                callbacks=[counter], epochs=3, out=tmp_path, **QUICK)
    models = [run.model for run in cv.runs]
    assert all(m is not net for m in models) and len({id(m) for m in models}) == 3
    pointers = [{p.data_ptr() for p in m.parameters()} for m in [net, *models]]
    assert all(not (a & b) for i, a in enumerate(pointers) for b in pointers[i + 1:])
    # Your instance is untouched, and the folds, trained on different rows, differ.
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    weights = [m.layer.weight.detach().cpu() for m in models]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    assert counter.starts == 3  # the same callbacks are called in every fold
    assert all(r.config.model.name.endswith("test_cv:TinyNet") for r in cv.runs)


def test_cross_validate_refuses_a_split_of_its_own(tmp_path):
    with pytest.raises(deepfit.ConfigError, match="makes each fold's split itself"):
        deepfit.cross_validate(data="iris", split=pd.Series(["train"] * 150), out=tmp_path,
                               **QUICK)
    assert not any(tmp_path.iterdir())


class ConstantNet(nn.Module):
    """Ignores its input: the same scores for every row."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.bias = nn.Parameter(torch.full((out_features,), 5.0))

    def forward(self, x):
        return self.bias.expand(len(x), -1)


def test_cv_says_how_many_folds_collapsed(tmp_path, capsys):
    from deepfit.report.format import collapsed_folds_line

    cv = deepfit.cross_validate(data=_two_feature_csv(tmp_path), model=ConstantNet(2, 1),
                                folds=2, epochs=1, lr=1e-6, out=tmp_path / "runs", **QUICK)
    assert cv.collapsed_folds == ["fold1-1", "fold1-2"]
    saved = json.loads((cv.path / "cv.json").read_text())
    assert saved["collapsed_folds"] == ["fold1-1", "fold1-2"]
    line = collapsed_folds_line(saved)
    assert line.startswith("2 of 2 folds collapsed: the model predicts one class for every "
                           "test row (fold1-1, fold1-2)")
    html = cv.report_path.read_text()
    assert "2 of 2 folds collapsed" in html and "fold1-1 (collapsed)" in html
