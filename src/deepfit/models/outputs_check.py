"""Before training: does the user's own network return what ``model.outputs`` says?

A ``forward`` that ends in a sigmoid or softmax, trained with the default
``model.outputs=logits``, gets a second sigmoid / softmax inside the loss: it trains into a
useless model (every row one class) without any error. The reverse mistakes are as silent:
``probabilities`` on raw scores, ``log_probabilities`` on anything but a log-softmax.

``check_outputs`` runs the network once on the first training rows (up to 64; 16 images),
in eval mode under ``torch.no_grad()``, with every random generator saved and restored and
each module's train/eval mode put back, so the run (and its resume) is unchanged. Only the
user's own modules are checked: deepfit's and torchvision's networks return logits by
construction, and ``model.outputs`` other than logits is refused for them.

How a final sigmoid is recognised: its values all lie in (0, 1), but so do a fair share of
untrained logit networks' (a small output spread around a positive bias: 3-30 % of random
initialisations on the first 64 rows of breast_cancer), so the values alone would refuse
good models. The forward is therefore traced (``TorchFunctionMode``: every torch function
called, and which tensor it produced), and the last operation that changed the values (not
a view, squeeze or dtype change) must be a sigmoid. A softmax is recognised by its values
(rows of >= 2 outputs, non-negative, summing to 1), which logits never show.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from deepfit.data.batches import eval_batches
from deepfit.data.images.imageset import take_rows
from deepfit.errors import ModelError
from deepfit.models.registry import IMAGE_MODELS, torchvision_name

TABLE_ROWS, IMAGE_ROWS = 64, 16
_SIGMOIDS = {"sigmoid", "sigmoid_", "special_expit", "expit", "hardsigmoid"}
_SOFTMAXES = {"softmax", "_softmax", "log_softmax", "_log_softmax"}
# Operations that move, reshape or re-type values without changing them.
_SAME_VALUES = {"view", "reshape", "squeeze", "squeeze_", "unsqueeze", "unsqueeze_", "flatten",
                "contiguous", "float", "double", "half", "to", "type", "clone", "__getitem__",
                "view_as", "reshape_as", "expand", "expand_as", "detach", "cpu", "cuda"}
_TOL = 1e-3


def users_own(model_name: str) -> bool:
    """True for a ``package.module:Class`` model or a name added with ``register_model``."""
    return (model_name not in ("auto", "mlp") + IMAGE_MODELS
            and torchvision_name(model_name) is None)


def check_outputs(model: nn.Module, X: Any, task: str, outputs: str, model_name: str,
                  device: torch.device, inputs: Optional[Callable[..., torch.Tensor]] = None,
                  key: str = "model.outputs") -> None:
    """Refuse, in one line, a network whose outputs contradict ``outputs``.

    Args:
        model: the network, moved to ``device`` here (as the trainer would).
        X: the training inputs (a tensor, or stored images with ``inputs`` making them
            network input).
        task: binary, multiclass, multilabel or regression (not checked).
        outputs: logits, probabilities or log_probabilities.
        model_name: the configured model (``users_own`` decides whether it is checked).
        key: how the setting is spelled to this user (``outputs`` in the scikit-learn face).
    """
    if not users_own(model_name):
        if outputs != "logits":
            raise ModelError(f"{key}={outputs} applies to your own nn.Module only; "
                             f"'{model_name}' returns logits: leave {key}=logits")
        return
    if len(X) == 0:
        return
    traced = _first_outputs(model, X, device, inputs)
    if traced is None:  # the forward failed or returned no tensor: the trainer says why
        return
    out, last_op, rows = traced
    if out.ndim == 3 and not getattr(model, "ensemble_outputs", False):
        raise ModelError(f"model {type(model).__name__} returns shape {tuple(out.shape)}: "
                         "deepfit reads (batch, k, outputs) as k ensemble members (the loss "
                         "and the probabilities are their means) only from a module that says "
                         "so with the attribute ensemble_outputs = True; set it, or return "
                         "(batch, outputs)")
    if task == "regression":
        return
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2 or not torch.isfinite(out).all():
        return  # a wrong shape, or NaN, is the trainer's to report
    problem = _mismatch(out.double(), last_op, task, outputs, key)
    if problem:
        seen = f"the first {rows} training {'images' if inputs is not None else 'rows'}"
        raise ModelError(f"model {type(model).__name__}: {problem.format(seen=seen)}")


def _mismatch(out: torch.Tensor, last_op: Optional[str], task: str, outputs: str,
              key: str) -> Optional[str]:
    """What contradicts ``outputs``, with ``{seen}`` for the rows looked at; None if fine."""
    lo, hi = float(out.min()), float(out.max())
    span = f"{_num(lo)} to {_num(hi)}"
    k = out.shape[1]
    sums = out.sum(dim=1)
    softmax_rows = k >= 2 and lo >= 0 and bool(((sums - 1).abs() <= _TOL).all())
    if last_op in _SOFTMAXES and k == 1 and hi - lo <= 1e-6:
        return (f"forward ends in a {last_op.lstrip('_')} over its single output, which is "
                f"always {_num(hi)} (on {{seen}}); a {task} model returns one logit per "
                f"{'label' if task == 'multilabel' else 'row'}: remove the softmax, or "
                f"replace it with a sigmoid and {_fix(key, 'probabilities')}")
    if outputs == "logits":
        if last_op in _SIGMOIDS:
            fix = (f"{_fix(key, 'probabilities')} or remove the final sigmoid"
                   if task != "multiclass" else "remove the final sigmoid (a multi-class "
                   "model returns logits), or replace it with torch.softmax(x, dim=1) and "
                   f"{_fix(key, 'probabilities')}")
            return (f"forward ends in a sigmoid (its outputs on {{seen}} all lie in (0, 1): "
                    f"{span}), but {key}=logits makes the loss apply another one and the model "
                    f"learns nothing; {fix}")
        fix = f"{_fix(key, 'probabilities')} or remove the final softmax"
        if softmax_rows and last_op not in ("log_softmax", "_log_softmax"):
            seen = (f"its outputs on {{seen}} are probabilities (each row of {k} is "
                    "non-negative and sums to 1: a softmax)")
        elif last_op in ("softmax", "_softmax"):
            seen = (f"forward ends in a softmax over the wrong dimension (the rows of its "
                    f"outputs on {{seen}} sum to {_num(float(sums.min()))} to "
                    f"{_num(float(sums.max()))}, not 1)")
            fix = ("remove the final softmax, or take it over the classes "
                   f"(torch.softmax(x, dim=1)) and {_fix(key, 'probabilities')}")
        else:
            return None
        return (f"{seen}, but {key}=logits makes the loss apply another softmax and the model "
                f"learns nothing; {fix}")
    if outputs == "probabilities":
        if lo < 0 or hi > 1:
            return (f"{key}=probabilities, but its outputs on {{seen}} run from {span}, "
                    f"outside [0, 1]: they are not probabilities; {_fix(key, 'logits')} for raw "
                    f"scores, or end forward with a {_squash(task)}")
        if task == "multiclass" and not softmax_rows:
            return (f"{key}=probabilities, but the rows of its {k} outputs on {{seen}} sum to "
                    f"{_num(float(sums.min()))} to {_num(float(sums.max()))}, not 1; end "
                    f"forward with torch.softmax(x, dim=1), or {_fix(key, 'logits')}")
        return None
    # log_probabilities (multi-class only: the task head refuses it elsewhere)
    if hi > _TOL:
        return (f"{key}=log_probabilities, but its outputs on {{seen}} reach {_num(hi)}; "
                f"log-probabilities are <= 0: end forward with torch.log_softmax(x, dim=1), or "
                f"{_fix(key, 'logits')}")
    mass = out.exp().sum(dim=1)
    if task == "multiclass" and not bool(((mass - 1).abs() <= _TOL).all()):
        return (f"{key}=log_probabilities, but exp() of its rows of {k} outputs on {{seen}} "
                f"sums to {_num(float(mass.min()))} to {_num(float(mass.max()))}, not 1: they "
                f"are not log-probabilities; end forward with torch.log_softmax(x, dim=1), or "
                f"{_fix(key, 'logits')}")
    return None


def _fix(key: str, value: str) -> str:
    if key == "model.outputs":
        return f'set model.outputs={value} (from Python: outputs="{value}")'
    return f'set {key}="{value}"'


def _squash(task: str) -> str:
    return "softmax (torch.softmax(x, dim=1))" if task == "multiclass" else "sigmoid"


def _num(value: float) -> str:
    return f"{value:.3g}"


class _Trace(TorchFunctionMode):
    """Records, for every tensor a torch function returns, that function's name and the
    record of its first tensor argument: the chain of operations that made the output."""

    def __init__(self) -> None:
        super().__init__()
        self.made: dict[int, tuple[str, Any]] = {}
        self.alive: list[torch.Tensor] = []  # keeps ids unique while the trace is read

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: Optional[dict] = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor):
            source = next((a for a in args if isinstance(a, torch.Tensor)), None)
            parent = self.made.get(id(source)) if source is not None else None
            self.made[id(out)] = (getattr(func, "__name__", ""), parent)
            self.alive.append(out)
        return out

    def last_op(self, out: torch.Tensor) -> Optional[str]:
        """The last operation that changed the values of ``out`` (None: not traced)."""
        record = self.made.get(id(out))
        while record is not None and record[0] in _SAME_VALUES:
            record = record[1]
        return None if record is None else record[0]


def _first_outputs(model: nn.Module, X: Any, device: torch.device,
                   inputs: Optional[Callable[..., torch.Tensor]]
                   ) -> Optional[tuple[torch.Tensor, Optional[str], int]]:
    """(outputs, the last value-changing operation, rows) of the first training rows; None
    when the forward fails or returns something else than a tensor."""
    rows = min(len(X), IMAGE_ROWS if inputs is not None else TABLE_ROWS)
    if isinstance(X, torch.Tensor):
        probe = X[:rows].to(device)
    else:  # streamed image files: decode just these, in this process
        probe = next(eval_batches(take_rows(X, np.arange(rows)), rows, device, workers=0))
    model.to(device)
    modes = {m: m.training for m in model.modules()}
    forked = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    trace = _Trace()
    try:
        with torch.random.fork_rng(devices=forked), torch.no_grad():
            if inputs is not None:
                probe = inputs(probe, train=False)
            model.eval()
            with trace:
                out = model(probe)
    except Exception:  # noqa: BLE001 - the trainer's own check names the failure
        return None
    finally:
        for module, training in modes.items():
            module.training = training
    if not isinstance(out, torch.Tensor) or not math.prod(out.shape):
        return None
    return out.detach().float(), trace.last_op(out), rows
