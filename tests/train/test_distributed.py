"""Data-parallel training on CPU processes (torchrun, gloo), against one process.

Two processes with the same global batch train to the weights of one process: the same
arithmetic, summed in another order, so equal to float32 rounding (atol 1e-6 on weights
of order 0.1-1). A run killed in one process resumes to the uninterrupted run's weights,
also on another number of processes. Each torchrun start costs a few seconds: the runs
are small and shared by the tests through module fixtures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from deepfit.train.export import load_weights

# An odd number of rows and a batch that does not divide them: uneven shares per process.
# Eight epochs of batch 8: long enough to kill a process midway (the resume test compares
# with the fixture's two-process run, so every run here shares these settings).
ROWS, EPOCHS = 301, 8
COMMON = ["--epochs", str(EPOCHS), "--quiet", "model.dropout=0", "eval.plots=false",
          "eval.report=false", "eval.bootstrap=50", "train.early_stopping=false",
          "train.batch_size=8"]


def _deepfit(args, cwd, processes=1, wait=True, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if processes == 1:
        command = [sys.executable, "-m", "deepfit", *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={processes}", "-m", "deepfit", *args]
    if not wait:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_weights(run / "model.safetensors")


def _close(a: dict, b: dict, atol: float) -> float:
    assert a.keys() == b.keys()
    gap = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert gap <= atol, gap
    return gap


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, 5))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame["y"] = np.where(X[:, 0] + X[:, 1] > 0, "a", "b")
    frame.to_csv(root / "t.csv", index=False)
    return root


@pytest.fixture(scope="module")
def one_and_two(table):
    one = _deepfit(["train", "--data", "t.csv", "--name", "one", *COMMON], table)
    assert one.returncode == 0, one.stderr[-3000:]
    # --devices 2: deepfit starts torchrun itself; only rank 0 prints.
    two = _deepfit(["train", "--data", "t.csv", "--name", "two", "--devices", "2", *COMMON],
                   table)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("Results") == 1
    return table / "runs" / "one", table / "runs" / "two"


def test_two_processes_train_the_weights_of_one(one_and_two):
    one, two = one_and_two
    _close(_weights(one), _weights(two), atol=1e-6)
    h1, h2 = (pd.read_csv(r / "history.csv") for r in one_and_two)
    assert np.allclose(h1["train_loss"], h2["train_loss"], atol=1e-6)
    assert list(h1["train_accuracy"]) == list(h2["train_accuracy"])  # every row, counted once
    summary = json.loads((two / "summary.json").read_text())
    assert summary["training"]["processes"] == 2
    assert summary["training"]["device"] == "2 processes (cpu, DDP)"
    assert summary["training"]["batch_size"] == 8  # the global batch, as configured


def test_metrics_of_two_processes_cover_the_whole_test_set_once(one_and_two):
    """Rank 0 evaluates the whole test set: the same rows and the same numbers as the run
    evaluated again in one process."""
    _, two = one_and_two
    metrics = json.loads((two / "metrics.json").read_text())
    predictions = pd.read_csv(two / "predictions.csv")
    run = deepfit.load(two)
    assert metrics["test"]["n"] == len(predictions) == predictions["id"].nunique()
    again = run.evaluate(pd.read_csv(two.parent.parent / "t.csv").iloc[predictions["id"]])
    assert again["accuracy"] == metrics["test"]["accuracy"]
    assert again["n"] == metrics["test"]["n"]


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _epoch_saved(run: Path) -> int:
    last = run / "checkpoints" / "last.pt"
    try:
        return int(torch.load(last, weights_only=True)["epoch"]) if last.is_file() else 0
    except Exception:  # being replaced right now
        return 0


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds torchrun's workers in /proc")
def test_a_killed_process_resumes_to_the_uninterrupted_weights_on_two_or_one(table,
                                                                             one_and_two):
    whole = one_and_two[1]  # the same settings on two processes, not interrupted
    victim = _deepfit(["train", "--data", "t.csv", "--name", "killed", *COMMON], table, 2,
                      wait=False)
    run = table / "runs" / "killed"
    deadline = time.time() + 180
    while _epoch_saved(run) < 2 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    workers = _children(victim.pid)
    assert victim.poll() is None and workers, "the run ended before it could be killed"
    os.kill(workers[-1], signal.SIGKILL)  # one rank dies; torchrun stops the other
    victim.communicate(timeout=120)
    assert victim.returncode != 0
    saved = _epoch_saved(run)
    assert 2 <= saved < EPOCHS
    copy = table / "runs" / "killed-on-one"
    subprocess.run(["cp", "-r", str(run), str(copy)], check=True)

    resumed = _deepfit(["resume", str(run)], table, 2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _close(_weights(run), _weights(whole), atol=1e-7)
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == list(range(1, EPOCHS + 1))

    on_one = _deepfit(["resume", str(copy)], table, 1)  # 2 processes -> 1
    assert on_one.returncode == 0, on_one.stderr[-3000:]
    _close(_weights(copy), _weights(whole), atol=1e-5)


@pytest.mark.parametrize("setting,message", [
    ({"checkpoint_every": 5}, "train.checkpoint_every is not supported on several processes"),
    ({"compile": True}, "train.compile is not supported on several processes"),
    ({"batch_size": 1}, "train.batch_size=1 is the batch of all 2 processes together")])
def test_what_several_processes_cannot_do_is_refused_in_one_line(setting, message):
    from deepfit.config import TrainConfig
    from deepfit.errors import ConfigError
    from deepfit.train.distributed import DataParallel

    strategy = DataParallel(torch.device("cpu"), rank=0, world_size=2)  # no group needed
    with pytest.raises(ConfigError, match=message):
        strategy.check(TrainConfig(**setting).resolved())


def test_shares_of_uneven_batches_weight_to_the_whole_batch_mean():
    """Three processes, 23 rows, batches of 8, 8, 7: every row is used once, and the
    weighted shares' means, averaged as DDP averages gradients, are each batch's mean."""
    from deepfit.train.distributed import DataParallel

    plans = [DataParallel(torch.device("cpu"), rank=r, world_size=3) for r in range(3)]
    cuts = [p.batch_slices(23, 8) for p in plans]
    orders = [p.epoch_order(23, torch.Generator().manual_seed(0)) for p in plans]
    values = torch.randn(23, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    whole = torch.randperm(23, generator=torch.Generator().manual_seed(0))
    used = []
    for step, cut in enumerate([slice(0, 8), slice(8, 16), slice(16, 23)]):
        shares = [orders[r][cuts[r][step]] for r in range(3)]
        used += [i for share in shares for i in share.tolist()]
        assert sorted(torch.cat(shares).tolist()) == sorted(whole[cut].tolist())
        combined = sum(plans[r].step_weight(step) * values[shares[r]].mean()
                       for r in range(3)) / 3
        assert float(combined) == pytest.approx(float(values[whole[cut]].mean()), abs=1e-12)
    assert sorted(used) == list(range(23))


def test_two_nodes_through_torchruns_rendezvous(one_and_two, table):
    """Two torchrun agents, one process each, meet through the c10d rendezvous as two
    nodes would (here both on 127.0.0.1): the same weights as one process."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2",
               "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
               "--rdzv-id=deepfit-test", "-m", "deepfit", "train", "--data", "t.csv", "--name",
               "nodes", *COMMON]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen(command, cwd=table, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [node.communicate(timeout=240) for node in nodes]
    assert all(node.returncode == 0 for node in nodes), [err[-2000:] for _, err in outputs]
    one, _ = one_and_two
    _close(_weights(one), _weights(table / "runs" / "nodes"), atol=1e-6)
