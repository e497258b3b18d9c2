"""A synthetic thick-blood-smear data set with known boxes, for tests, demos and teaching
(``--data synthetic-smear``), shaped like the Lacuna Malaria Detection Challenge.

Each RGB image is a pale pink field of uneven brightness (a per-slide tint, a smooth
light falloff), crowded with red blood cells (soft discs with a paler centre, overlapping:
the background a detector must learn to ignore) and faint small platelets. On top:

* ``Trophozoite``: small dark purple rings with a darker chromatin dot, 2-4 % of the image
  side in radius, usually on a red cell;
* ``WBC`` (white blood cell): a pale bluish cell of 7-10 % of the side with a dark lobed
  nucleus.

Objects do not overlap one another and lie inside the image; their box is the object's
disc plus one pixel. Then a Gaussian blur (sigma 0.4-1.0 px) and pixel noise. About
``neg_share`` of the images hold no object (the challenge's NEG). Images come
``per_slide`` to a slide (the ``slide`` column), so a grouped split can be tried.
Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed gives the same
pixels and boxes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageFilter

from deepfit.data.detection.boxes import DetectionSet, ImageBoxes
from deepfit.data.detection.challenge_csv import write_challenge_csv

NAME = "synthetic-smear"
CLASSES = ["Trophozoite", "WBC"]
_PINK = np.array([0.95, 0.87, 0.89])
_RBC = np.array([0.86, 0.62, 0.70])
_PARASITE = np.array([0.36, 0.12, 0.46])
_CHROMATIN = np.array([0.22, 0.04, 0.30])
_CYTOPLASM = np.array([0.78, 0.76, 0.90])
_NUCLEUS = np.array([0.30, 0.14, 0.48])


def _disc(canvas: np.ndarray, cy: float, cx: float, r: float, colour: np.ndarray,
          alpha: float = 1.0, hole: float = 0.0) -> None:
    """Blend a soft-edged disc (a ring when ``hole`` > 0, its inner radius) into
    ``canvas`` (H, W, 3) in place."""
    h, w = canvas.shape[:2]
    y0, y1 = max(0, int(cy - r - 2)), min(h, int(cy + r + 3))
    x0, x1 = max(0, int(cx - r - 2)), min(w, int(cx + r + 3))
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    d = np.hypot(yy + 0.5 - cy, xx + 0.5 - cx)
    cover = np.clip(r - d + 0.5, 0, 1)
    if hole > 0:
        cover = cover * np.clip(d - hole + 0.5, 0, 1)
    a = (alpha * cover)[..., None]
    canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] * (1 - a) + colour * a


def _background(rng: np.random.Generator, h: int, w: int, tint: np.ndarray) -> np.ndarray:
    """Pink field, a smooth brightness falloff, red cells and platelets."""
    coarse = rng.normal(0, 0.04, size=(4, 4)).astype(np.float32)
    light = np.asarray(Image.fromarray(coarse, mode="F").resize((w, h), Image.Resampling.BICUBIC))
    canvas = np.clip(_PINK * tint, 0, 1) * (1 + light[..., None]) * np.ones((h, w, 3))
    side = min(h, w)
    n_cells = int(rng.integers(8, 16) * h * w / 128 ** 2)
    for _ in range(n_cells):
        r = rng.uniform(0.045, 0.07) * side
        cy, cx = rng.uniform(-r, h + r), rng.uniform(-r, w + r)
        colour = np.clip(_RBC * tint * rng.uniform(0.95, 1.05), 0, 1)
        _disc(canvas, cy, cx, r, colour, alpha=rng.uniform(0.5, 0.8))
        _disc(canvas, cy, cx, 0.45 * r, np.clip(_PINK * tint, 0, 1), alpha=0.35)
    for _ in range(int(rng.integers(0, 6))):
        _disc(canvas, rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.6, 1.0),
              _PARASITE, alpha=rng.uniform(0.25, 0.4))
    return canvas


def _place(rng: np.random.Generator, taken: list, r: float, h: int, w: int
           ) -> Optional[tuple[float, float]]:
    """A centre for a disc of radius ``r`` inside the image, clear of ``taken``."""
    for _ in range(200):
        cy, cx = rng.uniform(r + 1, h - r - 1), rng.uniform(r + 1, w - r - 1)
        if all(np.hypot(cy - y, cx - x) > r + q + 2 for y, x, q in taken):
            return cy, cx
    return None


def _smear(rng: np.random.Generator, size: tuple[int, int], tint: np.ndarray,
           negative: bool) -> tuple[np.ndarray, list, list]:
    h, w = size
    side = min(h, w)
    canvas = _background(rng, h, w, tint)
    taken: list = []
    boxes, labels = [], []
    n_par, n_wbc = (0, 0) if negative else (int(rng.integers(0, 6)), int(rng.integers(0, 3)))
    if not negative and n_par + n_wbc == 0:
        n_par = 1
    for code, count in ((1, n_wbc), (0, n_par)):
        for _ in range(count):
            r = rng.uniform(0.07, 0.10) * side if code else rng.uniform(0.02, 0.04) * side
            spot = _place(rng, taken, r, h, w)
            if spot is None:
                continue
            cy, cx = spot
            taken.append((cy, cx, r))
            if code:  # WBC: cytoplasm, then a nucleus of 2-4 lobes
                _disc(canvas, cy, cx, r, _CYTOPLASM, alpha=0.9)
                for _ in range(int(rng.integers(2, 5))):
                    t, s = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.3) * r
                    _disc(canvas, cy + s * np.sin(t), cx + s * np.cos(t),
                          rng.uniform(0.35, 0.5) * r, _NUCLEUS, alpha=0.95)
            else:  # trophozoite: a ring on a red cell, with a chromatin dot
                _disc(canvas, cy, cx, r * 1.9, _RBC * tint, alpha=0.5)
                _disc(canvas, cy, cx, r, _PARASITE, alpha=0.95, hole=0.45 * r)
                t = rng.uniform(0, 2 * np.pi)
                _disc(canvas, cy + 0.7 * r * np.sin(t), cx + 0.7 * r * np.cos(t),
                      max(1.0, 0.4 * r), _CHROMATIN)
            boxes.append([max(0.0, cx - r - 1), max(0.0, cy - r - 1),
                          min(float(w), cx + r + 1), min(float(h), cy + r + 1)])
            labels.append(code)
    pixels = (np.clip(canvas, 0, 1) * 255).round().astype(np.uint8)
    blurred = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0)))
    noisy = np.asarray(blurred, dtype=np.float32) + rng.normal(0, rng.uniform(2.5, 7.5),
                                                               size=pixels.shape)
    return np.clip(noisy, 0, 255).round().astype(np.uint8), boxes, labels


def make_smears(n_images: int = 60, size: tuple[int, int] = (128, 128), seed: int = 0,
                neg_share: float = 0.25, per_slide: int = 4
                ) -> tuple[list[np.ndarray], DetectionSet]:
    """Draw ``n_images`` synthetic smears of ``size`` (H, W).

    Returns:
        The uint8 (H, W, 3) images and their ``DetectionSet`` (ids ``smear_0000.png``...,
        classes ``CLASSES``, groups ``slide_000``..., no image folder yet: see
        ``write_synthetic_smear``).
    """
    if n_images < 1 or min(size) < 32:
        raise ValueError(f"need at least 1 image of at least 32x32 pixels, got {n_images} of "
                         f"{size}")
    rng = np.random.default_rng(seed)
    images, entries, groups = [], [], []
    tint = np.ones(3)
    for i in range(n_images):
        if i % per_slide == 0:  # a new slide: its own stain tint
            tint = rng.uniform(0.93, 1.04, size=3)
        pixels, boxes, labels = _smear(rng, size, tint, bool(rng.random() < neg_share))
        images.append(pixels)
        entries.append(ImageBoxes(f"smear_{i:04d}.png", size, np.array(boxes, np.float32),
                                  np.array(labels, np.int64)))
        groups.append(f"slide_{i // per_slide:03d}")
    return images, DetectionSet(list(CLASSES), entries, None, groups,
                                f"{NAME} (seed {seed})")


def write_synthetic_smear(root: "str | Path", n_images: int = 60,
                          size: tuple[int, int] = (128, 128), seed: int = 0,
                          neg_share: float = 0.25, per_slide: int = 4) -> Path:
    """Write a challenge-layout folder: ``root/images/*.png`` and ``root/Train.csv``
    (``Image_ID, class, ymin, xmin, ymax, xmax, slide``). Returns the CSV's path."""
    root = Path(root)
    images, data = make_smears(n_images, size, seed, neg_share, per_slide)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for pixels, entry in zip(images, data.images):
        Image.fromarray(pixels).save(root / "images" / entry.image_id)
    return write_challenge_csv(data, root / "Train.csv", group_column="slide")
