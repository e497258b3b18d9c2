"""Turn image bytes or arrays into uint8 (C, H, W) with one channel layout and one size.

Rules every source shares:

* Grayscale modes (1, L, LA, I;16, I, F, and palettes whose colours are all gray) give one
  channel; everything else gives three. "auto" keeps one channel only if every image is gray.
* Alpha (RGBA, LA, palettes with transparency) is composited over black: a transparent pixel
  becomes black whatever colour it hides, so the result does not depend on invisible data.
* 16-bit images are scaled to 8 bits (``v / 257``, rounded), never clipped; 32-bit integer
  images with values in 0..65535 are read as 16-bit; anything else (and float images outside
  0..1) is stretched from its own minimum and maximum.
* Resizing is bilinear with antialiasing (PIL for files, ``F.interpolate`` for arrays).
  ``resize="stretch"`` scales each image to the target (H, W) whatever its shape;
  ``resize="pad"`` letterboxes: scales it to fit inside the target keeping its aspect ratio,
  centres it, and fills the rest with zeros (black), stored before normalisation so the
  fill is the same for every image (``letterbox``).
* RGB to gray is ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B), the same for files and arrays.
"""

from __future__ import annotations

import io
import warnings
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from deepfit.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_LUMA = (0.299, 0.587, 0.114)
_CHUNK = 2048  # images per float batch in array conversion: bounds the float32 copy


