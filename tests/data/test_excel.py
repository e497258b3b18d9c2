"""Excel workbooks as data: the first sheet or ``data.sheet``, through training and
prediction, and one clear line for each way a workbook can be wrong."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

import deepfit
from deepfit.data.sources.excel import read_excel
from deepfit.data.sources.tabular import read_frame
from deepfit.errors import DataError

pytest.importorskip("openpyxl")


def _patients(n: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"age": (50 + 10 * x1).round(1), "marker": x2,
                         "sex": rng.choice(["f", "m"], n),
                         "outcome": np.where(x1 + x2 > 0, "relapse", "remission")})


def _workbook(path, sheets: dict[str, pd.DataFrame]) -> None:
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)


def test_the_first_sheet_or_the_named_one_is_read_as_a_table(tmp_path):
    path = tmp_path / "cohort.xlsx"
    notes = pd.DataFrame({"note": ["exported 2026-11-30"]})
    _workbook(path, {"Notes": notes, "Patients": _patients()})
    assert list(read_frame(path).columns) == ["note"]
    frame = read_frame(path, "Patients")
    assert list(frame.columns) == ["age", "marker", "sex", "outcome"]
    assert frame["age"].dtype.kind == "f" and frame["sex"].tolist()[:3] == \
        _patients()["sex"].tolist()[:3]
    with pytest.raises(DataError, match=r"cohort.xlsx' has no sheet 'Patient' \(data.sheet\); "
                       r"its sheets are \['Notes', 'Patients'\]"):
        read_frame(path, "Patient")


def test_a_workbook_trains_and_its_run_predicts_from_the_same_sheet_of_new_workbooks(tmp_path):
    path = tmp_path / "cohort.xlsx"
    _workbook(path, {"Notes": pd.DataFrame({"note": ["-"]}), "Patients": _patients()})
    # The first sheet holds no table to learn from: the error says which sheet it read.
    with pytest.raises(DataError, match="this is sheet 'Notes' of Notes, Patients: choose "
                       "another with data.sheet"):
        deepfit.train(data=str(path), out=tmp_path / "runs", epochs=1)
    run = deepfit.train(data=str(path), out=tmp_path / "runs", epochs=3,
                        **{"data.sheet": "Patients", "train.progress": False,
                           "eval.plots": False, "eval.report": False})
    assert run.schema.class_names == ["relapse", "remission"]
    summary = json.loads((run.path / "summary.json").read_text())
    assert "sheet 'Patients' of" in summary["data"]["description"]
    new = tmp_path / "new.xlsx"
    _workbook(new, {"Notes": pd.DataFrame({"note": ["-"]}),
                    "Patients": _patients(5, seed=1).drop(columns="outcome")})
    predicted = deepfit.load(run.path).predict(str(new))  # the run's sheet, by name
    assert len(predicted) == 5 and set(predicted) <= {"relapse", "remission"}


def test_each_bad_workbook_is_one_line(tmp_path, monkeypatch):
    empty = tmp_path / "empty.xlsx"
    _workbook(empty, {"Sheet1": pd.DataFrame({"a": []})})
    with pytest.raises(DataError, match="sheet 'Sheet1' of .*empty.xlsx' has no data rows"):
        read_excel(empty)
    dupes = tmp_path / "dupes.xlsx"
    _workbook(dupes, {"Sheet1": pd.DataFrame([[1, 2, 3]], columns=["a", "b", "c"])})
    frame = pd.read_excel(dupes)
    frame.columns = ["a", "b", "a"]  # write a header that repeats a name
    frame.to_excel(dupes, index=False)
    with pytest.raises(DataError, match=r"dupes.xlsx' has duplicate column names: \['a'\]"):
        read_excel(dupes)
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # as if it were not installed
    with pytest.raises(DataError, match=r"needs openpyxl: pip install 'deepfit\[excel\]', or "
                       "save the sheet as CSV"):
        read_excel(empty)
