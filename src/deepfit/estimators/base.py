"""Shared machinery of the scikit-learn estimators: parameters -> validated deepfit config,
the user's module, the validation split, scaling, training with ``Trainer``, and the forward
pass for prediction. The public classes and their documentation are in ``deepfit.sklearn``."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import numbers
import re
from typing import Any, Optional

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from deepfit.config import ModelConfig, RunConfig
from deepfit.errors import ConfigError, ModelError
from deepfit.models import build_model
from deepfit.models.inference import predict_outputs
from deepfit.models.outputs_check import check_outputs
from deepfit.task import TaskHead
from deepfit.train.device import resolve_device
from deepfit.train.trainer import Trainer

#: Fewer rows than this: no validation split, no early stopping.
MIN_ROWS_FOR_VALIDATION = 20

_X_DTYPES = (np.float64, np.float32)
# Config keys in error messages -> the estimator's parameter names.
_PARAM_OF = {"train.epochs": "epochs", "train.batch_size": "batch_size",
             "train.optimizer": "optimizer", "train.lr": "lr",
             "train.weight_decay": "weight_decay", "train.schedule": "schedule",
             "train.early_stopping": "early_stopping", "train.patience": "patience",
             "train.min_delta": "tol",
             "train.device": "device", "model.hidden": "hidden", "model.activation": "activation",
             "model.dropout": "dropout", "model.norm": "norm", "model.outputs": "outputs",
             "data.val_size": "validation_fraction"}
_CONFIG_KEY = re.compile(r"'((?:train|model|data)\.\w+)(\[\d+\])?'")


def _model_name(module: Any) -> str:
    """The name ``check_outputs`` sees: the built-in MLP, or the user's ``module``."""
    if module is None:
        return "mlp"
    cls = module if isinstance(module, type) else type(module)
    return f"{cls.__module__}:{getattr(cls, '__qualname__', cls.__name__)}"


