"""The page's points in its link: uploaded or clicked points, and their train/test split, as
one compact URL-safe text (``pts=`` after the ``#``), so that a copied link opens the same
points on another machine. Points the link cannot hold (more than ``MAX_CHARS`` characters
encoded) are not put in it; the page says so and offers them as a CSV file.

The text is base64url of zlib-compressed bytes: ``P1``, the task (0 binary, 1 multi-class,
2 regression), the inputs per point (1 or 2), the number of points (uint32), the class names
(a uint16 length and UTF-8 JSON), the inputs (float32), the targets (uint8 class indices or
float32 values) and the split (one bit per point, 1 = train).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import struct
import zlib

import numpy as np

from deepfit.errors import DataError
from deepfit.playground.points import MAX_CLASSES, Points, split
from deepfit.playground.settings import MAX_POINTS, Settings

MAX_CHARS = 16_000  # of the encoded points; about 1,500 two-class points
TASKS = ("binary", "multiclass", "regression")
_HEADER = struct.Struct("<2sBBIH")
_MAX_BYTES = _HEADER.size + 4096 + MAX_POINTS * (2 * 4 + 4) + MAX_POINTS // 8 + 1


def encode(points: Points) -> str:
    """The points as link text (may be longer than ``MAX_CHARS``: the caller checks)."""
    names = json.dumps(list(points.class_names)).encode()
    n, dims = len(points.y), points.X.shape[1]
    target = points.y.astype("<f4" if points.task == "regression" else np.uint8)
    raw = b"".join([_HEADER.pack(b"P1", TASKS.index(points.task), dims, n, len(names)), names,
                    points.X.astype("<f4").tobytes(), target.tobytes(),
                    np.packbits(points.train.astype(np.uint8)).tobytes()])
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def decode(text: object) -> Points:
    """Points from link text; anything that is not what ``encode`` writes is one line."""
    bad = "link: the points in the address (pts=...) are damaged or not the playground's"
    if not isinstance(text, str) or len(text) > 4 * _MAX_BYTES:
        raise DataError(bad)
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        unzip = zlib.decompressobj()
        raw = unzip.decompress(packed, _MAX_BYTES)
        magic, task, dims, n, size = _HEADER.unpack_from(raw)
        at = _HEADER.size
        names = tuple(json.loads(raw[at:at + size].decode()))
    except (binascii.Error, ValueError, zlib.error, struct.error, UnicodeDecodeError):
        raise DataError(bad) from None
    at += size
    if (magic != b"P1" or task >= len(TASKS) or dims not in (1, 2) or not 4 <= n <= MAX_POINTS
            or unzip.unconsumed_tail or not unzip.eof):
        raise DataError(bad)
    kind = TASKS[task]
    width = 4 if kind == "regression" else 1
    ends = [at + n * dims * 4, at + n * dims * 4 + n * width]
    if len(raw) != ends[1] + (n + 7) // 8:
        raise DataError(bad)
    X = np.frombuffer(raw[at:ends[0]], "<f4").reshape(n, dims).astype(np.float32)
    y = np.frombuffer(raw[ends[0]:ends[1]], "<f4" if width == 4 else np.uint8)
    train = np.unpackbits(np.frombuffer(raw[ends[1]:], np.uint8))[:n].astype(bool)
    classes = kind != "regression"
    if (not np.isfinite(X).all() or not np.isfinite(y.astype(np.float64)).all()
            or train.all() or not train.any()
            or classes != (2 <= len(names) <= MAX_CLASSES)
            or (classes and not all(isinstance(c, str) for c in names))
            or (classes and (int(y.max()) >= len(names) or (len(names) == 2) != (kind == "binary")))):
        raise DataError(bad)
    return Points(X, y.astype(np.int64 if classes else np.float32), train, kind, names)


def link_points(points: Points) -> dict[str, object]:
    """What the page's ``points`` message says of the link: ``link`` the text, or None with
    ``link_note`` when the points are too many for it."""
    text = encode(points)
    if len(text) <= MAX_CHARS:
        return {"link": text, "link_note": None}
    return {"link": None, "link_note": f"the link does not carry these {len(points.y):,} "
            f"points ({len(text):,} characters encoded, more than {MAX_CHARS:,}): download "
            "them as CSV to share them"}


def edited(settings: Settings, points: Points) -> bool:
    """Whether the points are not those the settings make (uploaded, or clicked)."""
    return settings.data == "upload" or len(points.y) != settings.points or not np.array_equal(
        points.train, split(settings.points, settings.test_ratio, settings.seed))


def link_message(settings: Settings, points: Points) -> dict[str, object]:
    """The link part of the page's ``points`` message: no text for the generator's points
    (the settings make them), the points' text, or why the link cannot hold them."""
    return link_points(points) if edited(settings, points) else {"link": None,
                                                                  "link_note": None}


def points_csv(points: Points) -> str:
    """The points as the CSV the page uploads (x1, x2, then the label or target; a 1-D
    regression: x1, y), each value as stored (float32, shortest text)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["x1", "x2"][:points.X.shape[1]] + ["label" if points.class_names else "y"])
    target = (np.asarray(points.class_names)[points.y] if points.task != "regression"
              else [str(np.float32(v)) for v in points.y])
    writer.writerows([*(str(np.float32(v)) for v in x), t] for x, t in zip(points.X, target))
    return text.getvalue()
