"""Image folders: one sub-folder per class, optionally inside train/val/test folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from deepfit.data.images.batch import ImageList, build_image_set
from deepfit.data.images.decode import (IMAGE_SUFFIXES, SCANNER_ADVICE, is_image_name,
                                        scanner_format)
from deepfit.data.images.imageset import ImageSet
from deepfit.data.images.options import ImageOptions, split_name
from deepfit.errors import DataError

_EXTS = " ".join(IMAGE_SUFFIXES)


def load_image_folders(root: Path, opts: ImageOptions) -> ImageSet:
    """Read an ImageFolder tree, or a root whose sub-folders are train / val / test trees.

    Class names are the sorted class-folder names (the union over the split folders); a
    class may be absent from some split. Images are found at any depth below a class folder.

    Raises:
        DataError: no images, an empty class folder, images outside class folders, or two
            folders naming the same split.
    """
    subdirs = _visible_dirs(root)
    others: list[str] = []  # files in class folders that are not images by their name
    splits = {d: split_name(d.name) for d in subdirs}
    if subdirs and all(splits.values()):
        seen: dict[str, Path] = {}
        for folder, split in splits.items():
            if split in seen:
                raise DataError(f"'{seen[split]}' and '{folder}' both hold the {split} split; "
                                "merge them or rename one")
            seen[split] = folder
        _no_loose_images(root, "split folder (train, val, test)")
        listing = [(split, _class_files(folder, others)) for folder, split in splits.items()]
        order = {"train": 0, "val": 1, "test": 2}
        listing.sort(key=lambda item: order[item[0]])
    else:
        listing = [(None, _class_files(root, others))]
    class_names = sorted({c for _, classes in listing for c in classes})
    code = {c: i for i, c in enumerate(class_names)}
    paths, labels, split = [], [], []
    for part, classes in listing:
        for cls, files in classes.items():
            paths.extend(files)
            labels.extend([code[cls]] * len(files))
            split.extend([part] * len(files))
    prefix = len(os.path.join(str(root), ""))
    ids = [p[prefix:].replace(os.sep, "/") for p in paths]
    items = ImageList(names=paths, ids=ids, paths=paths)
    parts = [s for s, _ in listing if s]
    layout = f"{'/'.join(parts)} folders of class folders" if parts else "class folders"
    images = build_image_set(
        items, np.asarray(labels, dtype=np.int64), class_names, name=root.name or str(root),
        description=f"images in {layout} under '{root}' ({len(class_names)} classes)",
        opts=opts, split=split if parts else None)
    images.other_files = [p[prefix:].replace(os.sep, "/") for p in others]
    return images


def _class_files(folder: Path, others: list[str]) -> dict[str, list[str]]:
    """{class name: sorted image files below its folder} for an ImageFolder root; the other
    files below the class folders (not images by their name) are added to ``others``."""
    classes = _visible_dirs(folder)
    if not classes:
        found = next(iter(_images_below(folder)), None)
        if found is not None:
            raise DataError(f"'{folder}' holds images but no class sub-folders; put each class's "
                            "images in a sub-folder named after the class")
        raise DataError(f"'{folder}' has no images ({_EXTS}) in class sub-folders"
                        f"{_other_format(folder)}")
    _no_loose_images(folder, "class folder")
    listing = {}
    for cls in classes:
        skipped: list[str] = []
        files = sorted(_images_below(cls, skipped))
        if not files:
            held = (f"; its {len(skipped)} file(s) are not images by their name (e.g. "
                    f"'{os.path.basename(skipped[0])}')" if skipped else "")
            raise DataError(f"class folder '{cls}' has no images ({_EXTS}){held}"
                            f"{_other_format(cls)}; add some or remove the folder")
        others.extend(skipped)
        listing[cls.name] = files
    return listing


def _no_loose_images(folder: Path, kind: str) -> None:
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and not entry.name.startswith(".") and is_image_name(entry.name):
            raise DataError(f"image '{entry}' is not inside a {kind}; move it into one or "
                            "remove it")


def _visible_dirs(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(f"cannot list folder '{folder}': {exc.strerror or exc}") from None
    return [e for e in entries if e.is_dir() and not e.name.startswith(".")]


def _other_format(folder: Path, limit: int = 10000) -> str:
    """A hint when the folder holds medical scanner files instead of images, else ""."""
    for i, path in enumerate(folder.rglob("*")):
        if i >= limit:
            break
        kind = scanner_format(path.name)
        if kind is not None:
            return f"; it holds {kind} files ('{path.name}'), {SCANNER_ADVICE}"
    return ""


def _images_below(folder: Path, others: Optional[list[str]] = None) -> Iterator[str]:
    """Paths of image files at any depth, skipping hidden files and folders and symlink loops;
    the paths of the other (not hidden) files are added to ``others``.

    Plain strings, not ``Path`` objects: listings can hold millions of files.
    """
    seen = set()
    for here, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            if is_image_name(name):
                yield os.path.join(here, name)
            elif others is not None:
                others.append(os.path.join(here, name))
