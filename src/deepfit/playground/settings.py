"""What a playground run is made of: data, features, network and hyperparameters, as one
frozen ``Settings`` read from the page's JSON (the same keys the page keeps in its URL).

Every value is checked here; a bad one is a ``ConfigError`` naming the key and what to use,
which the page shows as one line.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from deepfit.data.sources.toy2d import TOY
from deepfit.errors import ConfigError

DATASETS = ("xor", "circles", "moons", "spiral", "gaussians", "linear", "upload")
# feature name -> how the page labels it; each is a function of (x1, x2) in points.py
FEATURES = {"x1": "x1", "x2": "x2", "x1sq": "x1²", "x2sq": "x2²", "x1x2": "x1·x2",
            "sinx1": "sin(x1)", "sinx2": "sin(x2)"}
ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear", "leaky_relu", "gelu")
OPTIMIZERS = ("sgd", "momentum", "adam")
REGULARIZATION = ("none", "l1", "l2")
LOSSES = ("cross_entropy", "squared")
MAX_LAYERS, MAX_WIDTH = 6, 16
MAX_POINTS = 5000
# the numeric settings' allowed ranges (the page sets its inputs' min and max from these)
RANGES: dict[str, tuple[float, float]] = {
    "noise": (0.0, 2.0), "points": (10, MAX_POINTS), "test_ratio": (0.05, 0.9),
    "seed": (0, 2**31 - 1), "lr": (1e-6, 10.0), "batch_size": (1, MAX_POINTS),
    "reg_rate": (0.0, 10.0), "stop_epoch": (0, 100_000), "speed": (1, 500)}


@dataclass(frozen=True)
class Settings:
    """One playground run. ``data="upload"`` takes the points the page uploaded."""

    data: str = "xor"
    noise: float = 0.1
    points: int = 400
    test_ratio: float = 0.3
    seed: int = 0
    features: tuple[str, ...] = ("x1", "x2")
    hidden: tuple[int, ...] = (4, 2)
    activation: str = "tanh"
    lr: float = 0.03
    batch_size: int = 10
    optimizer: str = "sgd"
    regularization: str = "none"
    reg_rate: float = 0.0
    loss: str = "cross_entropy"
    stop_epoch: int = 0  # 0: train until paused
    speed: int = 5  # training steps between two frames

    @classmethod
    def from_dict(cls, raw: Any) -> Settings:
        """Settings from the page's JSON; unknown keys and bad values are refused."""
        if not isinstance(raw, dict):
            raise ConfigError("settings: expected an object of settings")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(f"settings: unknown key(s) {unknown}; known: {sorted(known)}")
        values = {}
        for name, value in raw.items():
            kind = type(getattr(cls(), name))
            values[name] = _coerce(name, value, kind)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        _choice("data", self.data, DATASETS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("regularization", self.regularization, REGULARIZATION)
        _choice("loss", self.loss, LOSSES)
        for name, (lo, hi) in RANGES.items():
            _range(name, getattr(self, name), lo, hi)
        if not self.features:
            raise ConfigError("features: choose at least one input feature (x1, x2, ...)")
        for name in self.features:
            _choice("features", name, tuple(FEATURES))
        if len(set(self.features)) != len(self.features):
            raise ConfigError(f"features: {list(self.features)} names a feature twice")
        if len(self.hidden) > MAX_LAYERS:
            raise ConfigError(f"hidden: {len(self.hidden)} layers; the playground takes 0 to "
                              f"{MAX_LAYERS}")
        for width in self.hidden:
            _range("hidden", width, 1, MAX_WIDTH)
        if self.data == "linear" and any(f in ("x2", "x2sq", "x1x2", "sinx2")
                                         for f in self.features):
            raise ConfigError("features: the linear data has one input, x1; turn off the "
                              "features of x2")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["features"], out["hidden"] = list(self.features), list(self.hidden)
        return out

    def same_data(self, other: Settings) -> bool:
        """Whether ``other`` makes the same points (so a change keeps clicked points)."""
        keys = ("data", "noise", "points", "test_ratio", "seed")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


def controls() -> dict[str, Any]:
    """What the page builds its controls from (the server sends it in its first message, so
    that the page repeats none of it): the features and their labels, each generator's usual
    noise, the numeric ranges, the network's limits and the default settings."""
    return {"features": FEATURES,
            "noise": {name: TOY[name][1] for name in DATASETS if name in TOY},
            "ranges": RANGES, "max_layers": MAX_LAYERS, "max_width": MAX_WIDTH,
            "defaults": Settings().to_dict()}


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"settings: '{name}' must be a list, not {value!r}")
        inner = str if name == "features" else int
        return tuple(_coerce(name, v, inner) for v in value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"settings: '{name}' must be text, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"settings: '{name}' must be a number, not {value!r}")
    if kind is int:
        if not float(value).is_integer():
            raise ConfigError(f"settings: '{name}' must be a whole number, not {value!r}")
        return int(value)
    if not math.isfinite(value):
        raise ConfigError(f"settings: '{name}' must be a finite number, not {value!r}")
    return float(value)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"settings: '{name}' = {value!r} is not one of {', '.join(allowed)}")


def _range(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"settings: '{name}' = {value!r} is outside {lo:g} to {hi:g}")
