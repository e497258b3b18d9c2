"""The Optuna study behind ``deepfit tune``: its storage, sampler and pruner, the trial
budget, and the recovery of trials whose process died.

Storage is Optuna's RDB storage (SQLite in the tuning folder by default, or any SQLAlchemy
URL, e.g. PostgreSQL, for workers on several machines). Running the same command again
loads the same study: trials already finished are kept, and a trial whose process was
killed is run again with the same values (Optuna's heartbeat finds dead workers on other
machines; on this machine a dead process is found at once by its process id).

The budget (``--trials N``) counts finished trials: complete, pruned, and failed by their
configuration (a diverged loss); a trial killed with its process does not count, its
re-run does.
"""

from __future__ import annotations

import os
import re
import socket
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, Optional

from deepfit.errors import ConfigError, RunError

# A worker proves it is alive every HEARTBEAT seconds; a running trial silent for GRACE
# seconds is failed and queued again by whichever worker sees it first.
HEARTBEAT, GRACE = 20, 60
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
ERROR = "error"  # user attr: why a trial failed on its configuration (counts in the budget)
WORKER = "worker"  # user attr: "host pid start" of the process running the trial
OUTCOME = "outcome"  # user attr: {"epochs", "best_epoch", "pruned_at", "seconds", "lrs", "tuning",
#                     "train": the batch size and epoch limit it resolved}


def outcome(trial: Any) -> dict[str, Any]:
    """How a finished trial went (empty for one that did not get that far)."""
    return trial.user_attrs.get(OUTCOME) or {}


def optuna_module() -> Any:
    """``import optuna``, or one line saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("deepfit tune needs Optuna: pip install 'deepfit[tune]' "
                          "(or pip install optuna)") from None
    # deepfit says what happened to each trial in one line; Optuna's own log would add
    # a traceback for every failed or interrupted trial.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def open_study(storage_url: str, name: str, direction: str, sampler: str, pruner: str,
               seed: int, epochs: int, grid: Optional[dict] = None) -> Any:
    """Create the study, or load it when it exists (same name in the same storage)."""
    optuna = optuna_module()
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # the heartbeat and retry are marked experimental
                warnings.simplefilter("ignore")
                retry = RetryHeartbeatStaleTrialCallback(max_retry=3)
                storage = RDBStorage(storage_url, heartbeat_interval=HEARTBEAT,
                                     grace_period=GRACE, heartbeat_stale_trial_callback=retry,
                                     engine_kwargs=_engine_kwargs(storage_url))
            break
        except Exception as exc:  # a URL SQLAlchemy cannot use, a server that does not answer
            # Two processes opening a new storage at once both create its tables; the one
            # that loses the race finds them made: open it again.
            if "already exists" in str(exc) and attempt < 4:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise RunError(f"cannot open the study storage {redact(storage_url)}: "
                           f"{str(exc).splitlines()[0]}") from None
    study = optuna.create_study(storage=storage, study_name=name, direction=direction,
                                sampler=make_sampler(sampler, seed, grid),
                                pruner=make_pruner(pruner, epochs), load_if_exists=True)
    if study.get_trials(deepcopy=False):
        # A resumed study, or another worker's: the seed alone would draw the first trials'
        # values again. A fresh search from one process stays reproducible from its seed.
        mixed = zlib.crc32(f"{seed} {worker_id()} {time.time_ns()}".encode())
        study.sampler = make_sampler(sampler, mixed, grid)
    return study


def make_sampler(name: str, seed: int, grid: Optional[dict]) -> Any:
    optuna = optuna_module()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid, seed=seed)
    raise ConfigError(f"--sampler {name} is not known; use one of {', '.join(SAMPLERS)}")


def make_pruner(name: str, epochs: int) -> Any:
    optuna = optuna_module()
    if name == "median":  # a trial below the median of earlier ones at the same epoch stops,
        # once 5 trials finished, and not in its first tenth of epochs (a warm-up or a large
        # batch learns little in the first epochs; at least 2)
        return optuna.pruners.MedianPruner(n_startup_trials=5,
                                           n_warmup_steps=max(2, epochs // 10))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 3),
                                              reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"--pruner {name} is not known; use one of {', '.join(PRUNERS)}")


def counted(study: Any) -> int:
    """Finished trials that count in the budget."""
    return counts(study)[0]


def running(study: Any) -> int:
    """Trials running or queued (by this process or others)."""
    return counts(study)[1]


def counts(study: Any) -> tuple[int, int]:
    """``(counted, running)`` from one read of the study (each read queries the storage)."""
    states = _states()
    done = going = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (states.COMPLETE, states.PRUNED) or (
                t.state == states.FAIL and ERROR in t.user_attrs):
            done += 1
        elif t.state in (states.RUNNING, states.WAITING):
            going += 1
    return done, going


def mark_worker(trial: Any) -> None:
    trial.set_user_attr(WORKER, worker_id())


def worker_id(pid: Optional[int] = None) -> str:
    """``host pid start-time``: names a process uniquely even when its pid is reused."""
    if pid is not None and pid != os.getpid():  # another process, as it is now
        return f"{socket.gethostname()} {pid} {_start_time(pid)}"
    pid = os.getpid()
    if pid not in _OWN_ID:  # this process is named once a trial: read /proc once
        _OWN_ID[pid] = f"{socket.gethostname()} {pid} {_start_time(pid)}"
    return _OWN_ID[pid]


_OWN_ID: dict[int, str] = {}


def recover_dead_trials(study: Any) -> list[int]:
    """Fail and queue again the running trials of dead processes on this machine; returns
    their numbers. (Other machines' dead workers are found by the heartbeat.)"""
    states = _states()
    host = socket.gethostname()
    dead = []
    for t in study.get_trials(deepcopy=False, states=(states.RUNNING,)):
        who = str(t.user_attrs.get(WORKER, "")).split(" ")
        if len(who) != 3 or who[0] != host or _alive(int(who[1]), who[2]):
            continue
        try:
            study._storage.set_trial_state_values(t._trial_id, state=states.FAIL)
        except Exception:  # another worker failed it first
            continue
        retry(study, study._storage.get_trial(t._trial_id))
        dead.append(t.number)
    return dead


def retry(study: Any, trial: Any) -> None:
    """Queue ``trial``'s values again (Optuna's retry callback: it records which trial the
    new one re-runs, and gives up after a few retries of the same values)."""
    callback = study._storage.get_heartbeat_stale_trial_callback()
    if callback is not None:
        callback(study, trial)


def fail_stale(study: Any) -> None:
    """Fail (and queue again) the running trials whose worker's heartbeat stopped."""
    with warnings.catch_warnings():  # marked experimental
        warnings.simplefilter("ignore")
        optuna_module().storages.fail_stale_trials(study)


def redact(url: str) -> str:
    """The storage URL without its password (it goes into tune.json and the report)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def sqlite_url(path: Path, create: bool = False) -> str:
    """The SQLAlchemy URL of an SQLite file; ``create`` makes the file first if missing, mode
    0666 less the umask like every run file (SQLite itself would make it 0644, so workers
    of a group could not write a study their umask shares)."""
    path = Path(path)
    if create:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            pass
    return f"sqlite:///{path.resolve()}"


def _engine_kwargs(url: str) -> dict:
    # SQLite: several workers wait for the file's lock instead of failing at once.
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}


def _states() -> Any:
    return optuna_module().trial.TrialState


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (Linux), else []."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), else '-'."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else "-"


def _alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat(pid)
    if fields and fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    return start == "-" or _start_time(pid) in (start, "-")
