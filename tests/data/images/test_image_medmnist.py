"""MedMNIST .npz files: gray, RGB, multi-label, damage, and medmnist:<name>."""

import urllib.error
import urllib.request

import numpy as np
import pytest

from deepfit.data.images.load import ImageOptions, is_image_source, load_images
from deepfit.errors import DataError


def _npz(path, counts=(6, 2, 3), size=28, rgb=False, width=1, **override):
    rng = np.random.default_rng(0)
    arrays = {}
    for part, n in zip(("train", "val", "test"), counts):
        shape = (n, size, size, 3) if rgb else (n, size, size)
        arrays[f"{part}_images"] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        if width == 1:
            arrays[f"{part}_labels"] = (np.arange(n) % 3).reshape(n, 1).astype(np.int64)
        else:
            arrays[f"{part}_labels"] = rng.integers(0, 2, size=(n, width), dtype=np.uint8)
    arrays.update(override)
    np.savez(path, **arrays)
    return path


def test_gray_npz_keeps_the_official_splits(tmp_path):
    path = _npz(tmp_path / "pneumoniamnist.npz")
    assert is_image_source(str(path), ImageOptions())
    data = load_images(str(path), ImageOptions())
    assert data.images.shape == (11, 1, 28, 28)
    assert data.split.tolist() == ["train"] * 6 + ["val"] * 2 + ["test"] * 3
    assert data.class_names == ["0", "1", "2"]  # codes 0..2 exceed pneumonia's two names
    assert data.ids.tolist()[6] == "val/0" and data.task_hint is None


def test_rgb_npz_with_class_names_and_resize(tmp_path):
    path = _npz(tmp_path / "pathmnist_64.npz", size=64, rgb=True)
    data = load_images(str(path), ImageOptions(size=(32, 32)))
    assert data.images.shape == (11, 3, 32, 32)
    assert data.class_names[0] == "adipose" and len(data.class_names) == 9
    assert data.name == "pathmnist_64"


def test_chestmnist_is_multilabel(tmp_path):
    path = _npz(tmp_path / "chestmnist.npz", width=14)
    data = load_images(str(path), ImageOptions())
    assert data.task_hint == "multilabel"
    assert data.labels.shape == (11, 14) and data.labels.dtype == np.uint8
    assert data.class_names[1] == "cardiomegaly" and data.class_names[-1] == "hernia"


@pytest.mark.parametrize("override, words", [
    ({"val_labels": np.zeros((5, 1), np.int64)}, "'val_labels' has 5 rows but 'val_images'"),
    ({"test_images": np.zeros((3, 28), np.uint8)}, "'test_images' has shape \\[3, 28\\]"),
    ({"val_images": np.zeros((2, 14, 14), np.uint8)}, "'val_images' images are \\[14, 14\\]"),
    ({"train_images": np.full((6, 28, 28), 0.5)}, "'train_images' holds float64 values"),
    ({"train_labels": np.zeros((6, 2, 2), np.int64)}, "label arrays have shapes"),
])
def test_mismatched_arrays_name_the_key(tmp_path, override, words):
    path = _npz(tmp_path / "bad.npz", **override)
    with pytest.raises(DataError, match=words):
        load_images(str(path), ImageOptions())


def test_whole_number_images_in_other_dtypes_are_converted(tmp_path):
    images = np.full((6, 28, 28), 200.0)
    data = load_images(str(_npz(tmp_path / "f.npz", train_images=images)), ImageOptions())
    assert int(data.images[0].max()) == 200


def test_missing_key_and_tabular_npz(tmp_path):
    np.savez(tmp_path / "table.npz", X=np.zeros((4, 2)), y=np.zeros(4))
    assert not is_image_source(str(tmp_path / "table.npz"), ImageOptions())
    np.savez(tmp_path / "half.npz", train_images=np.zeros((2, 4, 4), np.uint8),
             train_labels=np.zeros((2, 1)), test_images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(DataError, match="has no array 'test_labels'"):
        load_images(str(tmp_path / "half.npz"), ImageOptions())


def test_medmnist_name_found_in_the_root(tmp_path):
    (tmp_path / "medmnist").mkdir()
    _npz(tmp_path / "medmnist" / "bloodmnist_64.npz", size=64, rgb=True)
    data = load_images("medmnist:BloodMNIST_64", ImageOptions(root=str(tmp_path)))
    assert data.images.shape == (11, 3, 64, 64) and data.class_names[0] == "basophil"


def test_medmnist_offline_and_bad_names(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    opts = ImageOptions(root=str(tmp_path))
    with pytest.raises(DataError, match=r"could not download .*dermamnist.npz to .*offline"):
        load_images("medmnist:dermamnist", opts)
    assert not list((tmp_path / "medmnist").iterdir())  # no partial file left behind
    with pytest.raises(DataError, match="downloading is off"):
        load_images("medmnist:dermamnist", ImageOptions(root=str(tmp_path), download=False))
    with pytest.raises(DataError, match="not a MedMNIST name"):
        load_images("medmnist:pathmnist_65", opts)
