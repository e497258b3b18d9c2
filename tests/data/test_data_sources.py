"""Tests for deepfit.data.sources: built-ins, toy generators, files, objects, split files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepfit.config import DataConfig
from deepfit.data.bundle import build_bundle
from deepfit.data.sources import SPLIT_COLUMN, list_datasets, load_table
from deepfit.data.sources.builtin import BUILTIN
from deepfit.data.sources.tabular import arrays_to_frame, load_object, read_frame
from deepfit.data.sources.toy2d import TOY
from deepfit.errors import DataError


def load(source, **kw):
    return load_table(DataConfig(source=str(source), **kw))


# -- built-in datasets -------------------------------------------------------------------

@pytest.mark.parametrize("name,shape,task,n_classes", [
    ("breast_cancer", (569, 31), "binary", 2),
    ("digits", (1797, 65), "multiclass", 10),
    ("iris", (150, 5), "multiclass", 3),
    ("wine", (178, 14), "multiclass", 3),
    ("diabetes", (442, 11), "regression", 0),
])
def test_builtin_loads_with_shape_and_task(name, shape, task, n_classes):
    table = load(name)
    assert table.frame.shape == shape
    assert table.target == "target" and "target" in table.frame.columns
    assert table.task_hint == task
    assert table.name == name
    assert len(table.class_names) == n_classes
    if n_classes:
        assert table.frame["target"].nunique() == n_classes
    assert not table.frame.isna().any().any()


def test_builtin_names_are_case_and_dash_insensitive():
    assert load("Breast-Cancer").name == "breast_cancer"


def test_breast_cancer_positive_class_is_malignant():
    table = load("breast_cancer")
    assert table.positive_class == "malignant"
    assert "malignant" in table.class_names.values()


def test_iris_class_names_are_species():
    assert load("iris").class_names == {0: "setosa", 1: "versicolor", 2: "virginica"}


# -- toy generators ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["xor", "circles", "moons", "spiral", "gaussians"])
def test_toy_classification_shape_and_task(name):
    table = load(name, n_samples=120)
    assert list(table.frame.columns) == ["x1", "x2", "y"]
    assert table.frame.shape == (120, 3)
    assert table.target == "y" and table.task_hint == "binary"
    assert set(table.frame["y"].unique()) == {0, 1}
    assert np.isfinite(table.frame[["x1", "x2"]].to_numpy()).all()


def test_toy_linear_shape_and_task():
    table = load("linear", n_samples=50)
    assert list(table.frame.columns) == ["x", "y"]
    assert table.frame.shape == (50, 2)
    assert table.task_hint == "regression"


@pytest.mark.parametrize("name", sorted(TOY))
def test_toy_generator_is_deterministic_per_seed(name):
    cfg = DataConfig(source=name, n_samples=64)
    a = load_table(cfg, seed=7).frame
    b = load_table(cfg, seed=7).frame
    c = load_table(cfg, seed=8).frame
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.to_numpy(float), c.to_numpy(float))


def test_toy_noise_zero_gives_exact_xor_corners():
    frame = load("xor", n_samples=40, noise=0.0).frame
    x1, x2 = frame["x1"].to_numpy(), frame["x2"].to_numpy()
    assert set(np.unique(x1)) <= {0.0, 1.0}
    np.testing.assert_array_equal(frame["y"].to_numpy(), x1.astype(int) ^ x2.astype(int))


def test_toy_circles_radius_follows_class_without_noise():
    frame = load("circles", n_samples=80, noise=0.0).frame
    radius = np.hypot(frame["x1"], frame["x2"])
    np.testing.assert_allclose(radius[frame["y"] == 1], 0.5)
    np.testing.assert_allclose(radius[frame["y"] == 0], 1.0)


def test_toy_linear_follows_3x_plus_2():
    frame = load("linear", n_samples=2000, noise=0.1).frame
    slope, intercept = np.polyfit(frame["x"], frame["y"], 1)
    assert slope == pytest.approx(3.0, abs=0.05)
    assert intercept == pytest.approx(2.0, abs=0.05)
    assert frame["x"].between(0, 1).all()


def test_toy_noise_default_appears_in_description():
    assert "noise 0.3" in load("linear", n_samples=20).description
    assert "noise 0.5" in load("linear", n_samples=20, noise=0.5).description


def test_list_datasets_covers_builtins_and_toys():
    names = [name for name, _, _ in list_datasets()]
    assert set(names) == set(BUILTIN) | set(TOY)
    tasks = dict((name, task) for name, task, _ in list_datasets())
    assert tasks["diabetes"] == "regression" and tasks["xor"] == "binary"


def test_unknown_dataset_name_suggests_close_match():
    with pytest.raises(DataError, match=r"unknown dataset 'breast_cancr'.*"
                                        r"did you mean 'breast_cancer'"):
        load("breast_cancr")


def test_unknown_dataset_name_lists_choices():
    with pytest.raises(DataError, match="one of: breast_cancer.*linear"):
        load("zzzzqq")


# -- files -------------------------------------------------------------------------------

def test_csv_file(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("age, city,label\n31,Oslo,yes\n45,Rome,no\n27,Oslo,yes\n", encoding="utf-8")
    table = load(path)
    assert list(table.frame.columns) == ["age", "city", "label"]
    assert table.target == "label"  # last column by default
    assert table.name == "people"
    assert table.frame["age"].tolist() == [31, 45, 27]
    assert table.frame["city"].tolist() == ["Oslo", "Rome", "Oslo"]


def test_csv_semicolon_is_sniffed(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;b;y\n1;2;0\n3;4;1\n", encoding="utf-8")
    assert load(path).frame.shape == (2, 3)


@pytest.mark.parametrize("sep", ["\t", "|", ";"])
def test_other_delimiters_are_sniffed_with_quotes_and_decimal_commas(tmp_path, sep):
    path = tmp_path / "table.csv"
    path.write_text(f'name{sep}dose{sep}y\n"Smith, J"{sep}1,5{sep}0\n"Li"{sep}2,0{sep}1\n'
                    f'"Ng"{sep}0,5{sep}1\n', encoding="utf-8")
    frame = load(path).frame
    assert list(frame.columns) == ["name", "dose", "y"]
    assert frame["name"].tolist() == ["Smith, J", "Li", "Ng"]
    assert frame["dose"].tolist() == [1.5, 2.0, 0.5]  # a spreadsheet's decimal commas


def test_decimal_points_stay_points_beside_semicolons(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a;b;y\n1.5;3;0\n2,5;4;1\n", encoding="utf-8")  # one stray comma
    assert load(path).frame["a"].tolist() == ["1.5", "2,5"]  # mixed: not guessed, left as text


def test_a_one_column_csv_is_one_column_and_training_on_it_says_what_is_missing(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("x\n1\n2\n3\n4\n5\n6\n", encoding="utf-8")
    frame = load(path).frame
    assert list(frame.columns) == ["x"] and frame["x"].tolist() == [1, 2, 3, 4, 5, 6]
    with pytest.raises(DataError, match=r"one.csv' has no feature columns: only \['x'\], used "
                       "as the target.*check its delimiter"):
        build_bundle(DataConfig(source=str(path)), seed=0)


def test_tsv_file(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\ty\n1.5\tx\t0\n2.5\tz\t1\n", encoding="utf-8")
    frame = load(path).frame
    assert list(frame.columns) == ["a", "b", "y"]
    assert frame["a"].tolist() == [1.5, 2.5]


def test_parquet_file(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "t.parquet"
    original = pd.DataFrame({"a": [1.0, 2.0, 3.0], "c": ["u", "v", "u"], "y": [0, 1, 0]})
    original.to_parquet(path)
    table = load(path)
    pd.testing.assert_frame_equal(table.frame, original, check_dtype=False)
    assert table.target == "y"


def test_npz_file_with_X_and_y(tmp_path):
    path = tmp_path / "arrays.npz"
    X = np.arange(12, dtype=float).reshape(4, 3)
    np.savez(path, X=X, y=np.array([0, 1, 1, 0]))
    table = load(path)
    assert list(table.frame.columns) == ["x0", "x1", "x2", "target"]
    assert table.target == "target"
    np.testing.assert_array_equal(table.frame[["x0", "x1", "x2"]].to_numpy(), X)
    assert table.frame["target"].tolist() == [0, 1, 1, 0]


def test_npz_alternative_key_names(tmp_path):
    path = tmp_path / "alt.npz"
    np.savez(path, features=np.ones((3, 2)), labels=np.array([1, 0, 1]))
    assert load(path).frame["target"].tolist() == [1, 0, 1]


def test_npy_file_last_column_is_target(tmp_path):
    path = tmp_path / "table.npy"
    np.save(path, np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 1.0]]))
    table = load(path)
    assert list(table.frame.columns) == ["x0", "x1", "target"]
    assert table.frame["target"].tolist() == [0.0, 1.0]
    assert table.frame["x1"].tolist() == [2.0, 4.0]


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "absent.csv"
    with pytest.raises(DataError, match=r"absent\.csv' does not exist"):
        load(path)


def test_empty_zero_byte_file_is_named(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.csv' is empty \(0 bytes\)"):
        load(path)


def test_header_only_csv_is_named(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b,y\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"header\.csv' has a header but no data rows"):
        load(path)


def test_blank_lines_only_csv_has_no_columns(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"blank\.csv'"):
        load(path)


def test_ragged_csv_row_is_named(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,y\n1,2,0\n3,4,1,9\n5,6,0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ragged\.csv' could not be parsed.*line 3"):
        load(path)


def test_ragged_tsv_row_is_named(tmp_path):
    path = tmp_path / "ragged.tsv"
    path.write_text("a\tb\ty\n1\t2\t0\n3\t4\t1\t9\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ragged\.tsv' could not be parsed"):
        load(path)


def test_non_utf8_csv_is_named(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("city,y\nZ\xfcrich,1\nM\xe1laga,0\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv' is not UTF-8 text.*re-save it as UTF-8"):
        load(path)


def test_duplicate_csv_column_names_are_refused(tmp_path):
    path = tmp_path / "dupes.csv"
    path.write_text("a,a,y\n1,2,0\n3,4,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dupes\.csv' has duplicate column names: \['a'\]"):
        load(path)


def test_columns_named_like_pandas_renames_are_not_duplicates(tmp_path):
    path = tmp_path / "dots.csv"
    path.write_text("a,a.1,y\n1,2,0\n3,4,1\n", encoding="utf-8")
    assert list(load(path).frame.columns) == ["a", "a.1", "y"]


def test_unsupported_extension_is_named(tmp_path):
    path = tmp_path / "data.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match=r"data\.json' has an unsupported extension '\.json'"):
        load(path)


def test_folder_is_refused(tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(DataError, match="is a folder"):
        load(folder)


def test_damaged_parquet_is_named(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not a parquet file at all")
    with pytest.raises(DataError, match=r"broken\.parquet' is not a readable Parquet file"):
        load(path)


def test_npz_with_wrong_keys_lists_them(tmp_path):
    path = tmp_path / "keys.npz"
    np.savez(path, A=np.zeros((3, 2)), B=np.zeros(3))
    with pytest.raises(DataError, match=r"keys\.npz' has arrays \['A', 'B'\].*'X'.*'y'"):
        load(path)


def test_npz_with_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, X=np.array([{"a": 1}, {"b": 2}], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"objects\.npz' holds Python objects"):
        load(path)


def test_npy_with_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([[{"a": 1}, 0], [{"b": 2}, 1]], dtype=object))
    with pytest.raises(DataError, match=r"objects\.npy' holds Python objects"):
        load(path)


def test_npy_one_dimensional_is_refused(tmp_path):
    path = tmp_path / "vector.npy"
    np.save(path, np.arange(5.0))
    with pytest.raises(DataError, match=r"vector\.npy' holds an array of shape \(5,\).*2-D"):
        load(path)


def test_npy_single_column_is_refused(tmp_path):
    path = tmp_path / "column.npy"
    np.save(path, np.ones((4, 1)))
    with pytest.raises(DataError, match=r"column\.npy' holds an array of shape \(4, 1\)"):
        load(path)


def test_npz_row_count_mismatch_is_named(tmp_path):
    path = tmp_path / "mismatch.npz"
    np.savez(path, X=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(DataError, match=r"mismatch\.npz.*4 rows but the target has 3"):
        load(path)


def test_garbage_npy_is_named(tmp_path):
    path = tmp_path / "garbage.npy"
    path.write_bytes(b"this is not numpy")
    # NumPy treats a file without the .npy magic as a pickle, which is never loaded
    with pytest.raises(DataError, match=r"garbage\.npy' (is not a readable|holds Python)"):
        load(path)


# -- Python objects ----------------------------------------------------------------------

def test_dataframe_object_last_column_is_target():
    df = pd.DataFrame({0: [1.0, 2.0], "b": ["x", "y"], "label": [0, 1]}, index=[10, 20])
    table = load_table(DataConfig(), data=df)
    assert table.target == "label"
    assert list(table.frame.columns) == ["0", "b", "label"]  # names become strings
    assert table.frame.index.tolist() == [0, 1]
    assert list(df.columns) == [0, "b", "label"]  # the caller's frame is not modified


def test_xy_tuple_object():
    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    table = load_table(DataConfig(), data=(X, np.array([0, 1, 0])))
    assert list(table.frame.columns) == ["x0", "x1", "target"]
    assert table.target == "target" and table.name == "arrays"
    assert table.frame["x1"].tolist() == [2.0, 4.0, 6.0]


def test_xy_dict_and_torch_tensors():
    torch = pytest.importorskip("torch")
    table = load_object({"X": torch.ones(4, 2), "y": torch.tensor([0, 1, 0, 1])})
    assert table.frame.shape == (4, 3)
    assert table.frame["target"].tolist() == [0, 1, 0, 1]


def test_xy_with_one_dimensional_x_and_column_y():
    frame = arrays_to_frame(np.arange(3.0), np.array([[1], [0], [1]]))
    assert list(frame.columns) == ["x0", "target"]
    assert frame["target"].tolist() == [1, 0, 1]


def test_xy_with_dataframe_features_keeps_names():
    X = pd.DataFrame({"height": [1.0, 2.0]}, index=[5, 6])
    frame = arrays_to_frame(X, pd.Series([0, 1], index=[5, 6]))
    assert list(frame.columns) == ["height", "target"]


def test_xy_feature_called_target_is_refused():
    with pytest.raises(DataError, match="already called 'target'"):
        arrays_to_frame(pd.DataFrame({"target": [1, 2]}), [0, 1])


def test_xy_row_mismatch_is_refused():
    with pytest.raises(DataError, match="3 rows but the target has 2"):
        load_object((np.zeros((3, 2)), np.zeros(2)))


def test_xy_three_dimensional_features_are_refused():
    with pytest.raises(DataError, match=r"features have shape \(2, 2, 2\)"):
        load_object((np.zeros((2, 2, 2)), np.zeros(2)))


def test_xy_two_column_target_is_refused():
    with pytest.raises(DataError, match=r"target has shape \(2, 2\)"):
        load_object((np.zeros((2, 2)), np.zeros((2, 2))))


def test_empty_dataframe_is_refused():
    with pytest.raises(DataError, match="DataFrame passed as data is empty"):
        load_object(pd.DataFrame())


def test_unsupported_object_is_refused():
    with pytest.raises(DataError, match="object of type int"):
        load_object(42)


# -- separate validation / test files ----------------------------------------------------

def _write_csv(path, frame):
    frame.to_csv(path, index=False)
    return str(path)


def test_val_and_test_files_are_stacked_with_split_labels(tmp_path):
    train = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    val = pd.DataFrame({"y": [1, 0], "a": [4.0, 5.0]})  # column order may differ
    test = pd.DataFrame({"a": [6.0], "y": [1], "extra": ["ignored"]})
    cfg = DataConfig(source=_write_csv(tmp_path / "train.csv", train),
                     val_file=_write_csv(tmp_path / "val.csv", val),
                     test_file=_write_csv(tmp_path / "test.csv", test))
    table = load_table(cfg)
    assert list(table.frame.columns) == ["a", "y"]
    assert table.frame["a"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert table.split.tolist() == ["train"] * 3 + ["val"] * 2 + ["test"]
    assert SPLIT_COLUMN not in table.frame.columns
    assert "separate validation and test file" in table.description


def test_only_test_file_is_stacked(tmp_path):
    train = pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]})
    cfg = DataConfig(source=_write_csv(tmp_path / "tr.csv", train),
                     test_file=_write_csv(tmp_path / "te.csv", train))
    table = load_table(cfg)
    assert table.split.tolist() == ["train", "train", "test", "test"]
    assert "separate test file" in table.description


def test_split_file_missing_a_column_is_named(tmp_path):
    train = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "y": [0, 1]})
    cfg = DataConfig(source=_write_csv(tmp_path / "tr.csv", train),
                     val_file=_write_csv(tmp_path / "va.csv", train.drop(columns=["b"])))
    with pytest.raises(DataError, match=r"va\.csv' lacks column\(s\) \['b'\]"):
        load_table(cfg)


def test_missing_split_file_is_named(tmp_path):
    train = pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]})
    cfg = DataConfig(source=_write_csv(tmp_path / "tr.csv", train),
                     val_file=str(tmp_path / "nowhere.csv"))
    with pytest.raises(DataError, match=r"nowhere\.csv' does not exist"):
        load_table(cfg)


def test_split_files_work_with_dataframe_data(tmp_path):
    val = pd.DataFrame({"a": [9.0], "y": [1]})
    cfg = DataConfig(val_file=_write_csv(tmp_path / "v.csv", val))
    table = load_table(cfg, data=pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]}))
    assert table.split.tolist() == ["train", "train", "val"]


def test_read_frame_reads_txt_as_csv(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("a,y\n1,0\n2,1\n", encoding="utf-8")
    assert read_frame(path).shape == (2, 2)


def test_spaces_around_text_cells_are_stripped_so_labels_do_not_split(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text('dose,colour,label\n1.5 ,red ,yes \n2.5,red,yes\n3.0, blue,no\n'
                    '4.0,"  ",no\n', encoding="utf-8")
    frame = load(path).frame
    assert frame["label"].tolist() == ["yes", "yes", "no", "no"]  # two classes, not three
    assert frame["colour"].tolist()[:3] == ["red", "red", "blue"]
    assert pd.isna(frame["colour"].iloc[3])  # a blank cell is missing, not a category ""
    assert frame["dose"].dtype.kind == "f"
