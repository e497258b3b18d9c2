#!/usr/bin/env python
"""Kill sweep: SIGKILL a training run at many random moments, resume it each time, and
check that it ends with the weights of a run that was never interrupted, bit for bit.

The long version of tests/train/test_resume.py::
test_killed_processes_resume_to_the_uninterrupted_weights.

    python tools/kill_sweep.py [--kills 20] [--epochs 200] [--seed 0] [--out DIR]
                               [--data wine] [--set key=value ...]

1. Train a reference run to the end in a subprocess (``python -m deepfit train``).
2. Start the same run as a "victim" and SIGKILL it N times. Each kill picks a moment:
   ``startup``  while the resumed process is still importing / loading (resumed ones only),
   ``random``   a random delay after the process has written its first checkpoint,
   ``write``    the moment a checkpoint write is in flight (a ``.tmp`` or staged ``.new``
                file exists in checkpoints/), plus a random sub-millisecond delay.
   After each kill the checkpoints folder is snapshotted and ``load_latest`` must read it;
   then ``python -m deepfit resume RUN`` continues.
3. The last resume runs to the end; its final weights (last.pt and best.pt) must equal the
   reference's bit for bit, and no temporary checkpoint file may be left behind.

Prints one line per kill and a summary with PASS or FAIL; exits 1 on failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deepfit.errors import RunError
from deepfit.train.checkpoint import load_checkpoint, load_latest

# Dropout on, so the torch RNG matters; no early stop, so every epoch runs (as in the test).
SETTINGS = {"train.progress": "false", "eval.plots": "false", "eval.report": "false",
            "eval.bootstrap": "0", "train.early_stopping": "false", "model.dropout": "0.3",
            "model.hidden": "[16]", "train.schedule": "cosine"}
WAIT_S = 600


class SweepFailure(Exception):
    pass


def _env() -> dict[str, str]:
    # The same thread count for every process, so CPU results are comparable bit for bit.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1"}


def _popen(args: list[str], log: Path) -> subprocess.Popen:
    fh = open(log, "ab")
    fh.write(f"\n$ {' '.join(args)}\n".encode())
    fh.flush()
    return subprocess.Popen([sys.executable, "-m", "deepfit", *args], stdout=fh,
                            stderr=subprocess.STDOUT, env=_env())


def _train_args(opts: argparse.Namespace, out: Path, name: str) -> list[str]:
    overrides = {**SETTINGS, "train.epochs": str(opts.epochs), "train.seed": str(opts.seed)}
    extra = [s for s in opts.set]
    return ["train", *[f"{k}={v}" for k, v in overrides.items()], *extra, "--data", opts.data,
            "--out", str(out), "--name", name, "--quiet"]


def _ck_files(run: Path) -> list[str]:
    try:
        return sorted(p.name for p in (run / "checkpoints").iterdir())
    except FileNotFoundError:
        return []


def _temp_files(run: Path) -> set:
    """Temporary / staged checkpoint files, each with its inode and mtime."""
    found = set()
    for name in _ck_files(run):
        if name.endswith(".tmp") or name.endswith(".new"):
            found.add((name, _stamp(run / "checkpoints" / name)))
    return found


def _writing(run: Path, stale: set) -> bool:
    """A checkpoint write is in flight: a temporary file that a killed process did not
    leave behind."""
    return bool(_temp_files(run) - stale)


def _stamp(path: Path):
    try:
        st = path.stat()
        return st.st_ino, st.st_mtime_ns
    except FileNotFoundError:
        return None


def _describe(state: dict) -> str:
    mid = state.get("mid_epoch")
    if mid:
        return f"epoch {mid['epoch']} step {mid['step']}"
    return f"epoch {state['epoch']}"


def _poll_until(cond, proc: subprocess.Popen, deadline: float, interval: float) -> bool:
    """True when cond() holds; False when the process ended first."""
    while time.time() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            return cond()
        time.sleep(interval)
    raise SweepFailure("timed out waiting for the training process")


def reference(opts: argparse.Namespace, out: Path, log: Path) -> tuple[float, float]:
    """Train the reference; return (seconds to its first checkpoint, seconds per epoch)."""
    run = out / "reference"
    started = time.time()
    proc = _popen(_train_args(opts, out, "reference"), log)
    _poll_until(lambda: (run / "checkpoints" / "last.pt").exists(), proc,
                started + WAIT_S, 0.01)
    first = time.time() - started
    if proc.wait(timeout=WAIT_S) != 0:
        raise SweepFailure(f"the reference run failed (exit {proc.returncode}); see {log}")
    total = time.time() - started
    return first, max((total - first) / max(opts.epochs - 1, 1), 1e-4)


def sweep(opts: argparse.Namespace) -> int:
    out = Path(opts.out) if opts.out else Path(tempfile.mkdtemp(prefix="kill_sweep-"))
    out.mkdir(parents=True, exist_ok=True)
    for name in ("reference", "victim", "snapshots"):
        if (out / name).exists():
            raise SweepFailure(f"'{out / name}' already exists; use an empty --out")
    log = out / "sweep.log"
    rng = np.random.default_rng(opts.seed)
    began = time.time()
    print(f"kill sweep: {opts.kills} kills, {opts.epochs} epochs, seed {opts.seed}, data "
          f"{opts.data}, out {out}", flush=True)

    startup, per_epoch = reference(opts, out, log)
    print(f"reference: first checkpoint after {startup:.1f}s, ~{per_epoch * 1000:.1f} ms per "
          f"epoch, done in {time.time() - began:.1f}s", flush=True)

    run = out / "victim"
    last = run / "checkpoints" / "last.pt"
    proc = _popen(_train_args(opts, out, "victim"), log)
    kills: list[dict] = []
    finished_early = False
    for k in range(1, opts.kills + 1):
        resumed = k > 1
        before = _stamp(last)
        stale = _temp_files(run)  # left by an earlier kill; not this process's writes
        modes = ["random", "write"] + (["startup"] if resumed else [])
        mode = str(rng.choice(modes, p=[0.5, 0.3, 0.2] if resumed else [0.6, 0.4]))
        deadline = time.time() + WAIT_S
        delay = 0.0
        if mode == "startup":
            delay = float(rng.uniform(0, startup))
            time.sleep(delay)
            alive = proc.poll() is None
        else:
            # Wait until this process has written a checkpoint of its own (for the first
            # process: any checkpoint, so there is something to resume).
            alive = _poll_until(lambda: _stamp(last) != before or _writing(run, stale), proc,
                                deadline, 0.002)
            done = _latest_epoch(run)
            left = max(opts.epochs - done, 1)
            if mode == "random":
                window = 2.0 * per_epoch * left / (opts.kills - k + 2)
                delay = float(rng.uniform(0, window))
                time.sleep(delay)
            else:  # the next time a checkpoint write is in flight
                skip = int(rng.integers(0, max(1, min(5, left // (opts.kills - k + 2)))))
                for _ in range(skip + 1):
                    _poll_until(lambda: not _writing(run, stale), proc, deadline, 0.0002)
                    alive = _poll_until(lambda: _writing(run, stale), proc, deadline, 0.0002)
                delay = float(rng.uniform(0, 0.001))
                time.sleep(delay)
            alive = alive and proc.poll() is None
        if not alive or proc.poll() is not None:
            finished_early = True
            code = proc.wait(timeout=WAIT_S)
            print(f"kill {k:2d}: the process had already ended (exit {code}); no more kills",
                  flush=True)
            if code != 0:
                raise SweepFailure(f"a training process failed with exit {code}; see {log}")
            break
        files_at_kill = _ck_files(run)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT_S)
        record = _check_snapshot(run, out / "snapshots" / f"kill_{k:02d}", k, mode, delay,
                                 files_at_kill)
        kills.append(record)
        print(f"kill {k:2d}: {mode:7s} +{delay * 1000:7.1f} ms  -> resumes from "
              f"{record['state']:<20s} files {','.join(files_at_kill) or '-'}"
              + (f"  [{record['note']}]" if record["note"] else ""), flush=True)
        if (run / "summary.json").exists():
            finished_early = True
            print("  (killed after the run had finished; no more kills)", flush=True)
            break
        proc = _popen(["resume", str(run)], log)

    if not (run / "summary.json").exists():
        if proc.poll() is not None and proc.returncode != 0:  # nothing running: resume
            proc = _popen(["resume", str(run)], log)
        code = proc.wait(timeout=WAIT_S)
        if code != 0:
            raise SweepFailure(f"the final resume failed (exit {code}); see {log}")
    _compare(out / "reference", run)
    leftovers = [n for n in _ck_files(run) if n.endswith(".tmp") or n.endswith(".new")]
    if leftovers:
        raise SweepFailure(f"temporary checkpoint files were left behind: {leftovers}")

    elapsed = time.time() - began
    epochs = [r["state"] for r in kills]
    print(f"\nsummary: {len(kills)} kills ({', '.join(sorted({r['mode'] for r in kills}))}) "
          f"at: {'; '.join(epochs) or '-'}")
    print(f"         {sum(r['mode'] == 'write' for r in kills)} during checkpoint writes, "
          f"{sum(bool(r['note']) for r in kills)} resumed from a staged or previous copy"
          + ("; the run finished before all kills were made" if finished_early else ""))
    print(f"         final weights (last.pt, best.pt) equal the reference bit for bit; every "
          f"checkpoint state seen was readable")
    print(f"elapsed {elapsed:.1f}s\nPASS")
    return 0


def _latest_epoch(run: Path) -> int:
    try:
        return int(load_latest(run / "checkpoints" / "last.pt")[0]["epoch"])
    except RunError:
        return 0


def _check_snapshot(run: Path, snap: Path, k: int, mode: str, delay: float,
                    files: list[str]) -> dict:
    """Copy the checkpoints folder as the kill left it; load_latest must read the copy."""
    shutil.copytree(run / "checkpoints", snap)
    try:
        state, note = load_latest(snap / "last.pt")
    except RunError as exc:
        raise SweepFailure(f"kill {k} ({mode}): the checkpoint state left behind is not "
                           f"readable by load_latest: {exc} (files: {_ck_files(run)}; "
                           f"snapshot: {snap})") from None
    return {"kill": k, "mode": mode, "delay": delay, "files": files, "state": _describe(state),
            "note": note.split(";")[0] if note else None}


def _compare(ref: Path, run: Path) -> None:
    for name in ("last.pt", "best.pt"):
        a = load_checkpoint(ref / "checkpoints" / name)
        b = load_checkpoint(run / "checkpoints" / name)
        a, b = a.get("model", a), b.get("model", b)
        if a.keys() != b.keys():
            raise SweepFailure(f"{name}: the parameter names differ from the reference")
        differ = [key for key in a if not torch.equal(a[key], b[key])]
        if differ:
            raise SweepFailure(f"{name}: weights differ from the reference in {differ}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs to send (default 20)")
    parser.add_argument("--epochs", type=int, default=200, help="epochs of the run (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments and the "
                        "run (default 0)")
    parser.add_argument("--out", help="empty folder for the runs (default: a new temp folder)")
    parser.add_argument("--data", default="wine", help="dataset (default wine)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override for both runs, e.g. "
                             "train.checkpoint_every=3 (repeatable)")
    opts = parser.parse_args(argv)
    if opts.kills < 1 or opts.epochs < 2:
        parser.error("--kills must be >= 1 and --epochs >= 2")
    began = time.time()
    try:
        return sweep(opts)
    except (SweepFailure, subprocess.TimeoutExpired) as exc:
        print(f"\nFAIL: {exc}\nelapsed {time.time() - began:.1f}s", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
