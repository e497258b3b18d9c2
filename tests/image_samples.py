"""Small real image files written by the image-source tests (not a test module)."""

from __future__ import annotations

import gzip
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def gray(seed: int = 0, size: tuple[int, int] = (8, 8)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8)


def rgb(seed: int = 0, size: tuple[int, int] = (8, 8)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray, fmt: str | None = None, mode: str | None = None) -> Path:
    """Write ``array`` as an image file (format from the suffix unless given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    img.save(path, format=fmt)
    return path


def encoded(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def class_folders(root: Path, spec: dict[str, int], size=(8, 8), color=False,
                  suffix=".png") -> Path:
    """``root/<class>/img<i><suffix>`` with ``spec[class]`` images each."""
    seed = 0
    for cls, count in spec.items():
        for i in range(count):
            seed += 1
            save(root / cls / f"img{i}{suffix}", rgb(seed, size) if color else gray(seed, size))
    return root


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming huge dimensions, with almost no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit gray
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) in the IDX format."""
    dims = b"".join(struct.pack(">I", d) for d in array.shape)
    return bytes([0, 0, 0x08, array.ndim]) + dims + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train=6, n_test=4, gz=True, size=(28, 28)) -> Path:
    """The four MNIST-style IDX files; labels cycle through 0..9."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, *size), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            data = idx_bytes(arr)
            base = folder / f"{prefix}-{kind}-ubyte"
            if gz:
                Path(f"{base}.gz").write_bytes(gzip.compress(data))
            else:
                base.write_bytes(data)
    return folder


def hf_table(images: list[bytes], labels, names: list[str] | None = None,
             label_type: str = "ClassLabel"):
    """A pyarrow Table in the Hugging Face image layout with feature metadata."""
    import pyarrow as pa

    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    column = pa.array([{"bytes": b, "path": f"img{i}.png"} for i, b in enumerate(images)],
                      type=image_type)
    features = {"image": {"_type": "Image"}}
    if names is not None:
        label_feature = {"names": names, "_type": "ClassLabel"}
        if label_type == "Sequence":
            label_feature = {"feature": label_feature, "_type": "Sequence"}
        features["label"] = label_feature
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    table = pa.table({"image": column, "label": pa.array(labels)})
    return table.replace_schema_metadata(meta)
