"""The decoded-image cache and the switch to streaming for sets too large for memory."""

import json

import numpy as np
import pytest
import torch
from image_samples import class_folders, gray, save

from deepfit.data.images.imageset import ImageFiles
from deepfit.data.images.load import ImageOptions, decode_image, load_images
from deepfit.errors import DataError


@pytest.fixture
def folder(tmp_path):
    return class_folders(tmp_path / "ds", {"a": 3, "b": 3}, size=(12, 12))


def _opts(tmp_path, **kw):
    return ImageOptions(cache_dir=str(tmp_path / "cache"), **kw)


def test_second_load_is_a_hit_and_equal(folder, tmp_path):
    first = load_images(str(folder), _opts(tmp_path))
    assert first.origin == "decoded 6 image files"
    second = load_images(str(folder), _opts(tmp_path))
    assert second.origin.startswith("from cache ")
    assert torch.equal(first.images, second.images)
    assert second.images.is_contiguous() and second.images.dtype == torch.uint8
    assert second.labels.tolist() == first.labels.tolist()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_changed_bytes_or_size_or_channels_miss(folder, tmp_path):
    load_images(str(folder), _opts(tmp_path))
    save(folder / "a" / "img0.png", gray(99, (12, 12)))
    changed = load_images(str(folder), _opts(tmp_path))
    assert changed.origin.startswith("decoded")
    assert np.array_equal(changed.images[0, 0].numpy(), gray(99, (12, 12)))
    assert load_images(str(folder), _opts(tmp_path, size=(6, 6))).origin.startswith("decoded")
    assert load_images(str(folder), _opts(tmp_path, channels="rgb")).origin.startswith("decoded")
    assert load_images(str(folder), _opts(tmp_path, size=(6, 6))).origin.startswith("from cache")


def test_renamed_file_misses(folder, tmp_path):
    load_images(str(folder), _opts(tmp_path))
    (folder / "a" / "img0.png").rename(folder / "a" / "zzz.png")
    assert load_images(str(folder), _opts(tmp_path)).origin.startswith("decoded")


@pytest.mark.parametrize("damage", ["truncate_npy", "garbage_npy", "garbage_json", "no_json"])
def test_damaged_entry_is_rebuilt(folder, tmp_path, damage):
    clean = load_images(str(folder), _opts(tmp_path))
    npy = next((tmp_path / "cache").glob("*.npy"))
    meta = npy.with_suffix(".json")
    if damage == "truncate_npy":
        npy.write_bytes(npy.read_bytes()[:100])
    elif damage == "garbage_npy":
        npy.write_bytes(b"\x00garbage" * 50)
    elif damage == "garbage_json":
        meta.write_text("{not json")
    else:
        meta.unlink()
    rebuilt = load_images(str(folder), _opts(tmp_path))
    assert rebuilt.origin.startswith("decoded")
    assert torch.equal(rebuilt.images, clean.images)
    assert load_images(str(folder), _opts(tmp_path)).origin.startswith("from cache")


def test_skip_results_are_cached_too(folder, tmp_path):
    (folder / "b" / "broken.png").write_bytes(b"not a png")
    first = load_images(str(folder), _opts(tmp_path, bad_images="skip"))
    second = load_images(str(folder), _opts(tmp_path, bad_images="skip"))
    assert second.origin.startswith("from cache")
    assert second.skipped == first.skipped and len(second.skipped) == 1
    assert second.ids.tolist() == first.ids.tolist()
    meta = json.loads(next((tmp_path / "cache").glob("*.json")).read_text())
    assert len(meta["kept"]) == 6
    with pytest.raises(DataError, match="broken.png"):  # the policy is part of the key
        load_images(str(folder), _opts(tmp_path))


def test_unwritable_cache_does_not_stop_loading(folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    data = load_images(str(folder), ImageOptions(cache_dir=str(blocker / "cache")))
    assert data.origin.startswith("decoded 6 image files (cache not written")


def test_large_set_is_streamed_as_files(folder):
    opts = ImageOptions(max_memory_bytes=500)  # 6 x 1 x 12 x 12 = 864 bytes
    data = load_images(str(folder), opts)
    assert isinstance(data.images, ImageFiles)
    assert data.images.shape == (6, 1, 12, 12) and len(data) == 6
    assert data.origin.startswith("streamed 6 image files")
    first = decode_image(data.images.paths[0], data.images.size, data.images.channels)
    eager = load_images(str(folder), ImageOptions())
    assert torch.equal(first, eager.images[0])


def test_streaming_needs_one_size_or_image_size(tmp_path):
    root = tmp_path / "ds"
    for i in range(4):
        save(root / "a" / f"{i}.png", gray(i, (8, 8 + i)))
    with pytest.raises(DataError, match="set data.image_size"):
        load_images(str(root), ImageOptions(max_memory_bytes=10))
    data = load_images(str(root), ImageOptions(max_memory_bytes=10, size=(5, 5)))
    assert data.images.shape == (4, 1, 5, 5)


def test_many_files_go_through_the_thread_pool_in_order(tmp_path):
    root = class_folders(tmp_path / "many", {"a": 80, "b": 70}, size=(6, 6))
    (root / "b" / "img5.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match="b/img5.png' cannot be read"):
        load_images(str(root), ImageOptions())
    data = load_images(str(root), ImageOptions(bad_images="skip"))
    assert len(data) == 149 and [n.split("/")[-1] for n, _ in data.skipped] == ["img5.png"]
    assert "b/img5.png" not in data.ids.tolist()
    position = data.ids.tolist().index("b/img6.png")
    assert np.array_equal(data.images[position, 0].numpy(), gray(87, (6, 6)))


def test_resized_array_sources_are_cached_by_their_bytes_and_settings(tmp_path):
    """An IDX / .npz / torchvision set that must be resized is resized once: the next load
    reads the resized copy; other bytes or another size miss."""
    from deepfit.data.images.cache import cached_arrays

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (20, 10, 10), dtype=np.uint8)
    opts = ImageOptions(size=(16, 16), cache_dir=str(tmp_path / "c"))
    first, note, _ = cached_arrays(arr, "NHW", opts, "test")
    assert note == "" and first.shape == (20, 1, 16, 16)
    again, note, _ = cached_arrays(arr, "NHW", opts, "test")
    assert "from cache" in note and torch.equal(first, again)
    changed = arr.copy()
    changed[0, 0, 0] ^= 1
    assert "from cache" not in cached_arrays(changed, "NHW", opts, "test")[1]
    assert "from cache" not in cached_arrays(arr, "NHW", ImageOptions(
        size=(12, 12), cache_dir=opts.cache_dir), "test")[1]
    # Nothing to do (native size, same channels): no cache entry at all.
    assert cached_arrays(arr, "NHW", ImageOptions(cache_dir=str(tmp_path / "d")), "t")[1] == ""
    assert not (tmp_path / "d").exists()
