"""Tests for deepfit.data.bundle.build_bundle: the whole data stage end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from deepfit.config import DataConfig
from deepfit.data.bundle import Schema, build_bundle
from deepfit.data.split import SPLITS
from deepfit.errors import DataError


def _classification_frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": [f"row{i}" for i in range(n)],
        "a": rng.normal(5.0, 2.0, size=n),
        "colour": rng.choice(["red", "green", "blue"], size=n),
        "noise": rng.normal(size=n),
        "label": np.where(np.arange(n) % 4 == 0, "dog", "cat"),  # 25% dog
    })


def _regression_frame(n=80, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, size=n)
    return pd.DataFrame({"x": x, "y": 100.0 + 20.0 * x + rng.normal(size=n)})


def _sizes(bundle):
    return {name: len(split) for name, split in bundle.splits().items()}


# -- shapes and info ---------------------------------------------------------------------

def test_binary_bundle_shapes_dtypes_and_info():
    bundle = build_bundle(DataConfig(id_column="id"), data=_classification_frame())
    assert bundle.schema.task == "binary"
    assert _sizes(bundle) == {"train": 78, "val": 18, "test": 24}
    for split in bundle.splits().values():
        assert split.X.dtype == torch.float32 and split.y.dtype == torch.float32
        assert split.X.shape == (len(split), 1 + 3 + 1)  # a, noise, 3 colours
        assert torch.isfinite(split.X).all()
    assert bundle.schema.input_shape == (5,)
    assert bundle.schema.n_outputs == 1
    info = bundle.info
    assert info["rows"] == 120 and info["columns"] == 3 and info["inputs"] == 5
    assert info["target"] == "label" and info["task"] == "binary"
    assert info["split_sizes"] == _sizes(bundle)
    assert info["positive_class"] == "dog"
    assert "stratified" in info["split_method"]


def test_class_counts_in_info_match_the_tensors_and_are_stratified():
    bundle = build_bundle(DataConfig(id_column="id"), data=_classification_frame())
    counts = bundle.info["class_counts"]
    for name, split in bundle.splits().items():
        dogs = int(split.y.sum().item())
        assert counts[name] == {"cat": len(split) - dogs, "dog": dogs}
    assert counts["train"]["dog"] / 78 == pytest.approx(0.25, abs=0.02)
    assert counts["test"] == {"cat": 18, "dog": 6}


def test_multiclass_bundle_uses_int64_labels():
    frame = pd.DataFrame({"a": np.arange(90.0), "y": ["x", "y", "z"] * 30})
    bundle = build_bundle(DataConfig(), data=frame)
    assert bundle.schema.task == "multiclass"
    assert bundle.train.y.dtype == torch.int64
    assert bundle.schema.n_outputs == 3
    assert set(bundle.info["class_counts"]["test"]) == {"x", "y", "z"}
    assert "positive_class" not in bundle.info


def test_builtin_bundle_iris():
    bundle = build_bundle(DataConfig(source="iris"))
    assert bundle.schema.task == "multiclass"
    assert bundle.train.X.shape[1] == 4
    assert sum(_sizes(bundle).values()) == 150
    assert bundle.schema.class_names == ["setosa", "versicolor", "virginica"]


def test_builtin_bundle_breast_cancer_positive_is_malignant():
    bundle = build_bundle(DataConfig(source="breast_cancer"))
    assert bundle.schema.class_names == ["benign", "malignant"]
    assert bundle.info["positive_class"] == "malignant"
    total_malignant = sum(c["malignant"] for c in bundle.info["class_counts"].values())
    assert total_malignant == 212


def test_toy_bundle_uses_seed_and_n_samples():
    cfg = DataConfig(source="moons", n_samples=100)
    a = build_bundle(cfg, seed=1)
    b = build_bundle(cfg, seed=1)
    assert sum(_sizes(a).values()) == 100
    assert torch.equal(a.train.X, b.train.X) and torch.equal(a.test.y, b.test.y)
    np.testing.assert_array_equal(a.val.ids, b.val.ids)


def test_splits_are_disjoint_and_cover_every_row():
    bundle = build_bundle(DataConfig(id_column="id"), data=_classification_frame())
    ids = [i for split in bundle.splits().values() for i in split.ids.tolist()]
    assert sorted(ids) == sorted(f"row{i}" for i in range(120))


def test_explicit_task_overrides_inference():
    frame = pd.DataFrame({"a": np.arange(60.0), "y": [0, 1, 2] * 20})
    assert build_bundle(DataConfig(task="regression"), data=frame).schema.task == "regression"


def test_explicit_binary_task_with_three_classes_is_refused():
    frame = pd.DataFrame({"a": np.arange(60.0), "y": [0, 1, 2] * 20})
    with pytest.raises(DataError, match="data.task=binary but target column 'y' has 3 classes"):
        build_bundle(DataConfig(task="binary"), data=frame)


# -- preprocessing fitted on train -------------------------------------------------------

def test_features_standardised_with_training_statistics_only():
    bundle = build_bundle(DataConfig(), data=_regression_frame())
    train_x = bundle.train.X[:, 0]
    assert train_x.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert train_x.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)
    val_x = bundle.val.X[:, 0]
    assert abs(val_x.mean().item()) > 1e-3  # val is not re-centred on its own mean


def test_regression_target_scaled_with_train_stats():
    frame = _regression_frame()
    bundle = build_bundle(DataConfig(), data=frame)
    spec = bundle.schema.target
    assert bundle.schema.task == "regression"
    train_y = frame["y"].to_numpy()[bundle.train.ids]
    assert spec.mean == pytest.approx(train_y.mean())
    assert spec.std == pytest.approx(train_y.std())
    assert bundle.train.y.mean().item() == pytest.approx(0.0, abs=1e-5)
    test_y = frame["y"].to_numpy()[bundle.test.ids]
    np.testing.assert_allclose(spec.decode_regression(bundle.test.y.numpy()), test_y, rtol=1e-5)
    assert "class_counts" not in bundle.info


def test_regression_target_unscaled_when_disabled():
    frame = _regression_frame()
    bundle = build_bundle(DataConfig(scale_target=False), data=frame)
    np.testing.assert_allclose(bundle.train.y.numpy(), frame["y"].to_numpy()[bundle.train.ids],
                               rtol=1e-6)


def test_feature_transform_and_no_standardize_pass_through():
    frame = pd.DataFrame({"a": [0.0, 1.0, 3.0, 7.0] * 10, "y": np.arange(40.0) * 1.5})
    bundle = build_bundle(DataConfig(standardize=False, feature_transform="log2p1"), data=frame)
    assert set(bundle.train.X[:, 0].tolist()) <= {0.0, 1.0, 2.0, 3.0}


# -- columns -----------------------------------------------------------------------------

def test_id_column_is_kept_out_of_features_and_returned_as_ids():
    bundle = build_bundle(DataConfig(id_column="id"), data=_classification_frame())
    assert "id" not in bundle.schema.preprocessor.columns_
    assert all(str(i).startswith("row") for i in bundle.train.ids)
    assert bundle.schema.id_column == "id"


def test_without_id_column_ids_are_row_numbers():
    bundle = build_bundle(DataConfig(), data=_regression_frame())
    ids = np.sort(np.concatenate([s.ids for s in bundle.splits().values()]))
    np.testing.assert_array_equal(ids, np.arange(80))


def test_drop_columns_are_removed():
    bundle = build_bundle(DataConfig(id_column="id", drop_columns=("noise", "colour")),
                          data=_classification_frame())
    assert bundle.schema.preprocessor.columns_ == ["a"]
    assert bundle.train.X.shape[1] == 1


def test_unknown_drop_column_suggests_close_name():
    with pytest.raises(DataError, match=r"column 'nois' .* is not in the data "
                                        r"\(did you mean 'noise'\?\)"):
        build_bundle(DataConfig(id_column="id", drop_columns=("nois",)),
                     data=_classification_frame())


def test_unknown_id_column_suggests_close_name():
    with pytest.raises(DataError, match=r"column 'ids' .* \(did you mean 'id'\?\)"):
        build_bundle(DataConfig(id_column="ids"), data=_classification_frame())


def test_identifier_left_in_features_hits_category_limit():
    # Not named like an identifier, so not recognised as one: the category limit catches it.
    frame = _classification_frame().rename(columns={"id": "specimen"})
    with pytest.raises(DataError, match=r"column 'specimen' has \d+ distinct text values.*"
                                        r"data.id_column=specimen"):
        build_bundle(DataConfig(), data=frame)


@pytest.mark.parametrize("name", ["id", "patient_id", "Sample ID"])
def test_a_column_named_as_an_identifier_with_unique_values_is_kept_out_of_the_features(name):
    frame = _classification_frame().rename(columns={"id": name})
    frame[name] = np.arange(1000, 1000 + len(frame))  # numbers: would pass as a feature
    bundle = build_bundle(DataConfig(), data=frame)
    assert bundle.schema.id_column == name
    assert not any(c.startswith(name) for c in bundle.schema.preprocessor.output_names_)
    assert set(bundle.train.ids) <= set(frame[name])
    assert any(f"Column '{name}' was taken as the row identifier" in n
               for n in bundle.info["notes"])
    # A repeated value means it is not an identifier: it stays a feature.
    frame.loc[1, name] = frame.loc[0, name]
    assert build_bundle(DataConfig(), data=frame).schema.id_column is None


def test_garbage_in_numeric_feature_names_column_and_row():
    frame = _regression_frame()
    frame["x"] = frame["x"].astype(object)
    frame.loc[17, "x"] = "abc"
    with pytest.raises(DataError, match=r"column 'x' is numeric except for 'abc' at row 17"):
        build_bundle(DataConfig(), data=frame)


# -- target ------------------------------------------------------------------------------

def test_target_column_chosen_by_name():
    frame = _classification_frame()[["label", "a", "noise"]]
    bundle = build_bundle(DataConfig(target="label"), data=frame)
    assert bundle.schema.target.column == "label"
    assert bundle.schema.preprocessor.columns_ == ["a", "noise"]


@pytest.mark.parametrize("field,value", [("split_column", "fold"), ("id_column", "fold"),
                                         ("drop_columns", ("fold",))])
def test_default_target_that_is_a_special_column_is_refused(field, value):
    frame = _split_frame()[["a", "y", "fold"]]  # 'fold' is the last column
    with pytest.raises(DataError, match=rf"the last column 'fold' is data.{field}.*"
                                        r"set data.target"):
        build_bundle(DataConfig(**{field: value}), data=frame)


def test_split_column_last_with_explicit_target_works():
    frame = _split_frame()[["a", "y", "fold"]]
    bundle = build_bundle(DataConfig(split_column="fold", target="y"), data=frame)
    assert _sizes(bundle) == {"train": 40, "val": 8, "test": 12}


def test_unknown_target_column_suggests_close_name_and_lists_columns():
    with pytest.raises(DataError, match=r"target column 'lable' is not in dataframe "
                                        r"\(did you mean 'label'\?\); columns are: id, a"):
        build_bundle(DataConfig(target="lable"), data=_classification_frame())


def test_missing_target_values_name_column_and_row():
    frame = _regression_frame()
    frame.loc[[5, 9], "y"] = np.nan
    with pytest.raises(DataError, match=r"target column 'y' has 2 missing value\(s\), first at "
                                        r"row 5"):
        build_bundle(DataConfig(), data=frame)


def test_target_with_one_class_is_refused():
    frame = pd.DataFrame({"a": np.arange(30.0), "y": ["same"] * 30})
    with pytest.raises(DataError, match=r"target column 'y' has a single value \('same'\)"):
        build_bundle(DataConfig(), data=frame)


def test_target_with_one_class_is_refused_even_with_explicit_task():
    frame = pd.DataFrame({"a": np.arange(30.0), "y": [1] * 30})
    with pytest.raises(DataError, match=r"target column 'y' has a single value \(1\)"):
        build_bundle(DataConfig(task="multiclass"), data=frame)


def test_positive_class_from_config_reorders_classes():
    frame = _classification_frame()
    bundle = build_bundle(DataConfig(id_column="id", positive_class="cat"), data=frame)
    assert bundle.schema.class_names == ["dog", "cat"]
    assert bundle.info["positive_class"] == "cat"
    cats = int(bundle.train.y.sum().item())
    assert bundle.info["class_counts"]["train"]["cat"] == cats


def test_rare_class_names_the_class():
    frame = pd.DataFrame({"a": np.arange(42.0), "y": ["a"] * 20 + ["b"] * 20 + ["tiny"] * 2})
    with pytest.raises(DataError, match=r"class 'tiny' has only 2 row\(s\)"):
        build_bundle(DataConfig(), data=frame)


def test_split_sizes_summing_past_one_are_refused():
    with pytest.raises(DataError, match="must be below 1"):
        build_bundle(DataConfig(val_size=0.5, test_size=0.5), data=_regression_frame())


# -- split column and split files --------------------------------------------------------

def _split_frame():
    rng = np.random.default_rng(3)
    return pd.DataFrame({"a": rng.normal(size=60), "fold": ["train"] * 40 + ["valid"] * 8 +
                         ["Test"] * 12, "y": ["p", "q"] * 30})


def test_split_column_decides_rows_and_is_not_a_feature():
    bundle = build_bundle(DataConfig(split_column="fold"), data=_split_frame())
    assert _sizes(bundle) == {"train": 40, "val": 8, "test": 12}
    assert bundle.schema.preprocessor.columns_ == ["a"]
    assert bundle.info["split_method"] == "by column 'fold'"
    np.testing.assert_array_equal(bundle.test.ids, np.arange(48, 60))


def test_split_column_without_val_rows_carves_them_from_train():
    frame = _split_frame().assign(fold=["train"] * 48 + ["test"] * 12)
    bundle = build_bundle(DataConfig(split_column="fold", val_size=0.25), data=frame)
    assert _sizes(bundle) == {"train": 36, "val": 12, "test": 12}
    assert bundle.info["notes"] == ["no 'val' rows in column 'fold': 12 carved from training rows"]
    assert set(bundle.val.ids) <= set(range(48))


def test_split_column_bad_value_names_value_and_row():
    frame = _split_frame()
    frame.loc[44, "fold"] = "holdout"
    with pytest.raises(DataError, match="split column 'fold' has value 'holdout' at row 44"):
        build_bundle(DataConfig(split_column="fold"), data=frame)


def test_unknown_split_column_suggests_close_name():
    with pytest.raises(DataError, match=r"split column 'folds' is not in the data "
                                        r"\(did you mean 'fold'\?\)"):
        build_bundle(DataConfig(split_column="folds"), data=_split_frame())


def test_class_only_in_test_split_is_refused():
    frame = _split_frame()
    frame.loc[55, "y"] = "r"
    with pytest.raises(DataError, match="class 'r' appears in the test split but not in training"):
        build_bundle(DataConfig(split_column="fold"), data=frame)


def test_separate_val_and_test_files(tmp_path):
    frame = _classification_frame().drop(columns=["id"])
    frame.iloc[:80].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[80:100].to_csv(tmp_path / "val.csv", index=False)
    frame.iloc[100:].to_csv(tmp_path / "test.csv", index=False)
    cfg = DataConfig(source=str(tmp_path / "train.csv"), val_file=str(tmp_path / "val.csv"),
                     test_file=str(tmp_path / "test.csv"))
    bundle = build_bundle(cfg)
    assert _sizes(bundle) == {"train": 80, "val": 20, "test": 20}
    assert bundle.info["split_method"] == "by the given files"
    # training statistics only: the scaler never saw the validation or test files
    assert bundle.schema.preprocessor.center_["a"] == pytest.approx(frame["a"].iloc[:80].mean())


def test_separate_test_file_only_carves_val_from_train(tmp_path):
    frame = _classification_frame().drop(columns=["id"])
    frame.iloc[:100].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[100:].to_csv(tmp_path / "test.csv", index=False)
    cfg = DataConfig(source=str(tmp_path / "train.csv"), test_file=str(tmp_path / "test.csv"),
                     val_size=0.2)
    bundle = build_bundle(cfg)
    assert _sizes(bundle) == {"train": 80, "val": 20, "test": 20}
    assert len(bundle.info["notes"]) == 1


def test_csv_file_end_to_end(tmp_path):
    path = tmp_path / "loans.csv"
    rows = ["income,region,default"] + [f"{1000 + 37 * i},{'north' if i % 3 else 'south'},"
                                       f"{'yes' if i % 5 == 0 else 'no'}" for i in range(60)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    bundle = build_bundle(DataConfig(source=str(path), positive_class="yes"))
    assert bundle.schema.task == "binary"
    assert bundle.schema.class_names == ["no", "yes"]
    assert bundle.info["name"] == "loans"
    assert bundle.train.X.shape[1] == 3  # income + 2 regions


# -- schema ------------------------------------------------------------------------------

def test_schema_round_trips_through_json_and_transforms_identically():
    frame = _classification_frame()
    bundle = build_bundle(DataConfig(id_column="id"), data=frame)
    state = json.loads(json.dumps(bundle.schema.to_dict()))
    schema = Schema.from_dict(state)
    assert schema.task == bundle.schema.task
    assert schema.class_names == bundle.schema.class_names
    assert schema.input_shape == bundle.schema.input_shape
    assert schema.id_column == "id"
    new_rows = frame.iloc[:7]
    assert torch.equal(schema.transform(new_rows, "new"), bundle.schema.transform(new_rows, "new"))


def test_a_target_named_column_that_is_not_last_must_be_chosen_explicitly():
    # Kaggle's breast cancer CSV: id, diagnosis, then 30 measurements; the last column is not
    # the target, and silently regressing on it would be a wrong study.
    frame = _classification_frame()[["id", "label", "a", "noise"]]
    with pytest.raises(DataError, match=r"no target given: the last column 'noise' would be "
                       r"the target, but column 'label' looks like it; pass --target label"):
        build_bundle(DataConfig(), data=frame)
    assert build_bundle(DataConfig(target="label"), data=frame).schema.task == "binary"
    assert build_bundle(DataConfig(target="noise"), data=frame).schema.task == "regression"
    # Built-in sets name their target themselves: no guessing, no refusal.
    assert build_bundle(DataConfig(source="iris")).schema.task == "multiclass"


def test_an_empty_unnamed_column_from_trailing_delimiters_is_dropped(tmp_path):
    path = tmp_path / "export.csv"
    rows = ["a,b,label,"] + [f"{i},{i % 3},{'yes' if i % 2 else 'no'}," for i in range(30)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    bundle = build_bundle(DataConfig(source=str(path)))
    assert bundle.schema.target.column == "label"
    assert bundle.schema.preprocessor.columns_ == ["a", "b"]


def test_whole_numbers_read_as_classes_say_how_to_make_them_a_quantity():
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    frame = pd.DataFrame({"x": x, "z": rng.normal(size=300), "grade": np.digitize(x, [-1, 0, 1])})
    bundle = build_bundle(DataConfig(), data=frame)
    assert bundle.schema.task == "multiclass"
    assert "The target 'grade' holds 4 different whole numbers, read as that many classes; if " \
           "it is a quantity (a count, a score, an age), set data.task=regression." \
           in bundle.info["notes"]
    # A count with rare values cannot be split by class: the error offers regression too.
    frame["days"] = np.clip((3 * x + 6).round(), 0, 12).astype(int)
    with pytest.raises(DataError, match=r"a stratified split needs at least 3 .*; or, if "
                       r"'days' is a quantity \(a count, a score\), set data.task=regression"):
        build_bundle(DataConfig(target="days", drop_columns=("grade",)), data=frame)
    assert build_bundle(DataConfig(target="days", drop_columns=("grade",), task="regression"),
                        data=frame).schema.task == "regression"
    # Text classes are classes: no such note.
    frame["grade"] = frame["grade"].map({0: "a", 1: "b", 2: "c", 3: "d"})
    notes = build_bundle(DataConfig(target="grade", drop_columns=("days",)), data=frame).info
    assert not any("whole numbers" in n for n in notes["notes"])


def test_a_group_column_keeps_each_patient_in_one_split_and_out_of_the_features():
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(60), 5)  # five rows (scans, visits) per patient
    sick = rng.random(60) < 0.4
    frame = pd.DataFrame({"patient": [f"P{p}" for p in patients],
                          "x": rng.normal(size=300) + 1.5 * sick[patients],
                          "z": rng.normal(size=300),
                          "label": np.where(sick[patients], "sick", "well")})
    bundle = build_bundle(DataConfig(group_column="patient"), data=frame)
    owners = {s: set(frame["patient"].iloc[getattr(bundle, s).ids]) for s in SPLITS}
    assert not owners["train"] & owners["val"] and not owners["train"] & owners["test"] \
        and not owners["val"] & owners["test"]
    assert bundle.schema.preprocessor.columns_ == ["x", "z"]
    assert "whole groups of 'patient' (60 groups): none is in two splits" \
        in bundle.info["split_method"]
    frame.loc[7, "patient"] = None
    with pytest.raises(DataError, match=r"group column 'patient' \(data.group_column\) has 1 "
                       r"missing value\(s\), first at row 7"):
        build_bundle(DataConfig(group_column="patient"), data=frame)
    with pytest.raises(DataError, match=r"column 'patiant' \(data.group_column\) is not in the "
                       r"data \(did you mean 'patient'\?\)"):
        build_bundle(DataConfig(group_column="patiant"), data=frame)
