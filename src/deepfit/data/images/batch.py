"""Decode a list of encoded images (files or in-memory bytes) into one uint8 tensor.

Passes over a thread pool (PIL and hashing release the GIL):

1. Probe: read each image's bytes once and hash them for the cache key; then (right away
   without a cache, only after a cache miss with one) parse each header for its mode and
   size without decoding pixels. The "auto" channel layout and the common size need every
   header before the output array can be allocated; a header parse costs a small fraction
   of a decode, so this beats decoding twice or holding per-image arrays of unknown layout.
   Bytes are kept (up to a budget) so pass 2 does not read the files again.
2. Decode: straight into one preallocated (N, C, H, W) uint8 array.

When the size and channels are fixed (``opts.size`` and "gray" / "rgb": every prediction of
a trained model), there is no cache and the set fits in memory, the headers have nothing to
decide: pass 1 is skipped and each image is read and decoded once, its shape taken from the
same parse (a probe of every header cost about half a decode again).

A set that would not fit in ``opts.max_memory_bytes`` once decoded is not decoded at all:
``ImageFiles`` is returned for streaming. That decision is made from a sample of headers
before pass 1 (so a huge set is never read in full here): the size is ``opts.size`` or the
sample's common size, the channels ``opts.channels`` or "auto" over the sample; files outside
the sample are checked when the streaming loader decodes them.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Generator, Iterator, Optional, Sequence

import numpy as np
import torch

from deepfit.data.images.cache import KeyBuilder, digest_bytes, read_entry, write_entry
from deepfit.data.images.decode import Unreadable, bad_image_error, bomb_guard, decode_sized
from deepfit.data.images.decode import displayed_size, is_gray, open_image
from deepfit.data.images.imageset import Aspects, ImageFiles, ImageSet, measure_aspects
from deepfit.data.images.options import ImageOptions
from deepfit.errors import DataError

_THREADS = min(8, os.cpu_count() or 1)
_CHUNK = 64  # images per pool task: few enough futures for millions of files
_SAMPLE = 32  # headers read to decide on streaming
_KEEP_BYTES = 1 << 30  # encoded bytes held between the passes; beyond this, files are re-read


@dataclass
class ImageList:
    """Encoded images to decode.

    Attributes:
        names: how messages and ``skipped`` name each image (a file path, or "file row i").
        ids: stable relative ids (relative path, or "split/index"): the cache key and
            ``ImageSet.ids``.
        paths: one file path per image, or None when every image is in ``blobs``.
        blobs: in-memory bytes per image (None entries are read from ``paths``), or None.
    """

    names: Sequence[str]
    ids: Sequence[str]
    paths: Optional[Sequence[Optional[str]]] = None
    blobs: Optional[Sequence[Optional[bytes]]] = None

    def __len__(self) -> int:
        return len(self.ids)

    def read(self, i: int) -> bytes:
        """The bytes of image ``i``; ``Unreadable`` when its file cannot be opened."""
        if self.blobs is not None and self.blobs[i] is not None:
            return self.blobs[i]
        path = self.paths[i] if self.paths is not None else None
        if path is None:
            raise Unreadable("no image bytes and no file path")
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise Unreadable(f"cannot open the file ({exc.strerror or exc})") from None


@dataclass
class _Probe:
    digest: bytes = b""
    size: Optional[tuple[int, int]] = None  # (H, W)
    gray: bool = False
    reason: Optional[str] = None
    data: Optional[bytes] = None


class _Budget:
    """Bytes that pass 1 may keep for pass 2, shared by the pool's threads."""

    def __init__(self, total: int) -> None:
        self._left = total
        self._lock = threading.Lock()

    def take(self, amount: int) -> bool:
        with self._lock:
            if amount > self._left:
                return False
            self._left -= amount
            return True


