"""Decoding single images: modes, 16-bit, alpha, damage, bombs, resizing; array conversion."""

import io

import numpy as np
import pytest
import torch
from image_samples import bomb_png, encoded, gray, rgb, save
from PIL import Image

from deepfit.config import DataConfig
from deepfit.data.images.bundle import image_options
from deepfit.data.images.decode import (Unreadable, arrays_to_tensor, bomb_guard,
                                        decode_bytes, decode_image, displayed_size, is_gray,
                                        open_image)
from deepfit.data.images.load import load_images
from deepfit.errors import DataError


def _bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_gray_and_rgb_round_trip_exactly():
    g, c = gray(1), rgb(2)
    assert np.array_equal(decode_bytes(encoded(g), None, 1)[0], g)
    assert np.array_equal(decode_bytes(encoded(c), None, 3), c.transpose(2, 0, 1))


def test_sixteen_bit_png_is_scaled_not_clipped():
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    data = _bytes(Image.fromarray(values))
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    out = decode_bytes(data, None, 1)[0, 0]
    assert out.tolist() == [0, 1, 128, 255]


def test_32bit_integer_and_float_images_are_scaled():
    ints = Image.fromarray(np.array([[0, 65535]], dtype=np.int32), mode="I")
    assert decode_bytes(_bytes(ints, "TIFF"), None, 1)[0, 0].tolist() == [0, 255]
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    assert decode_bytes(_bytes(floats, "TIFF"), None, 1)[0, 0].tolist() == [0, 128, 255]
    wide = Image.fromarray(np.array([[-10.0, 0.0, 10.0]], dtype=np.float32), mode="F")
    assert decode_bytes(_bytes(wide, "TIFF"), None, 1)[0, 0].tolist() == [0, 128, 255]


