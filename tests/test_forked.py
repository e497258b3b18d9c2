"""deepfit.forked: a call run in a forked child gives what it would give here, and nothing
is lost when the child fails, dies, or is abandoned."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from deepfit.files import atomic_write
from deepfit.forked import Forked, can_fork, usable_cores

PARENT = os.getpid()


SUBRUN = "DEEPFIT_FORKED_TESTS_SUBRUN"


def _why_not() -> str:
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    return (f"other Python threads run in this test process: {others}" if others else
            f"{usable_cores():g} usable core(s)")


@pytest.fixture
def forking():
    """For a test that needs a child: skipped where none is allowed; when only other threads
    stop it (e.g. an idle worker thread left by an earlier test's HTTP client), the test
    below runs these tests again in a fresh process, where they must pass."""
    if not can_fork():
        pytest.skip("forking is not allowed here: " + _why_not())


def test_the_fork_tests_run_in_a_fresh_process_when_this_one_has_threads():
    if can_fork() or os.environ.get(SUBRUN):
        pytest.skip("forking is allowed in this process: the tests ran here")
    if usable_cores() < 2:
        pytest.skip("forking is not allowed on this machine: " + _why_not())
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           __file__], capture_output=True, text=True,
                          env={**os.environ, SUBRUN: "1"}, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "forking is not allowed" not in done.stdout, done.stdout[-3000:]


def _write(path: Path, text: str) -> tuple[int, Path]:
    atomic_write(path, lambda fh: fh.write(text.encode()))
    return os.getpid(), path


def test_the_child_writes_and_answers(tmp_path, forking):
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


def test_an_exception_in_the_child_is_raised_here_with_its_traceback(forking):
    with pytest.raises(ValueError, match="no such column 'age'") as info:
        with Forked(_fails) as call:
            call.result()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "raised in the forked process" in notes and "_fails" in notes


def _dies_in_a_child() -> str:
    if os.getpid() != PARENT:
        os._exit(3)  # killed, out of memory, ...: no answer
    return "done here"


def test_a_child_that_dies_without_answering_is_replaced_by_the_call_here(forking):
    with Forked(_dies_in_a_child) as call:
        assert call.forked
        assert call.result() == "done here"


def _unpicklable() -> object:
    return lambda: None


def test_an_answer_that_cannot_cross_back_is_one_clear_error(forking):
    with pytest.raises(RuntimeError, match="could not be sent back"):
        with Forked(_unpicklable) as call:
            call.result()


def _sleeps() -> None:
    time.sleep(60)


def test_leaving_the_block_early_stops_the_child(forking):
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


def test_an_exception_that_cannot_cross_back_is_named(forking):
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
