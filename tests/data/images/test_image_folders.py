"""Image folders: ImageFolder and train/val/test layouts, channel rules, bad files."""

import numpy as np
import pytest
import torch
from image_samples import bomb_png, class_folders, encoded, gray, rgb, save
from PIL import Image

from deepfit.config import DataConfig
from deepfit.data.bundle import build_bundle
from deepfit.data.images.load import ImageOptions, is_image_source, load_images
from deepfit.errors import DataError


def test_image_folder_classes_are_sorted_folder_names(tmp_path):
    root = class_folders(tmp_path / "pets", {"dog": 3, "cat": 2})
    save(root / "dog" / "deeper" / "more" / "x.JPG", rgb(50), fmt="JPEG")  # recursive, any case
    (root / "dog" / "notes.txt").write_text("not an image")
    save(root / "cat" / ".hidden.png", gray(51))
    assert is_image_source(str(root), ImageOptions())
    data = load_images(str(root), ImageOptions())
    assert data.class_names == ["cat", "dog"]
    assert data.labels.tolist() == [0, 0, 1, 1, 1, 1]
    assert data.images.dtype == torch.uint8 and data.images.shape == (6, 3, 8, 8)
    assert data.ids.tolist()[:2] == ["cat/img0.png", "cat/img1.png"]
    assert "dog/deeper/more/x.JPG" in data.ids.tolist()
    assert data.split is None and data.name == "pets"
    assert data.origin == "decoded 6 image files"
    # cat/img0.png is gray: one image has colour, so it becomes three equal channels
    cat0 = np.asarray(Image.open(root / "cat" / "img0.png"))
    assert all(np.array_equal(data.images[0, c].numpy(), cat0) for c in range(3))


def test_all_gray_gives_one_channel_and_options_force_a_layout(tmp_path):
    root = class_folders(tmp_path / "g", {"a": 2, "b": 2})
    assert load_images(str(root), ImageOptions()).images.shape[1] == 1
    assert load_images(str(root), ImageOptions(channels="rgb")).images.shape[1] == 3
    colour = class_folders(tmp_path / "c", {"a": 1, "b": 1}, color=True)
    assert load_images(str(colour), ImageOptions(channels="gray")).images.shape[1] == 1


def test_mixed_modes_are_converted_to_one_layout(tmp_path):
    root = tmp_path / "mixed"
    save(root / "a" / "gray.png", gray(1))
    save(root / "a" / "palette.png", rgb(2), mode="P")
    save(root / "b" / "rgba.png", np.dstack([rgb(3), np.full((8, 8), 255, np.uint8)]))
    sixteen = Image.fromarray((gray(4).astype(np.uint16) * 257))
    (root / "b").mkdir(exist_ok=True)
    sixteen.save(root / "b" / "deep.png")
    save(root / "b" / "photo.bmp", rgb(5))
    data = load_images(str(root), ImageOptions())
    assert data.images.shape == (5, 3, 8, 8)
    deep = data.images[data.ids.tolist().index("b/deep.png")]
    assert np.array_equal(deep[0].numpy(), gray(4))  # 16-bit scaled back exactly


def test_different_sizes_need_image_size(tmp_path):
    root = tmp_path / "sizes"
    save(root / "a" / "1.png", gray(1, (8, 8)))
    save(root / "b" / "2.png", gray(2, (10, 6)))
    with pytest.raises(DataError, match=r"b/2.png' is 10x6 .* '.*a/1.png' is 8x8; set "
                                        r"data.image_size"):
        load_images(str(root), ImageOptions())
    data = load_images(str(root), ImageOptions(size=(4, 5)))
    assert data.images.shape == (2, 1, 4, 5)


def test_train_val_test_layout_sets_the_split(tmp_path):
    root = tmp_path / "ds"
    class_folders(root / "train", {"cat": 2, "dog": 2})
    class_folders(root / "valid", {"cat": 1, "dog": 1})
    class_folders(root / "test", {"cat": 1, "bird": 1})
    data = load_images(str(root), ImageOptions())
    assert data.class_names == ["bird", "cat", "dog"]
    assert data.split.tolist() == ["train"] * 4 + ["val"] * 2 + ["test"] * 2
    assert data.ids[0] == "train/cat/img0.png"
    assert data.labels[data.split == "test"].tolist() == [0, 1]


def test_two_folders_for_one_split_are_an_error(tmp_path):
    class_folders(tmp_path / "val", {"a": 1})
    class_folders(tmp_path / "validation", {"a": 1})
    with pytest.raises(DataError, match="both hold the val split"):
        load_images(str(tmp_path), ImageOptions())


