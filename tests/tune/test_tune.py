"""deepfit tune end to end, with real Optuna and tiny data: the search, its files, the final
run, resume after a kill, workers sharing a study, the untouched test split, pruning."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from deepfit.cli import main
from deepfit.errors import ConfigError, RunError
from deepfit.result import load
from deepfit.run import RunDir
from deepfit.tune import tune

DEEPFIT = [sys.executable, "-m", "deepfit"]
QUIET = {"train.progress": False, "eval.plots": False, "eval.report": False}
SPACE = {"train.lr": {"low": 1e-3, "high": 0.1, "log": True}, "model.hidden": [[8], [16, 8]]}


def toy(n=160, seed=0, split=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n) > 0, "yes", "no")
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    if split:
        frame["part"] = np.array(["train", "train", "train", "val", "test"] * (n // 5))
    frame["label"] = y
    return frame


def wait_until_running(study, timeout=120):
    """Poll ``study`` until one of its trials is running. One study object polled again and
    again: a study loaded per poll opens a connection pool each time, and on a slow machine
    those exhaust a PostgreSQL server's connections ("too many clients")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(t.state.name == "RUNNING" for t in study.get_trials(deepcopy=False)):
            return
        time.sleep(0.1)
    raise AssertionError("no trial started")


def study_of(folder: Path, name: str | None = None):
    return optuna.load_study(study_name=name or folder.name,
                             storage=f"sqlite:///{folder / 'study.db'}")


def test_a_search_writes_its_folder_and_a_final_run_evaluated_once(tmp_path):
    result = tune(data=toy(), space=SPACE, trials=3, epochs=4, out=tmp_path, name="t",
                  pruner="none", **{**QUIET, "eval.report": True})
    rd = RunDir(result.path)
    record = rd.read_json(rd.tune)
    assert [t["state"] for t in record["trials"]] == ["complete"] * 3
    assert record["metric"] == "roc_auc" and record["direction"] == "maximize"
    assert record["test_used_in_search"] is False
    best = max(record["trials"], key=lambda t: t["value"])
    assert record["best"]["number"] == best["number"] and result.best_value == best["value"]
    assert all(set(t["intermediate"]) == {"1", "2", "3", "4"} for t in record["trials"])
    # The final run: the best config, in the folder, its test metrics in tune.json.
    final = load(result.path / "final")
    assert final.config.train.lr == pytest.approx(best["params"]["train.lr"])
    assert list(final.config.model.hidden) == best["params"]["model.hidden"]
    assert record["final"]["test"]["roc_auc"] == final.metrics["test"]["roc_auc"]
    tuning = RunDir(final.path).read_json(RunDir(final.path).tuning)
    assert tuning["best_value"] == best["value"] and tuning["test_used_in_search"] is False
    assert "../tune.html" in (final.path / "report.html").read_text()
    # The final model is fitted on the training and validation rows together, for the
    # best trial's epochs: nothing is left to validate on.
    assert final.metrics["val"] is None and tuning["refit"] == "train+val"
    summary = RunDir(final.path).read_json(RunDir(final.path).summary)
    assert summary["training"]["epochs_run"] == best["best_epoch"] == tuning["epochs"]
    sizes = summary["data"]["split_sizes"]
    assert (sizes["val"], sizes["test"]) == (0, 32) and sizes["train"] == 160 - 32
    assert record["final"]["refit"] == "train+val"
    assert rd.tune_report.is_file() and rd.best_config.is_file()
    # Running the same search again adds nothing and retrains nothing.
    again = tune(data=toy(), space=SPACE, trials=3, epochs=4, out=tmp_path, name="t",
                 pruner="none", **QUIET)
    assert len(again.study.trials) == 3 and again.final.path == final.path
    # refit=train repeats the best trial's own run: its validation score is the trial's.
    trial_run = tune(data=toy(), space=SPACE, trials=3, epochs=4, out=tmp_path, name="t",
                     pruner="none", refit="train", **QUIET).final
    assert trial_run.path.name == "final-2"
    assert trial_run.metrics["val"]["roc_auc"] == pytest.approx(best["value"], abs=1e-9)
    # More trials continue the same study.
    more = tune(data=toy(), space=SPACE, trials=4, epochs=4, out=tmp_path, name="t",
                pruner="none", **QUIET)
    assert [t.number for t in more.study.trials] == [0, 1, 2, 3]