def letterbox(source: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, height, width) of an image of size ``source`` (H, W) scaled to fit inside
    ``target`` (H, W) with its aspect ratio kept, centred (extra odd pixel below / right).

    Example:
        >>> letterbox((50, 100), (64, 64))
        (16, 0, 32, 64)
    """
    scale = min(target[0] / source[0], target[1] / source[1])
    height = min(target[0], max(1, round(source[0] * scale)))
    width = min(target[1], max(1, round(source[1] * scale)))
    return (target[0] - height) // 2, (target[1] - width) // 2, height, width


class Unreadable(Exception):
    """One image cannot be decoded; the message is a short reason for errors and skip lists."""


# Medical scanner formats that PIL cannot read.
_SCANNER_FORMATS = {".dcm": "DICOM", ".dicom": "DICOM", ".nii": "NIfTI", ".nii.gz": "NIfTI",
                    ".mha": "MetaImage", ".mhd": "MetaImage", ".nrrd": "NRRD"}


SCANNER_ADVICE = ("which deepfit does not read: export the slices as PNG first (e.g. with "
                  "pydicom or nibabel), keeping the full intensity range (16-bit PNG is fine)")


def scanner_format(name: str) -> Optional[str]:
    """"DICOM", "NIfTI", ... for a medical scanner file name, else None."""
    lower = name.lower()
    return next((v for k, v in _SCANNER_FORMATS.items() if lower.endswith(k)), None)


def is_image_name(name: str) -> bool:
    """True when ``name`` ends in a known image extension (any case)."""
    return name.lower().endswith(IMAGE_SUFFIXES)


def bad_image_error(name: str, reason: str) -> DataError:
    """The one-line error for an unreadable image under the "error" policy."""
    return DataError(f"image '{name}' cannot be read: {reason}; fix or remove it, or set "
                     "data.bad_images: skip to leave unreadable images out")


@contextmanager
def bomb_guard() -> Iterator[None]:
    """Make PIL's decompression-bomb warning an exception while decoding.

    Warning filters are process-wide, so one guard around a thread pool covers its workers;
    ``open_image`` also checks the pixel count itself in case a filter elsewhere hides it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def open_image(data: bytes) -> Image.Image:
    """Parse the header of an encoded image (no pixel decoding), rejecting bombs.

    Raises:
        Unreadable: empty data, an unknown format, or more pixels than
            ``PIL.Image.MAX_IMAGE_PIXELS``.
    """
    if not data:
        raise Unreadable("the file is empty (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Unreadable(f"decompression bomb ({exc})") from None
    except Exception as exc:  # PIL raises many types for damaged input; all mean "unreadable"
        raise Unreadable(_reason(exc, "not an image PIL can read")) from None
    limit = Image.MAX_IMAGE_PIXELS
    if limit and img.width * img.height > limit:
        raise Unreadable(f"decompression bomb ({img.width}x{img.height} pixels is over the "
                         f"limit of {limit:,})")
    return img


# EXIF orientations (tag 0x0112) 5-8 turn the stored image a quarter turn: width and height swap.
_ORIENTATION = 0x0112


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1 = as stored); a damaged EXIF block counts as none."""
    try:
        value = img.getexif().get(_ORIENTATION, 1)
    except Exception:  # EXIF parsing of a damaged file: the pixels may still be fine
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def displayed_size(img: Image.Image) -> tuple[int, int]:
    """(H, W) as a photo viewer shows the image: after its EXIF orientation."""
    return (img.width, img.height) if _orientation(img) >= 5 else (img.height, img.width)


def is_gray(img: Image.Image) -> bool:
    """True when the image carries no colour: a gray mode or an all-gray palette."""
    if img.mode in GRAY_MODES:
        return True
    if img.mode in ("P", "PA"):
        palette = img.getpalette() or []
        return all(palette[i] == palette[i + 1] == palette[i + 2]
                   for i in range(0, len(palette) - 2, 3))
    return False


def decode_bytes(data: bytes, size: Optional[tuple[int, int]], channels: int,
                 resize: str = "stretch") -> np.ndarray:
    """Decode one encoded image to uint8 (channels, H, W), resized to ``size`` (H, W) if given:
    stretched to it, or letterboxed into it (``resize="pad"``).

    Raises:
        Unreadable: the bytes are not a complete, decodable image.
    """
    return decode_sized(data, size, channels, resize)[0]


def decode_sized(data: bytes, size: Optional[tuple[int, int]], channels: int,
                 resize: str = "stretch") -> tuple[np.ndarray, tuple[int, int]]:
    """``decode_bytes`` and the image's ``displayed_size`` (H, W) before resizing, read
    from the same parse of its header (a decoder that needs the shape opens the file once).

    Raises:
        Unreadable: the bytes are not a complete, decodable image.
    """
    img = open_image(data)
    try:
        orientation = _orientation(img)
        shown = (img.width, img.height) if orientation >= 5 else (img.height, img.width)
        box = None  # letterbox: (top, left, height, width) of the picture inside ``size``
        if size is not None and resize == "pad":
            box = letterbox(shown, size)
        fit = size if box is None else box[2:]  # (H, W) the picture itself is scaled to
        if fit is not None and img.format == "JPEG":
            # DCT-domain downscaling (never below the target) makes big JPEGs much cheaper;
            # the target in stored pixels, which a quarter-turn orientation swaps.
            stored = (fit[0], fit[1]) if orientation >= 5 else (fit[1], fit[0])
            img.draft(img.mode, stored)
        # The full decode: truncated or corrupt pixel data fails here, as long as nobody has
        # set PIL.ImageFile.LOAD_TRUNCATED_IMAGES (deepfit never does).
        img.load()
        if orientation != 1:
            # Phone cameras store the sensor's pixels and a rotation flag: apply it, so the
            # network sees the picture the way a photo viewer (and the user) does.
            img = ImageOps.exif_transpose(img)
        img = _to_8bit(img)
        if channels == 1 and img.mode != "L":
            img = img.convert("L")  # PIL's L conversion is ITU-R 601 luma, as for arrays
        elif channels == 3 and img.mode != "RGB":
            img = img.convert("RGB")
        if fit is not None and img.size != (fit[1], fit[0]):
            img = img.resize((fit[1], fit[0]), Image.Resampling.BILINEAR)
        arr = np.array(img, dtype=np.uint8)  # a writable copy: tensors may be changed in place
        if box is not None and arr.shape[:2] != tuple(size):
            canvas = np.zeros((*size, *arr.shape[2:]), dtype=np.uint8)  # black fill
            top, left, height, width = box
            canvas[top:top + height, left:left + width] = arr
            arr = canvas
    except Unreadable:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Unreadable(f"decompression bomb ({exc})") from None
    except Exception as exc:  # any failure inside PIL's decoders means a damaged file
        raise Unreadable(_reason(exc, "corrupt image data")) from None
    return (arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)), shown


def decode_image(path: str, size: tuple[int, int], channels: int,
                 resize: str = "stretch") -> torch.Tensor:
    """Read and decode one image file to a uint8 (channels, H, W) tensor of ``size`` (H, W)
    (``resize``: "stretch" or "pad", as ``decode_bytes``).

    Module-level so streaming DataLoader workers can pickle it.

    Raises:
        DataError: the file cannot be read or decoded (naming the file).
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise bad_image_error(path, f"cannot open the file ({exc.strerror or exc})") from None
    try:
        with bomb_guard():
            arr = decode_bytes(data, size, channels, resize)
    except Unreadable as exc:
        raise bad_image_error(path, str(exc)) from None
    return torch.from_numpy(np.ascontiguousarray(arr))