def test_empty_class_folder_and_empty_dataset(tmp_path):
    root = class_folders(tmp_path / "ds", {"a": 1})
    (root / "b").mkdir()
    with pytest.raises(DataError, match=r"class folder '.*ds/b' has no images"):
        load_images(str(root), ImageOptions())
    empty = tmp_path / "empty"
    empty.mkdir()
    assert is_image_source(str(empty), ImageOptions())
    with pytest.raises(DataError, match="'.*empty' has no images"):
        load_images(str(empty), ImageOptions())
    flat = tmp_path / "flat"
    save(flat / "x.png", gray(1))
    with pytest.raises(DataError, match="no class sub-folders"):
        load_images(str(flat), ImageOptions())


def test_loose_image_next_to_class_folders_is_an_error(tmp_path):
    root = class_folders(tmp_path / "ds", {"a": 1, "b": 1})
    save(root / "stray.png", gray(3))
    with pytest.raises(DataError, match="stray.png' is not inside a class folder"):
        load_images(str(root), ImageOptions())


def _bad_files(root):
    class_folders(root, {"a": 2, "b": 2}, size=(16, 16))
    (root / "a" / "zero.png").write_bytes(b"")
    (root / "a" / "text.png").write_text("hello, I am not a PNG")
    png = encoded(gray(9, (16, 16)))
    (root / "b" / "cut.png").write_bytes(png[: len(png) // 2])
    jpeg = encoded(rgb(9, (32, 32)), "JPEG")
    (root / "b" / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "b" / "bomb.png").write_bytes(bomb_png())
    return root


def test_error_policy_names_the_first_bad_file(tmp_path):
    root = _bad_files(tmp_path / "ds")
    with pytest.raises(DataError, match=r"image '.*a/text.png' cannot be read: not an image.*"
                                        r"bad_images: skip"):
        load_images(str(root), ImageOptions())


def test_skip_policy_counts_and_reasons(tmp_path):
    root = _bad_files(tmp_path / "ds")
    data = load_images(str(root), ImageOptions(bad_images="skip"))
    assert len(data) == 4 and data.images.shape == (4, 1, 16, 16)
    reasons = {name.split("/")[-1]: why for name, why in data.skipped}
    assert set(reasons) == {"zero.png", "text.png", "cut.png", "cut.jpg", "bomb.png"}
    assert "empty" in reasons["zero.png"]
    assert "not an image" in reasons["text.png"]
    assert "truncated" in reasons["cut.png"] and "truncated" in reasons["cut.jpg"]
    assert "decompression bomb" in reasons["bomb.png"]
    assert data.ids.tolist() == ["a/img0.png", "a/img1.png", "b/img0.png", "b/img1.png"]
    assert data.labels.tolist() == [0, 0, 1, 1]


def test_only_bad_files_is_an_error_even_when_skipping(tmp_path):
    root = tmp_path / "ds"
    root.joinpath("a").mkdir(parents=True)
    (root / "a" / "zero.png").write_bytes(b"")
    with pytest.raises(DataError, match="none of the 1 image files could be read"):
        load_images(str(root), ImageOptions(bad_images="skip"))


def test_files_that_are_not_images_by_name_are_counted_and_said(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFIT_CACHE", str(tmp_path / "cache"))
    root = class_folders(tmp_path / "ds", {"a": 8, "b": 8})
    (root / "a" / "x.jpeg2").write_bytes(encoded(gray(1)))
    (root / "b" / "readme.txt").write_text("about these images")
    (root / "b" / ".DS_Store").write_text("hidden: not counted")
    data = load_images(str(root), ImageOptions())
    assert data.other_files == ["a/x.jpeg2", "b/readme.txt"] and len(data) == 16
    notes = build_bundle(DataConfig(source=str(root))).info["notes"]
    assert ("2 file(s) in the class folders are not images by their name (.jpeg2, .txt; "
            "e.g. a/x.jpeg2) and were left out; deepfit reads .png .jpg") in " ".join(notes)
    clean = class_folders(tmp_path / "clean", {"a": 8, "b": 8})
    assert not any("not images" in n for n in build_bundle(
        DataConfig(source=str(clean))).info["notes"])


def test_a_class_folder_of_only_other_files_names_them(tmp_path):
    root = class_folders(tmp_path / "ds", {"a": 2})
    (root / "b").mkdir()
    (root / "b" / "x.jpeg2").write_bytes(encoded(gray(1)))
    with pytest.raises(DataError, match=r"class folder '.*ds/b' has no images \(.*\); its 1 "
                                        r"file\(s\) are not images by their name \(e.g. "
                                        r"'x.jpeg2'\); add some"):
        load_images(str(root), ImageOptions())
