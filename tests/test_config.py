"""Tests for deepfit.config: defaults, YAML loading, overrides, validation, round trips."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from deepfit.config import (ACTIVATIONS, OPTIMIZERS, SCHEDULES, DataConfig, ModelConfig,
                            RunConfig, TrainConfig)
from deepfit.errors import ConfigError

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the dev extra
    given = None


def write(tmp_path, text: str, name: str = "cfg.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults ----------------------------------------------------------------------------

def test_defaults_are_valid_and_survive_revalidation():
    cfg = RunConfig()
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.train.lr is None and cfg.train.resolved().lr == pytest.approx(1e-3)  # automatic
    assert cfg.model.hidden == (128, 64)
    assert cfg.data.source == "breast_cancer"


def test_from_dict_none_and_empty_give_defaults():
    assert RunConfig.from_dict(None) == RunConfig()
    assert RunConfig.from_dict({}) == RunConfig()
    assert RunConfig.from_dict({"train": None}) == RunConfig()


def test_config_is_frozen():
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 0.5  # type: ignore[misc]


def test_to_dict_uses_plain_lists():
    raw = RunConfig().to_dict()
    assert raw["model"]["hidden"] == [128, 64]
    assert raw["data"]["drop_columns"] == []
    assert set(raw) == {"data", "model", "train", "eval", "track", "name", "out"}


# -- YAML loading ------------------------------------------------------------------------

def test_load_yaml_file(tmp_path):
    path = write(tmp_path, "data:\n  source: iris\ntrain:\n  lr: 0.05\n  epochs: 3\n"
                           "model:\n  hidden: [8, 4]\n  activation: tanh\n")
    cfg = RunConfig.load(path)
    assert cfg.data.source == "iris"
    assert cfg.train.lr == 0.05 and cfg.train.epochs == 3
    assert cfg.model.hidden == (8, 4) and cfg.model.activation == "tanh"
    assert cfg.train.optimizer == TrainConfig().optimizer  # untouched keys keep defaults


def test_load_empty_yaml_gives_defaults(tmp_path):
    assert RunConfig.load(write(tmp_path, "")) == RunConfig()


def test_load_missing_file_names_path(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml.*does not exist"):
        RunConfig.load(tmp_path / "nope.yaml")


def test_load_invalid_yaml_names_line(tmp_path):
    path = write(tmp_path, "train:\n  lr: 0.1\n   epochs: [3\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        RunConfig.load(path)


def test_load_non_utf8_yaml_is_config_error(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="latin.yaml"):
        RunConfig.load(path)


def test_load_top_level_list_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        RunConfig.load(write(tmp_path, "- 1\n- 2\n"))


def test_load_section_that_is_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="'train' must be a section"):
        RunConfig.load(write(tmp_path, "train: 5\n"))


def test_yaml_python_object_payload_is_refused_and_not_executed(tmp_path):
    sentinel = tmp_path / "pwned"
    path = write(tmp_path, f'name: !!python/object/apply:os.system ["touch {sentinel}"]\n')
    with pytest.raises(ConfigError, match="not valid YAML"):
        RunConfig.load(path)
    assert not sentinel.exists()


def test_yaml_python_name_tag_is_refused(tmp_path):
    path = write(tmp_path, "train:\n  lr: !!python/name:os.system\n")
    with pytest.raises(ConfigError):
        RunConfig.load(path)


def test_yaml_string_scientific_float_is_accepted(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e-3 without a dot as a string, not a float.
    assert isinstance(yaml.safe_load("lr: 1e-3")["lr"], str)
    cfg = RunConfig.load(write(tmp_path, "train:\n  lr: 1e-3\n  weight_decay: 5e-4\n"))
    assert cfg.train.lr == pytest.approx(0.001) and isinstance(cfg.train.lr, float)
    assert cfg.train.weight_decay == pytest.approx(5e-4)


def test_load_error_names_the_file(tmp_path):
    path = write(tmp_path, "train:\n  lr: -1\n", name="exp.yaml")
    with pytest.raises(ConfigError, match=r"exp\.yaml.*train\.lr"):
        RunConfig.load(path)


# -- overrides ---------------------------------------------------------------------------

def test_override_float_and_list():
    cfg = RunConfig().override(["train.lr=0.01", "model.hidden=[128,64]"])
    assert cfg.train.lr == 0.01
    assert cfg.model.hidden == (128, 64)


def test_override_does_not_change_the_original():
    base = RunConfig()
    base.override(["train.lr=0.5"])
    assert base.train.lr is None


def test_override_with_dict():
    cfg = RunConfig().override({"train.epochs": 7, "data.source": "wine"})
    assert cfg.train.epochs == 7 and cfg.data.source == "wine"


def test_override_scientific_string_float():
    assert RunConfig().override(["train.lr=1e-3"]).train.lr == pytest.approx(0.001)
    assert RunConfig().override({"train.lr": "2.5e-2"}).train.lr == pytest.approx(0.025)


def test_override_single_int_hidden_means_one_layer():
    assert RunConfig().override(["model.hidden=64"]).model.hidden == (64,)


def test_override_empty_hidden_means_linear_model():
    assert RunConfig().override(["model.hidden=[]"]).model.hidden == ()


def test_override_tuple_of_strings():
    cfg = RunConfig().override(["data.drop_columns=[a, b]"])
    assert cfg.data.drop_columns == ("a", "b")


def test_override_optional_to_none_and_back():
    cfg = RunConfig().override(["train.grad_clip=1.5"])
    assert cfg.train.grad_clip == 1.5
    assert cfg.override(["train.grad_clip=none"]).train.grad_clip is None
    assert cfg.override(["train.grad_clip=null"]).train.grad_clip is None
    assert cfg.override(["train.grad_clip="]).train.grad_clip is None


@pytest.mark.parametrize("text,expected", [("true", True), ("false", False), ("yes", True),
                                           ("off", False)])
def test_override_bool_values(text, expected):
    assert RunConfig().override([f"train.nesterov={text}"]).train.nesterov is expected


def test_override_integer_valued_float_for_int_field():
    assert RunConfig().override({"train.epochs": 5.0}).train.epochs == 5


def test_override_numeric_value_for_string_field_becomes_text():
    # a binary target coded 0/1 has class names '0' and '1'
    cfg = RunConfig().override(["data.positive_class=1", "data.drop_columns=[3, b]"])
    assert cfg.data.positive_class == "1"
    assert cfg.data.drop_columns == ("3", "b")


def test_override_top_level_key():
    cfg = RunConfig().override(["name=exp1", "out=results"])
    assert cfg.name == "exp1" and cfg.out == "results"


def test_override_without_equals_is_refused():
    with pytest.raises(ConfigError, match="override 'train.lr' must look like section.key=value"):
        RunConfig().override(["train.lr"])


def test_override_value_keeps_equals_signs():
    cfg = RunConfig().override(["name=a=b"])
    assert cfg.name == "a=b"


def test_kwargs_are_free_form():
    cfg = RunConfig().override(["model.kwargs.width=3", "model.kwargs.act=relu"])
    assert cfg.model.kwargs == {"width": 3, "act": "relu"}


def test_kwargs_dotted_name_is_one_key():
    cfg = RunConfig().override(["model.kwargs.block.depth=2"])
    assert cfg.model.kwargs == {"block.depth": 2}


def test_kwargs_from_yaml_and_default_not_shared(tmp_path):
    cfg = RunConfig.load(write(tmp_path, "model:\n  kwargs:\n    width: 3\n    tags: [a, b]\n"))
    assert cfg.model.kwargs == {"width": 3, "tags": ["a", "b"]}
    assert ModelConfig().kwargs == {}
    assert ModelConfig().kwargs is not ModelConfig().kwargs


def test_kwargs_must_be_a_mapping():
    with pytest.raises(ConfigError, match="'model.kwargs' = 3 is not a mapping"):
        RunConfig().override({"model.kwargs": 3})


# -- unknown keys ------------------------------------------------------------------------

@pytest.mark.parametrize("key,suggestion", [("train.lrr", "train.lr"),
                                            ("trian.lr", "train.lr"),
                                            ("model.hiden", "model.hidden"),
                                            ("data.val_szie", "data.val_size")])
def test_unknown_override_key_suggests_closest(key, suggestion):
    with pytest.raises(ConfigError, match=rf"unknown config key '{key}'.*"
                                          rf"did you mean '{suggestion}'"):
        RunConfig().override([f"{key}=1"])


def test_unknown_yaml_key_suggests_closest(tmp_path):
    path = write(tmp_path, "train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'train.epoch'.*"
                                          r"did you mean 'train.epochs'"):
        RunConfig.load(path)


def test_unknown_section_is_refused():
    with pytest.raises(ConfigError, match="unknown config key 'optim'"):
        RunConfig.from_dict({"optim": {"lr": 0.1}})


def test_override_below_a_leaf_is_refused():
    with pytest.raises(ConfigError, match="unknown config key 'train.lr.x'"):
        RunConfig().override(["train.lr.x=1"])


# -- wrong types -------------------------------------------------------------------------

@pytest.mark.parametrize("assignment,key,value,kind", [
    ("train.epochs=abc", "train.epochs", "'abc'", "an integer"),
    ("train.epochs=2.5", "train.epochs", "2.5", "an integer"),
    ("train.epochs=true", "train.epochs", "True", "an integer"),
    ("train.lr=fast", "train.lr", "'fast'", "a number"),
    ("train.lr=true", "train.lr", "True", "a number"),
    ("train.lr=.inf", "train.lr", "inf", "a number"),
    ("train.nesterov=maybe", "train.nesterov", "'maybe'", "true or false"),
    ("model.hidden=[64, x]", r"model.hidden\[1\]", "'x'", "an integer"),
    ("model.hidden={a: 1}", "model.hidden", r"\{'a': 1\}", "a list of integers"),
])
def test_wrong_type_names_key_value_and_expected(assignment, key, value, kind):
    with pytest.raises(ConfigError, match=rf"'{key}' = {value} is not {kind}"):
        RunConfig().override([assignment])


def test_empty_string_for_required_string_is_refused():
    with pytest.raises(ConfigError, match="'data.source' = '' must be a non-empty string"):
        RunConfig().override({"data.source": ""})


def test_an_unquoted_yaml_yes_for_a_string_key_says_to_quote_it():
    loaded = yaml.safe_load("data:\n  positive_class: yes\n")  # YAML 1.1: the boolean True
    with pytest.raises(ConfigError, match="'data.positive_class' = True must be a string; YAML "
                       "reads an unquoted yes, .* quote the value, e.g. positive_class: 'yes'"):
        RunConfig.from_dict(loaded)
    quoted = yaml.safe_load("data:\n  positive_class: 'yes'\n")
    assert RunConfig.from_dict(quoted).data.positive_class == "yes"


def test_missing_value_for_non_optional_is_refused():
    with pytest.raises(ConfigError, match="'train.weight_decay' = None is not a number"):
        RunConfig().override(["train.weight_decay="])
    assert RunConfig().override(["train.lr="]).train.lr is None  # train.lr: automatic


# -- ranges ------------------------------------------------------------------------------

@pytest.mark.parametrize("assignment,key,rule", [
    ("train.lr=-0.1", "train.lr", "> 0.0"),
    ("train.lr=0", "train.lr", "> 0.0"),
    ("model.dropout=1.0", "model.dropout", "< 1.0"),
    ("model.dropout=-0.1", "model.dropout", ">= 0.0"),
    ("data.val_size=0", "data.val_size", "> 0.0"),
    ("data.test_size=1", "data.test_size", "< 1.0"),
    ("train.epochs=0", "train.epochs", ">= 1"),
    ("model.hidden=[64,0]", "model.hidden", ">= 1"),
    ("data.max_categories=1", "data.max_categories", ">= 2"),
    ("train.gamma=0", "train.gamma", "> 0.0"),
    ("train.seed=-1", "train.seed", ">= 0"),
])
def test_out_of_range_names_key_and_allowed_range(assignment, key, rule):
    with pytest.raises(ConfigError, match=rf"'{key}' = .* is out of range; it must be {rule}"):
        RunConfig().override([assignment])


def test_range_bounds_that_are_allowed():
    cfg = RunConfig().override(["model.dropout=0", "train.momentum=0", "train.warmup_epochs=0",
                                "data.val_size=0.5", "train.gamma=1"])
    assert cfg.model.dropout == 0.0 and cfg.train.gamma == 1.0


# -- choices and patterns ----------------------------------------------------------------

def test_choice_typo_suggests_closest():
    with pytest.raises(ConfigError) as info:
        RunConfig().override(["train.optimizer=adamm"])
    message = str(info.value)
    assert "'train.optimizer' = 'adamm' is not allowed" in message
    assert "did you mean 'adam'?" in message
    for name in OPTIMIZERS:
        assert f"'{name}'" in message


@pytest.mark.parametrize("key,value", [("model.activation", "relu"),
                                       ("train.schedule", "cosine"),
                                       ("data.task", "binary")])
def test_every_valid_choice_is_accepted(key, value):
    assert RunConfig().override({key: value}).to_dict()[key.split(".")[0]][key.split(".")[1]] \
        == value


def test_all_activation_and_schedule_choices_validate():
    for act in ACTIVATIONS:
        assert RunConfig().override({"model.activation": act}).model.activation == act
    for sched in SCHEDULES:
        assert RunConfig().override({"train.schedule": sched}).train.schedule == sched


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_device_pattern_accepts(device):
    assert RunConfig().override({"train.device": device}).train.device == device


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "cpu0"])
def test_device_pattern_refuses(device):
    with pytest.raises(ConfigError, match=rf"'train.device' = '{device}' is not allowed"):
        RunConfig().override({"train.device": device})


# -- round trip --------------------------------------------------------------------------

def test_to_yaml_round_trip_of_defaults(tmp_path):
    path = write(tmp_path, RunConfig().to_yaml())
    assert RunConfig.load(path) == RunConfig()


def test_to_yaml_round_trip_of_non_defaults(tmp_path):
    cfg = RunConfig().override(["train.lr=3e-4", "model.hidden=[5]", "data.drop_columns=[a, b]",
                                "model.kwargs.width=3", "train.grad_clip=2", "name=run-1",
                                "data.noise=0.25", "train.device=cuda:0", "data.target=label"])
    path = write(tmp_path, cfg.to_yaml())
    assert RunConfig.load(path) == cfg


def test_to_yaml_is_safe_yaml():
    assert yaml.safe_load(RunConfig().to_yaml()) == RunConfig().to_dict()


if given is not None:
    _NONE_WORDS = {"none", "null"}
    _text = st.text(min_size=1, max_size=12).filter(lambda s: s.strip().lower() not in _NONE_WORDS)
    _scalar = st.one_of(st.integers(-10**6, 10**6), st.booleans(), _text,
                        st.floats(allow_nan=False, allow_infinity=False, width=32))

    @st.composite
    def _configs(draw):
        values = {
            "train.lr": draw(st.floats(1e-8, 10.0)),
            "train.epochs": draw(st.integers(1, 10_000)),
            "train.optimizer": draw(st.sampled_from(OPTIMIZERS)),
            "train.grad_clip": draw(st.none() | st.floats(1e-6, 1e3)),
            "train.nesterov": draw(st.booleans()),
            "train.momentum": draw(st.floats(0.0, 0.999)),
            "model.hidden": draw(st.lists(st.integers(1, 512), max_size=4)),
            "model.dropout": draw(st.floats(0.0, 0.99)),
            "model.activation": draw(st.sampled_from(ACTIVATIONS)),
            "model.kwargs": draw(st.dictionaries(_text, _scalar, max_size=3)),
            "data.val_size": draw(st.floats(0.01, 0.49)),
            "data.test_size": draw(st.floats(0.01, 0.49)),
            "data.drop_columns": draw(st.lists(_text, max_size=3)),
            "data.noise": draw(st.none() | st.floats(0.0, 5.0)),
            "data.source": draw(_text),
            "data.target": draw(st.none() | _text),
            "name": draw(st.none() | _text),
        }
        return RunConfig().override(values)

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(cfg=_configs())
    def test_to_yaml_load_round_trip_property(tmp_path, cfg):
        path = tmp_path / "round.yaml"
        path.write_text(cfg.to_yaml(), encoding="utf-8")
        assert RunConfig.load(path) == cfg

    @settings(max_examples=40, deadline=None)
    @given(lr=st.floats(1e-9, 1e3))
    def test_float_written_in_any_yaml_form_is_read_back(lr):
        for text in (repr(lr), f"{lr:e}", f"{lr:.3e}".replace("e", "E")):
            got = RunConfig().override([f"train.lr={text}"]).train.lr
            assert got == pytest.approx(float(text))


def test_data_config_defaults_are_self_consistent():
    data = DataConfig()
    assert data.val_size + data.test_size < 1
    assert data.missing in ("impute", "strict")


def test_describe_config_is_valid_yaml_that_loads_back_to_the_defaults(tmp_path):
    from deepfit.config import describe_config

    text = describe_config()
    assert "# auto | binary | multiclass | regression" in text
    path = tmp_path / "defaults.yaml"
    path.write_text(text)
    assert RunConfig.load(path) == RunConfig()


# -- aliases and suggestions for the names people type ------------------------------------

@pytest.mark.parametrize("alias,key,value", [
    ("train.learning_rate", "train.lr", 0.05), ("train.max_epochs", "train.epochs", 7),
    ("train.n_epochs", "train.epochs", 7), ("train.batch", "train.batch_size", 16),
    ("train.optimiser", "train.optimizer", "sgd"), ("data.label", "data.target", "y"),
    ("data.validation_split", "data.val_size", 0.1), ("model.hidden_layer_sizes",
                                                       "model.hidden", (8,)),
    ("train.random_state", "train.seed", 3), ("eval.n_bootstrap", "eval.bootstrap", 50)])
def test_other_tools_names_are_aliases(alias, key, value, tmp_path):
    section, name = key.split(".")
    got = RunConfig().override({alias: value})
    assert getattr(getattr(got, section), name) == value
    assert f"\n  {alias.split('.')[1]}:" not in got.to_yaml()  # the dump uses deepfit's name
    path = write(tmp_path, f"{alias.split('.')[0]}:\n  {alias.split('.')[1]}: "
                           f"{list(value) if isinstance(value, tuple) else value}\n")
    assert getattr(getattr(RunConfig.load(path), section), name) == value


def test_an_alias_and_its_key_together_are_refused(tmp_path):
    path = write(tmp_path, "train:\n  lr: 0.1\n  learning_rate: 0.01\n")
    with pytest.raises(ConfigError, match="'train.learning_rate' and 'train.lr' are the same"):
        RunConfig.load(path)


def test_bare_python_keywords_take_aliases():
    from deepfit.pipeline import resolve_config
    cfg = resolve_config(learning_rate=0.02, max_epochs=3, batch=8)
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.batch_size) == (0.02, 3, 8)
    with pytest.raises(ConfigError, match=r"unknown option 'epoch' \(did you mean 'epochs'\?\)"):
        resolve_config(epoch=3)


# Typos seen in real use, each with the key the user meant: the suggestion names that key.
REAL_TYPOS = [("train.learning_rat", "train.lr"), ("train.lerning_rate", "train.lr"),
              ("train.lr_rate", "train.lr"), ("modle.hidden", "model.hidden"),
              ("model.hiden", "model.hidden"), ("train.dropout", "model.dropout"),
              ("data.traget", "data.target"), ("train.epoch", "train.epochs"),
              ("train.batchsize", "train.batch_size"), ("trian.lr", "train.lr"),
              ("data.val_szie", "data.val_size"), ("data.imagesize", "data.image_size"),
              ("train.nesterow", "train.nesterov"), ("data.augmentations", "data.augment"),
              ("model.activations", "model.activation"), ("train.weightdecay",
                                                          "train.weight_decay"),
              ("train.early_stop", "train.early_stopping"), ("data.test_ratio",
                                                             "data.test_size"),
              ("model.image_size", "data.image_size"), ("eval.bootstraps", "eval.bootstrap")]


@pytest.mark.parametrize("typo,meant", REAL_TYPOS)
def test_real_typos_suggest_the_intended_key_first(typo, meant):
    with pytest.raises(ConfigError) as err:
        RunConfig().override([f"{typo}=1"])
    assert str(err.value).endswith(f"(did you mean '{meant}'?)"), str(err.value)


def test_a_misspelt_section_alone_is_named_as_a_section():
    with pytest.raises(ConfigError, match=r"did you mean the section 'model', as model.KEY"):
        RunConfig().override(["modle=1"])


def test_one_key_given_twice_is_refused_whatever_its_names():
    from deepfit.pipeline import resolve_config
    with pytest.raises(ConfigError, match=r"train.lr is given twice \(lr= and learning_rate=\)"):
        resolve_config(lr=0.1, learning_rate=0.01)
    with pytest.raises(ConfigError, match=r"train.lr is given twice \(train.lr= and lr=\)"):
        resolve_config(**{"train.lr": 0.1}, lr=0.2)
    with pytest.raises(ConfigError, match=r"eval.plots is given twice"):
        resolve_config(eval={"plots": False}, plots=True)
    assert resolve_config(lr=0.1, epochs=3).train.lr == 0.1  # different keys are fine
    assert resolve_config(lr=0.1, learning_rate=0.1).train.lr == 0.1  # one value, said twice


def test_min_delta_is_automatic_where_the_loss_has_a_known_scale():
    from deepfit.config import MIN_DELTA, TrainConfig
    assert TrainConfig().min_delta is None
    assert TrainConfig().resolved().min_delta == MIN_DELTA == 1e-4  # val_loss: cross-entropy
    assert TrainConfig().resolved("image").min_delta == MIN_DELTA
    # a target in its own units (data.scale_target=false): its loss may be 1e-6 or 1e6
    assert TrainConfig().resolved(raw_target=True).min_delta == 0.0
    assert TrainConfig(monitor="val_accuracy").resolved().min_delta == 0.0  # any gain counts
    assert TrainConfig(min_delta=0.0).resolved().min_delta == 0.0  # the user's value wins
    assert TrainConfig(min_delta=0.01).resolved(raw_target=True).min_delta == 0.01
