"""The scikit-learn estimators: scikit-learn's own estimator checks, and the ways people use
them (search, pipelines, cross-validation, calibration, warm starts, their own networks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import loguniform, randint
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

import deepfit
from deepfit.sklearn import EXPECTED_FAILED_CHECKS, NeuralClassifier, NeuralRegressor

# Small and quick: the defaults (200 epochs, (128, 64)) are for real use, not for tests.
FAST = {"hidden": (16,), "epochs": 20, "lr": 1e-2, "device": "cpu"}
# With the user's module=: the MLP's hidden layers would be refused, not ignored.
FAST_MODULE = {k: v for k, v in FAST.items() if k != "hidden"}


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def cancer():
    """A stratified 200-row subsample of breast_cancer (binary)."""
    X, y = load_breast_cancer(return_X_y=True)
    rows = np.sort(np.random.default_rng(0).choice(len(X), 200, replace=False))
    return X[rows], y[rows]


def _linear(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = 100 * (X @ np.array([1.0, -2.0, 0.5, 3.0])) + 1000 + rng.normal(scale=10, size=n)
    return X, y


class TinyNet(nn.Module):
    """A user's own network with the deepfit-style constructor."""

    def __init__(self, in_features, out_features, width=8):
        super().__init__()
        self.width = width
        self.body = nn.Sequential(nn.Linear(in_features, width), nn.Tanh(),
                                  nn.Linear(width, out_features))

    def forward(self, x):
        return self.body(x)


