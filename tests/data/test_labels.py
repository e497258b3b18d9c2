"""Labels are never silently wrong: data.label_map on tables as on images, and the stop on
classes that look like one class written differently ('Diabetes', 'diabetes ', 'Diabetis')."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

import deepfit
from deepfit.config import DataConfig, RunConfig
from deepfit.data.bundle import build_bundle
from deepfit.data.labels import lookalike_groups, override
from deepfit.errors import DataError, DataWarning


def _frame(labels: list[str], n_per: list[int], seed: int = 0) -> pd.DataFrame:
    """One informative feature per class, ``n_per[i]`` rows labelled ``labels[i]``."""
    rng = np.random.default_rng(seed)
    y = np.repeat(labels, n_per)
    rng.shuffle(y)
    code = {name: i for i, name in enumerate(dict.fromkeys(labels))}
    x = np.array([code[v] for v in y], float) + rng.normal(0, 0.3, len(y))
    return pd.DataFrame({"x": x, "noise": rng.normal(size=len(y)), "diagnosis": y})


def _bundle(frame: pd.DataFrame, **kw):
    return build_bundle(DataConfig(target="diagnosis", **kw), frame, seed=0)


DIABETES = (["Diabetes", "diabetes", "DIABETES", "healthy"], [12, 30, 3, 40])


# -- data.label_map on a table ------------------------------------------------------------

def test_label_map_merges_spellings_into_a_binary_task_before_the_split():
    frame = _frame(*DIABETES)
    bundle = _bundle(frame, label_map={"Diabetes": "diabetes", "DIABETES": "diabetes"})
    assert bundle.schema.task == "binary"
    assert bundle.schema.class_names == ["diabetes", "healthy"]
    counts = bundle.info["class_counts"]
    assert sum(c["diabetes"] for c in counts.values()) == 45
    assert all(c["diabetes"] > 0 for c in counts.values())  # stratified on the merged class


def test_label_map_renames_and_merges_integer_classes():
    frame = _frame(["0", "1", "2"], [30, 30, 30]).assign(
        diagnosis=lambda f: f["diagnosis"].astype(int))
    bundle = _bundle(frame, label_map={2: 1})  # as YAML reads data.label_map={2: 1}
    assert bundle.schema.task == "binary" and bundle.schema.target.classes == [0, 1]
    bundle = _bundle(frame, label_map={"0": "healthy"})  # keys match 0, '0' and 0.0 alike
    assert bundle.schema.class_names == ["1", "2", "healthy"]


def test_label_map_by_the_names_a_source_gives_its_integer_classes():
    bundle = build_bundle(DataConfig(source="iris", label_map={"versicolor": "not setosa",
                                                               "virginica": "not setosa"}))
    assert bundle.schema.task == "binary"
    assert sorted(bundle.schema.class_names) == ["not setosa", "setosa"]


def test_label_map_keeps_the_sources_positive_class_under_its_new_name():
    bundle = build_bundle(DataConfig(source="breast_cancer", label_map={"malignant": "cancer"}))
    assert bundle.info["positive_class"] == "cancer"


def test_unknown_class_in_label_map_is_one_line_with_did_you_mean():
    frame = _frame(*DIABETES)
    with pytest.raises(DataError) as err:
        _bundle(frame, label_map={"Diabetis": "diabetes"})
    line = str(err.value)
    assert "\n" not in line
    assert "data.label_map names class 'Diabetis', which target column 'diagnosis' does not " \
           "have (did you mean 'Diabetes'?)" in line
    assert "'healthy'" in line  # the classes there are


def test_yaml_boolean_key_says_how_to_quote_it():
    frame = _frame(["yes", "no"], [30, 30])
    with pytest.raises(DataError, match="YAML reads yes/no.*quote the name"):
        _bundle(frame, label_map={True: "sick"})


@pytest.mark.parametrize("frame, kw, expected", [
    (pd.DataFrame({"x": np.arange(60.0), "diagnosis": np.linspace(0, 1, 60)}), {},
     "target 'diagnosis' is a regression target"),
    (pd.DataFrame({"x": np.arange(60.0), "diagnosis": np.arange(60) % 3}),
     {"task": "regression"}, "target 'diagnosis' is a regression target"),
], ids=["inferred", "data.task"])
def test_label_map_is_refused_for_regression(frame, kw, expected):
    with pytest.raises(DataError, match=expected):
        _bundle(frame, label_map={0: 1}, **kw)


def test_label_map_is_refused_for_multilabel():
    frame = pd.DataFrame({"x": np.arange(60.0), "a": np.arange(60) % 2, "b": np.arange(60) % 3 == 0})
    with pytest.raises(DataError, match="multi-label task: rename the columns instead"):
        build_bundle(DataConfig(targets=("a", "b"), label_map={"a": "c"}), frame)


def test_evaluate_on_new_rows_with_the_old_spellings(tmp_path, quick):
    frame = _frame(*DIABETES)
    mapping = {"Diabetes": "diabetes", "DIABETES": "diabetes"}
    run = deepfit.train(data=frame, out=tmp_path, target="diagnosis", label_map=mapping,
                        epochs=2, **quick)
    new = _frame(*DIABETES, seed=1)
    new.to_csv(tmp_path / "new.csv", index=False)
    for loaded in (run, deepfit.load(run.path)):
        metrics = loaded.evaluate(tmp_path / "new.csv")
        assert metrics["n"] == 85 and set(metrics["per_class"]) == {"diabetes", "healthy"}
        assert set(loaded.predict(new)) <= {"diabetes", "healthy"}


def test_cv_folds_are_stratified_on_the_merged_classes(tmp_path, quick):
    # 'DIABETES' alone has 3 rows, too few for 4 stratified folds; merged, it is no class.
    result = deepfit.cross_validate(data=_frame(*DIABETES), folds=4, out=tmp_path,
                                    target="diagnosis", epochs=1, bootstrap=0,
                                    label_map={"Diabetes": "diabetes", "DIABETES": "diabetes"},
                                    **quick)
    assert result.task == "binary" and len(result.per_fold) == 4


# -- classes that look like one class written differently ---------------------------------

@pytest.mark.parametrize("labels, n_per, group", [
    (*DIABETES, "'diabetes' (30 rows), 'Diabetes' (12), 'DIABETES' (3)"),
    (["diabetes ", "diabetes", "healthy"], [5, 30, 40], "'diabetes' (30 rows), 'diabetes ' (5)"),
    (["no tumour", "no_tumour", "No-Tumour", "glioma"], [20, 6, 4, 30],
     "'no tumour' (20 rows), 'no_tumour' (6), 'No-Tumour' (4)"),
    (["diabetes", "Diabetis", "healthy"], [30, 3, 40], "'diabetes' (30 rows), 'Diabetis' (3)"),
], ids=["case", "whitespace", "separators", "typo"])
def test_lookalike_classes_stop_with_the_label_map_to_copy(labels, n_per, group):
    with pytest.raises(DataError) as err:
        _bundle(_frame(labels, n_per))
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith("target 'diagnosis' has classes that look like one class written "
                           f"differently: {group}; merge them with ")
    # The override, as typed in a shell, parses back to a label_map that ends the stop.
    arg = shlex.split(line.split("merge them with ")[1].split("; if they")[0])
    assert len(arg) == 1 and arg[0].startswith("data.label_map=")
    cfg = RunConfig().override(arg)
    bundle = _bundle(_frame(labels, n_per), label_map=cfg.data.label_map)
    assert len(bundle.schema.class_names) == 2


def test_the_copied_override_quotes_what_yaml_would_misread():
    mapping = {"diabetes ": "diabetes", "yes": "no", "Crohn's": "crohn", "a: b": "c"}
    arg = shlex.split(override(mapping))
    assert len(arg) == 1
    assert yaml.safe_load(arg[0].split("=", 1)[1]) == mapping


# Legitimate label sets, with a rare class (a one-letter difference between a common and a
# rare spelling is what a typo looks like): none of them is flagged. 'cat'/'cats' is not a
# typo either: names under 5 letters are too short to tell a typo from another word.
@pytest.mark.parametrize("labels", [
    ["class_1", "class_2", "class_3"], ["T1", "T2", "T3"], ["benign", "malignant"],
    ["ALL", "AML"], ["G1", "G2", "G3"], ["A", "B"], ["cat", "cats"], ["Type I", "Type II"],
    ["HER2+", "HER2-"], ["stage IIIA", "stage IIIB"], ["kidney-left", "kidney-right"],
    ["house", "mouse", "cattle", "castle"],  # CIFAR-100 classes, as many rows each
])
def test_no_false_positives_on_legitimate_label_sets(labels):
    rare = [40] + [3] * (len(labels) - 1)
    balanced = [40] * len(labels)
    for n_per in ([rare] if labels[0] != "house" else []) + [balanced]:
        assert lookalike_groups(dict(zip(labels, n_per))) == []
    _bundle(_frame(labels, balanced))  # trains on, as given


def test_integer_and_boolean_targets_are_never_checked():
    _bundle(_frame(["1", "2"], [30, 30]).assign(diagnosis=lambda f: f.diagnosis.astype(int)))
    _bundle(_frame(["1", "0"], [30, 30]).assign(diagnosis=lambda f: f.diagnosis == "1"))


def test_a_given_label_map_is_the_escape_and_the_report_notes_what_is_left():
    frame = _frame(["diabetes", "Diabetis", "healthy", "Healthy"], [30, 3, 30, 10])
    bundle = _bundle(frame, label_map={"Healthy": "healthy"})  # the user looked at the labels
    assert bundle.schema.class_names == ["Diabetis", "diabetes", "healthy"]
    assert any("'diabetes' (30 rows), 'Diabetis' (3) look like one class" in note
               and "kept apart because data.label_map was given" in note
               for note in bundle.info["notes"])
    with pytest.raises(DataError, match="names class 'Healthy '"):
        _bundle(frame, label_map={"Healthy ": "healthy"})  # the mapped names are still checked


# -- image class folders ------------------------------------------------------------------

def _class_folders(root, classes: dict[str, int]):
    rng = np.random.default_rng(0)
    for cls, n in classes.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(
                root / cls / f"{i}.png")
    return root


def test_image_class_folders_cat_and_Cat_stop(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFIT_CACHE", str(tmp_path / "cache"))
    root = _class_folders(tmp_path / "pets", {"Cat": 4, "cat": 8, "dog": 8})
    with pytest.raises(DataError) as err:
        build_bundle(DataConfig(source=str(root)))
    assert str(err.value) == (
        "pets has classes that look like one class written differently: 'cat' (8 images), "
        "'Cat' (4); merge them with 'data.label_map={Cat: cat}'")
    bundle = build_bundle(DataConfig(source=str(root), label_map={"Cat": "cat"}))
    assert bundle.schema.task == "binary" and bundle.schema.class_names == ["cat", "dog"]


# -- data.label_map values and merges, as YAML reads them ---------------------------------

@pytest.mark.parametrize("text", ["{pos: yes, neg: no}", "{pos: on, neg: off}",
                                  "{pos: true, neg: false}"])
def test_yaml_boolean_new_names_stop_with_the_quoted_map(text):
    frame = _frame(["pos", "neg"], [30, 30])
    label_map = yaml.safe_load(text)  # as the command line's key=value reads it
    with pytest.raises(DataError) as err:
        _bundle(frame, label_map=label_map)
    assert str(err.value) == (
        "data.label_map gives class 'pos' the new name True, a true/false value: YAML reads "
        "yes/no/on/off/true/false as true/false; quote the new name, e.g. "
        "'data.label_map={pos: \"yes\"}'")
    quoted = yaml.safe_load(shlex.split(str(err.value).split("e.g. ")[1])[0].split("=", 1)[1])
    assert quoted == {"pos": "yes"}  # the hint parses back to text
    bundle = _bundle(frame, label_map={"pos": "yes", "neg": "no"})
    assert bundle.schema.class_names == ["no", "yes"]


def test_yaml_boolean_new_names_are_fine_for_a_true_false_target():
    frame = _frame(["1", "0"], [30, 30]).assign(diagnosis=lambda f: f.diagnosis == "1")
    assert _bundle(frame, label_map={True: False, False: True}).schema.task == "binary"


def test_yaml_boolean_new_names_stop_for_image_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFIT_CACHE", str(tmp_path / "cache"))
    root = _class_folders(tmp_path / "xray", {"normal": 8, "sick": 8})
    with pytest.raises(DataError, match="gives class 'sick' the new name True"):
        build_bundle(DataConfig(source=str(root), label_map={"sick": True}))


def test_a_label_map_that_leaves_one_class_names_the_map():
    frame = _frame(["pos", "neg"], [30, 30])
    with pytest.raises(DataError) as err:
        _bundle(frame, label_map={"pos": "x", "neg": "x"})
    assert str(err.value) == (
        "data.label_map merges all 2 classes of target column 'diagnosis' into one, 'x'; a "
        "model needs at least two classes: map only the spellings of one class onto another")
    with pytest.raises(DataError, match="merges all 2 classes of target column 'diagnosis' "
                                        "into one, 'neg'"):
        _bundle(frame, label_map={"pos": "neg"})


def test_an_image_label_map_that_leaves_one_class_names_the_map(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFIT_CACHE", str(tmp_path / "cache"))
    root = _class_folders(tmp_path / "pets", {"cat": 8, "dog": 8})
    with pytest.raises(DataError, match="data.label_map merges all 2 classes of pets into one, "
                                        "'cat'"):
        build_bundle(DataConfig(source=str(root), label_map={"dog": "cat"}))


# -- text feature columns: look-alike categories are said, not merged ---------------------

def _colours(n: int = 90) -> pd.DataFrame:
    frame = _frame(["healthy", "sick"], [n // 2, n - n // 2])
    colour = np.array(["red", "green", "blue"] * (n // 3), dtype=object)
    colour[:6], colour[6:9] = "RED", "Green "
    return frame.assign(colour=colour)


def test_lookalike_feature_categories_warn_and_note_and_are_kept_apart():
    with pytest.warns(DataWarning) as caught:
        bundle = _bundle(_colours())
    lines = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(lines) == 1 and "\n" not in lines[0]
    advice = ("; each spelling is a separate one-hot input (deepfit does not merge them): if "
              "they are one category, write them alike in the file, or leave the column out "
              "with 'data.drop_columns=[colour]'")
    assert lines[0] == ("dataframe: column 'colour' has categories that look like one category "
                        "written differently: 'red', 'RED'; 'green', 'Green '" + advice)
    (note,) = [n for n in bundle.info["notes"] if "look like" in n]
    assert re.fullmatch(r"dataframe: column 'colour' has categories that look like one "
                        r"category written differently: 'red' \((\d+) training rows\), 'RED' "
                        r"\((\d+)\); 'green' \((\d+) training rows\), 'Green ' \((\d+)\)"
                        + re.escape(advice + "."), note)
    counted = sum(int(c) for c in re.findall(r"\((\d+)", note))
    assert counted < len(bundle.train) and counted < 60  # the training rows only, not all 90
    assert {"colour=RED", "colour=red"} <= set(bundle.schema.preprocessor.output_names_)


def test_distinct_feature_categories_and_numbers_say_nothing():
    frame = _colours().assign(colour=["red", "green", "blue"] * 30,
                              grade=["T1", "T2", "T3"] * 30, code=np.arange(90) % 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bundle = _bundle(frame)
    assert not any("look like" in note for note in bundle.info["notes"])


def test_the_command_line_warns_in_one_line_before_training(tmp_path):
    path = tmp_path / "colours.csv"
    _colours().to_csv(path, index=False)
    done = subprocess.run([sys.executable, "-m", "deepfit", "train", "--data", str(path),
                           "--target", "diagnosis", "--epochs", "1", "--quiet", "--out",
                           str(tmp_path / "runs"), "eval.plots=false", "eval.report=false"],
                          capture_output=True, text=True)  # as a user sees it
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "look like" in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: colours: column 'colour' has categories")
