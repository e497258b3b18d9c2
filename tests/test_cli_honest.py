"""Every number the command line shows is honest (an undefined value reads "undefined"),
and each command says what it does: its tables, its help, what it leaves behind."""

import json

import numpy as np
import pandas as pd
import pytest

import deepfit
from deepfit.cli import main
from deepfit.errors import DataError, TrainingInterrupted
from deepfit.train.callbacks import Callback
from interrupts import SignalAt

ALWAYS_POSITIVE = '''
import torch
from torch import nn


class AlwaysPositive(nn.Module):
    """Predicts the positive class for every row: MCC is 0 / 0."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.bias = nn.Parameter(torch.full((out_features,), 6.0))

    def forward(self, x):
        return 0.0 * self.linear(x) + self.bias
'''


@pytest.fixture(scope="module")
def constant_run(tmp_path_factory):
    """A finished binary run whose model predicts one class on every split."""
    folder = tmp_path_factory.mktemp("constant")
    (folder / "nets.py").write_text(ALWAYS_POSITIVE)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=80), "y": np.tile(["no", "yes"], 40)})
    frame.to_csv(folder / "data.csv", index=False)
    code = main(["train", "--data", str(folder / "data.csv"), "--model",
                 f"{folder / 'nets.py'}:AlwaysPositive", "--out", str(folder / "runs"),
                 "--name", "constant", "--epochs", "2", "--lr", "1e-6", "--quiet",
                 "eval.plots=false", "eval.bootstrap=50"])
    assert code == 0
    return folder


def test_an_undefined_mcc_reads_undefined_everywhere(constant_run, capsys):
    run = constant_run / "runs" / "constant"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["mcc"] is None and "mcc" in metrics["test"]["undefined"]
    assert metrics["ci"]["mcc"]["value"] is None
    for report in ("report.html", "report.md"):
        text = (run / report).read_text()
        row = next(line for line in text.replace("<tr>", "\n").splitlines()
                   if "Matthews correlation (MCC)" in line)
        assert "undefined" in row and "0.0000" not in row, row
    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "Matthews" in line)
    assert row.count("undefined") == 2 and "0.0000" not in row
    # Every threshold up to the constant score predicts the same: tuning cannot choose.
    assert metrics["tuning"]["undetermined"] and metrics["tuning"]["threshold"] == 0.5
    assert "Decision threshold 0.5 (default). Tuning on validation for F1: every threshold " \
        "in [0, 0.9975] gives the same validation predictions" in out
    assert "0.5 kept" in out


def test_runs_uses_the_results_table_names(constant_run, capsys):
    assert main(["runs", "--out", str(constant_run / "runs")]) == 0
    out = capsys.readouterr().out
    assert "test metrics (as in the results table)" in out
    assert "Accuracy 0.5000" in out and "F1 0.6667" in out and "f1m" not in out


