"""IDX files and datasets by name (local files, torchvision offline, download errors)."""

import gzip
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from image_samples import idx_bytes, write_idx_set

from deepfit.data.images import named
from deepfit.data.images.idx import read_idx
from deepfit.data.images.load import ImageOptions, is_image_source, load_images
from deepfit.errors import DataError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_read_idx_plain_and_gzipped(tmp_path):
    x = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "plain").write_bytes(idx_bytes(x))
    (tmp_path / "packed").write_bytes(gzip.compress(idx_bytes(x)))
    assert np.array_equal(read_idx(tmp_path / "plain"), x)
    assert np.array_equal(read_idx(tmp_path / "packed"), x)


@pytest.mark.parametrize("data, words", [
    (b"\x00\x00\x07\x03" + b"\x00" * 20, "not an IDX file"),
    (b"PK\x03\x04 a zip", "not an IDX file"),
    (idx_bytes(np.zeros((2, 3, 4), np.uint8))[:-5], "truncated"),
    (idx_bytes(np.zeros((2, 3, 4), np.uint8)) + b"xx", "longer than its header says"),
    (gzip.compress(idx_bytes(np.zeros((2, 3), np.uint8)))[:-9], "damaged or truncated gzip"),
])
def test_bad_idx_files_name_the_file(tmp_path, data, words):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(DataError, match=f"'{path}'.*|.*'{path}'"):
        read_idx(path)
    with pytest.raises(DataError, match=words):
        read_idx(path)


def test_a_folder_of_idx_files(tmp_path):
    folder = write_idx_set(tmp_path / "digits", gz=False)
    assert is_image_source(str(folder), ImageOptions())
    data = load_images(str(folder), ImageOptions(size=(14, 14)))
    assert data.images.shape == (10, 1, 14, 14)
    assert data.split.tolist() == ["train"] * 6 + ["test"] * 4
    assert data.ids.tolist()[5:7] == ["train/5", "test/0"]
    assert data.class_names == ["0", "1", "2", "3", "4", "5"]  # an unknown set: codes seen


def test_mnist_by_name_from_the_data_root(tmp_path):
    write_idx_set(tmp_path / "mnist")
    data = load_images("MNIST", ImageOptions(root=str(tmp_path), channels="rgb"))
    assert data.name == "mnist" and data.images.shape == (10, 3, 28, 28)
    assert data.class_names == [str(i) for i in range(10)]


def test_fashion_mnist_names_and_env_root(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "FashionMNIST" / "raw")
    monkeypatch.setenv("DEEPFIT_DATA", str(tmp_path))
    data = load_images("fashion_mnist", ImageOptions())
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert str(tmp_path) in data.origin


def test_torchvision_reads_mnist_raw_files_offline(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "MNIST" / "raw", gz=False)
    monkeypatch.setattr(named, "find_idx_dataset", lambda key, root: None)  # force torchvision
    data = load_images("mnist", ImageOptions(root=str(tmp_path), download=False))
    assert data.images.shape == (10, 1, 28, 28)
    assert data.split.tolist() == ["train"] * 6 + ["test"] * 4
    assert data.class_names == [str(i) for i in range(10)]
    assert "torchvision" in data.origin


def _offline(*args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_cifar10_offline_download_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _offline)
    assert is_image_source("cifar10", ImageOptions())
    with pytest.raises(DataError, match=r"could not download CIFAR10 to .*empty \(offline\?\): "
                                        r".*name resolution.*pass data.root"):
        load_images("CIFAR-10", ImageOptions(root=str(tmp_path / "empty")))
    with pytest.raises(DataError, match="CIFAR10 is not in .* downloading is off"):
        load_images("cifar10", ImageOptions(root=str(tmp_path / "empty"), download=False))


def test_unknown_name_is_not_an_image_source():
    assert not is_image_source("cifar11", ImageOptions())
    with pytest.raises(DataError, match="image source 'cifar11' does not exist"):
        load_images("cifar11", ImageOptions())


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist absent")
def test_fashion_mnist_from_debian(tmp_path):
    data = load_images("fashion-mnist", ImageOptions(root=str(tmp_path)))
    assert data.images.shape == (70000, 1, 28, 28)
    assert (data.split == "train").sum() == 60000 and (data.split == "test").sum() == 10000
    assert data.class_names == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert np.bincount(data.labels).tolist() == [7000] * 10
