"""New data that hold what training never saw (an unknown category, a gap in a column that
had none) are said, with the column, the count of rows and examples: as a DataWarning from
every Run method that predicts, on the predictions object, from the command line, and in
the report's notes when a validation or test split holds them."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import deepfit
from deepfit.cli import main
from deepfit.errors import DataError, DataWarning

UNSEEN = (r"column 'colour': 3 row\(s\) hold a category not seen in training \('purple', "
          r"'pink'\), encoded as 'no known category'")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=90), "colour": ["red", "blue", "green"] * 30})
    frame["y"] = np.where(frame["x"] > 0, "high", "low")
    out = tmp_path_factory.mktemp("runs")
    return deepfit.train(data=frame, out=out, epochs=2, bootstrap=0, progress=False,
                         eval={"plots": False, "report": False})


def _new(rows=6):
    rng = np.random.default_rng(1)
    new = pd.DataFrame({"x": rng.normal(size=rows), "colour": ["red"] * rows})
    new.loc[:2, "colour"] = ["purple", "pink", "purple"]
    return new


def test_every_predicting_method_warns_with_counts_and_examples(run):
    new = _new()
    for method in (run.predict, run.predict_proba, run.predictions):
        with pytest.warns(DataWarning, match="input: " + UNSEEN) as caught:
            method(new)
        assert caught[0].filename == __file__  # points at the caller's line, not deepfit's
    labelled = new.assign(y="high")
    with pytest.warns(DataWarning, match=UNSEEN):
        assert run.evaluate(labelled)["n"] == 6
    with pytest.warns(DataWarning):
        assert len(run.predictions(new).warnings) == 1


def test_gaps_new_to_a_column_are_said_and_clean_data_say_nothing(run):
    new = _new().assign(colour="red")
    new.loc[0, "x"] = np.nan
    with pytest.warns(DataWarning, match=r"column 'x': 1 row\(s\) are missing a value, which "
                                         r"training never had in this column; filled with"):
        run.predict(new)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run.predictions(_new().assign(colour="blue")).warnings == []


def test_the_command_line_says_it_for_predict_and_evaluate(run, tmp_path):
    path = tmp_path / "new.csv"
    _new().assign(y="low").to_csv(path, index=False)
    with pytest.warns(DataWarning, match=f"{path}: {UNSEEN}"):
        assert main(["predict", str(run.path), str(path), "-o", str(tmp_path / "p.csv")]) == 0
    with pytest.warns(DataWarning, match=f"{path}: {UNSEEN}"):
        assert main(["evaluate", str(run.path), "--data", str(path)]) == 0


def test_evaluate_on_a_file_names_the_file_in_warnings_and_errors(run, tmp_path):
    path = tmp_path / "new.csv"
    _new().assign(y="low").to_csv(path, index=False)
    with pytest.warns(DataWarning, match=f"^{path}: {UNSEEN}"):
        assert run.evaluate(path)["n"] == 6
    _new().assign(y="medium").to_csv(path, index=False)
    with pytest.raises(DataError, match=f"^{path}: target 'y' has value 'medium'"):
        run.evaluate(str(path))
    _new().to_csv(path, index=False)
    with pytest.warns(DataWarning), pytest.raises(DataError, match=f"^{path}: no target "
                                                                   "column"):
        run.evaluate(path)


def test_a_category_only_the_test_split_holds_is_in_the_report_notes(tmp_path, quick):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "site": ["a", "b"] * 30,
                          "split": ["train"] * 40 + ["val"] * 10 + ["test"] * 10})
    frame["y"] = np.where(frame["x"] > 0, "high", "low")
    frame.loc[55:, "site"] = "c"  # never in training
    run = deepfit.train(data=frame, out=tmp_path, epochs=1, bootstrap=0, **quick,
                        **{"data.split_column": "split"})
    notes = json.loads((run.path / "summary.json").read_text())["data"]["notes"]
    assert ("The test split, column 'site': 5 row(s) hold a category not seen in training "
            "('c'), encoded as 'no known category' (all zeros in its one-hot inputs).") in notes
