"""``deepfit.train(refit=RefitPlan(...))``: the final fit of a tuned config on the training and
validation rows together. The test rows are those of the ordinary run; nothing is reported
for validation; the threshold comes from the validated run; a resumed fit keeps its plan."""

import json

import numpy as np
import pandas as pd
import pytest
from interrupts import SignalAt

import deepfit
from deepfit.errors import TrainingInterrupted
from deepfit.pipeline import RefitPlan
from deepfit.run import RunDir

QUIET = {"train.progress": False, "eval.plots": False, "eval.bootstrap": 0}


def toy(n=150):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame["y"] = np.where(frame.a + 0.7 * rng.normal(size=n) > 0.3, "pos", "neg")
    return frame


def test_a_refit_fits_train_and_validation_rows_and_reports_no_validation(tmp_path):
    plain = deepfit.train(data=toy(), out=tmp_path, name="plain", **QUIET)
    tuning = {"objective": "f1", "threshold": 0.3, "value": 0.9, "applied": True,
              "where": "the validation split of trial 4"}
    plan = RefitPlan(epochs=3, lrs=(1e-3, 1e-3, 5e-4), tuning=tuning, source="trial 4")
    run = deepfit.train(data=toy(), out=tmp_path, name="refit", refit=plan,
                        **{**QUIET, "eval.apply_threshold": True})
    summary = RunDir(run.path).read_json(RunDir(run.path).summary)
    plain_sizes = RunDir(plain.path).read_json(RunDir(plain.path).summary)["data"]["split_sizes"]
    sizes = summary["data"]["split_sizes"]
    assert sizes == {"train": plain_sizes["train"] + plain_sizes["val"], "val": 0,
                     "test": plain_sizes["test"]}
    # The same test rows as the ordinary run.
    ids = [pd.read_csv(r.path / "predictions.csv")["id"].tolist() for r in (plain, run)]
    assert ids[0] == ids[1]
    assert run.metrics["val"] is None and len(run.history) == 3
    assert run.history.column("lr")[2] == pytest.approx(5e-4)
    assert summary["training"]["refit"]["source"] == "trial 4"
    assert summary["training"]["best_epoch"] is None
    assert "joined the training rows" in summary["data"]["split_method"]
    # The validated run's threshold is the decision threshold (eval.apply_threshold).
    assert run.metrics["threshold"] == 0.3 and run.metrics["tuning"]["where"] == tuning["where"]
    html = (run.path / "report.html").read_text()
    assert "tuned on the validation split of trial 4" in html
    assert "There are no validation figures" in html
    assert "<th>validation</th>" not in html
    md = (run.path / "report.md").read_text()
    assert "| metric | test |" in md and "the epochs of trial 4" in md
    # A finished refit loads like any run (best.pt holds the weights it keeps).
    again = deepfit.load(run.path)
    assert again.metrics["test"] == run.metrics["test"]


def test_a_refit_without_a_tuned_threshold_says_so(tmp_path):
    run = deepfit.train(data=toy(), out=tmp_path, refit=RefitPlan(epochs=2, lrs=(1e-3, 1e-3)),
                        **QUIET)
    assert run.metrics["threshold"] == 0.5
    assert "no tuned threshold came with it" in run.metrics["tuning"]["reason"]
    # A threshold tuned for another objective is not used for this one.
    other = {"objective": "youden", "threshold": 0.4, "value": 0.8, "applied": True}
    run = deepfit.train(data=toy(), out=tmp_path, **QUIET, **{"eval.apply_threshold": True},
                        refit=RefitPlan(epochs=2, lrs=(1e-3, 1e-3), tuning=other))
    assert run.metrics["threshold"] == 0.5
    assert "was tuned for youden" in run.metrics["tuning"]["reason"]


def test_an_interrupted_refit_resumes_with_its_plan(tmp_path):
    plan = RefitPlan(epochs=5, lrs=(0.01, 0.01, 0.01, 0.001, 0.001), source="trial 1")
    settings = {**QUIET, "eval.report": False, "train.lr": 0.01, "model.dropout": 0.3}
    whole = deepfit.train(data=toy(), out=tmp_path, name="whole", refit=plan, **settings)
    with pytest.raises(TrainingInterrupted):
        deepfit.train(data=toy(), out=tmp_path, name="cut", refit=plan, callbacks=[SignalAt(3)],
                      **settings)
    resumed = deepfit.resume(tmp_path / "cut", data=toy())
    assert resumed.metrics["val"] is None and len(resumed.history) == 5
    assert resumed.history.column("lr") == whole.history.column("lr")
    assert resumed.history.column("train_loss") == whole.history.column("train_loss")
    assert json.dumps(resumed.metrics["test"]) == json.dumps(whole.metrics["test"])


def test_the_model_card_of_a_refit_has_no_validation_column(tmp_path):
    run = deepfit.train(data=toy(), out=tmp_path, refit=RefitPlan(epochs=2, lrs=(1e-3, 1e-3)),
                        **QUIET)
    run.export("safetensors", tmp_path / "exp")
    text = (tmp_path / "exp" / "model_card.md").read_text()
    assert "fitted on its validation rows too" in text and "| metric | test |" in text