def test_best_yaml_trains_the_best_config(tmp_path):
    data = tmp_path / "toy.csv"
    toy().to_csv(data, index=False)
    tune(data=str(data), space=SPACE, trials=2, epochs=3, out=tmp_path, name="t", **QUIET)
    assert main(["train", str(tmp_path / "t" / "best.yaml"), "--quiet", "--out",
                 str(tmp_path), "--name", "again", "eval.plots=false",
                 "eval.report=false"]) == 0
    assert load(tmp_path / "again").metrics["val"]["roc_auc"] == pytest.approx(
        RunDir(tmp_path / "t").read_json(RunDir(tmp_path / "t").tune)["best"]["value"])


def test_the_test_split_is_not_used_by_the_search(tmp_path):
    """Poisoning the test rows' labels changes nothing in the search: same values drawn,
    same validation scores, trial by trial."""
    clean = toy(split=True)
    poisoned = clean.copy()
    test = poisoned["part"] == "test"
    poisoned.loc[test, "label"] = poisoned.loc[test, "label"].map({"yes": "no", "no": "yes"})
    runs = [tune(data=frame, space=SPACE, trials=4, epochs=3, out=tmp_path, name=name,
                 split_column="part", **QUIET) for name, frame in (("a", clean), ("b", poisoned))]
    records = [RunDir(r.path).read_json(RunDir(r.path).tune)["trials"] for r in runs]
    assert [(t["params"], t["value"], t["intermediate"]) for t in records[0]] == \
           [(t["params"], t["value"], t["intermediate"]) for t in records[1]]
    # ... and the final runs, evaluated on those test rows, see the poison.
    tests = [r.final.metrics["test"]["roc_auc"] for r in runs]
    assert tests[0] > 0.8 and tests[1] < 0.2


def test_pruning_stops_poor_trials_early(tmp_path):
    """Seeded random sampler: both arms draw the same configs; with the median pruner the
    poor ones stop early, fewer epochs run, and the best config is the same."""
    space = {"train.lr": {"low": 1e-5, "high": 0.3, "log": True}}
    arms = {}
    for pruner in ("none", "median"):
        r = tune(data=toy(), space=space, trials=10, epochs=12, out=tmp_path, name=pruner,
                 sampler="random", pruner=pruner, early_stopping=False, **QUIET)
        arms[pruner] = RunDir(r.path).read_json(RunDir(r.path).tune)
    epochs = {k: sum(t["epochs"] for t in v["trials"]) for k, v in arms.items()}
    pruned = [t for t in arms["median"]["trials"] if t["state"] == "pruned"]
    assert pruned and all(t["pruned_at"] < 12 for t in pruned)
    assert epochs["median"] < epochs["none"]
    assert arms["median"]["best"]["params"] == arms["none"]["best"]["params"]


def running_trial(folder: Path, first: int = 1):
    """The number of a trial (>= ``first``) the study in ``folder`` shows running with its
    values drawn (so training), or None. Read with one SQL query on Optuna's tables (about a
    millisecond) rather than by loading the study (about 0.1 s): a trial of the slow search
    lasts well under a second on a fast machine, and a slow poll can miss it."""
    try:
        with closing(sqlite3.connect(f"file:{folder / 'study.db'}?mode=ro", uri=True,
                                     timeout=1)) as db:
            row = db.execute(
                "SELECT number FROM trials t WHERE state = 'RUNNING' AND number >= ? AND"
                " EXISTS (SELECT 1 FROM trial_user_attributes a WHERE a.trial_id = t.trial_id"
                " AND a.key = 'worker') AND NOT EXISTS (SELECT 1 FROM trial_user_attributes a"
                " WHERE a.trial_id = t.trial_id AND a.key = 'outcome') ORDER BY number",
                (first,)).fetchone()
    except sqlite3.Error:  # the study is still being created, or is being written
        return None
    return None if row is None else row[0]


