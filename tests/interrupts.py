"""Callbacks that interrupt a run the way a scheduler or Ctrl-C would: this process sends
itself SIGTERM at a chosen point, and the trainer must stop cleanly there."""

from __future__ import annotations

import os
import signal

from deepfit.train.callbacks import Callback


class SignalAt(Callback):
    """SIGTERM at the end of epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs, **kwargs):
        if epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGTERM)


class SignalAtStep(Callback):
    """SIGTERM at the end of global optimiser step ``step`` (inside an epoch)."""

    def __init__(self, step):
        self.step = step

    def on_batch_end(self, trainer, step, loss, **kwargs):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)