def test_evaluate_on_new_data_has_its_own_table(constant_run, capsys):
    data = constant_run / "data.csv"
    assert main(["evaluate", str(constant_run / "runs" / "constant"), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"on {data}" in out and "Results on data.csv" in out
    assert "new data (80 rows)" in out
    table = out[out.index("Results on"):]
    assert "validation" not in table and "test" not in table and "best epoch" not in table
    assert "Matthews correlation (MCC) │ undefined" in out


def test_compare_shows_undefined_and_never_overwrites(constant_run, capsys, tmp_path):
    run = str(constant_run / "runs" / "constant")
    assert main(["compare", run, run]) == 0
    assert main(["compare", run, run]) == 0
    out = capsys.readouterr().out
    assert "compare-2.html" in out and (constant_run / "runs" / "compare.html").is_file()
    row = next(line for line in out.splitlines() if "Matthews" in line)
    assert row.count("undefined") == 2
    html = (constant_run / "runs" / "compare-2.html").read_text()
    assert "undefined" in html
    target = tmp_path / "mine.html"
    target.write_text("keep")
    assert main(["compare", run, run, "-o", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err and target.read_text() == "keep"
    assert main(["compare", run, run, "-o", str(target), "--force"]) == 0
    assert target.read_text() != "keep"


@pytest.mark.parametrize("command", ["resume", "report", "predict", "evaluate", "compare"])
def test_every_positional_is_described_in_help(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "run directory, or its name under runs/" in out


def test_models_lists_deepfit_torchvision_and_custom_models(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("mlp", "cnn", "lenet", "resnet9", "resnet18", "auto", "tv:NAME",
                 "efficientnet_b0", "deepfit models --torchvision", "package.module:ClassName"):
        assert name in out, name
    assert main(["models", "--torchvision"]) == 0
    names = capsys.readouterr().out.split()
    assert "resnet50" in names and "vit_b_16" in names and "googlenet" not in names


class FailAt(Callback):
    """A user error raised at the end of epoch ``epoch``'s first step."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_batch_end(self, trainer, step, loss, **kwargs):
        if trainer.epoch == self.epoch:
            raise DataError("boom")


def test_a_run_that_fails_is_removed_when_empty_and_marked_otherwise(tmp_path, quick, capsys):
    out = tmp_path / "runs"
    with pytest.raises(DataError, match="boom"):
        deepfit.train(data="iris", epochs=3, out=out, name="first", callbacks=[FailAt(1)],
                      **quick)
    assert not (out / "first").exists()  # nothing useful: no checkpoint yet
    with pytest.raises(DataError, match="boom"):
        deepfit.train(data="iris", epochs=3, out=out, name="later", callbacks=[FailAt(2)],
                      **quick)
    assert (out / "later" / "FAILED.txt").read_text().strip() == "boom"
    for args in (["evaluate", "later"], ["report", "later"]):
        assert main([args[0], str(out / args[1])]) == 2
        err = capsys.readouterr().err
        assert "failed (boom)" in err and "deepfit train" in err
    assert main(["runs", "--out", str(out)]) == 0
    assert "failed (boom)" in capsys.readouterr().out


def test_an_interrupted_run_points_to_resume(tmp_path, quick, capsys):
    out = tmp_path / "runs"
    with pytest.raises(TrainingInterrupted):
        deepfit.train(data="iris", epochs=4, out=out, name="cut", callbacks=[SignalAt(2)],
                      **quick)
    run = out / "cut"
    for command in (["evaluate", str(run)], ["report", str(run)],
                    ["predict", str(run), "x.csv", "-o", str(tmp_path / "p.csv")],
                    ["compare", str(run), str(run)]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"error: run '{run}' did not finish (interrupted in epoch 3); "
                       f"continue it with 'deepfit resume {run}'"), err


def test_a_collapsed_run_warns_in_evaluate_and_runs_with_advice_that_fits(constant_run,
                                                                          capsys):
    """AlwaysPositive predicts 'yes' for every row: evaluate says so, runs marks it, and the
    advice fits (your own module: model.outputs; every epoch run: too few epochs)."""
    run = constant_run / "runs" / "constant"
    assert main(["evaluate", str(run)]) == 0
    err = capsys.readouterr().err
    assert "warning: The model has collapsed: it predicts class 'yes'" in err
    assert "test rows" in err and "model.outputs=probabilities" in err
    assert "too few epochs (training stopped at the epoch limit" in err
    assert main(["runs", "--out", str(constant_run / "runs")]) == 0
    out = capsys.readouterr().out
    assert "warning" in out and "collapsed: one class for every test row" in out


def test_runs_shortens_a_failure_reason_at_a_word(tmp_path, capsys):
    run = tmp_path / "runs" / "broken"
    run.mkdir(parents=True)
    (run / "FAILED.txt").write_text("unknown history column <deepfit.train.builtin.best_model."
                                    "BestModel object at 0x7f9825e2d810>; use one of a, b\n")
    assert main(["runs", "--out", str(tmp_path / "runs")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "0x7f9825e2d810" not in out or "…" in out


def test_compare_force_without_output_is_refused(constant_run, capsys):
    run = str(constant_run / "runs" / "constant")
    assert main(["compare", run, run, "--force"]) == 2
    assert "--force needs -o OUTPUT" in capsys.readouterr().err


def test_predict_help_names_images_too(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "an image file, a folder of images" in out and "CSV of image paths" in out


def test_runs_lists_the_other_runs_when_one_summary_is_odd(constant_run, tmp_path, capsys):
    """A folder whose summary.json lacks a key (another deepfit version, a hand edit) gets a
    row saying so; it never hides the runs beside it."""
    import json
    import shutil

    out = tmp_path / "runs"
    shutil.copytree(constant_run / "runs" / "constant", out / "good")
    shutil.copytree(constant_run / "runs" / "constant", out / "odd")
    summary = json.loads((out / "odd" / "summary.json").read_text())
    del summary["created"]
    (out / "odd" / "summary.json").write_text(json.dumps(summary))
    assert main(["runs", "--out", str(out)]) == 0
    listing = " ".join(capsys.readouterr().out.split())
    assert "good" in listing and "'created' is missing" in listing
