"""``NeuralRegressor``: one numeric target, z-scored for training and mapped back."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin

from deepfit.estimators.base import NeuralEstimator


class NeuralRegressor(RegressorMixin, NeuralEstimator):
    """A PyTorch network as a scikit-learn regressor (one target).

    The target is z-scored with ``y_mean_`` / ``y_scale_`` for training and predictions are
    mapped back. Parameters are those of ``NeuralClassifier`` without ``class_weight`` and
    ``outputs`` (a regression network returns raw values); its fitted attributes are those
    of ``NeuralClassifier`` without ``classes_``, plus ``y_mean_`` / ``y_scale_``.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(60, 2))
        >>> reg = NeuralRegressor(hidden=(8,), epochs=3, device="cpu").fit(X, 3 * X[:, 0])
        >>> reg.predict(X[:2]).shape
        (2,)
    """

    _numeric_y = True
    _task = "regression"

    def __init__(self, hidden=(128, 64), activation="relu", dropout=0.3, norm="none",
                 optimizer="adamw", lr=1e-3, weight_decay=1e-2, batch_size=None, epochs=200,
                 early_stopping=True, patience=20, tol=1e-4, validation_fraction=0.15,
                 schedule="plateau",
                 module=None, module_kwargs=None, standardize=True, device="auto",
                 random_state=0, warm_start=False, verbose=False):
        self.hidden, self.activation, self.dropout, self.norm = hidden, activation, dropout, norm
        self.optimizer, self.lr, self.weight_decay = optimizer, lr, weight_decay
        self.batch_size, self.epochs, self.early_stopping = batch_size, epochs, early_stopping
        self.patience, self.tol, self.validation_fraction = patience, tol, validation_fraction
        self.schedule, self.module, self.module_kwargs = schedule, module, module_kwargs
        self.standardize, self.device, self.random_state = standardize, device, random_state
        self.warm_start, self.verbose = warm_start, verbose

    def fit(self, X: Any, y: Any) -> NeuralRegressor:
        """Train on ``X`` (n, features) and numeric ``y`` (n,); returns ``self``."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X: Any, y: Any) -> NeuralRegressor:
        """One epoch on ``(X, y)`` (continuing ``module_`` when there is one)."""
        return self._fit(X, y, incremental=True)

    def _encode_target(self, y: np.ndarray, **kwargs: Any) -> tuple[np.ndarray, None]:
        return np.asarray(y, dtype=np.float64), None

    def _fit_scaling(self, X: np.ndarray, y: np.ndarray) -> None:
        super()._fit_scaling(X, y)
        self.y_mean_ = float(np.mean(y))
        std = float(np.std(y))
        self.y_scale_ = std if std > 1e-12 * max(1.0, abs(self.y_mean_)) else 1.0

    def _scale_y(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.y_mean_) / self.y_scale_).astype(np.float32)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values (n,), in the units of the training target."""
        return self._forward(X).reshape(-1) * self.y_scale_ + self.y_mean_
