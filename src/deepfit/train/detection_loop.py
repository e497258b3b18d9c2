"""The training loop for object detectors, on ``Trainer``'s machinery.

A detector takes lists of images and target dicts, returns its losses (a dict) in training
mode and its detections in evaluation mode, and its validation score (mAP@0.5) needs the
evaluation layer, which the train layer cannot import. ``DetectionTrainer`` is the seam:
it keeps everything of ``Trainer`` but the loop over data (optimiser, schedule, AMP and
the gradient scaler, the non-finite checks, the built-in callbacks: best model, early
stopping on ``val_map50``, checkpoints, exact resume, progress) and replaces the loop with
one over a ``DetectionDataset``, scored by ``score``, a callable handed down by the
pipeline. Classification's loop is untouched.

Exact resume: the epoch's image order comes from the trainer's seeded generator (saved in
checkpoints); each image's augmentation is seeded from (seed, epoch, image) in the
dataset; the DataLoader has its own generator, so it draws nothing from torch's global one
(which the detector's proposal sampling uses, and checkpoints save).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from deepfit.data.detection.dataset import collate_detection
from deepfit.errors import ModelError, TrainingInterrupted
from deepfit.models.inference import autocast
from deepfit.train.history import EPOCH, LR, TIME, TRAIN_LOSS
from deepfit.train.loop_parts import stop_signals
from deepfit.train.optim import Schedule
from deepfit.train.trainer import Trainer


@torch.no_grad()
def detect(model: nn.Module, data: Any, batch_size: int, device: torch.device,
           precision: str = "fp32", workers: Optional[int] = None
           ) -> list[dict[str, torch.Tensor]]:
    """``model``'s detections (boxes in model-input pixels, 1-based labels, scores) per
    image of the dataset ``data``, on the CPU, in the dataset's order."""
    was = model.training
    model.eval()
    out: list[dict[str, torch.Tensor]] = []
    n, size = len(data), max(1, batch_size)
    batches = [list(range(i, min(i + size, n))) for i in range(0, n, size)]
    loader = DataLoader(data, batch_sampler=batches, collate_fn=collate_detection,
                        num_workers=workers or 0, generator=torch.Generator())
    try:
        for images, _ in loader:
            with autocast(device, precision):
                found = model([im.to(device) for im in images])
            out += [{k: v.detach().cpu() if k == "labels" else v.detach().float().cpu()
                     for k, v in f.items()} for f in found]
    finally:
        model.train(was)
    return out


class _NoHead:
    """Detectors compute their own losses: the trainer's task head is unused."""

    def loss(self, *args: Any) -> torch.Tensor:  # pragma: no cover - never called
        raise RuntimeError("a detector computes its own loss")


