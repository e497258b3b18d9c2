"""The search space of ``deepfit tune``: which config keys a trial draws, and from what.

A space is a mapping of dotted config keys (any key ``deepfit config`` lists) to

- a range, ``train.lr: {low: 1e-4, high: 1e-1, log: true}`` (``step:`` makes it discrete;
  integers for an integer key), or
- a list of choices, ``model.hidden: [[64], [128, 64]]`` (any values the key takes).

Each entry is checked like the rest of the config when the space is read: an unknown key
is named with the closest one, and every endpoint and choice must be a value the key takes.
Keys that define the data, its split or the seed cannot be searched (that would compare
trials on different validation rows, or tune on noise). A key that does not apply under the
values drawn before it in the same trial (``train.momentum`` when ``train.optimizer`` drew
``adamw``) is not drawn in that trial; list such keys after the ones they depend on.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional


from deepfit.config import RunConfig, image_training_values
from deepfit.config_rules import canonical_key, plain, read_yaml_file, suggest_key
from deepfit.errors import ConfigError

# Keys a search may not draw, and why (the message says it).
NOT_SEARCHABLE = {
    "data.source": "the data", "data.target": "the target", "data.targets": "the target",
    "data.task": "the task", "data.val_size": "the validation rows trials are compared on",
    "data.test_size": "the test rows", "data.split_column": "the split",
    "data.val_file": "the validation rows", "data.test_file": "the test rows",
    "data.seed": "the split", "data.id_column": "the data", "data.group_column": "the split",
    "data.label_map": "the classes", "data.n_samples": "the data", "data.noise": "the data",
    "data.root": "the data", "data.image_column": "the data", "data.sheet": "the data",
    "train.seed": "the seed: choosing the luckiest seed tunes on noise",
    "train.device": "the hardware", "train.progress": "the output",
    "train.monitor": "how the best epoch is chosen",
    "name": "the run's name", "out": "the output folder",
    "track.tensorboard": "the tracking", "track.mlflow": "the tracking",
    "track.experiment": "the tracking",
}


@dataclass(frozen=True)
class Param:
    """One searched key: a range (``low``, ``high``, ``log``, ``step``; ``integer``) or
    ``choices``. Optuna stores a choice that is not a plain scalar as its JSON text."""

    key: str
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    step: Optional[float] = None
    integer: bool = False
    choices: Optional[tuple] = None

    @property
    def encoded(self) -> bool:
        return self.choices is not None and any(
            not (c is None or isinstance(c, (bool, int, float, str))) for c in self.choices)

    def draw(self, trial: Any) -> Any:
        """The value ``trial`` (an Optuna trial) draws for this key."""
        if self.choices is not None:
            options = [json.dumps(c) for c in self.choices] if self.encoded else list(self.choices)
            return self.decode(trial.suggest_categorical(self.key, options))
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def decode(self, raw: Any) -> Any:
        """A stored Optuna value back as the config value (``"[128, 64]"`` -> ``[128, 64]``)."""
        return json.loads(raw) if self.encoded and isinstance(raw, str) else raw

    def grid(self) -> list:
        """Every value of a discrete entry (the grid sampler's axis)."""
        if self.choices is not None:
            return [json.dumps(c) for c in self.choices] if self.encoded else list(self.choices)
        if self.step is None and not self.integer:
            raise ConfigError(f"--sampler grid needs discrete values: give {self.key} a step "
                              f"({{low: {self.low:g}, high: {self.high:g}, step: ...}}) or a "
                              "list of values")
        step = self.step or 1
        n = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        values = [self.low + i * step for i in range(n)]
        return [int(round(v)) for v in values] if self.integer else [round(v, 12) for v in values]

    def to_dict(self) -> Any:
        """The entry as a space file writes it."""
        if self.choices is not None:
            return plain(list(self.choices))
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def to_dict(self) -> dict[str, Any]:
        return {p.key: p.to_dict() for p in self.params}

    def draw(self, trial: Any, applies: Callable[[dict[str, Any], str], bool]) -> dict[str, Any]:
        """``{key: value}`` for one trial, in the space's order; a key for which
        ``applies(values drawn so far, key)`` is false is skipped."""
        values: dict[str, Any] = {}
        for p in self.params:
            if applies(values, p.key):
                values[p.key] = p.draw(trial)
        return values

    def decode(self, params: dict[str, Any]) -> dict[str, Any]:
        """A finished trial's stored params as config values, in the space's order."""
        by_key = {p.key: p for p in self.params}
        return {k: by_key[k].decode(v) if k in by_key else v for k, v in params.items()}

    def grid(self) -> dict[str, list]:
        return {p.key: p.grid() for p in self.params}

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        return cls.from_dict(read_yaml_file(path, "search space file"), origin=str(path))

    @classmethod
    def from_dict(cls, raw: Any, origin: str = "space") -> SearchSpace:
        if not isinstance(raw, dict) or not raw:
            raise ConfigError(f"{origin}: a search space is a mapping of config keys to a range "
                              "{low: .., high: ..} or a list of choices, e.g. "
                              "'train.lr: {low: 1e-4, high: 1e-1, log: true}'")
        params, seen = [], {}
        for key, entry in raw.items():
            param = _param(str(key), entry, origin)
            if param.key in seen:
                raise ConfigError(f"{origin}: {param.key} is given twice ({seen[param.key]} and "
                                  f"{key}); keep one")
            seen[param.key] = key
            params.append(param)
        return cls(tuple(params))


def _param(key: str, entry: Any, origin: str) -> Param:
    if key in ("name", "out"):
        raise ConfigError(f"{origin}: {key} cannot be searched (it sets {NOT_SEARCHABLE[key]})")
    if "." not in key:
        sections = [s for s in ("train", "model", "data", "eval")
                    if hasattr(getattr(RunConfig(), s), key)
                    or key in RunConfig.ALIASES.get(s, {})]
        hint = f" (did you mean '{canonical_key(sections[0] + '.' + key, RunConfig)}'?)" \
            if sections else ""
        raise ConfigError(f"{origin}: '{key}' must be a dotted config key such as train.lr"
                          f"{hint}")
    key = canonical_key(key, RunConfig)
    _check_value(key, None, origin, known_only=True)
    if key in NOT_SEARCHABLE:
        raise ConfigError(f"{origin}: {key} cannot be searched (it sets {NOT_SEARCHABLE[key]}); "
                          "set it on the command line (key=value) for every trial instead")
    if isinstance(entry, list):
        if not entry:
            raise ConfigError(f"{origin}: {key} has an empty list of choices")
        choices = tuple(_check_value(key, c, origin) for c in entry)
        if len({json.dumps(plain(c)) for c in choices}) < len(choices):
            raise ConfigError(f"{origin}: {key} lists the same choice twice")
        return Param(key, choices=choices)
    if not isinstance(entry, dict):
        raise ConfigError(f"{origin}: {key}: {entry!r} is one value, not a search; give a range "
                          f"{{low: .., high: ..}} or a list of choices (a fixed value goes on "
                          f"the command line as {key}=VALUE)")
    unknown = set(entry) - {"low", "high", "log", "step"}
    if unknown or not {"low", "high"} <= set(entry):
        raise ConfigError(f"{origin}: {key}: a range is {{low: .., high: .., log: true|false, "
                          f"step: ..}}; got {sorted(entry)}")
    low, high, log = entry["low"], entry["high"], entry.get("log", False)
    step = entry.get("step")
    for name, v in (("low", low), ("high", high), ("step", step)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ConfigError(f"{origin}: {key}: {name} must be a number, not {v!r}")
    if not isinstance(log, bool):
        raise ConfigError(f"{origin}: {key}: log must be true or false, not {log!r}")
    if not low < high:
        raise ConfigError(f"{origin}: {key}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{origin}: {key}: a log range needs low > 0 (got {low})")
    if log and step is not None:
        raise ConfigError(f"{origin}: {key}: a range is either log or stepped, not both")
    if step is not None and step <= 0:
        raise ConfigError(f"{origin}: {key}: step must be positive (got {step})")
    integer = _is_int_key(key)
    if integer and not all(float(v).is_integer() for v in (low, high, step or 1)):
        raise ConfigError(f"{origin}: {key} takes whole numbers; give integer low, high and step")
    if not integer and _kind(key) not in (float, int):
        raise ConfigError(f"{origin}: {key} is not numeric; give a list of choices")
    for v in (low, high):
        _check_value(key, int(v) if integer else float(v), origin)
    return Param(key, low=float(low), high=float(high), log=log,
                 step=None if step is None else float(step), integer=integer)


def _kind(key: str) -> Any:
    """The key's value type, without Optional (``int`` for train.epochs)."""
    section, name = key.split(".")
    kind = typing.get_type_hints(type(getattr(RunConfig(), section)))[name]
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return args[0] if typing.get_origin(kind) is typing.Union and len(args) == 1 else kind


def _is_int_key(key: str) -> bool:
    return _kind(key) is int


def _check_value(key: str, value: Any, origin: str, known_only: bool = False) -> Any:
    """``value`` as the config takes it for ``key`` (one line naming the key if not)."""
    if known_only:  # the key exists? (its current default always passes)
        section, _, name = key.partition(".")
        root = RunConfig()
        if not name or not hasattr(root, section) or not dataclasses.is_dataclass(
                getattr(root, section)) or not hasattr(getattr(root, section), name):
            raise ConfigError(f"{origin}: unknown config key '{key}'"
                              f"{suggest_key(key, RunConfig)}")
        return None
    try:
        cfg = RunConfig().override({key: value})
    except ConfigError as exc:
        why = str(exc).removeprefix("override: ")
        raise ConfigError(f"{origin}: {why if key in why else f'{key}: {why}'}") from None
    section, name = key.split(".")
    return plain(getattr(getattr(cfg, section), name))


def default_space(family: str, model: str, kind: str, n_train: int = 10**9) -> SearchSpace:
    """The space searched when none is given: the hyperparameters that matter most for the
    model's family (learning rate and weight decay on log scales, batch size, optimiser;
    an MLP's width, depth and dropout; an image network's augmentation). Batch sizes above
    a quarter of the ``n_train`` training rows are left out: a few steps an epoch learn
    little, and the pruner would stop such trials for that alone."""
    sizes = [32, 64, 128, 256] if kind == "table" else [32, 64, 128]
    raw: dict[str, Any] = {
        "train.lr": {"low": 1e-4, "high": 3e-2, "log": True},
        "train.weight_decay": {"low": 1e-6, "high": 1e-1, "log": True},
        "train.optimizer": ["adamw", "sgd"],
        "train.batch_size": [b for b in sizes if b <= max(32, n_train // 4)],
    }
    if family == "mlp":
        raw["model.hidden"] = [[64], [128], [128, 64], [256, 128], [256, 256, 128]]
    if family == "mlp" or model == "cnn":
        raw["model.dropout"] = {"low": 0.0, "high": 0.5}
    if kind == "image":
        raw["data.augment"] = ["none", "light", "standard"]
    return SearchSpace.from_dict(raw, origin="the default search space")


def most_epochs(space: SearchSpace, given: RunConfig, base_epochs: int, kind: str,
                n_train: int) -> int:
    """The most epochs a trial of ``space`` may train: the pruner's full budget (Hyperband's
    ``max_resource``). ``base_epochs``: the epochs of the configuration without a trial's
    values. A searched ``train.epochs`` reaches its largest value; an image set's automatic
    epochs grow with a searched batch size (at least 500 steps), so the largest batch
    decides; otherwise every trial trains ``base_epochs``."""
    by_key = {p.key: p for p in space.params}
    epochs = by_key.get("train.epochs")
    if epochs is not None:  # a choice of None is the automatic value: base_epochs
        values = epochs.choices if epochs.choices is not None else (epochs.high,)
        return max(base_epochs if v is None else int(v) for v in values)
    batch = by_key.get("train.batch_size")
    if kind != "image" or given.train.epochs is not None or batch is None:
        return base_epochs
    sizes = batch.choices if batch.choices is not None else (batch.low, batch.high)
    return max([base_epochs] + [image_training_values(n_train, int(b))["epochs"]
                                for b in sizes if b is not None])
