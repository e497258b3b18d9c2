"""Run configuration: one frozen dataclass per stage, nested in ``RunConfig``.

Loaded from YAML with ``yaml.safe_load`` only, overridden by ``key=value`` strings
(``train.lr=0.01``, ``model.hidden=[128,64]``), and validated strictly before any work
starts: an unknown key names the closest valid one; a wrong type or an out-of-range value
names the key, the value and what is allowed.

Example:
    >>> cfg = RunConfig().override(["train.lr=0.01", "model.hidden=[16]"])
    >>> cfg.train.lr, cfg.model.hidden
    (0.01, (16,))
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from deepfit.errors import ConfigError, did_you_mean, one_of


def _opt(default: Any, *, choices: tuple[str, ...] | None = None, lo: float | None = None,
         hi: float | None = None, lo_open: bool = False, hi_open: bool = False, help: str = "",
         pattern: str | None = None) -> Any:
    """A dataclass field with validation rules in its metadata."""
    meta = {"choices": choices, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open,
            "help": help, "pattern": pattern}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


TASKS = ("auto", "binary", "multiclass", "regression", "multilabel")
ACTIVATIONS = ("linear", "relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid")
OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "onecycle", "plateau")
THRESHOLD_OBJECTIVES = ("none", "f1", "fbeta", "youden", "sensitivity", "specificity")
LOSSES = ("auto", "bce", "cross_entropy", "nll", "mse", "l1", "huber")


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split and preprocessed."""

    source: str = _opt("breast_cancer", help="built-in name, toy generator, or a file path")
    target: Optional[str] = _opt(None, help="target column (default: the last column)")
    targets: tuple[str, ...] = _opt((), help="several 0/1 target columns: a multi-label task")
    task: str = _opt("auto", choices=TASKS)
    val_size: float = _opt(0.15, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    test_size: float = _opt(0.2, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    split_column: Optional[str] = _opt(None, help="column with train/val/test per row")
    val_file: Optional[str] = _opt(None, help="separate validation file")
    test_file: Optional[str] = _opt(None, help="separate test file")
    id_column: Optional[str] = _opt(None, help="row identifier, kept out of the features")
    positive_class: Optional[str] = _opt(None, help="the 'positive' class of a binary task")
    drop_columns: tuple[str, ...] = _opt((), help="columns to ignore")
    missing: str = _opt("impute", choices=("impute", "strict"))
    standardize: bool = _opt(True, help="z-score numeric features (fitted on train)")
    scale_target: bool = _opt(True, help="z-score a regression target (fitted on train)")
    feature_transform: str = _opt("none", choices=("none", "log2p1"))
    max_categories: int = _opt(50, lo=2)
    n_samples: int = _opt(1000, lo=8, help="size of a toy dataset")
    noise: Optional[float] = _opt(None, lo=0.0, help="noise of a toy dataset")
    seed: Optional[int] = _opt(None, lo=0, help="seed of the split and toy data (default: train.seed)")


@dataclass(frozen=True)
class ModelConfig:
    """The network: a built-in architecture or the user's own nn.Module."""

    name: str = _opt("mlp", help="'mlp' or 'package.module:ClassName'")
    hidden: tuple[int, ...] = _opt((128, 64), lo=1, help="hidden layer sizes; [] = linear model")
    activation: str = _opt("relu", choices=ACTIVATIONS)
    dropout: float = _opt(0.3, lo=0.0, hi=1.0, hi_open=True)
    norm: str = _opt("none", choices=("none", "batch", "layer"))
    init: str = _opt("default", choices=("default", "kaiming", "xavier", "orthogonal"))
    outputs: str = _opt("logits", choices=("logits", "probabilities", "log_probabilities"),
                        help="what the model's forward returns")
    kwargs: dict = _opt({}, help="keyword arguments for a custom model")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: loss, optimiser, schedule, stopping, device and seed."""

    epochs: int = _opt(200, lo=1)
    batch_size: int = _opt(32, lo=1)
    optimizer: str = _opt("adamw", choices=OPTIMIZERS)
    lr: float = _opt(1e-3, lo=0.0, lo_open=True)
    momentum: float = _opt(0.9, lo=0.0, hi=1.0, hi_open=True)
    nesterov: bool = _opt(False)
    weight_decay: float = _opt(1e-2, lo=0.0, help="not applied to biases and norm layers")
    grad_clip: Optional[float] = _opt(None, lo=0.0, lo_open=True, help="max gradient norm")
    schedule: str = _opt("plateau", choices=SCHEDULES)
    warmup_epochs: int = _opt(0, lo=0)
    step_size: int = _opt(30, lo=1, help="epochs between decays of the 'step' schedule")
    gamma: float = _opt(0.1, lo=0.0, hi=1.0, lo_open=True, help="decay factor (step, plateau)")
    plateau_patience: int = _opt(10, lo=0)
    checkpoint_every: int = _opt(0, lo=0, help="also checkpoint every N steps (0: epoch ends)")
    early_stopping: bool = _opt(True)
    patience: int = _opt(20, lo=1)
    monitor: str = _opt("val_loss", help="validation metric for early stopping and 'best'")
    min_delta: float = _opt(0.0, lo=0.0)
    loss: str = _opt("auto", choices=LOSSES)
    class_weights: str = _opt("none", choices=("none", "balanced"))
    device: str = _opt("auto", pattern=r"auto|cpu|mps|cuda(:\d+)?",
                       help="auto, cpu, cuda, cuda:N or mps")
    precision: str = _opt("fp32", choices=("fp32", "bf16", "fp16"))
    deterministic: bool = _opt(False, help="PyTorch deterministic algorithms (bit-exact CUDA)")
    seed: int = _opt(0, lo=0)
    progress: bool = _opt(True)


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation and reporting."""

    batch_size: int = _opt(4096, lo=1, help="batch size for prediction")
    threshold_objective: str = _opt("f1", choices=THRESHOLD_OBJECTIVES,
                                    help="binary: what the threshold tuned on validation maximises")
    apply_threshold: bool = _opt(False, help="predict with the tuned threshold instead of 0.5")
    beta: float = _opt(1.0, lo=0.0, lo_open=True, help="beta of the 'fbeta' objective")
    target: Optional[float] = _opt(None, lo=0.0, hi=1.0, lo_open=True,
                                   help="sensitivity or specificity the threshold must reach")
    betas: tuple[float, ...] = _opt((0.5, 2.0), lo=0.0, lo_open=True, help="F-beta scores reported")
    bootstrap: int = _opt(1000, lo=0, help="bootstrap resamples for confidence intervals; 0 = none")
    ci_level: float = _opt(0.95, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    calibration_bins: int = _opt(10, lo=2, help="equal-width bins for ECE and the diagram")
    plots: bool = _opt(True)
    report: bool = _opt(True)


@dataclass(frozen=True)
class RunConfig:
    """The whole experiment. ``RunConfig.load(path).override([...])`` is the usual way in."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    name: Optional[str] = _opt(None, help="run name (default: <data>-<model>-<time>)")
    out: str = _opt("runs", help="folder that holds the run directories")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Any, *, origin: str = "config") -> RunConfig:
        """Build and validate a config from nested plain values."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: expected a mapping of sections, got {type(raw).__name__}")
        return _build(cls, raw, prefix="", origin=origin)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a YAML file (safe loader only) into a validated config."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            raise ConfigError(f"config file '{path}' is not valid YAML{line}; "
                              "check its indentation and quoting") from None
        return cls.from_dict(raw, origin=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain nested values (tuples as lists), ready for YAML or JSON."""
        return _plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def override(self, assignments: list[str] | dict[str, Any]) -> RunConfig:
        """Return a copy with ``section.key=value`` assignments applied and validated."""
        raw = self.to_dict()
        items = assignments.items() if isinstance(assignments, dict) else map(_split, assignments)
        for dotted, value in items:
            _set_dotted(raw, dotted, value)
        return RunConfig.from_dict(raw, origin="override")


def describe_config(cfg: Optional[RunConfig] = None) -> str:
    """The config as YAML with each key's allowed values and meaning as comments."""
    cfg = cfg or RunConfig()
    lines = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines.append(f"{f.name}:  # {type(value).__doc__.splitlines()[0]}")
            for sub in dataclasses.fields(value):
                lines.append(f"  {_yaml_line(sub.name, getattr(value, sub.name))}{_comment(sub)}")
        else:
            lines.append(f"{_yaml_line(f.name, value)}{_comment(f)}")
    return "\n".join(lines) + "\n"


def _yaml_line(name: str, value: Any) -> str:
    text = yaml.safe_dump({name: _plain(value)}, default_flow_style=True, width=1000).strip()
    return text[1:-1] if text.startswith("{") else text


def _comment(f: dataclasses.Field) -> str:
    meta, parts = f.metadata, []
    if meta.get("choices"):
        parts.append(" | ".join(meta["choices"]))
    if meta.get("help"):
        parts.append(meta["help"])
    if meta.get("lo") is not None or meta.get("hi") is not None:
        lo = "" if meta.get("lo") is None else f"{'>' if meta['lo_open'] else '>='} {meta['lo']:g}"
        hi = "" if meta.get("hi") is None else f"{'<' if meta['hi_open'] else '<='} {meta['hi']:g}"
        parts.append(", ".join(p for p in (lo, hi) if p))
    return f"  # {'; '.join(parts)}" if parts else ""


def _split(assignment: str) -> tuple[str, Any]:
    if "=" not in assignment:
        raise ConfigError(f"override '{assignment}' must look like section.key=value, "
                          "e.g. train.lr=0.01")
    key, text = assignment.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
            keys = _all_keys(RunConfig)
            raise ConfigError(f"unknown config key '{dotted}'{did_you_mean(dotted, keys)}")
        if part == "kwargs":  # free-form: the rest of the path is the kwarg name
            node[part][".".join(parts[i + 1:])] = value
            return
        node = node[part]
    if not isinstance(node, dict) or (parts[-1] not in node and not _is_kwargs(parts)):
        raise ConfigError(f"unknown config key '{dotted}'{did_you_mean(dotted, _all_keys(RunConfig))}")
    node[parts[-1]] = value


def _is_kwargs(parts: list[str]) -> bool:
    return len(parts) > 2 and parts[-2] == "kwargs"


def _all_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            keys += _all_keys(kind, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _build(cls: type, raw: dict[str, Any], prefix: str, origin: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            full = f"{prefix}{key}"
            raise ConfigError(f"{origin}: unknown config key '{full}'"
                              f"{did_you_mean(full, _all_keys(RunConfig))}")
    values = {}
    for name, f in names.items():
        if name not in raw:
            continue
        kind = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(kind):
            section = raw[name] if raw[name] is not None else {}
            if not isinstance(section, dict):
                raise ConfigError(f"{origin}: '{key}' must be a section of keys, got {raw[name]!r}")
            values[name] = _build(kind, section, f"{key}.", origin)
        else:
            values[name] = _check(key, _coerce(key, raw[name], kind, origin), f.metadata, origin)
    return cls(**values)


def _coerce(key: str, value: Any, kind: Any, origin: str) -> Any:
    """Convert a YAML value to the field's type, or raise naming key and value."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is typing.Union:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        inner = next(a for a in args if a is not type(None))
        return _coerce(key, value, inner, origin)
    bad = ConfigError(f"{origin}: '{key}' = {value!r} is not {_describe(kind)}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        raise bad
    if kind is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad
    if kind is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            out = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads '1e-3' as a string
            try:
                out = float(value)
            except ValueError:
                raise bad from None
        else:
            raise bad
        if not math.isfinite(out):
            raise bad
        return out
    if kind is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # YAML reads 'positive_class: 1' as a number
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, str) and value:
            return value
        raise ConfigError(f"{origin}: '{key}' = {value!r} must be a non-empty string")
    if kind is dict or typing.get_origin(kind) is dict:
        if isinstance(value, dict):
            return dict(value)
        raise bad
    if typing.get_origin(kind) is tuple:
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            value = [value]  # 'model.hidden=64' means one layer
        if not isinstance(value, (list, tuple)):
            raise bad
        return tuple(_coerce(f"{key}[{i}]", v, args[0], origin) for i, v in enumerate(value))
    raise bad  # pragma: no cover - every field type is handled above


def _describe(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        inner = typing.get_args(kind)[0]
        plural = {int: "integers", float: "numbers", str: "strings"}
        return f"a list of {plural.get(inner, str(inner))}"
    return {bool: "true or false", int: "an integer", float: "a number",
            str: "a string", dict: "a mapping"}.get(kind, str(kind))


def _check(key: str, value: Any, meta: Any, origin: str) -> Any:
    if value is None:
        return value
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{origin}: '{key}' = {value!r} is not allowed; use one of "
                          f"{one_of(choices)}{did_you_mean(value, choices)}")
    pattern = meta.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        raise ConfigError(f"{origin}: '{key}' = {value!r} is not allowed; use {meta['help']}")
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            continue
        lo, hi = meta.get("lo"), meta.get("hi")
        if lo is not None and (item < lo or (meta["lo_open"] and item == lo)):
            sign = ">" if meta["lo_open"] else ">="
            raise ConfigError(f"{origin}: '{key}' = {value!r} is out of range; it must be {sign} {lo}")
        if hi is not None and (item > hi or (meta["hi_open"] and item == hi)):
            sign = "<" if meta["hi_open"] else "<="
            raise ConfigError(f"{origin}: '{key}' = {value!r} is out of range; it must be {sign} {hi}")
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