def build_image_set(items: ImageList, labels: np.ndarray, class_names: list[str], *,
                    name: str, description: str, opts: ImageOptions,
                    split: Optional[Sequence[str]] = None, task_hint: Optional[str] = None,
                    what: str = "image files",
                    groups: Optional[Sequence[str]] = None) -> ImageSet:
    """Decode ``items`` and assemble the ``ImageSet``, dropping the rows of skipped images."""
    decoded = decode_list(items, opts, what)
    kept = decoded.kept
    return ImageSet(images=decoded.images, labels=np.asarray(labels)[kept],
                    class_names=class_names, name=name, description=description,
                    ids=np.asarray(items.ids, dtype=str)[kept],
                    split=None if split is None else np.asarray(split, dtype=str)[kept],
                    groups=None if groups is None else np.asarray(groups, dtype=str)[kept],
                    task_hint=task_hint, skipped=decoded.skipped, origin=decoded.origin,
                    aspects=decoded.aspects)


@dataclass
class Decoded:
    """Result of ``decode_list``: images, the indices of ``items`` they came from, why
    the others were left out, and the stored images' shapes against the size given."""

    images: "torch.Tensor | ImageFiles"
    kept: np.ndarray
    skipped: list[tuple[str, str]]
    origin: str
    aspects: Optional[Aspects] = None


