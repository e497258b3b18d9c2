"""The throw-away PostgreSQL server of tests/postgres_server.py, with real Optuna studies on it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from postgres_server import Unavailable, find_bindir

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _square(trial):
    return trial.suggest_float("x", -1.0, 1.0) ** 2


def _tool(folder, name):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("#!/bin/sh\n")
    (folder / name).chmod(0o755)


def _install(bindir, names=("initdb", "pg_ctl", "postgres")):
    for name in names:
        _tool(bindir, name)
    return bindir


def test_binaries_are_found_on_path_first_then_in_the_newest_debian_version(tmp_path):
    roots = tmp_path / "lib" / "postgresql"
    for version in ("9.6", "15", "16"):
        _install(roots / version / "bin")
    _install(roots / "17" / "bin", names=("initdb",))  # incomplete: passed over
    pattern = str(roots / "*" / "bin")
    assert find_bindir(path=str(tmp_path / "empty"), roots=pattern) == roots / "16" / "bin"
    own = _install(tmp_path / "opt" / "bin")
    assert find_bindir(path=str(own), roots=pattern) == own
    with pytest.raises(Unavailable, match=r"^initdb not found \(apt-get install postgresql\)$"):
        find_bindir(path=str(tmp_path / "empty"), roots=str(tmp_path / "none" / "*"))


def test_server_is_local_and_unsafe_for_speed(postgres_url):
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.connect() as db:
            assert db.execute(sqlalchemy.text("SHOW listen_addresses")).scalar() == "127.0.0.1"
            assert db.execute(sqlalchemy.text("SHOW fsync")).scalar() == "off"
            assert db.execute(sqlalchemy.text("SELECT current_user")).scalar() != "root"
    finally:
        engine.dispose()


def test_a_study_on_the_server_is_seen_by_a_second_load(postgres_url):
    study = optuna.create_study(study_name="reload", storage=postgres_url)
    study.optimize(_square, n_trials=3)
    again = optuna.load_study(study_name="reload", storage=postgres_url)
    assert [t.state for t in again.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert again.best_value == study.best_value


WORKER = """
import os, sys, time
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # both workers start optimising at the same moment

def objective(trial):
    trial.set_user_attr("pid", os.getpid())
    time.sleep(0.05)  # long enough for the two workers' trials to interleave
    return trial.suggest_float("x", -1.0, 1.0) ** 2

study.optimize(objective, n_trials=4)
"""


def test_two_processes_optimise_one_study_concurrently(postgres_url):
    optuna.create_study(study_name="shared", storage=postgres_url)  # schema and study made once
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, postgres_url, "shared"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for worker in workers:
            assert worker.stdout.readline() == "ready\n", worker.communicate(timeout=30)[1]
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        for worker in workers:
            _, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    trials = optuna.load_study(study_name="shared", storage=postgres_url).trials
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(8))
    by_worker = [sum(t.user_attrs["pid"] == w.pid for t in trials) for w in workers]
    assert by_worker == [4, 4]
