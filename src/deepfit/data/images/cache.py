"""On-disk cache of decoded image sets: one uint8 ``.npy`` and one JSON per key.

The key hashes every image's id and bytes plus the decoding settings, so any change to a
file, the resize size or mode (stretch / pad), the channel mode or the bad-image policy
misses. Entries are written
atomically (temporary file, fsync, rename) with the JSON last, so a reader sees either a
complete entry or none; anything unreadable or inconsistent is treated as a miss and
overwritten by the next write.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from deepfit.data.images.decode import arrays_to_tensor
from deepfit.data.images.imageset import Aspects, measure_aspects
from deepfit.files import atomic_write

# Bump when the decoded pixels for the same inputs change (decoder rules, layout, meta).
CACHE_FORMAT = 3  # 2: EXIF orientation applied; 3: resize mode in the key, aspects kept


class KeyBuilder:
    """Incremental cache key: feed it the settings, then each image's id and bytes digest."""

    def __init__(self, **settings: Any) -> None:
        self._hash = hashlib.blake2b(digest_size=20)
        self.add(json.dumps({"format": CACHE_FORMAT, **settings}, sort_keys=True, default=str))

    def add(self, text: str, digest: bytes = b"") -> None:
        """Add one image: its id (relative path) and the digest of its bytes."""
        encoded = text.encode("utf-8")
        # Length prefixes keep ("ab", "c") and ("a", "bc") from hashing alike.
        self._hash.update(len(encoded).to_bytes(8, "little") + encoded)
        self._hash.update(len(digest).to_bytes(2, "little") + digest)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def digest_bytes(data: bytes) -> bytes:
    """A short digest of one image's bytes for ``KeyBuilder.add``."""
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass
class CacheEntry:
    """A cached decoded set: the images and what the decoder recorded about them."""

    images: np.ndarray
    kept: np.ndarray
    skipped: list[tuple[int, str]]  # (index into the listed images, reason)
    aspects: Optional[Aspects] = None  # the stored images' shapes, measured at decoding


def read_entry(cache_dir: str | Path, key: str, count: int) -> Optional[CacheEntry]:
    """The entry for ``key``, or None when absent or damaged in any way.

    Args:
        cache_dir: the cache folder.
        key: from ``KeyBuilder.hexdigest``.
        count: how many images were listed; ``kept`` indexes into them.
    """
    folder = Path(cache_dir)
    try:
        meta = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        if meta.get("format") != CACHE_FORMAT:
            return None
        npy = folder / f"{key}.npy"
        if npy.stat().st_size != meta["npy_bytes"]:
            return None  # a partial or damaged array file
        images = np.load(npy, allow_pickle=False)
        kept = np.asarray(meta["kept"], dtype=np.int64)
        skipped = [(int(i), str(r)) for i, r in meta["skipped"]]
        aspects = Aspects(**meta["aspects"]) if meta.get("aspects") else None
    except Exception:  # a damaged entry can fail in many ways; every one is just a miss
        return None
    if (images.dtype != np.uint8 or images.ndim != 4 or list(images.shape) != meta["shape"]
            or len(kept) != images.shape[0] or (len(kept) and (kept.min() < 0
                                                              or kept.max() >= count))
            or any(not 0 <= i < count for i, _ in skipped)):
        return None
    return CacheEntry(images=images, kept=kept, skipped=skipped, aspects=aspects)


def write_entry(cache_dir: str | Path, key: str, images: np.ndarray, kept: np.ndarray,
                skipped: list[tuple[int, str]],
                aspects: Optional[Aspects] = None) -> Optional[str]:
    """Store an entry; return None on success or a short reason it could not be written.

    ``skipped`` holds indices, not names, so an entry stays valid when the folder moves.

    A failed write never stops a run: the images are already decoded in memory.
    """
    folder = Path(cache_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        npy = folder / f"{key}.npy"
        atomic_write(npy, lambda fh: np.save(fh, np.ascontiguousarray(images),
                                              allow_pickle=False))
        meta = {"format": CACHE_FORMAT, "shape": list(images.shape),
                "npy_bytes": npy.stat().st_size, "kept": [int(k) for k in kept],
                "skipped": [[int(i), str(r)] for i, r in skipped],
                "aspects": aspects.to_dict() if aspects is not None else None}
        text = json.dumps(meta).encode("utf-8")
        atomic_write(folder / f"{key}.json", lambda fh: fh.write(text))
    except OSError as exc:
        return f"cache not written to {folder}: {exc.strerror or exc}"
    return None


def cached_arrays(images: np.ndarray, layout: str, opts: Any,
                  where: str) -> tuple[Any, str, Aspects]:
    """``arrays_to_tensor`` for array sources (IDX, .npz, torchvision), cached on disk when
    it has real work to do (resizing, or changing the channels), keyed by the arrays' bytes
    and the settings. Returns the tensor, a note for ``ImageSet.origin`` ("" or how it
    was cached) and the images' ``Aspects`` (one stored size for all)."""
    arr = np.ascontiguousarray(images)
    channels = arr.shape[-1] if layout == "NHWC" else 1 if layout == "NHW" else arr.shape[1]
    native = arr.shape[1:3] if layout in ("NHW", "NHWC") else arr.shape[2:4]
    aspects = measure_aspects([tuple(native)] if len(native) == 2 else [],
                              opts.size or tuple(native))
    aspects.other *= len(arr)  # every image has the one stored shape
    aspects.images = len(arr)
    target = {"gray": 1, "rgb": 3}.get(opts.channels, channels)
    work = (opts.size is not None and tuple(opts.size) != tuple(native)) or target != channels
    if not work or not opts.cache_dir or arr.ndim != len(layout):
        return arrays_to_tensor(arr, layout, opts.size, opts.channels, where,
                                opts.resize), "", aspects
    builder = KeyBuilder(kind="arrays", layout=layout, size=opts.size, channels=opts.channels,
                         resize=opts.resize)
    builder.add(repr(arr.shape), hashlib.blake2b(memoryview(arr).cast("B"),
                                                 digest_size=20).digest())
    key = builder.hexdigest()
    entry = read_entry(opts.cache_dir, key, len(arr))
    if entry is not None and len(entry.kept) == len(arr):
        return (torch.from_numpy(np.array(entry.images)),
                f" (resized copy from cache {key[:12]})", aspects)
    tensor = arrays_to_tensor(arr, layout, opts.size, opts.channels, where, opts.resize)
    problem = write_entry(opts.cache_dir, key, tensor.numpy(), np.arange(len(arr)), [])
    return tensor, f" ({problem})" if problem else "", aspects
