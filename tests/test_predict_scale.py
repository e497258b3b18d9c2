"""``deepfit predict`` in parts (deepfit.predict_files): the file it writes equals
``Run.predictions`` on the whole input, whatever the part size; warnings about the input
are said once; an error part-way leaves no file; images are found recursively or listed
in a CSV."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from deepfit.cli import main
from deepfit.errors import DataError, DataWarning
from deepfit.predict_files import predict_file
from image_samples import class_folders, gray, save


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 90
    frame = pd.DataFrame({"x": rng.normal(size=n), "colour": ["red", "blue", "green"] * 30,
                          "grade": ["1", "2", "a"] * 30})
    frame["y"] = np.where(frame["x"] > 0, "high", "low")
    return deepfit.train(data=frame, out=tmp_path_factory.mktemp("runs"), epochs=2,
                         bootstrap=0, progress=False, eval={"plots": False, "report": False})


@pytest.fixture(scope="module")
def new_rows():
    """Unseen categories only in the later rows; 'grade' as numbers with a gap in some."""
    rng = np.random.default_rng(1)
    n = 23
    new = pd.DataFrame({"x": rng.normal(size=n), "colour": ["red", "blue"] * 11 + ["red"],
                        "grade": ["1", "2"] * 11 + ["a"]})
    new.loc[[15, 20], "colour"] = ["purple", "pink"]
    new.loc[18, "colour"] = "purple"
    new.loc[[5, 9], "grade"] = None
    return new


def _reference(run, data) -> pd.DataFrame:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = run.predictions(data).to_frame()
    return frame, [str(w.message) for w in caught]


@pytest.mark.parametrize("rows", [1, 4, 7, 23, 1000])
def test_a_table_in_parts_equals_the_whole_table(table_run, new_rows, tmp_path, rows):
    path = tmp_path / "new.csv"
    new_rows.to_csv(path, index=False)
    whole, said = _reference(table_run, new_rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = predict_file(table_run, path, tmp_path / "out.csv", batch=rows)
    got = pd.read_csv(tmp_path / "out.csv")
    pd.testing.assert_frame_equal(got, pd.read_csv(pd.io.common.StringIO(
        whole.to_csv(index=False))))
    assert done.rows == 23 and done.streamed
    lines = [str(w.message) for w in caught]
    # Once, counted over every part, as for the whole table (whose origin is "input").
    assert lines == [line.replace("input: ", f"{path}: ") for line in said]
    assert len(lines) == 2 and "'colour': 3 row(s) hold a category not seen" in lines[0]
    assert "('purple', 'pink')" in lines[0] and "'grade': 2 row(s)" in lines[1]


def test_parquet_in_batches_and_through_the_command_line(table_run, new_rows, tmp_path):
    path = tmp_path / "new.parquet"
    new_rows.to_parquet(path, index=False)
    out = tmp_path / "p.csv"
    with pytest.warns(DataWarning, match="category not seen"):
        assert main(["predict", str(table_run.path), str(path), "-o", str(out),
                     "--batch-size", "5"]) == 0
    whole, _ = _reference(table_run, new_rows)
    np.testing.assert_allclose(pd.read_csv(out)["p_high"], whole["p_high"], rtol=1e-6)
    assert list(pd.read_csv(out)["row"]) == list(range(23))


def test_an_error_part_way_leaves_no_file_and_names_the_row(table_run, new_rows, tmp_path):
    bad = new_rows.copy()
    bad["x"] = bad["x"].astype(object)
    bad.loc[17, "x"] = "n/a?"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    out = tmp_path / "out.csv"
    with pytest.raises(DataError, match=r"column 'x' has non-numeric value 'n/a\?' at row 17"):
        predict_file(table_run, path, out, batch=5)
    assert list(tmp_path.iterdir()) == [path]  # neither OUTPUT nor its temporary file


def test_labelled_rows_carry_their_labels(table_run, new_rows, tmp_path):
    path = tmp_path / "labelled.csv"
    new_rows.assign(y="low").to_csv(path, index=False)
    with pytest.warns(DataWarning):
        predict_file(table_run, path, tmp_path / "o.csv", batch=6)
    assert (pd.read_csv(tmp_path / "o.csv")["true"] == "low").all()


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = class_folders(tmp_path_factory.mktemp("img") / "train", {"a": 12, "b": 12})
    return deepfit.train(data=str(root), out=tmp_path_factory.mktemp("runs"), model="cnn",
                         channels=[4], epochs=1, batch_size=8, bootstrap=0, progress=False,
                         eval={"plots": False, "report": False})


def test_an_image_folder_is_searched_recursively(image_run, tmp_path):
    folder = tmp_path / "new"
    arrays = {f"img{i}.png": gray(100 + i) for i in range(3)}
    arrays.update({f"deep/er/img{i}.png": gray(200 + i) for i in range(4)})
    for name, array in arrays.items():
        save(folder / name, array)
    (folder / "deep" / "notes.txt").write_text("not an image")
    out = tmp_path / "out.csv"
    with pytest.warns(DataWarning, match=r"1 file\(s\) are not images by their name and get "
                                         r"no prediction \(e.g. 'deep/notes.txt'\); 7 image"):
        done = predict_file(image_run, folder, out, batch=3)
    got = pd.read_csv(out)
    assert done.rows == 7 and set(got["image"]) == set(arrays)
    names = sorted(arrays)
    stacked = np.stack([arrays[n] for n in names])
    whole = image_run.predictions(stacked).to_frame()
    np.testing.assert_allclose(got.set_index("image").loc[names, "p_a"], whole["p_a"],
                               rtol=1e-5)


def test_a_csv_of_image_paths_in_parts(image_run, tmp_path):
    for i in range(5):
        save(tmp_path / "pics" / f"{i}.png", gray(300 + i))
    pd.DataFrame({"path": [f"pics/{i}.png" for i in range(5)],
                  "label": ["a", "b", "a", "b", "a"]}).to_csv(tmp_path / "list.csv", index=False)
    out = tmp_path / "out.csv"
    predict_file(image_run, tmp_path / "list.csv", out, batch=2)
    got = pd.read_csv(out)
    assert list(got["image"]) == [f"pics/{i}.png" for i in range(5)]
    assert list(got["true"]) == ["a", "b", "a", "b", "a"]
    whole = image_run.predictions(np.stack([gray(300 + i) for i in range(5)])).to_frame()
    np.testing.assert_allclose(got["p_b"], whole["p_b"], rtol=1e-5)
    pd.DataFrame({"path": ["pics/0.png", "pics/9.png"]}).to_csv(tmp_path / "bad.csv",
                                                                 index=False)
    with pytest.raises(DataError, match=r"row 2: image file 'pics/9.png' does not exist"):
        predict_file(image_run, tmp_path / "bad.csv", tmp_path / "bad_out.csv", batch=1)
    assert not (tmp_path / "bad_out.csv").exists()


def _conv_weight(run) -> torch.Tensor:
    """A convolution's weight with several input channels (where the layouts differ)."""
    return next(p for p in run.model.parameters() if p.dim() == 4 and p.shape[1] > 1)


