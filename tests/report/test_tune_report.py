"""The tune report (tune.html, from tune.json alone) and the "Tuning" section of a tuned
run's report: the numbers are on the page, every figure is embedded or replaced by a note
saying why, and the edge cases of a search (no trial yet, one, all pruned, no final model)
render."""

from __future__ import annotations

import copy
import re
from html import unescape
from html.parser import HTMLParser

import pytest
import yaml

import deepfit
from deepfit.report import write_report
from deepfit.report.tune import best_yaml, render_tune
from deepfit.run import RunDir

SPACE = {"train.lr": {"low": 1e-4, "high": 0.1, "log": True},
         "model.hidden": [[64], [128, 64]], "train.optimizer": ["adam", "adamw"],
         "model.dropout": {"low": 0.0, "high": 0.5, "log": False}}


def trial(number, state, value=None, lr=0.003, hidden=(64,), optimizer="adam", dropout=0.1,
          epochs=6, pruned_at=None, error=None, retry_of=None):
    curve = {str(e): round(0.9 + 0.01 * e + 0.001 * number, 4) for e in range(1, epochs + 1)}
    return {"number": number, "state": state, "value": value,
            "params": {"train.lr": lr, "model.hidden": list(hidden), "train.optimizer": optimizer,
                       "model.dropout": dropout},
            "epochs": epochs, "pruned_at": pruned_at, "seconds": 1.25 + number,
            "intermediate": {} if state == "failed" else curve, "error": error,
            "retry_of": retry_of}


def study(**changes):
    trials = [
        trial(0, "complete", 0.9712, lr=0.0031, hidden=(64,)),
        trial(1, "pruned", lr=0.0901, hidden=(128, 64), optimizer="adamw", epochs=3, pruned_at=3),
        trial(2, "complete", 0.9934, lr=0.00042, hidden=(128, 64), dropout=0.3),
        trial(3, "failed", lr=0.05, error="CUDA out of memory while training epoch 2; lower "
              "the batch size or the model size and try again", epochs=1),
        trial(4, "complete", 0.9871, lr=0.0122, optimizer="adamw", retry_of=3),
        trial(5, "pruned", lr=0.0002, epochs=2, pruned_at=2),
        trial(6, "complete", None, lr=0.001),  # the metric was undefined on validation
    ]
    best = {"number": 2, "value": 0.9934, "params": copy.deepcopy(trials[2]["params"]),
            "epochs": 6}
    tune = {"version": 1, "data": "breast_cancer (569 rows x 30 features)", "task": "binary",
            "metric": "roc_auc", "direction": "maximize", "sampler": "tpe", "pruner": "median",
            "storage": "sqlite:///runs/bc-tune/study.db", "study": "bc-tune",
            "trials_requested": 8, "timeout_s": None, "seed": 0, "space": SPACE,
            "trials": trials, "best": best,
            "importances": {"train.lr": 0.61, "model.hidden": 0.3, "train.optimizer": 0.06,
                            "model.dropout": 0.03},
            "importances_note": None,
            "final": {"path": "final", "refit": "train+val", "epochs": 6,
                      "test": {"roc_auc": 0.9876, "accuracy": 0.9561, "mcc": None}},
            "nested": {"folds": 3, "metric": "roc_auc", "mean": 0.9713, "sd": 0.0121,
                       "per_fold": [{"fold": f"outer-{i}", "test": v, "trials": 5,
                                     "validation": 0.99 + i / 1000,
                                     "best_params": {"train.lr": lr, "model.hidden": [64]}}
                                    for i, (v, lr) in enumerate([(0.9611, 0.002), (0.9845, 0.0004),
                                                                 (0.9683, 0.011)], 1)]},
            "test_used_in_search": False}
    tune.update(changes)
    return tune


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.headings, self.links, self.notes, self.text = [], [], [], [], []
        self._in = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["alt"])
            assert attrs["src"].startswith("data:image/png;base64,") and len(attrs["src"]) > 5000
        if tag == "a":
            self.links.append(attrs["href"])
        if tag in ("h2", "h3") or attrs.get("class") == "note":
            self._in = "note" if tag == "div" else tag

    def handle_data(self, data):
        self.text.append(data)
        if self._in:
            (self.notes if self._in == "note" else self.headings).append(data.strip())

    def handle_endtag(self, tag):
        if tag in ("h2", "h3", "div"):
            self._in = None


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    text = " ".join(page.text)
    assert not re.search(r"\bnan\b", text, re.I) and "None" not in text, text
    return page