def start_and_stop(cmd: list, folder: Path, sig: int) -> subprocess.Popen:
    """Start ``cmd``; send ``sig`` while its second trial trains."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    sent = False
    while time.monotonic() < deadline and proc.poll() is None:
        if (folder / "study.db").is_file() and running_trial(folder) is not None:
            proc.send_signal(sig)
            sent = True
            break
        time.sleep(0.01)
    proc.wait(timeout=60)
    assert sent, f"the search ended (exit {proc.returncode}) before a second trial was seen" \
                 f" running: {proc.stderr.read()}"
    return proc


def slow_search(tmp_path: Path, name: str) -> list:
    """A search whose trials take about a second each (time to stop one midway)."""
    data = tmp_path / "toy.csv"
    toy(n=400).to_csv(data, index=False)
    return [*DEEPFIT, "tune", "--data", str(data), "--out", str(tmp_path), "--name", name,
            "--trials", "3", "--epochs", "12", "--batch-size", "16", "--pruner", "none",
            "--quiet", "train.early_stopping=false", "eval.plots=false", "eval.report=false"]


def test_a_killed_search_resumes_without_losing_or_repeating_a_trial(tmp_path):
    cmd = slow_search(tmp_path, "k")
    proc = start_and_stop(cmd, tmp_path / "k", signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    killed = running_trial(tmp_path / "k")  # left "running" by the dead process
    assert killed is not None
    assert main(cmd[3:]) == 0  # the same command, in this process
    trials = study_of(tmp_path / "k").get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") == 3 and states.count("FAIL") == 1
    dead = trials[killed]
    assert dead.state.name == "FAIL"
    rerun = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(rerun) == 1 and rerun[0].params == dead.params
    assert rerun[0].state.name == "COMPLETE"
    complete = [json.dumps(t.params, sort_keys=True) for t in trials if t.state.name == "COMPLETE"]
    assert len(set(complete)) == 3  # none duplicated
    assert (tmp_path / "k" / "final" / "summary.json").is_file()


def test_two_workers_share_one_sqlite_study(tmp_path):
    data = tmp_path / "toy.csv"
    toy().to_csv(data, index=False)
    base = [*DEEPFIT, "tune", "--data", str(data), "--out", str(tmp_path), "--name", "w",
            "--trials", "6", "--epochs", "3", "--quiet", "eval.plots=false", "eval.report=false"]
    # The first process makes the study's tables; then both run trials.
    tune(data=str(data), trials=0 + 1, epochs=3, out=tmp_path, name="w", worker=True, **QUIET)
    worker = subprocess.Popen(base + ["--worker"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    wait_until_running(study_of(tmp_path / "w"))
    assert main(base[3:]) == 0  # the main process, here: it waits for the worker's trials
    out, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    trials = study_of(tmp_path / "w").get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert 6 <= len(finished) <= 7 and len({t.number for t in trials}) == len(trials)
    workers = {t.user_attrs["worker"].split()[1] for t in finished}
    assert len(workers) >= 2, "both processes ran trials"
    assert (tmp_path / "w" / "final" / "summary.json").is_file()
    assert "worker done" in out


def test_two_workers_share_a_postgresql_study(tmp_path, postgres_url):
    data = tmp_path / "toy.csv"
    toy().to_csv(data, index=False)
    name = f"pg{os.getpid()}"
    base = [*DEEPFIT, "tune", "--data", str(data), "--out", str(tmp_path), "--name", name,
            "--trials", "5", "--epochs", "3", "--storage", postgres_url, "--quiet",
            "eval.plots=false", "eval.report=false"]
    tune(data=str(data), trials=1, epochs=3, out=tmp_path, name=name, worker=True,
         storage=postgres_url, **QUIET)
    worker = subprocess.Popen(base + ["--worker"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    wait_until_running(optuna.load_study(study_name=name, storage=postgres_url))
    assert main(base[3:]) == 0
    _, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    study = optuna.load_study(study_name=name, storage=postgres_url)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert 5 <= len(finished) <= 6
    assert len({t.user_attrs["worker"] for t in finished}) >= 2
    record = RunDir(tmp_path / name).read_json(RunDir(tmp_path / name).tune)
    assert record["storage"].startswith("postgresql") and len(record["trials"]) == len(study.trials)
    assert not (tmp_path / name / "study.db").exists()


def test_nested_cross_validation_estimates_the_whole_procedure(tmp_path):
    result = tune(data=toy(), space=SPACE, trials=2, epochs=3, out=tmp_path, name="n",
                  nested=3, **QUIET)
    rd = RunDir(result.path)
    nested = rd.read_json(rd.nested)
    assert nested["folds"] == 3 and len(nested["per_fold"]) == 3
    tests = [f["test"] for f in nested["per_fold"]]
    assert nested["mean"] == pytest.approx(np.mean(tests))
    assert nested["sd"] == pytest.approx(np.std(tests, ddof=1))
    for k in (1, 2, 3):  # each outer fold: its own search and final run on its test fold
        fold = load(rd.path / f"outer-{k}" / "final")
        assert fold.metrics["test"]["roc_auc"] == tests[k - 1]
    sizes = [load(rd.path / f"outer-{k}" / "final").metrics["test"]["n"] for k in (1, 2, 3)]
    assert sum(sizes) == 160  # the outer test folds cover every row once
    assert rd.read_json(rd.tune)["nested"]["mean"] == nested["mean"]


def test_refusals_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="search space: model.channels does not apply to "
                       "this run .*not to the mlp"):
        tune(data=toy(), space={"model.channels": [[8]]}, trials=1, out=tmp_path, **QUIET)
    with pytest.raises(ConfigError, match="--metric accuracyy is not a metric of a binary"):
        tune(data=toy(), space=SPACE, trials=1, metric="accuracyy", out=tmp_path, **QUIET)
    with pytest.raises(ConfigError, match="--sampler grid needs discrete values"):
        tune(data=toy(), space=SPACE, trials=1, sampler="grid", out=tmp_path, **QUIET)
    with pytest.raises(ConfigError, match="--refit shapes the final run, which a --worker "
                       "does not make"):
        tune(data=toy(), space=SPACE, trials=1, worker=True, refit="train", out=tmp_path,
             **QUIET)
    with pytest.raises(ConfigError, match="--refit all is not known; use one of train"):
        tune(data=toy(), space=SPACE, trials=1, refit="all", out=tmp_path, **QUIET)
    with pytest.raises(RunError, match="cannot open the study storage"):
        tune(data=toy(), space=SPACE, trials=1, storage="nosuchdb://x", out=tmp_path, **QUIET)
    tune(data=toy(), space=SPACE, trials=1, epochs=2, out=tmp_path, name="s", **QUIET)
    with pytest.raises(RunError, match="was made by another search .*space differs"):
        tune(data=toy(), space={"train.lr": [0.01, 0.1]}, trials=1, epochs=2, out=tmp_path,
             name="s", **QUIET)


def test_cli_errors_are_one_line(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("train.lrr: {low: 0.001, high: 0.1}\n")
    assert main(["tune", "--data", "iris", "--space", str(space), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {space}: unknown config key 'train.lrr' (did you mean 'train.lr'?)"]
    with pytest.raises(SystemExit) as exit_:
        main(["tune", "--data", "iris", "--timeout", "ten"])
    assert exit_.value.code == 2 and "'ten' is not a duration" in capsys.readouterr().err
    assert not (tmp_path / "iris-tune").exists()


def test_ctrl_c_stops_the_search_and_the_same_command_continues_it(tmp_path):
    cmd = slow_search(tmp_path, "i")
    proc = start_and_stop(cmd, tmp_path / "i", signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.returncode == 130, err
    assert "tuning interrupted" in err and "the same command continues it" in err
    stopped = next(t for t in study_of(tmp_path / "i").get_trials(deepcopy=False)
                   if t.state.name == "FAIL")
    # tune.json was written after the first trial: the search's state while it runs.
    record = RunDir(tmp_path / "i").read_json(RunDir(tmp_path / "i").tune)
    assert record["trials"][0]["state"] == "complete" and record["final"] is None
    assert main(cmd[3:]) == 0
    trials = study_of(tmp_path / "i").get_trials(deepcopy=False)
    assert [t.state.name for t in trials].count("COMPLETE") == 3
    rerun = [t for t in trials if t.system_attrs.get("failed_trial") == stopped.number]
    assert len(rerun) == 1 and rerun[0].params == stopped.params


def test_hyperband_and_timeout(tmp_path):
    result = tune(data=toy(), space=SPACE, trials=50, timeout=3, epochs=9, out=tmp_path,
                  name="h", pruner="hyperband", **QUIET)
    assert result.stopped_by == "timeout"
    finished = len(result.study.trials)
    assert 1 <= finished < 50 and result.final is not None
    record = RunDir(result.path).read_json(RunDir(result.path).tune)
    assert record["pruner"] == "hyperband" and record["timeout_s"] == 3
    assert result.study.pruner._max_resource == 9  # Optuna's budget: the trials' epochs


def test_an_image_search_uses_the_image_space(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for label in ("h", "v"):
        (tmp_path / "img" / label).mkdir(parents=True)
        for i in range(20):
            a = (rng.random((12, 12)) * 60).astype(np.uint8)
            if label == "h":
                a[5:7, :] = 255
            else:
                a[:, 5:7] = 255
            Image.fromarray(a).save(tmp_path / "img" / label / f"{i}.png")
    result = tune(data=str(tmp_path / "img"), model="cnn", trials=2, epochs=2, out=tmp_path,
                  name="im", **QUIET)
    with pytest.raises(ConfigError, match="--nested needs folds of the data, and image data"):
        tune(data=str(tmp_path / "img"), model="cnn", trials=1, nested=2, out=tmp_path, **QUIET)
    record = RunDir(result.path).read_json(RunDir(result.path).tune)
    assert "data.augment" in record["space"] and "model.hidden" not in record["space"]
    assert all(t["state"] in ("complete", "pruned") for t in record["trials"])
    assert result.final.metrics["test"]["n"] > 0
    # The final fit of an image search: training and validation images together.
    sizes = RunDir(result.final.path).read_json(RunDir(result.final.path).summary)["data"][
        "split_sizes"]
    assert result.final.metrics["val"] is None and sizes["val"] == 0
    assert sizes["train"] + sizes["test"] == 40


def test_the_study_file_follows_the_umask_and_nested_refuses_a_split(tmp_path):
    old = os.umask(0o002)  # a group that shares its studies
    try:
        tune(data=toy(), space=SPACE, trials=1, epochs=2, out=tmp_path, name="m", **QUIET)
    finally:
        os.umask(old)
    assert (tmp_path / "m" / "study.db").stat().st_mode & 0o777 == 0o664
    split = pd.Series(["train"] * 120 + ["test"] * 40)
    with pytest.raises(ConfigError, match="nested=K\\) makes each outer fold's split itself"):
        tune(data=toy(), space=SPACE, trials=1, nested=2, split=split, out=tmp_path, **QUIET)


def test_the_final_fit_keeps_the_trials_batch_and_epoch_limit(tmp_path):
    """300 small images: the trial's automatic batch and epoch limit come from its 195
    training images; the final fit on train + validation (240 images) would resolve others
    (fewer epochs than the trial's best one). It trains with the trial's values instead."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "img" / c).mkdir(parents=True)
        for i in range(150):
            a = (rng.random((8, 8)) * 120).astype(np.uint8)
            a[:, :4] += 120 if c == "a" else 0  # learnable: the left half is brighter
            Image.fromarray(a).save(tmp_path / "img" / c / f"{i}.png")
    result = tune(data=str(tmp_path / "img"), space={"train.lr": {"low": 1e-3, "high": 3e-3}},
                  trials=1, out=tmp_path, name="t", seed=0, **QUIET,
                  **{"model.name": "mlp", "model.hidden": [8], "train.patience": 3})
    trial = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 't' / 'study.db'}"
                              ).best_trial.user_attrs["outcome"]
    final = load(result.final.path)
    assert trial["train"]["batch_size"] == final.config.train.batch_size
    assert trial["train"]["epochs"] == final.config.train.epochs
    assert len(final.history) == trial["best_epoch"]