def test_a_loaded_image_run_predicts_in_one_decode_and_its_training_layout(image_run, tmp_path):
    """A run loaded from disk gets back training's channels-last layout (its weights load
    contiguous: a CNN's forward on a CPU is slower so), for predict, serve and
    ``Run.predictions`` alike; each file is decoded once, yet a picture of another shape is
    still said, across parts, and a broken file still named."""
    loaded = deepfit.load(image_run.path)
    conv = _conv_weight(loaded)
    assert image_run.config.train.channels_last
    assert conv.is_contiguous(memory_format=torch.channels_last)
    folder = tmp_path / "new"
    for i in range(5):
        save(folder / f"{i}.png", gray(400 + i))
    save(folder / "5.png", gray(405, size=(8, 24)))  # 3x as wide: stretched
    with pytest.warns(DataWarning, match=r"1 of 6 image\(s\) have another shape than the "
                                         r"run's 8×8 and were stretched to it, changing their "
                                         r"aspect ratio by up to ×3"):
        done = predict_file(loaded, folder, tmp_path / "out.csv", batch=4)
    conv = _conv_weight(loaded)
    assert done.rows == 6 and conv.is_contiguous(memory_format=torch.channels_last)
    got = pd.read_csv(tmp_path / "out.csv").set_index("image")
    names = [f"{i}.png" for i in range(5)]
    whole = image_run.predictions(np.stack([gray(400 + i) for i in range(5)])).to_frame()
    np.testing.assert_allclose(got.loc[names, "p_a"], whole["p_a"], rtol=1e-5)
    (folder / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"image '.*2\.png' cannot be read: .*data.bad_images: "
                                        "skip"):
        predict_file(loaded, folder, tmp_path / "bad.csv", batch=4)
    assert not (tmp_path / "bad.csv").exists()