class DetectionTrainer(Trainer):
    """``Trainer`` for torchvision detectors (see the module docstring).

    Args:
        score: ``(detections per validation image, in model-input pixels) -> mAP@0.5``.
        Other arguments as ``Trainer``'s (task ``detection``, no task head, no image inputs).
    """

    def __init__(self, model: nn.Module, cfg: Any, *, score: Callable[[list], float],
                 **kwargs: Any) -> None:
        super().__init__(model, _NoHead(), cfg, task="detection", n_outputs=0, **kwargs)
        self.score = score

    def fit(self, train: Any, val: Any, *_: Any) -> Any:  # type: ignore[override]
        """Train on the ``DetectionDataset`` ``train`` (seeded), validate on ``val``."""
        cuts = self.strategy.batch_slices(len(train), self.cfg.batch_size)
        self.steps_per_epoch = len(cuts)
        self.schedule = Schedule(self.cfg, self.optimizer, len(cuts))
        if self._pending is not None:
            self._apply_pending()
        self._check_detector(train)
        with stop_signals() as interrupted:
            self._detection_loop(train, val, cuts, interrupted)
        return self.history

    def _loader(self, data: Any, batches: Sequence[list[int]]) -> DataLoader:
        return DataLoader(data, batch_sampler=batches, collate_fn=collate_detection,
                          num_workers=self.workers or 0, generator=torch.Generator())

    def _detection_loop(self, train: Any, val: Any, cuts: list[slice], interrupted: Any) -> None:
        batch_begin = self.callbacks.bound("on_batch_begin")
        batch_end = self.callbacks.bound("on_batch_end")
        self.callbacks.fire("on_train_begin", self)
        for epoch in range(self.epoch + 1, self.cfg.epochs + 1):
            self.epoch = epoch
            train.epoch = epoch
            self.callbacks.fire("on_epoch_begin", self, epoch=epoch)
            started = time.perf_counter()
            self.model.train()
            losses = torch.empty(len(cuts))
            outs: list[torch.Tensor] = []
            order, first = self._epoch_start(len(train), losses, outs)
            order = order.cpu()
            self.partial = {"order": order, "losses": losses, "outs": outs, "step": first}
            batches = [order[c].tolist() for c in cuts[first:]]
            for step, (images, targets) in zip(range(first, len(cuts)),
                                               self._loader(train, batches)):
                batch_begin(self, step=step)
                loss = self._detection_step(images, targets, step, epoch)
                self.global_step += 1
                losses[step] = loss
                outs.append(torch.zeros(0))  # no per-row outputs (the checkpoint keeps a list)
                self.partial["step"] = step + 1
                batch_end(self, step=step, loss=losses[step])
                if interrupted():
                    raise TrainingInterrupted(epoch - 1)
            self.partial = None
            sizes = torch.tensor([float(c.stop - c.start) for c in cuts])
            logs = {EPOCH: epoch, TRAIN_LOSS: self._epoch_loss(losses, sizes),
                    f"val_{self.main}": self.validate_detections(val) if len(val) else None,
                    LR: self.schedule.lr, TIME: time.perf_counter() - started}
            self.history.add(logs)
            self.callbacks.fire("on_epoch_end", self, epoch=epoch, logs=logs)
            if self.should_stop:
                break
        self.callbacks.fire("on_train_end", self)

    def _detection_step(self, images: list, targets: list, step: int,
                        epoch: int) -> torch.Tensor:
        """One optimiser step: the sum of the detector's losses, scaled under fp16."""
        self.optimizer.zero_grad(set_to_none=True)
        images = [im.to(self.device) for im in images]
        targets = [{k: v.to(self.device) for k, v in t.items()} for t in targets]
        with autocast(self.device, self.cfg.precision):
            parts = self.forward(images, targets)
        loss = sum(parts.values())
        self.scaler.scale(loss).backward()
        norm = None
        if self.cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        total = loss.detach().float().cpu()
        if self._check_grads and not self._finite(total, norm, step, epoch):
            self.optimizer.zero_grad(set_to_none=True)
            return torch.tensor(float("nan"))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return total

    def predict_detections(self, data: Any) -> list[dict[str, torch.Tensor]]:
        """The detector's output per image of ``data`` (see ``detect``)."""
        return detect(self.model, data, self.eval_batch_size, self.device,
                      self.cfg.precision, self.workers)

    def validate_detections(self, val: Any) -> float:
        return float(self.score(self.predict_detections(val)))

    def _check_detector(self, train: Any) -> None:
        """One training image through the detector in evaluation mode: a model that does
        not take torchvision's detection input is one clear line."""
        image, _ = train[0]
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model([image.to(self.device)])
        except Exception as exc:
            raise ModelError(f"the detector failed on an image of shape {tuple(image.shape)}: "
                             f"{str(exc).splitlines()[0]}") from None
        finally:
            self.model.train(was)
        if not (isinstance(out, list) and out and isinstance(out[0], dict)):
            raise ModelError("the detector's forward in evaluation mode must return a list of "
                             f"dicts (boxes, labels, scores), not {type(out).__name__}")

