"""Exact resume: an interrupted run continued with `deepfit resume` ends with the same
weights, bit for bit on CPU, as a run that was never interrupted."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from interrupts import SignalAt, SignalAtStep

import deepfit
from deepfit.errors import RunError, TrainingInterrupted
from deepfit.train.callbacks import Callback
from deepfit.train.checkpoint import load_checkpoint, load_latest

# Dropout on, so the torch RNG matters; no early stop, so every epoch runs.
SETTINGS = {"train.progress": False, "eval.plots": False, "eval.report": False,
            "eval.bootstrap": 0, "train.epochs": 12, "train.early_stopping": False,
            "model.dropout": 0.3, "model.hidden": [16], "train.schedule": "cosine"}


def _weights(path):
    return load_checkpoint(path / "checkpoints" / "last.pt")["model"]


def test_sigterm_then_resume_is_bit_identical(tmp_path):
    whole = deepfit.train(data="wine", out=tmp_path, name="whole", **SETTINGS)
    with pytest.raises(TrainingInterrupted, match=r"interrupted in epoch 6 after step 1 of 4; "
                                                  r"all of it is saved: continue with "
                                                  r"'deepfit resume"):
        deepfit.train(data="wine", out=tmp_path, name="cut", callbacks=[SignalAt(5)],
                      **SETTINGS)
    saved = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert saved["epoch"] == 5 and saved["mid_epoch"]["step"] == 1  # inside epoch 6
    assert "epochs: 12" in saved["config"] and saved["versions"]["torch"] == torch.__version__
    assert not (tmp_path / "cut" / "summary.json").exists()
    resumed = deepfit.resume(tmp_path / "cut")
    a, b = _weights(whole.path), _weights(resumed.path)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history.column("train_loss") == whole.history.column("train_loss")
    assert resumed.metrics["test"] == whole.metrics["test"]
    with pytest.raises(RunError, match="already finished"):
        deepfit.resume(tmp_path / "cut")


def test_signal_handlers_are_restored_after_training(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    deepfit.train(data="iris", out=tmp_path, **{**SETTINGS, "train.epochs": 2})
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("global_step, schedule, warmup", [
    (1, "cosine", 0), (7, "cosine", 0), (7, "onecycle", 0), (7, "plateau", 0),
    (6, "cosine", 3)])  # inside the warm-up: it ramps to train.lr, not to the saved rate
def test_interrupt_inside_an_epoch_resumes_inside_it(tmp_path, global_step, schedule, warmup):
    # onecycle also cycles Adam's beta1: building it again must not reset the saved values.
    settings = {**SETTINGS, "train.schedule": schedule, "train.warmup_epochs": warmup}
    whole = deepfit.train(data="wine", out=tmp_path, name="whole", **settings)
    with pytest.raises(TrainingInterrupted):
        deepfit.train(data="wine", out=tmp_path, name="cut", callbacks=[SignalAtStep(global_step)],
                      **settings)
    resumed = deepfit.resume(tmp_path / "cut")
    a, b = _weights(whole.path), _weights(resumed.path)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history.column("train_loss") == whole.history.column("train_loss")


def test_checkpoint_every_n_steps_resumes_bit_identically(tmp_path):
    settings = {**SETTINGS, "train.checkpoint_every": 3}
    whole = deepfit.train(data="wine", out=tmp_path, name="whole", **settings)

    class Crash(Callback):  # dies like a power cut: no checkpoint of its own
        def on_batch_end(self, trainer, step, loss, **kwargs):
            if trainer.global_step == 10:
                raise SystemExit("power cut")

    with pytest.raises(SystemExit):
        deepfit.train(data="wine", out=tmp_path, name="cut", callbacks=[Crash()], **settings)
    saved = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert saved["global_step"] == 9 and saved["mid_epoch"]["step"] == 1
    resumed = deepfit.resume(tmp_path / "cut")
    a, b = _weights(whole.path), _weights(resumed.path)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_needs_a_checkpoint(tmp_path):
    import shutil

    with pytest.raises(TrainingInterrupted):
        deepfit.train(data="iris", out=tmp_path, name="r", callbacks=[SignalAt(1)], **SETTINGS)
    shutil.rmtree(tmp_path / "r" / "checkpoints")
    with pytest.raises(RunError, match="no checkpoint to resume from"):
        deepfit.resume(tmp_path / "r")


def _start(tmp_path, name, *extra):
    cmd = [sys.executable, "-m", "deepfit", "train", "--data", "wine", "--out", str(tmp_path),
           "--name", name, "--quiet"] + [f"{k}={v}" for k, v in SETTINGS.items()
                                         if k != "train.epochs"] + ["train.epochs=30", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epoch(path, epoch, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if _epoch(path) >= epoch:
            return
        time.sleep(0.05)
    raise AssertionError("training did not reach the epoch in time")


def test_killed_processes_resume_to_the_uninterrupted_weights(tmp_path):
    """SIGTERM (clean stop) and SIGKILL (no warning, possibly mid-write) at random moments."""
    reference = _start(tmp_path, "reference")  # runs beside the victim
    rng = np.random.default_rng(0)
    # The victim also checkpoints every 5 steps, so kills land inside epochs and during writes.
    proc = _start(tmp_path, "victim", "train.checkpoint_every=5")
    run = tmp_path / "victim"
    for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGKILL):
        _wait_for_epoch(run, int(rng.integers(1, 4)) + _epoch(run), proc)
        time.sleep(float(rng.uniform(0, 0.05)))
        proc.send_signal(sig)
        code = proc.wait(timeout=120)
        if sig == signal.SIGTERM:
            assert code == 130 and "deepfit resume" in proc.stderr.read()
        load_latest(run / "checkpoints" / "last.pt")  # a complete checkpoint always survives
        proc = subprocess.Popen([sys.executable, "-m", "deepfit", "resume", str(run)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    a, b = _weights(tmp_path / "reference"), _weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not list((run / "checkpoints").glob("*.tmp"))
    assert not list((run / "checkpoints").glob(".*.new"))


def _epoch(run):
    try:
        return load_latest(run / "checkpoints" / "last.pt")[0]["epoch"]
    except RunError:
        return 0


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    whole = deepfit.train(data="wine", out=tmp_path, name="whole", **SETTINGS)
    with pytest.raises(TrainingInterrupted):
        deepfit.train(data="wine", out=tmp_path, name="cut", callbacks=[SignalAt(6)],
                      **SETTINGS)
    ck = tmp_path / "cut" / "checkpoints"
    # last.pt: inside epoch 7 (written when the signal was seen); last.prev.pt: epoch 6's end.
    assert load_checkpoint(ck / "last.prev.pt")["epoch"] == 6
    (ck / "last.pt").write_bytes(b"\x00" * 100)  # e.g. a disk error
    resumed = deepfit.resume(tmp_path / "cut")
    assert "falling back to the previous one (epoch 6)" in capsys.readouterr().err
    a, b = _weights(whole.path), _weights(resumed.path)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_changed_data(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=120), "y": np.arange(120) % 2})
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(TrainingInterrupted):
        deepfit.train(data=str(path), out=tmp_path, name="r", callbacks=[SignalAt(2)], **SETTINGS)
    frame.assign(x=frame["x"] * 10).to_csv(path, index=False)
    with pytest.raises(RunError, match="changed since the run started"):
        deepfit.resume(tmp_path / "r")