def test_a_realistic_search_shows_its_numbers_figures_and_trials():
    html = render_tune(study())
    page = parse(html)
    for heading in ("Best trial", "Final model", "Nested cross-validation", "Plots", "Trials",
                    "How to read this page"):
        assert heading in page.headings, heading
    assert page.images == ["Optimisation history", "Parameter importances",
                           "Validation value against each parameter", "Parallel coordinates",
                           "Validation value per epoch"]
    assert len(page.notes) == 1 and page.notes[0].startswith("Trial 3 failed: CUDA out of")
    assert page.notes[0].endswith("try again")  # in full below the table (cut short in it)
    assert "7 finished of 8 requested: 4 complete, 2 pruned, 1 failed" in html
    assert "The test split was not used in the search: every trial was scored on the " \
           "validation split; the final model was evaluated on the test split once." in html
    assert "0.9934" in html and "0.0004200" not in html and "0.00042" in html  # best, log lr
    assert "[128, 64]" in html and "adamw" in html  # a list-valued parameter, a category
    assert yaml.safe_load(best_yaml(study()["best"]["params"])) == {
        "train": {"lr": 0.00042, "optimizer": "adam"}, "model": {"hidden": [128, 64],
                                                                 "dropout": 0.3}}
    assert "0.9876" in html and "0.9561" in html and "retrained on train+validation for 6" in html
    assert page.links == ["final/report.html", *(f"outer-{i}/tune.html" for i in (1, 2, 3))]
    assert "mcc" not in html.lower() or "undefined" in html  # an undefined test metric
    for fold in ("0.9611", "0.9845", "0.9683", "0.9713 ± 0.0121", "outer-2"):
        assert fold in html, fold
    assert "CUDA out of memory" in html and "sqlite:///runs/bc-tune/study.db" in html
    assert "the number to report in a paper" in html


def test_the_trials_table_is_sorted_and_shows_undefined_values_as_such():
    tune = study()
    tune["trials"].reverse()
    html = render_tune(tune)
    table = html[html.index("<h2>Trials</h2>"):html.index("<h2>How to read")]
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\w+)</td><td class='num'>([^<]*)</td>", table)
    assert [(n, s) for n, s, _ in rows] == [(str(t["number"]), t["state"])
                                           for t in study()["trials"]]
    values = {n: v for n, _, v in rows}
    assert values["0"] == "0.9712" and values["6"] == "undefined" and values["1"] == "—"
    assert "<td class='num'>3</td>" in table  # pruned at epoch 3 / the retry of trial 3


def test_a_minimised_metric_and_no_test_guarantee_are_said():
    tune = study(metric="mse", direction="minimize", test_used_in_search=True, nested=None,
                 pruner="none", importances=None,
                 importances_note="needs at least 2 complete trials with varying parameters")
    html = render_tune(tune)
    page = parse(html)
    assert "lower is better" in html and "MSE" in html
    assert "Nested cross-validation" not in page.headings
    assert any("used in the search" in n for n in page.notes)
    assert "Not computed: needs at least 2 complete trials with varying parameters." in page.notes
    assert "Nothing was pruned" in html


def _edge(trials, best=None, **changes):
    return study(trials=trials, best=best, **changes)


@pytest.mark.parametrize("case", ["no trials", "one complete", "all pruned", "never varied",
                                  "null params"])