def decode_list(items: ImageList, opts: ImageOptions, what: str = "image files") -> Decoded:
    """Decode every image of ``items`` (see the module docstring for the passes).

    Raises:
        DataError: an unreadable image under the "error" policy, images of different sizes
            without ``opts.size``, no readable image at all, or an in-memory set too large.
    """
    n = len(items)
    if n == 0:
        raise DataError(f"no {what} to read")
    size, channels = opts.size, opts.fixed_channels
    if size and channels and not opts.cache_dir and \
            n * channels * size[0] * size[1] <= opts.max_memory_bytes:
        # Nothing to learn from the headers first (the layout is fixed and it fits in
        # memory; no cache key to hash): one pass, each image read and decoded once.
        skipped: dict[int, str] = {}
        shapes: list = [None] * n
        good = list(range(n))
        with bomb_guard():
            out, failed = _decode_all(items, None, good, size, channels, opts, skipped, shapes)
        return _decoded(items, out, good, failed, skipped, what, None,
                        measure_aspects(shapes, size))
    with bomb_guard():
        if items.blobs is None:
            streamed = _maybe_stream(items, opts, what)
            if streamed is not None:
                return streamed
        budget = _Budget(min(_KEEP_BYTES, opts.max_memory_bytes // 4))
        # With a cache, headers wait until a miss: a hit then costs only reading and hashing.
        probes = list(_ordered(lambda i: _probe(items, i, budget, not opts.cache_dir), n))
        key = None
        if opts.cache_dir:
            builder = KeyBuilder(size=opts.size, resize=opts.resize, channels=opts.channels,
                                 bad_images=opts.bad_images)
            for i in range(n):
                builder.add(items.ids[i], probes[i].digest)
            key = builder.hexdigest()
            entry = read_entry(opts.cache_dir, key, n)
            if entry is not None:
                return Decoded(torch.from_numpy(entry.images), entry.kept,
                               [(items.names[i], why) for i, why in entry.skipped],
                               f"from cache {key[:12]}", entry.aspects)
            list(_ordered(lambda i: _header(items, i, probes[i]), n))
        skipped = {}
        for i, probe in enumerate(probes):
            if probe.reason is not None:
                if opts.bad_images == "error":
                    raise bad_image_error(items.names[i], probe.reason)
                skipped[i] = probe.reason
        good = [i for i in range(n) if i not in skipped]
        if not good:
            raise _none_readable(items, skipped, what)
        channels = opts.fixed_channels or (1 if all(probes[i].gray for i in good) else 3)
        size = opts.size or _common_size(items, probes, good)
        aspects = measure_aspects([probes[i].size for i in good], size)
        total = len(good) * channels * size[0] * size[1]
        if total > opts.max_memory_bytes:
            if items.blobs is not None:
                raise DataError(f"{n:,} {what} would take {total / 2**30:.1f} GiB decoded, over "
                                f"the {opts.max_memory_bytes / 2**30:.1f} GiB limit; set a smaller"
                                " data.image_size or raise data.max_memory_gb")
            return Decoded(ImageFiles([items.paths[i] for i in good], size, channels,
                                      opts.resize),
                           np.asarray(good, dtype=np.int64), _named(items, skipped),
                           _stream_origin(n, total, opts, what), aspects)
        out, failed = _decode_all(items, probes, good, size, channels, opts, skipped)
    return _decoded(items, out, good, failed, skipped, what, key, aspects, opts)


def _decoded(items: ImageList, out: np.ndarray, good: list[int], failed: list[int],
             skipped: dict[int, str], what: str, key: Optional[str], aspects: Aspects,
             opts: Optional[ImageOptions] = None) -> Decoded:
    """The ``Decoded`` of pass 2's array (written to the cache under ``key`` if given)."""
    if len(failed) == len(good):
        raise _none_readable(items, skipped, what)
    kept = np.asarray([i for i in good if i not in skipped], dtype=np.int64)
    if failed:
        out = np.ascontiguousarray(np.delete(out, failed, axis=0))
    origin = f"decoded {len(kept):,} {what}"
    if key is not None:
        problem = write_entry(opts.cache_dir, key, out, kept, sorted(skipped.items()),
                              aspects)
        if problem:
            origin += f" ({problem})"
    return Decoded(torch.from_numpy(out), kept, _named(items, skipped), origin, aspects)


def _decode_all(items: ImageList, probes: Optional[list[_Probe]], good: list[int],
                size: tuple[int, int], channels: int, opts: ImageOptions,
                skipped: dict[int, str], shapes: Optional[list] = None):
    """Pass 2: decode ``good`` into one array; returns it and the positions that failed
    (recorded in ``skipped``, or raised under the "error" policy). ``probes``: pass 1's,
    whose bytes are used (None: every file read here); ``shapes``: filled with each
    decoded image's displayed size (H, W), by position in ``items``."""
    out = np.empty((len(good), channels, *size), dtype=np.uint8)

    def decode_one(j: int) -> Optional[str]:
        i, data = good[j], None
        if probes is not None:
            data, probes[i].data = probes[i].data, None  # free the bytes as soon as used
        try:
            out[j], shape = decode_sized(data if data is not None else items.read(i), size,
                                         channels, opts.resize)
        except Unreadable as exc:
            return str(exc)
        if shapes is not None:
            shapes[i] = shape
        return None

    failed = []
    results = _ordered(decode_one, len(good))
    try:
        for j, reason in enumerate(results):
            if reason is not None:
                if opts.bad_images == "error":
                    raise bad_image_error(items.names[good[j]], reason)
                skipped[good[j]] = reason
                failed.append(j)
    finally:
        results.close()  # on the first error, drop the work not yet started
    return out, failed


def _none_readable(items: ImageList, skipped: dict[int, str], what: str) -> DataError:
    first = min(skipped)
    return DataError(f"none of the {len(items):,} {what} could be read (the first, "
                     f"'{items.names[first]}': {skipped[first]})")


def _probe(items: ImageList, i: int, budget: _Budget, header: bool = True) -> _Probe:
    """Pass 1 for image ``i``: read and hash its bytes, and parse its header if asked."""
    probe = _Probe()
    try:
        data = items.read(i)
    except Unreadable as exc:
        probe.reason = str(exc)
        return probe
    probe.digest = digest_bytes(data)
    if items.blobs is None or items.blobs[i] is None:
        probe.data = data if budget.take(len(data)) else None
    if header:
        _header(items, i, probe, data)
    return probe


def _header(items: ImageList, i: int, probe: _Probe, data: Optional[bytes] = None) -> None:
    """Fill in the size and grayness of image ``i`` from its header (or its failure)."""
    if probe.reason is not None:
        return
    try:
        if data is None:
            data = probe.data if probe.data is not None else items.read(i)
        img = open_image(data)
        probe.size = displayed_size(img)
        probe.gray = is_gray(img)
        img.close()
    except Unreadable as exc:
        probe.reason = str(exc)


def _common_size(items: ImageList, probes: list[_Probe], good: list[int]) -> tuple[int, int]:
    first = good[0]
    size = probes[first].size
    for i in good:
        if probes[i].size != size:
            raise _size_error(items.names[i], probes[i].size, items.names[first], size)
    return size


def _size_error(name: str, size: tuple[int, int], first_name: str,
                first_size: tuple[int, int]) -> DataError:
    return DataError(f"image '{name}' is {size[0]}x{size[1]} (height x width) but "
                     f"'{first_name}' is {first_size[0]}x{first_size[1]}; set data.image_size "
                     f"(e.g. [{first_size[0]}, {first_size[1]}]) to resize every image to one "
                     "size")


def _maybe_stream(items: ImageList, opts: ImageOptions, what: str) -> Optional[Decoded]:
    """``ImageFiles`` when a header sample says the decoded set is over the memory limit."""
    n = len(items)
    sample = np.unique(np.linspace(0, n - 1, min(n, _SAMPLE)).astype(np.int64)).tolist()
    probes = {i: _probe(items, i, _Budget(0)) for i in sample}
    good = [i for i in sample if probes[i].reason is None]
    if not good:
        return None  # the full pass reports the unreadable files properly
    channels = opts.fixed_channels or (1 if all(probes[i].gray for i in good) else 3)
    size = opts.size or probes[good[0]].size
    total = n * channels * size[0] * size[1]
    if total <= opts.max_memory_bytes:
        return None
    skipped = {}
    for i in sample:
        if probes[i].reason is not None:
            if opts.bad_images == "error":
                raise bad_image_error(items.names[i], probes[i].reason)
            skipped[i] = probes[i].reason
        elif opts.size is None and probes[i].size != size:
            raise _size_error(items.names[i], probes[i].size, items.names[good[0]], size)
    kept = [i for i in range(n) if i not in skipped]
    aspects = measure_aspects([probes[i].size for i in good], size, sampled=True)
    return Decoded(ImageFiles([items.paths[i] for i in kept], size, channels, opts.resize),
                   np.asarray(kept, dtype=np.int64), _named(items, skipped),
                   _stream_origin(n, total, opts, what), aspects)


def _stream_origin(n: int, total: int, opts: ImageOptions, what: str) -> str:
    return (f"streamed {n:,} {what} from disk ({total / 2**30:.1f} GiB decoded is over the "
            f"{opts.max_memory_bytes / 2**30:.1f} GiB memory limit)")


def _named(items: ImageList, skipped: dict[int, str]) -> list[tuple[str, str]]:
    return [(items.names[i], skipped[i]) for i in sorted(skipped)]


def _ordered(fn: Callable[[int], object], count: int) -> Generator[object, None, None]:
    """``fn(i)`` for i in range(count), in order, computed on the thread pool.

    Closing the generator early (first failure) drops the work not yet started.
    """

    def run(start: int) -> list:
        return [fn(i) for i in range(start, min(start + _CHUNK, count))]

    if count <= _CHUNK or _THREADS == 1:
        yield from _serial(run, count)
        return
    pool = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="deepfit-decode")
    try:
        for chunk in pool.map(run, range(0, count, _CHUNK)):
            yield from chunk
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _serial(run: Callable[[int], list], count: int) -> Iterator[object]:
    # Small lists and single-core machines: a pool would only add overhead.
    for start in range(0, count, _CHUNK):
        yield from run(start)
