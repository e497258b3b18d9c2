"""The task decides the output head, the loss, and how outputs become scores.

| task       | outputs            | default loss            | scores                    |
|------------|--------------------|-------------------------|---------------------------|
| binary     | 1 logit            | BCE with logits         | P(positive), shape (B,)   |
| multiclass | K logits           | cross-entropy           | class probabilities (B,K) |
| regression | 1 value            | MSE                     | the value, shape (B,)     |
| multilabel | L logits           | BCE with logits, per label | P(label) each, (B, L)  |

A model may return ``(B, k, outputs)``: the outputs of k ensemble members (TabM). Its loss
is the mean of the members' losses and its scores are the mean of the members' probabilities
(or values) -- not the probabilities of the mean logit.

A model whose ``forward`` already ends in a sigmoid / softmax / log-softmax (the way the
lectures write them) declares it with ``model.outputs``; the loss and scores follow, so
``predict_proba`` is always consistent with the head.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from deepfit.errors import ConfigError, ModelError, one_of

COMPATIBLE_LOSSES = {
    "binary": ("bce",),
    "multiclass": ("cross_entropy", "nll"),
    "regression": ("mse", "l1", "huber"),
    "multilabel": ("bce",),
}
_EPS = 1e-7


class TaskHead:
    """Loss and scores for one task.

    Example:
        >>> head = TaskHead("binary")
        >>> float(head.loss(torch.zeros(2, 1), torch.tensor([0.0, 1.0])))  # doctest: +ELLIPSIS
        0.693...
    """

    def __init__(self, task: str, loss: str = "auto", outputs: str = "logits",
                 class_weights: Optional[torch.Tensor] = None) -> None:
        allowed = COMPATIBLE_LOSSES[task]
        self.loss_name = allowed[0] if loss == "auto" else loss
        if self.loss_name not in allowed:
            raise ConfigError(f"train.loss={loss!r} does not fit a {task} task; use one of "
                              f"{one_of(('auto',) + allowed)}")
        if task == "multilabel" and outputs == "log_probabilities":
            raise ConfigError("model.outputs=log_probabilities does not fit a multi-label task; "
                              "use logits or probabilities (one sigmoid per label)")
        if task == "regression" and outputs != "logits":
            raise ConfigError(f"model.outputs={outputs!r} makes no sense for regression; a "
                              "regression model returns raw values (model.outputs=logits)")
        self.task, self.outputs, self.class_weights = task, outputs, class_weights

    def describe(self) -> str:
        names = {"bce": "binary cross-entropy", "cross_entropy": "cross-entropy",
                 "nll": "negative log-likelihood", "mse": "mean squared error",
                 "l1": "mean absolute error (L1)", "huber": "Huber"}
        text = names[self.loss_name]
        if self.task == "binary" and self.outputs == "logits":
            text += " with logits (sigmoid inside the loss)"
        if self.class_weights is not None:
            text += ", balanced class weights"
        return text

    def check_output(self, out: torch.Tensor, batch: int, n_outputs: int) -> None:
        """Fail early, naming the shapes, when a model's output does not fit the task."""
        want = (batch, n_outputs)
        ok = tuple(out.shape) in ((batch, n_outputs),) + (((batch,),) if n_outputs == 1 else ())
        ok = ok or (out.ndim == 3 and out.shape[0] == batch and out.shape[2] == n_outputs)
        if not ok:
            raise ModelError(f"the model returns shape {tuple(out.shape)} for a batch of {batch}; "
                             f"a {self.task} task needs {want}")

    def _flat(self, out: torch.Tensor) -> torch.Tensor:
        return out if self.task in ("multiclass", "multilabel") else out.reshape(-1)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if out.ndim == 3:  # k members: each row once per member, so the mean of their losses
            out, y = out.flatten(0, 1), y.repeat_interleave(out.shape[1], dim=0)
        out = self._flat(out).float()
        if self.task == "regression":
            fn = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}[self.loss_name]
            return fn(out, y)
        if self.task == "multilabel":
            if self.outputs == "logits":
                return F.binary_cross_entropy_with_logits(out, y)
            return F.binary_cross_entropy(out.clamp(_EPS, 1 - _EPS), y)
        if self.task == "binary":
            if self.outputs == "logits":
                per = F.binary_cross_entropy_with_logits(out, y, reduction="none")
            elif self.outputs == "probabilities":
                per = F.binary_cross_entropy(out.clamp(_EPS, 1 - _EPS), y, reduction="none")
            else:
                raise ModelError("model.outputs=log_probabilities needs a multiclass task")
            if self.class_weights is None:
                return per.mean()
            w = self.class_weights[y.long()]
            return (w * per).sum() / w.sum()
        if self.outputs == "logits" and self.loss_name == "cross_entropy":
            return F.cross_entropy(out, y, weight=self.class_weights)
        return F.nll_loss(self._log_probs(out), y, weight=self.class_weights)

    def _log_probs(self, out: torch.Tensor) -> torch.Tensor:
        if self.outputs == "logits":
            return F.log_softmax(out, dim=1)
        if self.outputs == "probabilities":
            return out.clamp_min(_EPS).log()
        return out

    @torch.no_grad()
    def scores(self, out: torch.Tensor) -> torch.Tensor:
        """P(positive) (B,), class probabilities (B, K), or regression values (B,)."""
        if out.ndim == 3:  # k members: the mean of their probabilities (or values)
            each = self.scores(out.flatten(0, 1))
            return each.reshape(out.shape[0], out.shape[1], *each.shape[1:]).mean(dim=1)
        out = self._flat(out).float()
        if self.task == "regression":
            return out
        if self.task in ("binary", "multilabel"):
            return torch.sigmoid(out) if self.outputs == "logits" else out
        return self._log_probs(out).exp()

    @staticmethod
    def predict(task: str, scores: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
        if task in ("binary", "multilabel"):
            return (scores >= threshold).long()
        if task == "multiclass":
            return scores.argmax(dim=1)
        return scores


def balanced_class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``n / (k * count_c)`` per class, from the training labels (scikit-learn's 'balanced')."""
    counts = torch.bincount(y.long(), minlength=n_classes).float()
    return len(y) / (n_classes * counts.clamp_min(1.0))
