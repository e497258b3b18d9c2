"""Two-dimensional toy problems from the lectures (and TensorFlow Playground).

Each generator takes ``n`` (rows), ``noise`` (None = the generator's default) and ``seed``
and returns a ``Table`` with features ``x1, x2`` (``x`` for ``linear``) and target ``y``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from deepfit.data.table import Table


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # The four corners of the unit square; label = x1 XOR x2, as in the lecture's truth table.
    corners = rng.integers(0, 2, size=(n, 2))
    X = corners + rng.normal(0.0, noise, size=(n, 2))
    return X, corners[:, 0] ^ corners[:, 1]


def _circles(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, size=n)
    angle = rng.uniform(0, 2 * np.pi, size=n)
    radius = np.where(y == 1, 0.5, 1.0)
    X = np.c_[radius * np.cos(angle), radius * np.sin(angle)] + rng.normal(0, noise, size=(n, 2))
    return X, y


def _moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, size=n)
    t = rng.uniform(0, np.pi, size=n)
    X = np.where(y[:, None] == 0, np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    return X + rng.normal(0, noise, size=(n, 2)), y


def _spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, size=n)
    r = rng.uniform(0.05, 1.0, size=n)
    theta = 3 * np.pi * r + np.pi * y  # two interleaved arms, 1.5 turns each
    X = np.c_[r * np.cos(theta), r * np.sin(theta)] + rng.normal(0, noise, size=(n, 2))
    return X, y


def _gaussians(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, size=n)
    centres = np.array([[-1.0, -1.0], [1.0, 1.0]])
    return centres[y] + rng.normal(0, noise, size=(n, 2)), y


def _linear(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # The lecture's y = 3x + 2 + noise, x uniform on [0, 1].
    x = rng.uniform(0, 1, size=(n, 1))
    return x, 3.0 * x[:, 0] + 2.0 + rng.normal(0, noise, size=n)


# name -> (generator, default noise, task, description)
TOY: dict[str, tuple[Callable, float, str, str]] = {
    "xor": (_xor, 0.1, "binary", "XOR of two noisy binary inputs (not linearly separable)"),
    "circles": (_circles, 0.08, "binary", "a small circle inside a large one"),
    "moons": (_moons, 0.15, "binary", "two interleaving half-moons"),
    "spiral": (_spiral, 0.04, "binary", "two interleaved spiral arms"),
    "gaussians": (_gaussians, 0.6, "binary", "two Gaussian blobs (linearly separable)"),
    "linear": (_linear, 0.3, "regression", "y = 3x + 2 + Gaussian noise (linear regression)"),
    "multilabel": (None, 0.0, "multilabel", "10 features, 4 labels per row (multi-label)"),
}


def load_multilabel(n: int, seed: int) -> Table:
    """Ten features, four labels; each row has zero or more labels (scikit-learn's
    multi-label generator)."""
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(n_samples=n, n_features=10, n_classes=4, n_labels=2,
                                          allow_unlabeled=True, random_state=seed)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)])
    labels = [f"label{j}" for j in range(4)]
    frame[labels] = Y
    return Table(frame=frame, target=labels[-1], name="multilabel", task_hint="multilabel",
                 targets=labels, description=f"multi-label toy data: {n} rows, 10 features, "
                 f"4 labels, seed {seed}")


def load_toy(name: str, n: int, noise: float | None, seed: int) -> Table:
    """Generate a toy 2-D dataset; same ``(n, noise, seed)`` gives the same rows."""
    if name == "multilabel":
        return load_multilabel(n, seed)
    make, default_noise, task, description = TOY[name]
    noise = default_noise if noise is None else noise
    X, y = make(n, noise, np.random.default_rng(seed))
    cols = ["x"] if X.shape[1] == 1 else ["x1", "x2"]
    frame = pd.DataFrame(X, columns=cols)
    frame["y"] = y
    return Table(frame=frame, target="y", name=name, task_hint=task,
                 description=f"{description}; {n} rows, noise {noise:g}, seed {seed}")