def plain(value: Any) -> Any:
    """NumPy scalars and arrays (from search grids and distributions) -> Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class NeuralEstimator(BaseEstimator):
    """Shared fit / predict machinery; subclasses define the target handling."""

    _task: str  # binary, multiclass or regression: from the subclass

    # -- configuration ---------------------------------------------------------------------
    def _config(self) -> RunConfig:
        """The parameters as a validated deepfit config (errors name the parameter)."""
        self._check_module_params()
        raw = {"model": {"hidden": plain(self.hidden), "activation": self.activation,
                         "dropout": plain(self.dropout), "norm": self.norm,
                         "outputs": getattr(self, "outputs", "logits")},
               "train": {"epochs": plain(self.epochs), "batch_size": plain(self.batch_size),
                         "optimizer": self.optimizer, "lr": plain(self.lr),
                         "weight_decay": plain(self.weight_decay), "schedule": self.schedule,
                         "early_stopping": plain(self.early_stopping),
                         "patience": plain(self.patience), "min_delta": plain(self.tol),
                         "device": self.device,
                         "progress": bool(self.verbose),
                         "diagnostics": False},  # nothing would show what they record
               "data": {"val_size": plain(self.validation_fraction)}}
        try:
            return RunConfig.from_dict(raw, origin=type(self).__name__)
        except ConfigError as exc:
            raise ValueError(_CONFIG_KEY.sub(lambda m: f"'{_PARAM_OF.get(m[1], m[1])}'",
                                             str(exc))) from None

    def _check_module_params(self) -> None:
        """Parameters that would do nothing are refused rather than silently ignored: the
        MLP's with the user's ``module``, ``module_kwargs`` without one, and the validation
        split's without early stopping."""
        defaults = {name: p.default for name, p in
                    inspect.signature(type(self).__init__).parameters.items()}
        if not self.early_stopping:  # no validation split is made, no patience counted
            unused = [name for name in ("patience", "tol", "validation_fraction")
                      if name in defaults
                      and plain(getattr(self, name)) != plain(defaults[name])]
            if unused:
                named = " and ".join([", ".join(unused[:-1]), unused[-1]] if len(unused) > 1
                                     else unused)
                raise ValueError(f"{named} only act with early_stopping=True "
                                 "(the validation split, its patience and tolerance); remove "
                                 f"{'them' if len(unused) > 1 else 'it'} or set "
                                 "early_stopping=True")
        if self.module is None:
            if self.module_kwargs:
                raise ValueError("module_kwargs are for your own module=; the built-in MLP "
                                 "takes hidden, activation, dropout and norm")
            return
        mlp_only = [name for name in ("hidden", "activation", "dropout", "norm")
                    if name in defaults and plain(getattr(self, name)) != plain(defaults[name])]
        if mlp_only:
            raise ValueError(f"{', '.join(mlp_only)} shape{'s' if len(mlp_only) == 1 else ''} "
                             "the built-in MLP and would be ignored with module=; set them "
                             "in your module (or pass them with module_kwargs)")

    def _build_module(self, cfg: ModelConfig, n_in: int, n_out: int) -> nn.Module:
        """The built-in MLP, or the user's ``module`` (class, factory or instance)."""
        if self.module is None:
            return build_model(cfg, n_in, n_out)
        if isinstance(self.module, nn.Module):  # an instance: train a copy, keep the original
            return copy.deepcopy(self.module)
        if not callable(self.module):
            raise ValueError(f"module={self.module!r} must be an nn.Module class, a callable "
                             "(in_features, out_features) -> nn.Module, or None for the MLP")
        kwargs = dict(self.module_kwargs or {})
        try:
            params = dict(inspect.signature(self.module).parameters)
        except (TypeError, ValueError):  # no signature to read: pass the sizes positionally
            params = None
        args: tuple = ()
        if params is None:
            args = (n_in, n_out)
        elif "in_features" in params or "out_features" in params:
            for key, value in (("in_features", n_in), ("out_features", n_out)):
                if key in params:
                    kwargs.setdefault(key, value)
        elif any(p.kind == p.VAR_POSITIONAL for p in params.values()) or sum(
                p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in kwargs
                for p in params.values()) >= 2:
            args = (n_in, n_out)
        name = getattr(self.module, "__qualname__", repr(self.module))
        try:
            net = self.module(*args, **kwargs)
        except TypeError as exc:
            raise ModelError(f"module {name} could not be built with sizes ({n_in}, {n_out}) "
                             f"and module_kwargs {kwargs}: {exc}") from None
        if not isinstance(net, nn.Module):
            raise ModelError(f"module {name} returned {type(net).__name__}, not an nn.Module")
        return net

    # -- training --------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any, *, incremental: bool, classes: Any = None) -> Any:
        cfg = self._config()
        fresh = not hasattr(self, "module_") or not (incremental or self.warm_start)
        X, y = validate_data(self, X, y, reset=fresh, dtype=_X_DTYPES, y_numeric=self._numeric_y)
        y_t, strat = self._encode_target(y, fresh=fresh, incremental=incremental, classes=classes)
        n_out = 1 if self._task != "multiclass" else len(self.classes_)
        if fresh:
            rs = self.random_state
            self._base_seed = int(rs if isinstance(rs, numbers.Integral) and rs >= 0
                                  else check_random_state(rs).randint(2**31 - 1))
            self.n_iter_, self.history_, self._optimizer_state = 0, [], None
        seed = self._base_seed + self.n_iter_
        rows, val = np.arange(len(X)), None
        if not incremental:
            rows, val = self._split(len(X), strat, cfg, seed)
        if fresh:
            self._fit_scaling(X[rows], y_t[rows])
        Xs, ys = self._scale_x(X), self._scale_y(y_t)
        X_tr, y_tr = Xs[rows], ys[rows]
        X_va, y_va = (Xs[val], ys[val]) if val is not None else (X_tr, y_tr)

        try:
            device = resolve_device(cfg.train.device)
        except ConfigError as exc:
            raise ValueError(str(exc).replace("train.device", "device")) from None
        tcfg = dataclasses.replace(cfg.train, seed=seed,
                                   epochs=1 if incremental else cfg.train.epochs
                                   ).resolved("table", device.type, train_rows=len(rows))
        # Seeds inside a forked RNG: equal seeds give equal nets, the caller's state is kept.
        forked = [torch.cuda.current_device() if device.index is None else device.index] \
            if device.type == "cuda" else []
        with torch.random.fork_rng(devices=forked):
            torch.manual_seed(seed)
            module = (self._build_module(cfg.model, X.shape[1], n_out) if fresh
                      else self.module_)
            head = TaskHead(self._task, "auto", cfg.model.outputs,
                            self._class_weights(y_tr, device))
            # The built-in callbacks: best model and early stopping only with a
            # validation split, progress with verbose (train.progress).
            trainer = Trainer(module, head, tcfg, task=self._task, n_outputs=n_out,
                              device=device, select_best=val is not None)
            if fresh:  # the user's module, run once on the first rows (no RNG drawn)
                check_outputs(trainer.model, torch.from_numpy(X_tr), self._task,
                              cfg.model.outputs, _model_name(self.module), device,
                              key="outputs")
            self._restore_optimizer(trainer, tcfg)
            history = trainer.fit(torch.from_numpy(X_tr), torch.from_numpy(y_tr),
                                  torch.from_numpy(X_va), torch.from_numpy(y_va))
        start = self.n_iter_
        for row in history.rows:
            row = {k: v for k, v in row.items() if val is not None or not k.startswith("val_")}
            self.history_.append({**row, "epoch": start + row["epoch"]})
        self.module_ = trainer.model.eval()
        self.n_iter_ = start + trainer.epoch
        self.best_epoch_ = start + (trainer.best_epoch or trainer.epoch)
        self.validation_used_ = val is not None
        self.batch_size_ = tcfg.batch_size
        self._optimizer_state = (tcfg.optimizer, trainer.optimizer.state_dict())
        return self

    def _split(self, n: int, strat: Optional[np.ndarray], cfg: RunConfig,
               seed: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """(train rows, validation rows), or (all rows, None) when no split is possible."""
        every = np.arange(n)
        if not cfg.train.early_stopping or n < MIN_ROWS_FOR_VALIDATION:
            return every, None
        n_val = math.ceil(round(cfg.data.val_size * n, 6))  # rows, as in deepfit.data.split
        if strat is not None:
            k = len(self.classes_)
            if np.bincount(strat, minlength=k).min() < 2 or n_val < k or n - n_val < k:
                return every, None
        train, val = train_test_split(every, test_size=n_val, random_state=seed % 2**32,
                                      stratify=strat)
        return np.sort(train), np.sort(val)

    def _fit_scaling(self, X: np.ndarray, y: np.ndarray) -> None:
        if self.standardize:
            self.x_mean_ = X.mean(axis=0, dtype=np.float64)
            std = X.std(axis=0, dtype=np.float64)
            self.x_scale_ = np.where(std > 1e-12 * np.maximum(1.0, np.abs(self.x_mean_)), std, 1.0)
        else:
            self.x_mean_ = self.x_scale_ = None

    def _scale_x(self, X: np.ndarray) -> np.ndarray:
        if self.x_mean_ is not None:
            X = (X - self.x_mean_) / self.x_scale_
        return np.array(X, dtype=np.float32, order="C")  # a copy: inputs may be read-only

    def _scale_y(self, y: np.ndarray) -> np.ndarray:
        return y

    def _class_weights(self, y: np.ndarray, device: torch.device) -> Optional[torch.Tensor]:
        return None

    def _restore_optimizer(self, trainer: Trainer, tcfg: Any) -> None:
        """Continue with the optimiser's moments, at the current ``lr``."""
        if self._optimizer_state is None or self._optimizer_state[0] != tcfg.optimizer:
            return
        try:
            trainer.optimizer.load_state_dict(self._optimizer_state[1])
        except (ValueError, KeyError):  # parameter groups changed (e.g. weight decay 0 <-> >0)
            return
        for group in trainer.optimizer.param_groups:
            group["lr"] = tcfg.lr

    # -- prediction ------------------------------------------------------------------------
    def _forward(self, X: Any) -> np.ndarray:
        """Raw network outputs (float64) for validated, scaled ``X``."""
        check_is_fitted(self, "module_")
        X = validate_data(self, X, reset=False, dtype=_X_DTYPES)
        out = predict_outputs(self.module_, torch.from_numpy(self._scale_x(X)))
        return out.cpu().numpy().astype(np.float64)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags
