"""One playground run: the points, deepfit's ``MLP`` on the chosen features, the optimiser,
the training step, and what the page draws (``frame``): the decision map over the plane,
every hidden neuron's map, the weights, losses, accuracy or R², the test confusion matrix.

The same settings give the same run: the weights are drawn from ``torch.Generator(seed)``
and the batches from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import time
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from deepfit.errors import ConfigError
from deepfit.models.mlp import MLP
from deepfit.playground.points import Points, features, generate
from deepfit.playground.settings import Settings

GRID = 100  # the decision map is GRID x GRID pixels
NEURON_GRID = 50  # each hidden neuron's map: every second pixel of the grid


class Session:
    """A network learning ``settings`` on its points, one step at a time."""

    def __init__(self, settings: Settings, upload: Optional[Points] = None) -> None:
        self.upload = upload
        self.points = generate(settings, upload)
        check_loss(settings, self.points)
        self.settings = settings
        self.reset()

    # -- set-up --------------------------------------------------------------------------
    def configure(self, settings: Settings, upload: Optional[Points] = None) -> bool:
        """New settings (and upload): new points if the data changed, a fresh network;
        False (the network kept) when only the pace changed (speed, stop epoch)."""
        upload = upload or self.upload
        paced = dataclasses.replace(settings, speed=self.settings.speed,
                                    stop_epoch=self.settings.stop_epoch)
        if paced == self.settings and upload is self.upload:
            self.settings = settings
            return False
        points = self.points
        if not settings.same_data(self.settings) or upload is not self.upload:
            points = generate(settings, upload)
        check_loss(settings, points)
        self.settings, self.points, self.upload = settings, points, upload
        self.reset()
        return True

    def set_points(self, points: Points) -> None:
        """Points clicked on the page: the network keeps learning, on the new points."""
        self.points = points
        self._tensors()

    def reset(self) -> None:
        """A new network with the seed's weights; step 0."""
        s, p = self.settings, self.points
        generator = torch.Generator().manual_seed(s.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            self.model = MLP(len(s.features), p.n_outputs, hidden=s.hidden,
                             activation=s.activation)
        # the network's layers, found once per network (penalty and frame use them each step)
        self.linears = [m for m in self.model.modules() if isinstance(m, nn.Linear)]
        params = self.model.parameters()
        if s.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(params, lr=s.lr)
        else:
            self.optimizer = torch.optim.SGD(params, lr=s.lr,
                                             momentum=0.9 if s.optimizer == "momentum" else 0)
        self.rng = np.random.default_rng(s.seed)
        self.step_count, self.order = 0, np.empty(0, np.int64)
        self.history: list[dict[str, Any]] = []  # after every whole epoch, as the page shows
        self.seconds = 0.0  # spent in training steps
        self._tensors()

    def _tensors(self) -> None:
        p, names = self.points, self.settings.features
        self.inputs = torch.from_numpy(features(p.X, names))
        self.targets = torch.from_numpy(p.y.copy())
        self.train_rows = torch.from_numpy(np.flatnonzero(p.train))
        self.test_rows = torch.from_numpy(np.flatnonzero(~p.train))
        self.order = np.empty(0, np.int64)  # a new epoch starts on the new points
        self.bounds = plane_bounds(p)
        self.grid = grid_inputs(self.bounds, names, p.X.shape[1])

    # -- training ------------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.train_rows) / self.settings.batch_size))

    @property
    def epoch(self) -> float:
        return self.step_count / self.steps_per_epoch

    def step(self, n: int = 1) -> None:
        """``n`` optimiser steps of one batch each; an epoch visits every training point."""
        self.model.train()
        started = time.perf_counter()
        for _ in range(n):
            if len(self.order) == 0:
                self.order = self.rng.permutation(len(self.train_rows))
            take, self.order = (self.order[:self.settings.batch_size],
                                self.order[self.settings.batch_size:])
            rows = self.train_rows[torch.from_numpy(take)]
            loss = self.loss(self.model(self.inputs[rows]), self.targets[rows])
            loss = loss + self.penalty()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.step_count += 1
            if len(self.order) == 0:  # every training point seen: an epoch ends
                self.seconds += time.perf_counter() - started
                started = time.perf_counter()
                self.history.append(self.record(len(self.history) + 1))
        self.seconds += time.perf_counter() - started

    def record(self, epoch: float) -> dict[str, Any]:
        """The losses and accuracy (or R²) of the train and test points now, at ``epoch``."""
        metrics = {k: v for k, v in self.metrics().items() if k != "confusion"}
        return {"epoch": epoch, "step": self.step_count, "seconds": round(self.seconds, 4),
                **metrics}

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The data loss (mean over rows) the settings name, for this task."""
        task, squared = self.points.task, self.settings.loss == "squared"
        if task == "regression":
            return F.mse_loss(out[:, 0], y)
        if task == "binary":
            if squared:
                return F.mse_loss(torch.sigmoid(out[:, 0]), y.float())
            return F.binary_cross_entropy_with_logits(out[:, 0], y.float())
        if squared:
            onehot = F.one_hot(y, self.points.n_classes).float()
            return (F.softmax(out, 1) - onehot).pow(2).sum(1).mean()
        return F.cross_entropy(out, y)

    def penalty(self) -> torch.Tensor | float:
        """L1 (rate * sum |w|) or L2 (rate / 2 * sum w^2) on the weights, not the biases."""
        s = self.settings
        if s.regularization == "none" or s.reg_rate == 0:
            return 0.0
        weights = [m.weight for m in self.linears]
        if s.regularization == "l1":
            return s.reg_rate * sum(w.abs().sum() for w in weights)
        return s.reg_rate / 2 * sum(w.pow(2).sum() for w in weights)

    # -- what the page draws -----------------------------------------------------------
    @torch.no_grad()
    def frame(self) -> dict[str, Any]:
        """The state after the last step, as JSON-able values (maps base64 bytes)."""
        self.model.eval()
        out, hidden = self.forward_layers(self.grid)
        metrics = self.metrics()
        linears = self.linears
        return {"type": "frame", "step": self.step_count, "epoch": self.epoch,
                "steps_per_epoch": self.steps_per_epoch, "task": self.points.task,
                "classes": list(self.points.class_names), "bounds": self.bounds,
                "grid": GRID, "neuron_grid": NEURON_GRID, **self.decision_map(out),
                "neurons": [tiles(h) for h in hidden],
                "weights": [np.round(m.weight.numpy(), 4).tolist() for m in linears],
                "biases": [np.round(m.bias.numpy(), 4).tolist() for m in linears],
                "metrics": metrics,
                "history": {"step": self.step_count, "epoch": self.epoch,
                            "train_loss": metrics["train_loss"],
                            "test_loss": metrics["test_loss"]}}

    def forward_layers(self, x: torch.Tensor) -> tuple[torch.Tensor, list[np.ndarray]]:
        """The network's output on ``x`` and each hidden layer's activations."""
        hidden = []
        for layer in self.model.net:
            x = layer(x)
            if not isinstance(layer, nn.Linear):
                hidden.append(x.numpy())
        return x, hidden

    def decision_map(self, out: torch.Tensor) -> dict[str, Any]:
        task = self.points.task
        if task == "regression":
            lo, hi = self.bounds[2], self.bounds[3]
            if self.points.X.shape[1] == 2:  # colour by the target's range
                lo, hi = float(self.points.y.min()), float(self.points.y.max())
            values = out[:, 0].numpy()
            code = np.clip((values - lo) / max(hi - lo, 1e-9), 0, 1) * 255
            return {"map_kind": "value", "value_range": [lo, hi], "map": _b64(code),
                    "curve": values.reshape(GRID, GRID)[0].round(4).tolist()}
        if task == "binary":
            return {"map_kind": "prob", "map": _b64(torch.sigmoid(out[:, 0]).numpy() * 255)}
        probs = F.softmax(out, 1)
        confidence, label = probs.max(1)
        return {"map_kind": "class", "map": _b64(label.numpy()),
                "confidence": _b64(confidence.numpy() * 255)}

    @torch.no_grad()
    def metrics(self) -> dict[str, Any]:
        """Losses (data loss, no penalty), accuracy or R², the test confusion matrix."""
        out = self.model(self.inputs)
        result: dict[str, Any] = {}
        for name, rows in (("train", self.train_rows), ("test", self.test_rows)):
            o, y = out[rows], self.targets[rows]
            result[f"{name}_loss"] = _finite(self.loss(o, y).item()) if len(rows) else None
            if self.points.task == "regression":
                result[f"{name}_r2"] = r_squared(o[:, 0].numpy(), y.numpy())
            else:
                pred = self.predicted(o)
                result[f"{name}_accuracy"] = (float((pred == y).float().mean())
                                              if len(rows) else None)
        if self.points.task != "regression":
            k = self.points.n_classes
            pred = self.predicted(out[self.test_rows]).numpy()
            truth = self.targets[self.test_rows].numpy()
            result["confusion"] = np.bincount(truth * k + pred, minlength=k * k).reshape(
                k, k).tolist()
        return result

    def predicted(self, out: torch.Tensor) -> torch.Tensor:
        if self.points.task == "binary":
            return (out[:, 0] > 0).long()
        return out.argmax(1)

    def points_message(self) -> dict[str, Any]:
        p = self.points
        return {"type": "points", "task": p.task, "classes": list(p.class_names),
                "bounds": self.bounds, "x": p.X[:, 0].round(4).tolist(),
                "y2": (p.X[:, 1] if p.X.shape[1] == 2 else p.y).round(4).tolist(),
                "target": p.y.round(4).tolist(), "train": p.train.astype(int).tolist(),
                "features": list(self.settings.features), "inputs": tiles(self.grid.numpy())}


def check_loss(settings: Settings, points: Points) -> None:
    if points.task == "regression" and settings.loss == "cross_entropy":
        raise ConfigError("loss: cross-entropy needs classes and these points have a "
                          "numeric target (regression); choose squared error")


def plane_bounds(points: Points) -> list[float]:
    """[x_min, x_max, y_min, y_max] of the plane drawn: the points and a margin. For 1-D
    regression the vertical axis is the target."""
    second = points.X[:, 1] if points.X.shape[1] == 2 else points.y
    out = []
    for values in (points.X[:, 0], second):
        lo, hi = float(np.min(values)), float(np.max(values))
        pad = max(hi - lo, 1e-3) * 0.1
        out += [round(lo - pad, 4), round(hi + pad, 4)]
    return out


def grid_inputs(bounds: list[float], names: tuple[str, ...], dims: int) -> torch.Tensor:
    """The features of the GRID x GRID pixel centres, row by row from the top."""
    xs = np.linspace(bounds[0], bounds[1], GRID)
    ys = np.linspace(bounds[3], bounds[2], GRID)
    gx, gy = np.meshgrid(xs, ys)
    X = np.c_[gx.ravel(), gy.ravel()] if dims == 2 else gx.ravel()[:, None]
    return torch.from_numpy(features(X.astype(np.float32), names))


def tiles(values: np.ndarray) -> list[str]:
    """Each column of ``values`` (one per grid pixel) as a NEURON_GRID x NEURON_GRID map,
    encoded by ``encode_signed``: a neuron's tile, or an input feature's."""
    keep = np.arange(0, GRID, GRID // NEURON_GRID)
    return [encode_signed(values[:, j].reshape(GRID, GRID)[np.ix_(keep, keep)])
            for j in range(values.shape[1])]


def encode_signed(values: np.ndarray) -> str:
    """Values as bytes 0-255 with 128 = 0, scaled by the largest magnitude."""
    scale = float(np.abs(values).max()) or 1.0
    return _b64((values / scale + 1) / 2 * 255)


def r_squared(pred: np.ndarray, truth: np.ndarray) -> Optional[float]:
    """R²; None (undefined) when the truth does not vary."""
    total = float(((truth - truth.mean()) ** 2).sum()) if len(truth) else 0.0
    if total == 0:
        return None
    return _finite(1 - float(((truth - pred) ** 2).sum()) / total)


def _b64(values: Any) -> str:
    return base64.b64encode(np.clip(np.rint(np.nan_to_num(np.asarray(values, float))), 0, 255).astype(np.uint8).tobytes()).decode()


def _finite(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None
