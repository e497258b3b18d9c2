"""The search space: what a space file may say, and the one line when it says it wrong."""

import pytest

from deepfit.errors import ConfigError
from deepfit.tune.space import SearchSpace, default_space


class FixedTrial:
    """Stands in for an Optuna trial: returns the first choice / the low end."""

    def __init__(self):
        self.params = {}

    def suggest_categorical(self, key, options):
        self.params[key] = options[0]
        return options[0]

    def suggest_float(self, key, low, high, step=None, log=False):
        self.params[key] = low
        return low

    def suggest_int(self, key, low, high, step=1, log=False):
        self.params[key] = low
        return low


def test_ranges_choices_and_list_values_round_trip():
    space = SearchSpace.from_dict({
        "train.lr": {"low": 1e-4, "high": 0.1, "log": True},
        "train.epochs": {"low": 2, "high": 10, "step": 2},
        "model.hidden": [[64], [128, 64]],
        "train.optimizer": ["adam", "sgd"]})
    assert space.keys == ["train.lr", "train.epochs", "model.hidden", "train.optimizer"]
    trial = FixedTrial()
    values = space.draw(trial, lambda drawn, key: True)
    assert values == {"train.lr": 1e-4, "train.epochs": 2, "model.hidden": [64],
                      "train.optimizer": "adam"}
    # Optuna stores a list choice as its JSON text; decode gives the config value back.
    assert trial.params["model.hidden"] == "[64]"
    assert space.decode(trial.params)["model.hidden"] == [64]
    assert space.params[1].integer and space.params[1].grid() == [2, 4, 6, 8, 10]
    assert space.params[2].grid() == ["[64]", "[128, 64]"]
    assert SearchSpace.from_dict(space.to_dict()) == space


def test_keys_that_do_not_apply_under_earlier_values_are_not_drawn():
    space = SearchSpace.from_dict({"train.optimizer": ["adamw", "sgd"],
                                   "train.momentum": {"low": 0.5, "high": 0.99}})
    values = space.draw(FixedTrial(), lambda drawn, key: key != "train.momentum"
                        or drawn.get("train.optimizer") == "sgd")
    assert values == {"train.optimizer": "adamw"}


@pytest.mark.parametrize("entry, message", [
    ({"train.lrr": [0.1]}, "unknown config key 'train.lrr' (did you mean 'train.lr'?)"),
    ({"lr": [0.1]}, "'lr' must be a dotted config key such as train.lr (did you mean 'train.lr'?)"),
    ({"train.lr": 0.1}, "train.lr: 0.1 is one value, not a search"),
    ({"train.lr": {"low": 1, "high": 0.1}}, "low (1) must be below high (0.1)"),
    ({"train.lr": {"low": 0, "high": 1, "log": True}}, "a log range needs low > 0"),
    ({"train.lr": {"low": 1e-3, "high": 1, "lo": 2}}, "a range is {low: .., high: .."),
    ({"train.lr": {"low": -1, "high": 1}}, "train.lr"),
    ({"train.optimizer": ["adam", "adamz"]}, "'adamz' is not allowed"),
    ({"train.epochs": {"low": 1.5, "high": 3}}, "train.epochs takes whole numbers"),
    ({"model.hidden": {"low": 1, "high": 3}}, "model.hidden is not numeric"),
    ({"train.seed": [0, 1]}, "train.seed cannot be searched (it sets the seed"),
    ({"data.test_size": [0.1, 0.2]}, "data.test_size cannot be searched (it sets the test rows)"),
    ({"train.optimizer": []}, "empty list of choices"),
    ({"train.optimizer": ["adam", "adam"]}, "lists the same choice twice"),
    ({"train.lr": [0.1], "train.learning_rate": [0.2]}, "train.lr is given twice"),
    ([1, 2], "a search space is a mapping"),
])
def test_a_wrong_space_is_one_line_naming_the_key(entry, message):
    with pytest.raises(ConfigError) as err:
        SearchSpace.from_dict(entry, origin="space.yaml")
    text = str(err.value)
    assert message in text and text.startswith("space.yaml:") and "\n" not in text


