"""data.resize: stretching against letterboxing (pad) on every image path, the cache, the
run's schema and prediction, and what the report says about the images' shapes."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import deepfit
from deepfit.data.batches import eval_batches
from deepfit.data.images.batch import ImageList, decode_list
from deepfit.data.images.decode import arrays_to_tensor, decode_bytes, letterbox
from deepfit.data.images.imageset import measure_aspects
from deepfit.data.images.inputs import ImageSpec
from deepfit.data.images.new_images import images_for_model
from deepfit.data.images.options import ImageOptions
from deepfit.errors import ConfigError

SIZE = (32, 32)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFIT_CACHE", str(tmp_path / "cache"))


def circle(height: int = 40, width: int = 80, radius: int = 15) -> np.ndarray:
    """A white disc of ``radius`` centred on a black (height, width) canvas."""
    yy, xx = np.mgrid[:height, :width]
    inside = (yy - height / 2 + 0.5) ** 2 + (xx - width / 2 + 0.5) ** 2 <= radius ** 2
    return np.where(inside, 255, 0).astype(np.uint8)


def box(image: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the pixels brighter than mid-gray."""
    rows, cols = np.flatnonzero((image > 127).any(1)), np.flatnonzero((image > 127).any(0))
    return rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def encoded(array: np.ndarray, fmt: str = "PNG", **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **save)
    return buf.getvalue()


def assert_round(image: np.ndarray, tolerance: int = 1) -> None:
    _, _, h, w = box(image)
    assert abs(h - w) <= tolerance, (h, w)


def assert_ellipse(image: np.ndarray) -> None:
    _, _, h, w = box(image)
    assert h >= 1.6 * w, (h, w)  # an 80x40 picture squeezed to 32x32: twice as tall as wide


def test_letterbox_geometry():
    assert letterbox((40, 80), SIZE) == (8, 0, 16, 32)
    assert letterbox((80, 40), SIZE) == (0, 8, 32, 16)
    assert letterbox((10, 10), (20, 40)) == (0, 10, 20, 20)  # scaled up to fit
    assert letterbox((1, 1000), (8, 8)) == (3, 0, 1, 8)  # never below one pixel


def test_pad_keeps_a_circle_round_and_stretch_does_not():
    data = encoded(circle())
    pad = decode_bytes(data, SIZE, 1, "pad")[0]
    assert pad.shape == SIZE
    assert_round(pad)
    assert not pad[:8].any() and not pad[-8:].any()  # black bands above and below
    assert_ellipse(decode_bytes(data, SIZE, 1, "stretch")[0])
    assert_ellipse(decode_bytes(data, SIZE, 1)[0])  # stretch stays the default


def test_pad_on_arrays_matches_files():
    pad = arrays_to_tensor(circle()[None], "NHW", SIZE, "auto", "test", "pad")[0, 0].numpy()
    assert_round(pad)
    assert not pad[:8].any() and not pad[-8:].any()
    files = decode_bytes(encoded(circle()), SIZE, 1, "pad")[0]
    assert np.abs(pad.astype(int) - files.astype(int)).max() <= 40  # PIL vs torch filters
    assert_ellipse(arrays_to_tensor(circle()[None], "NHW", SIZE, "auto", "t")[0, 0].numpy())


def test_pad_of_a_big_jpeg_through_the_draft_fast_path():
    big = circle(400, 800, 150)
    rgb = np.repeat(big[..., None], 3, axis=2)
    out = decode_bytes(encoded(rgb, "JPEG", quality=95), SIZE, 3, "pad")
    assert out.shape == (3, *SIZE)
    assert_round(out[0])
    assert out[:, :7].max() < 20 and out[:, -7:].max() < 20  # black (JPEG noise aside)