def test_palette_png_gray_palette_counts_as_gray():
    colour = Image.fromarray(rgb(3)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    assert not is_gray(open_image(_bytes(colour)))
    out = decode_bytes(_bytes(colour), None, 3)
    assert np.array_equal(out, np.asarray(colour.convert("RGB")).transpose(2, 0, 1))
    grays = Image.fromarray(gray(4)).convert("P")
    grays.putpalette([v for i in range(256) for v in (i, i, i)])
    assert is_gray(open_image(_bytes(grays)))


def test_rgba_and_la_are_composited_over_black():
    pixels = np.array([[[200, 100, 50, 255], [200, 100, 50, 0], [200, 100, 50, 128]]],
                      dtype=np.uint8)
    out = decode_bytes(_bytes(Image.fromarray(pixels, mode="RGBA")), None, 3)[:, 0]
    assert out[:, 0].tolist() == [200, 100, 50]
    assert out[:, 1].tolist() == [0, 0, 0]
    assert out[:, 2].tolist() == [100, 50, 25]
    la = Image.fromarray(np.array([[[255, 0], [255, 255]]], dtype=np.uint8), mode="LA")
    assert is_gray(open_image(_bytes(la)))
    assert decode_bytes(_bytes(la), None, 1)[0, 0].tolist() == [0, 255]


def test_bilevel_and_cmyk_modes():
    bits = Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("1")
    assert decode_bytes(_bytes(bits), None, 1)[0, 0].tolist() == [0, 255]
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    out = decode_bytes(_bytes(cmyk, "JPEG"), None, 3)
    assert out.shape == (3, 4, 4) and out[0].min() > 200 and out[1].max() < 60


def test_channel_conversion_uses_luma_and_repeat():
    red = np.zeros((2, 2, 3), dtype=np.uint8)
    red[..., 0] = 255
    assert decode_bytes(encoded(red), None, 1).flatten().tolist() == [76] * 4  # 0.299 * 255
    g = gray(5, (2, 2))
    out = decode_bytes(encoded(g), None, 3)
    assert all(np.array_equal(out[c], g) for c in range(3))


def test_resize_is_bilinear_to_height_width():
    out = decode_bytes(encoded(np.full((40, 30), 77, dtype=np.uint8)), (10, 20), 1)
    assert out.shape == (1, 10, 20) and (out == 77).all()
    jpeg = encoded(rgb(6, (64, 48)), "JPEG")
    assert decode_bytes(jpeg, (16, 12), 3).shape == (3, 16, 12)


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"this is a text file, not an image\n" * 4, "not an image"),
])
def test_empty_and_non_image_bytes(data, words):
    with pytest.raises(Unreadable, match=words):
        decode_bytes(data, None, 1)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_detected(fmt):
    data = encoded(rgb(7, (64, 64)), fmt)
    with pytest.raises(Unreadable, match="truncated|corrupt|broken"):
        decode_bytes(data[: len(data) // 2], None, 3)


def test_decompression_bomb_is_refused_without_decoding():
    with pytest.raises(Unreadable, match="decompression bomb"):
        decode_bytes(bomb_png(), None, 1)


def test_bomb_warning_range_is_an_error_too(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    data = encoded(gray(8, (12, 12)))  # 144 pixels: PIL only warns below 2x the limit
    with bomb_guard(), pytest.raises(Unreadable, match="decompression bomb"):
        decode_bytes(data, None, 1)


def test_decode_image_returns_a_tensor_or_names_the_file(tmp_path):
    good = save(tmp_path / "ok.png", rgb(9, (6, 5)))
    out = decode_image(str(good), (4, 4), 3)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and out.shape == (3, 4, 4)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    with pytest.raises(DataError, match="bad.png.*empty.*bad_images: skip"):
        decode_image(str(bad), (4, 4), 3)
    with pytest.raises(DataError, match="missing.png.*cannot open"):
        decode_image(str(tmp_path / "missing.png"), (4, 4), 3)


def test_arrays_to_tensor_layouts_channels_and_resize():
    x = np.stack([gray(i, (4, 4)) for i in range(3)])
    same = arrays_to_tensor(x, "NHW", None, "auto", "t")
    assert same.shape == (3, 1, 4, 4) and np.array_equal(same[:, 0].numpy(), x)
    assert arrays_to_tensor(x, "NHW", None, "rgb", "t").shape == (3, 3, 4, 4)
    colour = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    colour[..., 1] = 255
    luma = arrays_to_tensor(colour, "NHWC", None, "gray", "t")
    assert luma.shape == (2, 1, 4, 4) and (luma == 150).all()  # 0.587 * 255
    flat = np.full((2, 3, 8, 8), 90, dtype=np.uint8)
    small = arrays_to_tensor(flat, "NCHW", (4, 2), "auto", "t")
    assert small.shape == (2, 3, 4, 2) and (small == 90).all()
    with pytest.raises(DataError, match="t: images have 2 channels"):
        arrays_to_tensor(np.zeros((1, 2, 4, 4), np.uint8), "NCHW", None, "auto", "t")
    with pytest.raises(DataError, match="expected NHWC"):
        arrays_to_tensor(x, "NHWC", None, "auto", "t")


def _oriented(arr: np.ndarray, orientation: int, fmt: str) -> bytes:
    """``arr`` (H, W) encoded with an EXIF orientation tag, as a phone camera writes it."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, exif=exif.tobytes(),
                              **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_orientation_is_applied_as_a_photo_viewer_shows_it(fmt):
    stored = np.zeros((6, 8), dtype=np.uint8)  # 6 rows, 8 columns as the sensor wrote them
    stored[0] = 255                            # the top row is white
    data = _oriented(stored, 6, fmt)           # 6: turn 90 degrees clockwise to display
    img = Image.open(io.BytesIO(data))
    assert displayed_size(img) == (8, 6)       # shown upright: 8 rows, 6 columns
    shown = decode_bytes(data, None, 1)[0]
    assert shown.shape == (8, 6)
    # The stored top row is now the right-hand column, and nothing else is white.
    assert (shown[:, -1] > 200).all() and (shown[:, :-2] < 60).all()
    # Orientation 1 (or none) leaves the pixels as stored, exactly for PNG.
    plain = decode_bytes(_oriented(stored, 1, fmt), None, 1)[0]
    assert plain.shape == (6, 8) and (plain[0] > 200).all()
    # Resizing targets the displayed shape (and a JPEG's fast draft decode respects it).
    assert decode_bytes(data, (4, 3), 1).shape == (1, 4, 3)


def test_a_folder_of_phone_photos_in_both_orientations_is_one_size(tmp_path):
    upright = np.zeros((8, 6), dtype=np.uint8)
    sideways = np.zeros((6, 8), dtype=np.uint8)  # stored sideways, tagged to be turned
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "up.png").write_bytes(_oriented(upright, 1, "PNG"))
        (tmp_path / cls / "side.png").write_bytes(_oriented(sideways, 6, "PNG"))
    images = load_images(str(tmp_path), image_options(DataConfig(source=str(tmp_path),
                                                                 cache=False)))
    assert tuple(images.images.shape[1:]) == (1, 8, 6)
