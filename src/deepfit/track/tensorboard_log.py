"""``track.tensorboard=true``: TensorBoard event files in the run's ``tensorboard/`` folder.

Written through ``torch.utils.tensorboard.SummaryWriter``, read by ``tensorboard --logdir
runs/`` (every run a line of its own):

- scalars, one point per epoch: every column of ``history.csv`` under its own name
  (``train_loss``, ``val_loss``, ``train_accuracy``, ``val_accuracy``, ``lr``, ``time``);
- histograms per epoch: ``weights/<parameter>`` and ``gradients/<parameter>`` (the epoch's
  last step's gradients; non-finite values left out);
- the model graph (traced once on two training rows; a model that cannot be traced gets one
  warning and no graph);
- image runs: ``images/train`` (the first training images as stored) and
  ``images/train_augmented`` (the same after the run's augmentation), once;
- the final test metrics and their interval bounds, at the last epoch's step.

Nothing here changes the run: the graph is traced in eval mode without gradients, with the
random state saved and restored, and the augmented grid draws from its own generator.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from deepfit.data.batches import eval_batches
from deepfit.data.images.imageset import take_rows
from deepfit.errors import DeepfitWarning
from deepfit.track.guard import Tracker, one_line, quiet
from deepfit.train.history import EPOCH

GRID_IMAGES = 32  # training images in each grid


class TensorBoardLog(Tracker):
    """Writes one run's TensorBoard events to ``folder``.

    ``sample``: the training inputs as stored (a tensor, or streamed ``ImageFiles``), for the
    graph and the image grids; ``inputs``: the run's image inputs (scale, augment, normalise)
    or None for a table; ``seed``: seeds the augmented grid's own generator.
    """

    def __init__(self, folder: Path, sample: Any, inputs: Any = None, seed: int = 0) -> None:
        super().__init__()
        self.folder, self.sample, self.inputs, self.seed = Path(folder), sample, inputs, seed
        self.label = f"TensorBoard in {self.folder}"
        self.writer: Any = None
        self.started = False  # the graph and the grids are written once, not again on resume
        self.last_epoch = 0

    # -- hooks ----------------------------------------------------------------------------
    def on_train_begin(self, trainer: Any, **kwargs: Any) -> None:
        self.last_epoch = trainer.epoch  # > 0 when resumed
        self.writer = self.guarded("opening the log", self._open)
        if self.writer is not None and not self.started:
            self.guarded("writing the image grids", self._images)
            self._graph(trainer)
            self.started = True
        self.sample = None  # the training data are not held any longer than needed

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        self.last_epoch = epoch
        self.guarded("writing epoch " + str(epoch), self._epoch, trainer.model, epoch, logs)

    def state_dict(self) -> dict:
        return {"started": self.started} if self.started else {}

    def load_state_dict(self, state: dict) -> None:
        self.started = bool(state.get("started", False))

    # -- the run's end ----------------------------------------------------------------------
    def finish(self, metrics: dict[str, float], files: list,
               tags: Optional[dict[str, str]] = None) -> None:
        def write() -> None:
            for name, value in metrics.items():
                self.writer.add_scalar(name, value, self.last_epoch)
        if self.writer is not None:
            self.guarded("writing the test metrics", write)
        self.end("FINISHED")

    def close(self, status: str) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()

    # -- pieces ---------------------------------------------------------------------------
    def _open(self) -> Any:
        from torch.utils.tensorboard import SummaryWriter
        self.folder.mkdir(parents=True, exist_ok=True)
        return SummaryWriter(log_dir=str(self.folder))

    def _epoch(self, model: torch.nn.Module, epoch: int, logs: dict) -> None:
        if self.writer is None:
            return
        for name, value in logs.items():
            if name != EPOCH and isinstance(value, (int, float)):
                self.writer.add_scalar(name, value, epoch)
        for name, param in model.named_parameters():
            _histogram(self.writer, f"weights/{name}", param, epoch)
            if param.grad is not None:
                _histogram(self.writer, f"gradients/{name}", param.grad, epoch)
        self.writer.flush()

    def _first_rows(self, n: int) -> torch.Tensor:
        rows = np.arange(min(n, len(self.sample)))
        return next(eval_batches(take_rows(self.sample, rows), len(rows), torch.device("cpu"),
                                 workers=0))

    def _images(self) -> None:
        if self.inputs is None:
            return
        images = self._first_rows(GRID_IMAGES).float().div_(255.0)
        self.writer.add_images("images/train", images, 0)
        augmenter = getattr(self.inputs, "augmenter", None)
        if augmenter is not None:
            generator = torch.Generator().manual_seed(self.seed)
            self.writer.add_images("images/train_augmented",
                                   augmenter(images.clone(), generator).clamp(0, 1), 0)

    def _graph(self, trainer: Any) -> None:
        """The model graph, traced on two training rows as the network sees them."""
        model = trainer.model
        try:
            example = self._first_rows(2).to(trainer.device)
            if self.inputs is not None:
                example = self.inputs(example, train=False)
            was_training = model.training
            devices = [trainer.device] if trainer.device.type == "cuda" else []
            try:
                model.eval()
                with quiet(), torch.no_grad(), torch.random.fork_rng(devices=devices):
                    self.writer.add_graph(model, example)
            finally:
                model.train(was_training)
        except Exception as exc:  # a model the tracer cannot follow: no graph, the rest goes on
            warnings.warn(f"{self.label}: the model graph could not be traced "
                          f"({one_line(exc)}); no graph is written", DeepfitWarning,
                          stacklevel=2)


def _histogram(writer: Any, tag: str, values: torch.Tensor, epoch: int) -> None:
    flat = values.detach().float().flatten().cpu()
    flat = flat[torch.isfinite(flat)]
    if flat.numel():
        writer.add_histogram(tag, flat, epoch)


def tensorboard_missing() -> Optional[str]:
    """None when TensorBoard can be imported, else why not."""
    try:
        import torch.utils.tensorboard  # noqa: F401 (raises without the tensorboard package)
    except ImportError as exc:
        return one_line(exc)
    return None