def test_space_files(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("train.lr: {low: 1.0e-4, high: 1.0e-1, log: true}\n"
                    "model.hidden: [[64], [128, 64]]\n")
    assert SearchSpace.load(path).to_dict() == {
        "train.lr": {"low": 1e-4, "high": 0.1, "log": True}, "model.hidden": [[64], [128, 64]]}
    with pytest.raises(ConfigError, match="does not exist"):
        SearchSpace.load(tmp_path / "missing.yaml")
    path.write_text("train.lr: {low: 1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        SearchSpace.load(path)


def test_grid_needs_discrete_values():
    with pytest.raises(ConfigError, match="--sampler grid needs discrete values: give train.lr"):
        SearchSpace.from_dict({"train.lr": {"low": 1e-3, "high": 0.1}}).grid()


def test_default_spaces_fit_the_model_family():
    mlp = default_space("mlp", "mlp", "table").keys
    assert {"train.lr", "train.weight_decay", "train.batch_size", "train.optimizer",
            "model.hidden", "model.dropout"} == set(mlp)
    cnn = default_space("image-net", "cnn", "image").keys
    assert "model.hidden" not in cnn and "data.augment" in cnn
    custom = default_space("custom", "pkg.mod:Net", "table").keys
    assert not any(k.startswith("model.") for k in custom)


def test_every_metric_a_search_accepts_is_computed_as_the_evaluation_computes_it():
    """score() computes the common metrics alone; each must equal the run's evaluation
    (full_metrics), and every metric --metric accepts must be defined on ordinary data."""
    import numpy as np
    from deepfit.config import EvalConfig
    from deepfit.evaluate.evaluation import full_metrics
    from deepfit.evaluate.metrics import HEADLINE
    from deepfit.evaluate.predict import Predictions
    from deepfit.tune.trial import check_metric, score
    rng = np.random.default_rng(0)
    y3 = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), 60)
    cases = {
        "binary": Predictions(np.arange(60), rng.random(60), "binary", ["a", "b"],
                              rng.integers(0, 2, 60)),
        "multiclass": Predictions(np.arange(60), probs, "multiclass", ["a", "b", "c"], y3),
        "regression": Predictions(np.arange(60), rng.normal(size=60), "regression", [],
                                  rng.normal(size=60)),
    }
    for task, p in cases.items():
        full = full_metrics(p, EvalConfig())
        for metric in HEADLINE[task]:
            assert check_metric(metric, task) == metric
            expected = full.get(metric)
            assert expected is not None, (task, metric)
            assert score(p, metric) == pytest.approx(expected, abs=1e-12), (task, metric)


def test_the_pruners_budget_is_the_most_epochs_a_trial_may_train():
    from deepfit.config import RunConfig, image_training_values
    from deepfit.tune.space import most_epochs

    given = RunConfig()
    batches = SearchSpace.from_dict({"train.batch_size": [32, 64, 128]})
    # 300 training images: batch 128 is 3 steps an epoch, so 167 epochs (>= 500 steps),
    # far more than the 27 of the automatic batch (16)
    base = image_training_values(300)["epochs"]
    assert base == 27 and most_epochs(batches, given, base, "image", 300) == 167
    assert most_epochs(batches, given, 200, "table", 300) == 200  # a table's epochs are fixed
    fixed = given.override({"train.epochs": 12})
    assert most_epochs(batches, fixed, 12, "image", 300) == 12
    searched = SearchSpace.from_dict({"train.epochs": {"low": 5, "high": 40}})
    assert most_epochs(searched, given, 27, "image", 300) == 40
    assert most_epochs(SearchSpace.from_dict({"train.epochs": [10, 30]}), given, 200,
                       "table", 300) == 30
    assert most_epochs(SearchSpace.from_dict({"train.epochs": [None, 30]}), given, 200,
                       "table", 300) == 200  # None: the automatic epochs
