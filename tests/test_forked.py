"""deepfit.forked: a call run in a forked child gives what it would give here, and nothing
is lost when the child fails, dies, or is abandoned."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from deepfit.files import atomic_write
from deepfit.forked import Forked, can_fork

PARENT = os.getpid()


@pytest.fixture(autouse=True)
def _forks_here():
    if not can_fork():  # a test that expects a child needs a place where one is allowed
        reasons = [f"{threading.active_count()} Python threads"
                   if threading.active_count() != 1 else None,
                   f"{len(os.sched_getaffinity(0))} usable core(s)"
                   if hasattr(os, "sched_getaffinity") else "no sched_getaffinity"]
        pytest.skip("forking is not allowed here: " + ", ".join(r for r in reasons if r))


def _write(path: Path, text: str) -> tuple[int, Path]:
    atomic_write(path, lambda fh: fh.write(text.encode()))
    return os.getpid(), path


def test_the_child_writes_and_answers(tmp_path):
    old = os.umask(0o027)
    try:
        with Forked(_write, tmp_path / "figure.png", "drawn") as call:
            assert call.forked
            pid, path = call.result()
    finally:
        os.umask(old)
    assert pid != PARENT  # it ran in another process ...
    assert path.read_text() == "drawn"  # ... and its file is here, with this umask
    assert path.stat().st_mode & 0o777 == 0o640
    assert call.result() == (pid, path)  # asked again: the same answer


def _fails() -> None:
    raise ValueError("no such column 'age'")


def test_an_exception_in_the_child_is_raised_here_with_its_traceback():
    with pytest.raises(ValueError, match="no such column 'age'") as info:
        with Forked(_fails) as call:
            call.result()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "raised in the forked process" in notes and "_fails" in notes


def _dies_in_a_child() -> str:
    if os.getpid() != PARENT:
        os._exit(3)  # killed, out of memory, ...: no answer
    return "done here"


def test_a_child_that_dies_without_answering_is_replaced_by_the_call_here():
    with Forked(_dies_in_a_child) as call:
        assert call.forked
        assert call.result() == "done here"


def _unpicklable() -> object:
    return lambda: None


def test_an_answer_that_cannot_cross_back_is_one_clear_error():
    with pytest.raises(RuntimeError, match="could not be sent back"):
        with Forked(_unpicklable) as call:
            call.result()


def _sleeps() -> None:
    time.sleep(60)


def test_leaving_the_block_early_stops_the_child():
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        with Forked(_sleeps) as call:
            child = call._process
            raise KeyboardInterrupt  # Ctrl-C while the child still works
    assert not child.is_alive()
    assert time.perf_counter() - started < 10


def test_with_another_thread_running_the_call_runs_here():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not can_fork()
        with Forked(os.getpid) as call:
            assert not call.forked
            assert call.result() == PARENT
    finally:
        stop.set()
        other.join()


class _TwoArguments(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(a)  # pickles as _TwoArguments(a): unpickling it fails


def _raises_an_exception_that_cannot_cross_back() -> None:
    raise _TwoArguments("the figure failed", "detail")


def test_an_exception_that_cannot_cross_back_is_named():
    with pytest.raises(RuntimeError, match="_TwoArguments: the figure failed"):
        with Forked(_raises_an_exception_that_cannot_cross_back) as call:
            call.result()


def test_when_no_fork_can_be_had_the_call_runs_here(monkeypatch):
    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")
    monkeypatch.setattr(os, "fork", no_fork)  # a process limit reached
    with Forked(os.getpid) as call:
        assert not call.forked
        assert call.result() == PARENT


def test_a_containers_cpu_quota_counts_as_fewer_cores(tmp_path):
    from deepfit.forked import usable_cores
    cores = len(os.sched_getaffinity(0))
    assert usable_cores(tmp_path) == cores  # no cgroup files: the affinity alone
    (tmp_path / "cpu.max").write_text("max 100000\n")  # v2, no limit
    assert usable_cores(tmp_path) == cores
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # v2: 1.5 CPUs
    assert usable_cores(tmp_path) == min(cores, 1.5)
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")  # v1: one CPU
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cores(tmp_path) == 1.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1, no limit
    assert usable_cores(tmp_path) == cores