def _reason(exc: BaseException, fallback: str) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "cannot identify image file" in text:
        return "not an image file (unknown format)"
    if "truncated" in text.lower():
        return "the file is truncated"
    return f"{fallback} ({type(exc).__name__}: {text[:160]})" if text else fallback


def _to_8bit(img: Image.Image) -> Image.Image:
    """The image as 8-bit "L" or "RGB", alpha composited over black."""
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode in ("I", "F") or mode.startswith("I;16"):
        return Image.fromarray(_scale_to_8bit(np.asarray(img), mode), mode="L")
    has_alpha = "A" in mode or "a" in mode or (mode == "P" and "transparency" in img.info)
    gray = is_gray(img)
    if not has_alpha:
        return img.convert("L" if gray else "RGB")
    arr = np.asarray(img.convert("LA" if gray else "RGBA")).astype(np.uint16)
    color, alpha = arr[..., :-1], arr[..., -1:]
    # (c * a + 127) // 255 is c * a / 255 rounded, in integers.
    out = ((color * alpha + 127) // 255).astype(np.uint8)
    return Image.fromarray(out[..., 0], mode="L") if gray else Image.fromarray(out, mode="RGB")


def _scale_to_8bit(arr: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16-bit, 32-bit or float plane to uint8 without clipping."""
    values = arr.astype(np.float64)
    if mode.startswith("I;16"):
        return np.rint(values / 257.0).astype(np.uint8)
    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 0.0
    values = np.nan_to_num(values, nan=lo, posinf=hi, neginf=lo)
    if mode == "I" and lo >= 0 and hi <= 65535:
        return np.rint(values / 257.0).astype(np.uint8)
    if mode == "F" and lo >= 0 and hi <= 1:
        return np.rint(values * 255.0).astype(np.uint8)
    if hi == lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.rint((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def arrays_to_tensor(images: np.ndarray, layout: str, size: Optional[tuple[int, int]],
                     channels: str, where: str, resize: str = "stretch") -> torch.Tensor:
    """Stack of images from an array source to a uint8 (N, C, H, W) tensor.

    Args:
        images: uint8 array in ``layout``.
        layout: "NHW", "NHWC" or "NCHW".
        size: (H, W) to resize to (bilinear, antialiased), or None to keep.
        resize: "stretch" to ``size``, or "pad" (letterbox into it, black around).
        channels: "auto" keeps 1 or 3; "gray" applies luma; "rgb" repeats a gray plane.
        where: names the source in errors.

    Raises:
        DataError: wrong number of dimensions or channels.
    """
    arr = np.asarray(images)
    if arr.ndim != len(layout):
        raise DataError(f"{where}: images have shape {arr.shape}; expected {layout} "
                        f"({len(layout)} dimensions)")
    if layout == "NHW":
        arr = arr[:, None]
    elif layout == "NHWC":
        arr = arr.transpose(0, 3, 1, 2)
    if arr.shape[1] not in (1, 3):
        raise DataError(f"{where}: images have {arr.shape[1]} channels; only 1 (gray) or 3 "
                        "(RGB) are supported")
    target = {"gray": 1, "rgb": 3}.get(channels, arr.shape[1])
    n = arr.shape[0]
    height, width = size if size is not None else arr.shape[2:]
    out = torch.empty((n, target, height, width), dtype=torch.uint8)
    if arr.shape[1] == target and (height, width) == arr.shape[2:]:
        out.copy_(torch.from_numpy(np.ascontiguousarray(arr)))
        return out
    top, left = 0, 0
    if resize == "pad" and (height, width) != arr.shape[2:]:
        out.zero_()  # black fill around the letterboxed picture
        top, left, height, width = letterbox(arr.shape[2:], (height, width))
    for start in range(0, n, _CHUNK):
        part = torch.from_numpy(np.ascontiguousarray(arr[start:start + _CHUNK]))
        if part.shape[1] == 3 and target == 1:
            luma = torch.tensor(_LUMA, dtype=torch.float32).view(1, 3, 1, 1)
            part = (part.float() * luma).sum(dim=1, keepdim=True)
        else:
            part = part.float()
        if (height, width) != tuple(part.shape[2:]):
            part = F.interpolate(part, size=(height, width), mode="bilinear",
                                 align_corners=False, antialias=True)
        if part.shape[1] == 1 and target == 3:
            part = part.expand(-1, 3, -1, -1)
        out[start:start + _CHUNK, :, top:top + height, left:left + width] = (
            part.round().clamp(0, 255).to(torch.uint8))
    return out
