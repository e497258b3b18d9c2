"""The internal form of an object-detection data set, whatever file format it came from.

One ``ImageBoxes`` per image: its id, its size and its boxes in absolute pixel
``xyxy = (xmin, ymin, xmax, ymax)`` (float32, shape (N, 4)) with 0-based ``labels``
(int64, shape (N,)) indexing ``DetectionSet.class_names``. An image with nothing to find
(the challenge's ``NEG`` rows, a COCO image without annotations, an empty YOLO label
file) has N = 0; "NEG" is never a class name. The metrics (``deepfit.evaluate.detection``)
take the same form, so ground truth and predictions travel unconverted. Torchvision's
detection models count classes from 1 (0 is the background): that shift happens in one
place only, ``deepfit.data.detection.dataset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from deepfit.data.images.decode import bomb_guard, displayed_size
from deepfit.errors import DataError

NEG = "NEG"  # the challenge's class of an image with no objects; never a class of ours


@dataclass(frozen=True, eq=False)
class ImageBoxes:
    """The boxes of one image.

    Attributes:
        image_id: the image's name relative to the set's image folder (the challenge's
            ``Image_ID``, COCO's ``file_name``, a YOLO image's path below ``images/``).
        size: (height, width) in pixels, as a photo viewer shows the image (after its EXIF
            orientation, as deepfit decodes it).
        boxes: float32 (N, 4) absolute pixel xyxy.
        labels: int64 (N,) 0-based indices into the set's class names.
    """

    image_id: str
    size: tuple[int, int]
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(boxes) != len(labels):
            raise ValueError(f"image '{self.image_id}': {len(boxes)} boxes but "
                             f"{len(labels)} labels")
        boxes.setflags(write=False)
        labels.setflags(write=False)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))

    @property
    def is_negative(self) -> bool:
        """True for an image with nothing to find (the challenge's NEG)."""
        return len(self.labels) == 0

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ImageBoxes) and self.image_id == other.image_id
                and self.size == other.size and np.array_equal(self.boxes, other.boxes)
                and np.array_equal(self.labels, other.labels))

    def __hash__(self) -> int:
        return hash((self.image_id, self.size, len(self.labels)))


@dataclass
class DetectionSet:
    """A whole detection data set: class names, one ``ImageBoxes`` per image, where the
    image files are, and what the reader noticed.

    Attributes:
        class_names: names of the classes (never "NEG"), in label order.
        images: one entry per image, in the order of the source.
        image_dir: folder the ``image_id`` paths start from.
        groups: one group name per image (a slide or patient: whole groups stay in one split),
            or None.
        source: how the set was read, for messages and the report ("challenge CSV 'x.csv'").
        notes: what the reader did that the user should know (ignored columns, dropped NEG
            rows on images with boxes, clipped boxes), one sentence each.
    """

    class_names: list[str]
    images: list[ImageBoxes]
    image_dir: Optional[Path] = None
    groups: Optional[list[str]] = None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if NEG in self.class_names:
            raise ValueError("'NEG' marks images with no objects; it is not a class")
        if self.groups is not None and len(self.groups) != len(self.images):
            raise ValueError(f"{len(self.groups)} groups for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    def path(self, i: int) -> Path:
        """The file of image ``i``."""
        return Path(self.image_dir or ".") / self.images[i].image_id

    def box_counts(self) -> dict[str, int]:
        """{class name: boxes}, in class order."""
        counts = np.bincount(np.concatenate([im.labels for im in self.images] or [[]])
                             .astype(np.int64), minlength=len(self.class_names))
        return {name: int(c) for name, c in zip(self.class_names, counts)}

    def image_counts(self) -> dict[str, int]:
        """{class name: images holding at least one of its boxes}, in class order, then
        NEG: the images with none."""
        counts = {name: 0 for name in self.class_names}
        for im in self.images:
            for code in np.unique(im.labels):
                counts[self.class_names[code]] += 1
        counts[NEG] = sum(im.is_negative for im in self.images)
        return counts

    def subset(self, indices: "np.ndarray | list[int]") -> "DetectionSet":
        """The images at ``indices`` (a split), sharing class names and image folder."""
        idx = [int(i) for i in indices]
        return DetectionSet(self.class_names, [self.images[i] for i in idx], self.image_dir,
                            None if self.groups is None else [self.groups[i] for i in idx],
                            self.source, list(self.notes))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, DetectionSet) and self.class_names == other.class_names
                and self.images == other.images)


def image_size(path: Path, where: str = "") -> tuple[int, int]:
    """(height, width) of an image file as deepfit decodes it (after EXIF orientation),
    from its header only: no pixels are decoded.

    Raises:
        DataError: the file cannot be opened or is not an image PIL reads (naming ``where``,
            e.g. the CSV row that lists it, and the file).
    """
    head = f"{where}: " if where else ""
    try:
        with bomb_guard(), Image.open(path) as img:
            return displayed_size(img)
    except FileNotFoundError:
        raise DataError(f"{head}image file '{path}' does not exist; fix the name or add the "
                        "file") from None
    except UnidentifiedImageError:
        reason = "not an image PIL can read"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        reason = f"decompression bomb ({exc})"
    except OSError as exc:
        reason = f"cannot open it ({exc.strerror or exc})"
    except Exception as exc:  # PIL raises many types for a damaged header
        reason = f"damaged header ({type(exc).__name__})"
    raise DataError(f"{head}image '{path}' cannot be read: {reason}; fix or replace the "
                    "file, or remove its rows")
