"""The command's process ends without the interpreter's teardown (deepfit.entry) but loses
nothing: buffered output, atexit functions, exit codes, and threads still running."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from deepfit.cli import main


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=120)


def test_piped_output_and_exit_codes_are_those_of_main(capsys):
    assert main(["datasets"]) == 0
    expected = capsys.readouterr().out
    # A pipe is block-buffered: what is still in the buffer at the end must come out.
    proc = subprocess.run([sys.executable, "-m", "deepfit", "datasets"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == expected and proc.stderr == ""
    bad = subprocess.run([sys.executable, "-m", "deepfit", "train", "--data", "nosuch.csv"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: data file 'nosuch.csv'")


def test_atexit_functions_run_and_a_running_thread_is_waited_for(tmp_path):
    done = tmp_path / "atexit.txt"
    late = tmp_path / "thread.txt"
    proc = _python(f"""
        import atexit, sys, threading, time
        from pathlib import Path
        sys.argv = ["deepfit", "datasets"]
        atexit.register(Path({str(done)!r}).write_text, "ran")
        from deepfit.entry import run
        run()
        """)
    assert proc.returncode == 0 and done.read_text() == "ran", proc.stderr
    # A thread still working when main returns: the normal exit, which waits for it.
    proc = _python(f"""
        import sys, threading, time
        from pathlib import Path
        sys.argv = ["deepfit", "datasets"]
        threading.Thread(target=lambda: (time.sleep(1), Path({str(late)!r}).write_text("x"))
                         ).start()
        from deepfit.entry import run
        run()
        """)
    assert proc.returncode == 0 and late.read_text() == "x", proc.stderr


def test_a_profiler_still_gets_to_write_its_results(tmp_path):
    stats = tmp_path / "p.out"
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "deepfit",
                           "datasets"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and stats.stat().st_size > 0, proc.stderr