class SoftmaxNet(nn.Module):
    """The lectures' style: the forward ends in a softmax (``outputs="probabilities"``)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x):
        return torch.softmax(self.linear(x), dim=1)


# -- scikit-learn's estimator checks ---------------------------------------------------------
@parametrize_with_checks([NeuralClassifier(**FAST), NeuralRegressor(**FAST)],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_expected_failures_are_documented():
    import deepfit.sklearn as module
    section = module.__doc__.split("Checks that do not apply:")[1]
    for name, reason in EXPECTED_FAILED_CHECKS.items():
        assert name in section and reason


# -- the public surface ----------------------------------------------------------------------
def test_public_import_and_constructor_only_stores():
    assert deepfit.NeuralClassifier is NeuralClassifier
    assert deepfit.NeuralRegressor is NeuralRegressor
    clf = NeuralClassifier(lr="not a number", hidden=[3], class_weight="nonsense")
    assert clf.get_params()["lr"] == "not a number" and clf.hidden == [3]
    assert not [k for k in vars(clf) if k.endswith("_")]
    with pytest.raises(ValueError, match="'lr'"):
        clf.fit(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="'activation'.*did you mean 'relu'"):
        NeuralRegressor(activation="rellu").fit(np.zeros((4, 2)), [0.0, 1.0, 2.0, 3.0])


def test_fitted_attributes(iris):
    X, y = iris
    clf = NeuralClassifier(**FAST).fit(X, y)
    assert clf.n_features_in_ == 4 and clf.classes_.tolist() == [0, 1, 2]
    assert isinstance(clf.module_, nn.Module) and not clf.module_.training
    assert clf.n_iter_ == len(clf.history_) and 1 <= clf.best_epoch_ <= clf.n_iter_
    assert {"epoch", "train_loss", "val_loss", "val_accuracy"} <= set(clf.history_[0])
    assert clf.validation_used_
    assert clf.x_mean_.shape == (4,) and clf.x_scale_.shape == (4,)
    np.testing.assert_allclose(clf.x_mean_, X.mean(0), rtol=0.1)  # from the training rows
    assert NeuralClassifier(**FAST, standardize=False).fit(X, y).x_mean_ is None


def test_dataframe_feature_names(iris):
    X, y = iris
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    clf = NeuralClassifier(**FAST).fit(frame, pd.Series(y))
    assert clf.feature_names_in_.tolist() == ["sl", "sw", "pl", "pw"]
    assert clf.predict(frame.iloc[:5]).shape == (5,)


def test_nan_and_inf_are_rejected_with_sklearn_messages(iris):
    X, y = iris
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        NeuralClassifier(**FAST).fit(bad, y)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        NeuralClassifier(**FAST).fit(bad, y)
    Xr, yr = _linear(40)
    yr[0] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        NeuralRegressor(**FAST).fit(Xr, yr)


# -- predictions -----------------------------------------------------------------------------
def test_multiclass_proba_matches_predict(iris):
    X, y = iris
    clf = NeuralClassifier(**FAST).fit(X, y)
    proba, dec = clf.predict_proba(X), clf.decision_function(X)
    assert proba.shape == (150, 3) and dec.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(X)).all()
    assert (clf.classes_[dec.argmax(axis=1)] == clf.predict(X)).all()


def test_binary_proba_matches_predict(cancer):
    X, y = cancer
    clf = NeuralClassifier(**FAST).fit(X, y)
    proba, dec = clf.predict_proba(X), clf.decision_function(X)
    assert proba.shape == (200, 2) and dec.shape == (200,)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(X)).all()
    assert ((proba[:, 1] >= 0.5) == (dec > 0)).all()
    assert clf.module_(torch.zeros(1, 30)).shape == (1, 1)  # one logit, not two
    assert clf.score(X, y) > 0.9


def test_probability_outputs_of_a_users_net(iris):
    X, y = iris
    clf = NeuralClassifier(**FAST_MODULE, module=SoftmaxNet, outputs="probabilities").fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(X)).all()
    assert clf.score(X, y) > 0.8


@pytest.mark.parametrize("labels", [np.array(["setosa", "versicolor", "virginica"]),
                                    np.array([-7, 3, 40]), np.array(["b", "a", "c"], object)])
def test_labels_round_trip(iris, labels):
    X, y = iris
    target = labels[y]
    clf = NeuralClassifier(**FAST).fit(X, target)
    assert sorted(clf.classes_.tolist()) == clf.classes_.tolist() == sorted(labels.tolist())
    pred = clf.predict(X)
    assert pred.dtype == target.dtype and set(pred) <= set(labels)
    assert (pred == target).mean() > 0.85


def test_bool_labels_round_trip(cancer):
    X, y = cancer
    clf = NeuralClassifier(**FAST).fit(X, y == 1)
    assert clf.classes_.tolist() == [False, True] and clf.predict(X).dtype == bool


def test_same_random_state_same_predictions(iris):
    X, y = iris
    a = NeuralClassifier(**FAST, random_state=3).fit(X, y).predict_proba(X)
    b = NeuralClassifier(**FAST, random_state=3).fit(X, y).predict_proba(X)
    c = NeuralClassifier(**FAST, random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_global_random_state_is_left_alone(iris):
    X, y = iris
    torch.manual_seed(123)
    np.random.seed(123)
    expected = (torch.rand(1).item(), np.random.rand())
    torch.manual_seed(123)
    np.random.seed(123)
    NeuralClassifier(**FAST).fit(X, y)
    assert (torch.rand(1).item(), np.random.rand()) == expected


# -- training behaviour ----------------------------------------------------------------------
def test_verbose_prints_progress(iris, capsys):
    X, y = iris
    NeuralClassifier(**FAST).fit(X, y)
    assert capsys.readouterr().err == ""
    NeuralClassifier(**FAST, verbose=True).fit(X, y)
    assert "epoch   20/20" in capsys.readouterr().err


def test_small_data_trains_on_every_row_without_early_stopping():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 3)), np.array([0, 1] * 6)
    clf = NeuralClassifier(**FAST).fit(X, y)
    assert not clf.validation_used_ and clf.n_iter_ == 20 and clf.best_epoch_ == 20
    assert "val_loss" not in clf.history_[0]
    # A class with a single row: no stratified split possible either.
    X2, y2 = rng.normal(size=(40, 3)), np.array([0] * 20 + [1] * 19 + [2])
    assert not NeuralClassifier(**FAST).fit(X2, y2).validation_used_


def test_early_stopping_keeps_the_best_epoch(cancer):
    X, y = cancer
    clf = NeuralClassifier(hidden=(32,), lr=0.05, epochs=200, patience=5, dropout=0.0,
                           device="cpu").fit(X, y)
    assert clf.n_iter_ < 200 and clf.n_iter_ - clf.best_epoch_ == 5
    losses = [row["val_loss"] for row in clf.history_]
    assert losses[clf.best_epoch_ - 1] == min(losses)


def test_balanced_class_weight(cancer):
    X, y = cancer
    clf = NeuralClassifier(**FAST, class_weight="balanced").fit(X, y)
    assert clf.score(X, y) > 0.9


def test_warm_start_continues_training(cancer):
    X, y = cancer
    clf = NeuralClassifier(**{**FAST, "lr": 1e-3}, warm_start=True, early_stopping=False,
                           dropout=0.0, schedule="constant")
    clf.fit(X, y)
    first_module, first_loss = clf.module_, clf.history_[-1]["train_loss"]
    clf.fit(X, y)
    assert clf.module_ is first_module
    assert clf.n_iter_ == 40 and [r["epoch"] for r in clf.history_] == list(range(1, 41))
    assert clf.history_[-1]["train_loss"] < first_loss
    clf.set_params(warm_start=False).fit(X, y)
    assert clf.module_ is not first_module and clf.n_iter_ == 20
    with pytest.raises(ValueError, match="same classes"):
        clf.set_params(warm_start=True).fit(X[y == 1], y[y == 1])


def test_partial_fit_runs_one_epoch_per_call(iris):
    X, y = iris
    clf = NeuralClassifier(**FAST)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert clf.n_iter_ == 1 and clf.classes_.tolist() == [0, 1, 2]
    for _ in range(14):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 15 and len(clf.history_) == 15
    assert clf.history_[-1]["train_loss"] < clf.history_[0]["train_loss"]
    assert clf.score(X, y) > 0.8
    with pytest.raises(ValueError, match="not one of the classes"):
        clf.partial_fit(X[:3], np.array([0, 1, 9]))
    reg = NeuralRegressor(**FAST)
    Xr, yr = _linear()
    for _ in range(3):
        reg.partial_fit(Xr, yr)
    assert reg.n_iter_ == 3


def test_users_module_class_and_factory(iris):
    X, y = iris
    clf = NeuralClassifier(**FAST_MODULE, module=TinyNet, module_kwargs={"width": 12}).fit(X, y)
    assert isinstance(clf.module_, TinyNet) and clf.module_.width == 12
    assert clf.score(X, y) > 0.85
    factory = clone(clf).set_params(module=lambda n_in, n_out: nn.Linear(n_in, n_out),
                                    module_kwargs=None)
    assert isinstance(factory.fit(X, y).module_, nn.Linear)
    positional = clone(clf).set_params(module=SoftmaxNet, module_kwargs=None,
                                       outputs="probabilities")
    assert isinstance(positional.fit(X, y).module_, SoftmaxNet)  # sizes passed by position
    no_sizes = clone(factory).set_params(module=lambda: nn.Linear(4, 3))
    assert no_sizes.fit(X, y).module_.out_features == 3
    instance = nn.Linear(4, 3)
    before = instance.weight.detach().clone()
    trained = clone(factory).set_params(module=instance).fit(X, y).module_
    assert trained is not instance and torch.equal(instance.weight, before)  # a copy trains
    with pytest.raises(deepfit.ModelError, match="shape"):
        NeuralClassifier(**FAST_MODULE, module=lambda i, o: nn.Linear(i, 5)).fit(X, y)


def test_regressor_learns_a_linear_problem_and_unscales():
    X, y = _linear()
    reg = NeuralRegressor(**FAST).fit(X[:240], y[:240])
    assert reg.score(X[240:], y[240:]) > 0.8
    assert abs(reg.y_mean_ - 1000) < 50 and reg.y_scale_ > 100
    assert abs(reg.predict(X[240:]).mean() - y[240:].mean()) < 50


# -- scikit-learn's tools --------------------------------------------------------------------
def test_grid_search_over_two_hyperparameters(iris):
    X, y = iris
    grid = {"hidden": [(8,), (16,)], "lr": [3e-3, 3e-2]}
    search = GridSearchCV(NeuralClassifier(epochs=15, device="cpu"), grid, cv=3).fit(X, y)
    assert search.best_params_["hidden"] in grid["hidden"]
    assert search.best_params_["lr"] in grid["lr"]
    best = search.best_estimator_
    assert best.n_iter_ >= 1 and best.get_params()["lr"] == search.best_params_["lr"]
    assert search.predict(X).shape == (150,) and search.score(X, y) > 0.8


@pytest.mark.filterwarnings("ignore:OptunaSearchCV is experimental",
                            "ignore:`optuna.terminator` module has been deprecated")
def test_optunas_own_search_tunes_the_estimators(iris):
    """Optuna's scikit-learn search (optuna-integration's OptunaSearchCV) drives the
    estimators as GridSearchCV does: get/set_params, clone, fit and score per fold."""
    optuna = pytest.importorskip("optuna")
    integration = pytest.importorskip("optuna_integration")
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    X, y = iris
    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True),
             "hidden": CategoricalDistribution([8, 16])}  # Optuna's choices are scalars
    search = integration.OptunaSearchCV(
        NeuralClassifier(epochs=10, device="cpu"), space, n_trials=3, cv=2, random_state=0,
        study=optuna.create_study(direction="maximize",
                                  sampler=optuna.samplers.RandomSampler(seed=0)))
    search.fit(X, y)
    assert len(search.trials_) == 3 and 1e-3 <= search.best_params_["lr"] <= 1e-1
    assert search.best_estimator_.get_params()["hidden"] == search.best_params_["hidden"]
    assert search.predict(X).shape == (150,) and search.score(X, y) > 0.6


def test_randomized_search_accepts_numpy_values(iris):
    X, y = iris
    dists = {"lr": loguniform(1e-3, 1e-1), "batch_size": randint(16, 64),
             "hidden": [np.array([8]), (8, 8)]}
    search = RandomizedSearchCV(NeuralClassifier(epochs=10, device="cpu"), dists, n_iter=2, cv=2,
                                random_state=0, error_score="raise").fit(X, y)
    assert search.best_estimator_.predict(X).shape == (150,)


def test_pipeline_with_a_scaler(iris):
    X, y = iris
    pipe = Pipeline([("scale", StandardScaler()),
                     ("net", NeuralClassifier(**FAST, standardize=False))]).fit(X, y)
    assert pipe.score(X, y) > 0.9
    assert pipe.predict_proba(X).shape == (150, 3)


def test_cross_val_score_is_sensible(iris):
    X, y = iris
    scores = cross_val_score(NeuralClassifier(**FAST), X, y, cv=5)
    assert scores.mean() > 0.85


def test_clone_keeps_params_and_drops_fitted_state(iris):
    X, y = iris
    clf = NeuralClassifier(**FAST_MODULE, module=TinyNet, module_kwargs={"width": 4}).fit(X, y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not [k for k in vars(copy) if k.endswith("_")]
    assert not hasattr(copy, "module_") and hasattr(clf, "module_")


def test_calibration_and_threshold_tuning(cancer):
    X, y = cancer
    calibrated = CalibratedClassifierCV(NeuralClassifier(**FAST), cv=3).fit(X, y)
    proba = calibrated.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert calibrated.score(X, y) > 0.9
    tuned_cls = pytest.importorskip("sklearn.model_selection").__dict__.get(
        "TunedThresholdClassifierCV")
    if tuned_cls is None:
        pytest.skip("TunedThresholdClassifierCV needs scikit-learn >= 1.5")
    tuned = tuned_cls(NeuralClassifier(**FAST), scoring="balanced_accuracy", cv=3).fit(X, y)
    assert 0.0 < tuned.best_threshold_ < 1.0 and tuned.score(X, y) > 0.9


def test_mlp_parameters_with_a_module_are_refused_not_ignored(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"hidden, dropout shape the built-in MLP and would be "
                                         r"ignored with module="):
        NeuralClassifier(epochs=1, module=TinyNet, hidden=(8,), dropout=0.1).fit(X, y)
    with pytest.raises(ValueError, match="module_kwargs are for your own module="):
        NeuralClassifier(epochs=1, module_kwargs={"width": 3}).fit(X, y)


def test_validation_parameters_without_early_stopping_are_refused(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"patience and validation_fraction only act with "
                                         r"early_stopping=True"):
        NeuralClassifier(epochs=1, early_stopping=False, patience=3,
                         validation_fraction=0.3).fit(X, y)
    with pytest.raises(ValueError, match=r"^patience, tol and validation_fraction only act"):
        NeuralClassifier(epochs=1, early_stopping=False, patience=3, tol=0.0,
                         validation_fraction=0.3).fit(X, y)
    NeuralClassifier(epochs=1, early_stopping=False).fit(X, y)  # defaults: nothing to refuse


def test_tol_is_the_least_gain_early_stopping_counts(cancer):
    # scikit-learn's name for train.min_delta: a gain of 1.0 in the validation loss never
    # happens, so the run stops after patience epochs; tol=0 counts every gain.
    X, y = cancer
    coarse = NeuralClassifier(hidden=(16,), epochs=60, patience=3, tol=1.0,
                              device="cpu").fit(X, y)
    assert coarse.n_iter_ == 4 and coarse.best_epoch_ == 1
    assert NeuralClassifier().get_params()["tol"] == 1e-4
    with pytest.raises(ValueError, match="'tol'"):
        NeuralClassifier(tol=-1.0, epochs=1).fit(X, y)


def test_the_default_batch_is_deepfits_automatic_one_and_survives_clone():
    """batch_size=None: deepfit's table rule (config.table_batch_size) on the rows the fit
    trains on; an explicit batch is kept; get_params / clone carry either."""
    from deepfit.config import table_batch_size
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 2))
    y = np.where(X[:, 0] > 0, "yes", "no")
    auto = NeuralClassifier(hidden=(4,), epochs=1, device="cpu")
    assert auto.get_params()["batch_size"] is None and clone(auto).batch_size is None
    auto.fit(X, y)  # 15 % held out for validation: 2,550 training rows
    assert auto.batch_size_ == table_batch_size(2550) == 64
    assert NeuralRegressor(hidden=(4,), epochs=1, device="cpu").fit(X[:200], X[:200, 0]
                                                                     ).batch_size_ == 32
    fixed = clone(auto).set_params(batch_size=16).fit(X[:200], y[:200])
    assert fixed.batch_size_ == 16 and clone(fixed).get_params()["batch_size"] == 16