def test_pad_follows_the_exif_orientation():
    """Stored landscape, EXIF 'rotate 90': displayed as a portrait, so the black bands are
    left and right."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(circle(), "JPEG", quality=95, exif=exif.tobytes())
    out = decode_bytes(data, SIZE, 1, "pad")[0]
    assert out[:, :7].max() < 20 and out[:, -7:].max() < 20
    assert out[:, 8:24].max() > 200
    assert_round(out)


def folder_of_circles(root, n=12, shape=(40, 80)):
    for cls, radius in (("small", 8), ("large", 16)):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(circle(*shape, radius)).save(root / cls / f"{i}.png")
    return root


def test_cache_entries_are_not_shared_between_modes(tmp_path):
    root = folder_of_circles(tmp_path / "imgs", n=3)
    paths = sorted(str(p) for p in root.rglob("*.png"))
    items = ImageList(names=paths, ids=paths, paths=paths)
    cache = str(tmp_path / "c")
    stretch = decode_list(items, ImageOptions(size=SIZE, cache_dir=cache))
    pad = decode_list(items, ImageOptions(size=SIZE, resize="pad", cache_dir=cache))
    assert "from cache" not in pad.origin and not torch.equal(stretch.images, pad.images)
    again = decode_list(items, ImageOptions(size=SIZE, resize="pad", cache_dir=cache))
    assert "from cache" in again.origin and torch.equal(again.images, pad.images)
    assert again.aspects == pad.aspects and pad.aspects.other == 6  # kept with the entry
    assert_round(pad.images[0, 0].numpy())


def test_streamed_images_are_letterboxed_too(tmp_path):
    root = folder_of_circles(tmp_path / "imgs", n=2)
    paths = sorted(str(p) for p in root.rglob("*.png"))
    items = ImageList(names=paths, ids=paths, paths=paths)
    decoded = decode_list(items, ImageOptions(size=SIZE, resize="pad", max_memory_bytes=100))
    assert decoded.images.resize == "pad" and decoded.aspects.sampled
    batch = next(eval_batches(decoded.images, 4, torch.device("cpu"), workers=0))
    assert_round(batch[0, 0].numpy())
    assert not batch[:, :, :8].any()


def test_pad_needs_an_image_size(tmp_path):
    with pytest.raises(ConfigError, match="data.resize=pad needs data.image_size"):
        ImageOptions(resize="pad")
    with pytest.raises(ConfigError, match=r"data\.resize.*data\.image_size"):
        deepfit.train(data=str(folder_of_circles(tmp_path / "imgs", n=2, shape=(16, 16))),
                      **{"data.resize": "pad", "train.progress": False})


def test_the_report_says_what_happened_to_the_shapes():
    aspects = measure_aspects([(40, 80)] * 37 + [(32, 32)] * 83, SIZE)
    spec = ImageSpec(SIZE, 1, [0.5], [0.25], resized=True)
    assert spec.describe(aspects)[0] == ("images resized to 32×32 by stretching (aspect ratio "
                                         "not kept: 37 of 120 images were not square, up to "
                                         "2:1), 1 channel (grayscale)")
    spec.resize = "pad"
    assert spec.describe(aspects)[0].startswith("images letterboxed to 32×32 (aspect ratio "
                                                "kept, padded with black: 37 of 120")
    same = measure_aspects([(101, 100), (64, 64)], SIZE)  # within 1 %: the same shape
    assert same.other == 0 and "was square already" in spec.describe(same)[0]
    tall = measure_aspects([(60, 40)], (32, 64))
    assert tall.other == 1 and tall.change == pytest.approx(3.0)


def test_a_pad_run_records_its_mode_and_predicts_new_images_the_same_way(tmp_path, quick):
    root = folder_of_circles(tmp_path / "imgs")
    overrides = {**quick, "train.epochs": 1, "model.channels": [4, 8], "data.augment": "none"}
    run = deepfit.train(data=str(root), out=tmp_path / "runs",
                        **{**overrides, "data.image_size": [32], "data.resize": "pad"})
    schema = json.loads((run.path / "schema.json").read_text())
    assert schema["image"]["resize"] == "pad"
    summary = json.loads((run.path / "summary.json").read_text())
    assert "letterboxed to 32×32" in summary["data"]["preprocessing"]
    assert not any("data.resize=pad" in n for n in summary["data"]["notes"])
    new = tmp_path / "new"
    new.mkdir()
    Image.fromarray(circle(90, 30, 12)).save(new / "tall.png")  # another shape again
    spec = ImageSpec.from_dict(schema["image"])
    X, _, _ = images_for_model(str(new), spec, ["large", "small"])
    assert_round(X[0, 0].numpy())
    assert not X[0, 0, :, :10].any()  # black bands left and right
    assert len(run.predict(str(new))) == 1

    stretched = deepfit.train(data=str(root), out=tmp_path / "runs",
                              **{**overrides, "data.image_size": [32]})
    summary = json.loads((stretched.path / "summary.json").read_text())
    assert "by stretching (aspect ratio not kept: 24 of 24 images" in \
        summary["data"]["preprocessing"]
    assert any("data.resize=pad" in n for n in summary["data"]["notes"])
    old = json.loads((stretched.path / "schema.json").read_text())["image"]
    del old["resize"]  # a run saved before data.resize existed stretched its images
    from deepfit.errors import DataWarning
    with pytest.warns(DataWarning, match="stretched"):  # and says so
        X, _, _ = images_for_model(str(new), ImageSpec.from_dict(old), ["large", "small"])
    assert_ellipse(X[0, 0].numpy().T)


def test_prediction_says_when_new_images_are_stretched_out_of_shape(tmp_path):
    from deepfit.errors import DataWarning
    spec = _gray_spec()
    new = tmp_path / "new"
    new.mkdir()
    Image.fromarray(circle(90, 30, 12)).save(new / "tall.png")
    Image.fromarray(circle(40, 40, 12)).save(new / "square.png")
    with pytest.warns(DataWarning, match=r"1 of 2 image\(s\) have another shape than the "
                                         r"run's 32×32 and were stretched to it, changing their "
                                         r"aspect ratio by up to ×3; .*data.resize=pad"):
        images_for_model(str(new), spec, ["large", "small"])
    with pytest.warns(DataWarning, match="stretched"):  # arrays too
        images_for_model(np.zeros((2, 64, 32), np.uint8), spec, ["large", "small"])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same shape, only smaller: nothing to say
        images_for_model(np.zeros((2, 64, 64), np.uint8), spec, ["large", "small"])
        images_for_model(str(new / "square.png"), spec, ["large", "small"])
        pad = _gray_spec(resize="pad")
        images_for_model(str(new), pad, ["large", "small"])


def test_prediction_says_which_files_of_a_folder_are_not_images(tmp_path):
    from deepfit.errors import DataWarning
    spec = _gray_spec()
    new = tmp_path / "new"
    new.mkdir()
    Image.fromarray(circle(40, 40, 12)).save(new / "a.png")
    (new / "notes.txt").write_text("not an image")
    (new / ".hidden").write_text("ignored quietly, as everywhere")
    with pytest.warns(DataWarning, match=r"1 file\(s\) are not images by their name and get "
                                         r"no prediction \(e.g. 'notes.txt'\); 1 image\(s\)"):
        X, ids, _ = images_for_model(str(new), spec, ["large", "small"])
    assert list(ids) == ["a.png"] and len(X) == 1


def _gray_spec(resize: str = "stretch") -> ImageSpec:
    """A run's image spec: 32×32 gray, images resized to it."""
    return ImageSpec(size=(32, 32), channels=1, mean=[0.0], std=[1.0], augment=[],
                     channel_mode="gray", resized=True, resize=resize)
