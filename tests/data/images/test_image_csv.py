"""A CSV / TSV of image paths and labels."""

import pandas as pd
import pytest
from image_samples import gray, rgb, save

from deepfit.data.images.load import ImageOptions, is_image_source, load_images
from deepfit.errors import DataError


@pytest.fixture
def listed(tmp_path):
    for i in range(4):
        save(tmp_path / "imgs" / f"{i}.png", gray(i))
    save(tmp_path / "elsewhere.jpg", rgb(9), fmt="JPEG")
    return tmp_path


def test_csv_of_paths_and_labels(listed):
    rows = [("imgs/0.png", "cat"), ("imgs/1.png", "dog"), ("imgs/2.png", "cat"),
            (str(listed / "elsewhere.jpg"), "dog")]
    path = listed / "labels.csv"
    pd.DataFrame(rows, columns=["filename", "class"]).to_csv(path, index=False)
    assert is_image_source(str(path), ImageOptions())
    data = load_images(str(path), ImageOptions())
    assert data.class_names == ["cat", "dog"] and data.labels.tolist() == [0, 1, 0, 1]
    assert data.images.shape == (4, 3, 8, 8)  # the JPEG is in colour
    assert data.ids.tolist()[0] == "imgs/0.png" and data.name == "labels"
    assert data.split is None


def test_columns_found_by_values_and_numeric_labels_sort_numerically(listed):
    path = listed / "list.tsv"
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "where": [f"imgs/{i}.png" for i in range(4)],
                          "y": [10, 2, 10, 2], "split": ["train", "valid", "test", "TRAIN"]})
    frame.to_csv(path, sep="\t", index=False)
    data = load_images(str(path), ImageOptions())
    assert data.class_names == ["2", "10"] and data.labels.tolist() == [1, 0, 1, 0]
    assert data.split.tolist() == ["train", "val", "test", "train"]
    assert data.images.shape == (4, 1, 8, 8)


def test_named_columns_override_detection(listed):
    path = listed / "two.csv"
    pd.DataFrame({"a": ["imgs/0.png", "imgs/1.png"], "b": ["x", "y"], "c": ["p", "q"]}) \
        .to_csv(path, index=False)
    with pytest.raises(DataError, match="cannot tell which column .* data.target"):
        load_images(str(path), ImageOptions())
    data = load_images(str(path), ImageOptions(image_column="a", label_column="c"))
    assert data.class_names == ["p", "q"]
    with pytest.raises(DataError, match="no label column 'cc' \\(did you mean 'c'\\?\\)"):
        load_images(str(path), ImageOptions(label_column="cc"))


def test_missing_file_names_the_row_and_path(listed):
    path = listed / "labels.csv"
    pd.DataFrame({"path": ["imgs/0.png", "imgs/nope.png"], "label": [0, 1]}) \
        .to_csv(path, index=False)
    with pytest.raises(DataError, match=r"labels.csv' row 2: image file 'imgs/nope.png' does "
                                        r"not exist"):
        load_images(str(path), ImageOptions())


def test_bad_split_and_empty_label(listed):
    path = listed / "labels.csv"
    pd.DataFrame({"path": ["imgs/0.png", "imgs/1.png"], "label": [0, 1],
                  "split": ["train", "holdout"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="row 2: split 'holdout' .* not train, val or test"):
        load_images(str(path), ImageOptions())
    path.write_text("path,label\nimgs/0.png,a\nimgs/1.png,\n")
    with pytest.raises(DataError, match="row 2: the label column 'label' is empty"):
        load_images(str(path), ImageOptions())


def test_a_plain_table_is_not_an_image_source(tmp_path, tabular_csv):
    assert not is_image_source(str(tabular_csv), ImageOptions())
    numbers = tmp_path / "image.csv"
    numbers.write_text("image,label\n3,1\n4,0\n")  # a column called image holding numbers
    assert not is_image_source(str(numbers), ImageOptions())


def test_a_patient_column_keeps_each_patients_images_in_one_split(tmp_path):
    import numpy as np

    from deepfit.config import DataConfig
    from deepfit.data.bundle import build_bundle
    rows = []
    for p in range(30):  # 30 patients, 3 scans each
        for k in range(3):
            name = f"scans/p{p}_{k}.png"
            save(tmp_path / name, gray(p * 3 + k))
            rows.append((name, "tumour" if p % 3 == 0 else "normal", f"patient{p}"))
    path = tmp_path / "scans.csv"
    pd.DataFrame(rows, columns=["path", "label", "patient"]).to_csv(path, index=False)
    data = load_images(str(path), ImageOptions(group_column="patient"))
    assert data.groups.tolist()[:3] == ["patient0"] * 3
    bundle = build_bundle(DataConfig(source=str(path), group_column="patient", cache=False),
                          seed=0)
    owner = dict(zip([r[0] for r in rows], [r[2] for r in rows]))
    patients = {s: {owner[i] for i in getattr(bundle, s).ids} for s in ("train", "val", "test")}
    assert not patients["train"] & patients["test"] and not patients["train"] & patients["val"]
    assert not patients["val"] & patients["test"]
    assert "whole groups of 'patient' (30 groups)" in bundle.info["split_method"]
    assert len(np.unique(bundle.train.y.numpy())) == 2
    with pytest.raises(DataError, match=r"scans.csv' has no column 'patiant' "
                       r"\(data.group_column\) \(did you mean 'patient'\?\)"):
        load_images(str(path), ImageOptions(group_column="patiant"))