def test_edge_cases_render_with_their_notes(case):
    one = trial(0, "complete", 0.9, epochs=1)
    tunes = {
        "no trials": _edge([], final=None, nested=None, importances=None,
                           importances_note="needs at least 2 complete trials"),
        "one complete": _edge([one], best={"number": 0, "value": 0.9,
                                           "params": one["params"], "epochs": 1},
                              importances=None, importances_note="needs at least 2 complete "
                              "trials with varying parameters"),
        "all pruned": _edge([trial(i, "pruned", epochs=2, pruned_at=2) for i in range(3)],
                            final=None, importances=None),
        "never varied": _edge([trial(i, "complete", 0.9 + i / 100) for i in range(3)],
                              importances={"train.lr": 0.0}),
        "null params": _edge([trial(0, "complete", 0.9, lr=None, hidden=()),
                              trial(1, "complete", 0.8, optimizer=None, dropout=None)],
                             space={}),
    }
    html = render_tune(tunes[case])
    page = parse(html)
    assert len(page.images) + len(page.notes) == 5  # every figure, or why not
    if case == "no trials":
        assert not page.images and "No trial has run yet." in html
        assert "no best configuration yet" in html and "has not been trained yet" in html
        assert "0 finished of 8 requested: 0 complete, 0 pruned, 0 failed" in html
        assert "the final model, once trained, is evaluated" in html
    if case == "one complete":
        assert len(page.images) == 4  # all but the importances
    if case == "all pruned":
        assert page.images == ["Validation value per epoch"]  # pruned trials still have curves
        assert all("3 pruned" in n for n in page.notes if n.startswith("Nothing to draw"))
    if case == "never varied":
        assert "(never varied)" not in html  # drawn into the figure, not the page
        assert len(page.images) == 5
    if case == "null params":
        assert "—" in html and len(page.images) == 5


def test_a_nested_search_links_the_searches_of_its_outer_folds():
    tune = study(trials=[], best=None, final=None, importances=None,
                 importances_note="see each outer fold's tune.html")
    html = render_tune(tune)
    page = parse(html)
    assert page.headings == ["Nested cross-validation", "How to read this page"]
    assert page.links == [f"outer-{i}/tune.html" for i in (1, 2, 3)]
    assert "one inside each of the 3 outer folds, 8 trials requested each" in html
    assert "0.9713 ± 0.0121" in html and "0.9920" in html  # the mean; fold 2's inner best
    assert "finished of" not in html and "not been trained" not in html


def test_nan_values_read_as_undefined():
    tune = study()
    tune["trials"][0]["value"] = float("nan")
    tune["nested"]["sd"] = float("inf")
    html = render_tune(tune)
    parse(html)
    assert "0.9713 ± undefined" in html


def test_a_tuned_run_reports_its_tuning_with_a_link(tmp_path, tabular_csv, quick):
    run = deepfit.train(data=tabular_csv, target="diagnosis", out=tmp_path, epochs=2,
                        **{**quick, "eval.report": True, "data.id_column": "patient"})
    rd = RunDir(run.path)
    plain = rd.report.read_text()
    assert "<h2>Tuning</h2>" not in plain
    rd.write_json(rd.tuning, {"tune_report": "../tune.html", "trials": 20, "complete": 17,
                              "pruned": 2, "metric": "roc_auc", "direction": "maximize",
                              "best_value": 0.99512, "sampler": "tpe", "pruner": "median",
                              "refit": "train", "params": {"train.lr": 0.0031,
                                                           "model.hidden": [128, 64]},
                              "test_used_in_search": False})
    write_report(run.path)
    html, md = rd.report.read_text(), rd.report_md.read_text()
    for text in (unescape(html), md):
        assert ("This model's configuration was chosen by tuning: 20 trials (17 complete, "
                "2 pruned, 1 failed), sampler tpe, pruner median; best validation ROC-AUC "
                "0.9951 (maximize).") in text
        assert "The test split was not used in the search" in text
        assert "validation early stopping" in text and "[128, 64]" in text
    assert "<a href='../tune.html'>" in html and "](../tune.html)" in md
    assert html.index("<h2>Tuning</h2>") < html.index("<h2>Configuration</h2>")
    assert md.index("## Tuning") < md.index("## Configuration")
