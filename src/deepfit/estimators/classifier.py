"""``NeuralClassifier``: binary (one logit, BCE) or multiclass (K logits, cross-entropy)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from scipy.special import expit, softmax
from sklearn.base import ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets

from deepfit.estimators.base import NeuralEstimator


class NeuralClassifier(ClassifierMixin, NeuralEstimator):
    """A PyTorch network as a scikit-learn classifier (binary or multiclass).

    Args:
        hidden, activation, dropout, norm: the MLP (ignored when ``module`` is given).
        optimizer, lr, weight_decay, batch_size, epochs, schedule: as in ``TrainConfig``;
            ``batch_size=None`` (the default) is deepfit's automatic one for a table: 32 up
            to 2,048 training rows, then rows / 64 rounded up to a power of two, at most 512.
        early_stopping, patience, validation_fraction: stop on the held-out validation loss
            and keep the best epoch's weights (small data: no split, see the module notes).
        tol: the least fall of the validation loss that counts as better, for early stopping
            and the best epoch (``train.min_delta``; 1e-4 as scikit-learn's MLP).
        class_weight: None, "balanced", or a dict label -> weight.
        module: your own network: an ``nn.Module`` class or a callable
            ``(in_features, out_features) -> nn.Module`` (sizes are passed by name when it
            takes ``in_features`` / ``out_features``, else by position), built with
            ``module_kwargs``; an ``nn.Module`` instance is copied and the copy trained.
        outputs: what the network's forward returns: logits, probabilities or
            log_probabilities (multiclass).
        standardize: z-score the inputs with statistics from the training rows.
        device: auto, cpu, cuda, cuda:N or mps. random_state: int, RandomState or None.
        warm_start: continue training ``module_`` on the next ``fit``.
        verbose: print progress.

    Attributes:
        classes_, n_features_in_, feature_names_in_ (DataFrame input with string columns),
        module_ (the trained network), n_iter_ (epochs run, over warm starts and partial
        fits), history_ (one dict per epoch), best_epoch_ (whose weights module_ holds),
        validation_used_, batch_size_ (the batch the last fit trained with),
        x_mean_ / x_scale_ (None when standardize=False).

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(60, 2))
        >>> y = np.where(X[:, 0] > 0, "yes", "no")
        >>> clf = NeuralClassifier(hidden=(8,), epochs=3, device="cpu").fit(X, y)
        >>> clf.classes_.tolist(), clf.predict(X[:1]).dtype.kind
        (['no', 'yes'], 'U')
    """

    _numeric_y = False

    def __init__(self, hidden=(128, 64), activation="relu", dropout=0.3, norm="none",
                 optimizer="adamw", lr=1e-3, weight_decay=1e-2, batch_size=None, epochs=200,
                 early_stopping=True, patience=20, tol=1e-4, validation_fraction=0.15,
                 schedule="plateau",
                 class_weight=None, module=None, module_kwargs=None, outputs="logits",
                 standardize=True, device="auto", random_state=0, warm_start=False,
                 verbose=False):
        self.hidden, self.activation, self.dropout, self.norm = hidden, activation, dropout, norm
        self.optimizer, self.lr, self.weight_decay = optimizer, lr, weight_decay
        self.batch_size, self.epochs, self.early_stopping = batch_size, epochs, early_stopping
        self.patience, self.tol, self.validation_fraction = patience, tol, validation_fraction
        self.schedule, self.class_weight, self.module = schedule, class_weight, module
        self.module_kwargs, self.outputs, self.standardize = module_kwargs, outputs, standardize
        self.device, self.random_state, self.warm_start = device, random_state, warm_start
        self.verbose = verbose

    @property
    def _task(self) -> str:
        return "binary" if len(self.classes_) == 2 else "multiclass"

    def fit(self, X: Any, y: Any) -> NeuralClassifier:
        """Train on ``X`` (n, features) and labels ``y`` of any type; returns ``self``."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> NeuralClassifier:
        """One epoch on ``(X, y)``; ``classes`` (every label) is required on the first call."""
        return self._fit(X, y, incremental=True, classes=classes)

    def _encode_target(self, y: np.ndarray, *, fresh: bool, incremental: bool,
                       classes: Any) -> tuple[np.ndarray, np.ndarray]:
        check_classification_targets(y)
        if incremental and fresh and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if incremental and self.class_weight == "balanced":
            raise ValueError("class_weight='balanced' is not supported by partial_fit; pass a "
                             "dict of weights (e.g. from sklearn.utils.compute_class_weight)")
        known = np.unique(classes if classes is not None else y)
        if fresh:
            if len(known) < 2:
                raise ValueError(f"Classifier can't train when only one class is present "
                                 f"(the only label is {known[0]!r}); y needs two or more classes")
            self.classes_ = known
        elif classes is not None and not np.array_equal(known, self.classes_):
            raise ValueError(f"classes={known.tolist()} is not the same as classes_ "
                             f"{self.classes_.tolist()} of the first call")
        codes = np.clip(np.searchsorted(self.classes_, y), 0, len(self.classes_) - 1)
        unseen = self.classes_[codes] != y
        if unseen.any():
            raise ValueError(f"y contains label {y[unseen][0]!r}, which is not one of the "
                             f"classes {self.classes_.tolist()} of the first fit")
        if not incremental and not fresh and len(np.unique(codes)) != len(self.classes_):
            raise ValueError("warm_start can only be used where y has the same classes as in "
                             "the previous call to fit")
        target = codes.astype(np.float32) if self._task == "binary" else codes.astype(np.int64)
        return target, codes

    def _class_weights(self, y: np.ndarray, device: torch.device) -> Optional[torch.Tensor]:
        if self.class_weight is None:
            return None
        if not (self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ValueError(f"class_weight={self.class_weight!r} must be None, 'balanced' or "
                             "a dict label -> weight")
        weights = compute_class_weight(self.class_weight, classes=self.classes_,
                                       y=self.classes_[y.astype(np.int64)])
        return torch.tensor(weights, dtype=torch.float32, device=device)

    def decision_function(self, X: Any) -> np.ndarray:
        """Binary: the positive class's logit (n,). Multiclass: logits (n, K)."""
        out = self._forward(X)
        if self._task == "binary":
            out = out.reshape(-1)
            if self.outputs == "probabilities":
                p = np.clip(out, 1e-7, 1 - 1e-7)
                return np.log(p) - np.log1p(-p)
            return out
        return np.log(np.clip(out, 1e-12, None)) if self.outputs == "probabilities" else out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in the order of ``classes_``."""
        scores = self.decision_function(X)
        if self._task == "binary":
            p = expit(scores)
            return np.column_stack([1.0 - p, p])
        return softmax(scores, axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Labels of the original type: ``logit > 0`` (binary) or the arg-max class."""
        scores = self.decision_function(X)
        codes = (scores > 0).astype(int) if self._task == "binary" else scores.argmax(axis=1)
        return self.classes_[codes]
