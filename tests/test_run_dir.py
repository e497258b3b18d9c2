"""The run directory is the one place that names a run's files: every other module reaches
them through ``RunDir``'s attributes and readers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deepfit.errors import RunError
from deepfit.run import COMPARISON, RunDir, comparison_path, runs_in

SRC = Path(__file__).resolve().parents[1] / "src" / "deepfit"


def _file_names() -> set[str]:
    """Every file name RunDir gives a path to (folders such as plots/ are words elsewhere)."""
    rd = RunDir(Path("run"))
    names = {v.name for v in vars(rd).values() if isinstance(v, Path) and "." in v.name}
    return names | {COMPARISON}


def test_no_module_but_run_py_spells_a_run_file_name():
    names = _file_names()
    assert {"config.yaml", "summary.json", "metrics.json", "predictions.csv", "history.csv",
            "report.html", "report.md", "cv.json", "cv.html", "FAILED.txt",
            "model.safetensors", "best.pt", "last.pt", "compare.html"} <= names
    quoted = re.compile("[\"'](?:[^\"'\\s]*/)?(" + "|".join(map(re.escape, names)) + ")[\"']")
    hits = [f"{p.relative_to(SRC)}:{i + 1}: {line.strip()}" for p in sorted(SRC.rglob("*.py"))
            if p.name != "run.py" or p.parent != SRC
            for i, line in enumerate(p.read_text().splitlines()) if quoted.search(line)]
    assert not hits, "use RunDir's attributes instead:\n" + "\n".join(hits)


def test_readers_name_the_missing_or_damaged_file(tmp_path):
    rd = RunDir(tmp_path)
    with pytest.raises(RunError, match="summary.json is missing"):
        rd.read_summary()
    with pytest.raises(RunError, match="config.yaml is missing"):
        rd.read_config_text()
    rd.write_text(rd.metrics, "{not json")
    with pytest.raises(RunError, match="metrics.json' is damaged"):
        rd.read_metrics()
    rd.write_json(rd.summary, {"value": float("nan")})
    assert rd.read_summary() == {"value": None}  # JSON has no NaN: undefined is null


def test_runs_in_lists_only_run_folders_and_comparisons_never_collide(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "not-a-run").mkdir()
    RunDir(tmp_path / "b").write_text(RunDir(tmp_path / "b").config, "out: runs\n")
    RunDir(tmp_path / "a").write_text(RunDir(tmp_path / "a").config, "out: runs\n")
    assert [rd.path.name for rd in runs_in(tmp_path)] == ["a", "b"]
    assert runs_in(tmp_path / "missing") == []
    assert [comparison_path(tmp_path, i).name for i in (1, 2)] == ["compare.html",
                                                                  "compare-2.html"]
