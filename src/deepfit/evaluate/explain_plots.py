"""Attribution maps drawn over their images: one column per image, the image on top and one
row per method below it (the map as a heat layer over the image in grey)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from deepfit.evaluate.explain import TITLES
from deepfit.evaluate.plots import _save, plt

COLUMNS = 8  # images per figure row block


def scaled(map_: np.ndarray) -> Optional[np.ndarray]:
    """A map in [0, 1] (its 99th percentile and above: 1), or None when it is all zero (the
    method found nothing to show: undefined, not "nothing matters")."""
    top = float(np.percentile(map_, 99)) or float(map_.max())
    if not np.isfinite(top) or top <= 0:
        return None
    return np.clip(map_ / top, 0.0, 1.0)


def _grey(image: np.ndarray) -> np.ndarray:
    """uint8 (C, H, W) -> float (H, W) in [0, 1]."""
    return image.astype(np.float32).mean(axis=0) / 255.0


def explanation_figure(images: np.ndarray, maps: dict[str, np.ndarray], titles: list[str],
                       correct: Optional[list[bool]], path: Any, heading: str) -> Any:
    """``images`` uint8 (n, C, H, W); ``maps`` {method: (n, H, W)}; ``titles`` one per
    image (green ✓ / red ✗ when ``correct`` is given). Written to ``path`` (a Path or a
    binary file object)."""
    n, methods = len(images), list(maps)
    cols = min(COLUMNS, max(1, n))
    blocks = -(-n // cols)
    rows = blocks * (1 + len(methods))
    fig, axes = plt.subplots(rows, cols + 1, figsize=(1.5 * cols + 1.1, 1.55 * rows + 0.5),
                             squeeze=False, gridspec_kw={"width_ratios": [0.5] + [1] * cols})
    for b in range(blocks):
        top = b * (1 + len(methods))
        for r, label in enumerate(["image"] + [TITLES[m] for m in methods]):
            ax = axes[top + r][0]
            ax.axis("off")
            ax.text(1.0, 0.5, label, ha="right", va="center", fontsize=8, transform=ax.transAxes)
        for c in range(cols):
            i = b * cols + c
            column = [axes[top + r][c + 1] for r in range(1 + len(methods))]
            for ax in column:
                ax.axis("off")
            if i >= n:
                continue
            image = images[i]
            if image.shape[0] == 1:
                column[0].imshow(image[0], cmap="gray", vmin=0, vmax=255)
            else:
                column[0].imshow(np.transpose(image[:3], (1, 2, 0)))
            color = "black" if correct is None else ("#1a7f37" if correct[i] else "#cf222e")
            mark = "" if correct is None else ("✓ " if correct[i] else "✗ ")
            column[0].set_title(mark + titles[i], fontsize=7, color=color)
            for ax, method in zip(column[1:], methods):
                ax.imshow(_grey(image), cmap="gray", vmin=0, vmax=1)
                heat = scaled(maps[method][i])
                if heat is None:
                    empty = "all zero" if np.isfinite(maps[method][i]).all() else "undefined"
                    ax.text(0.5, 0.5, empty, ha="center", va="center", fontsize=7,
                            color="#cf222e", transform=ax.transAxes)
                else:
                    ax.imshow(heat, cmap="inferno", alpha=0.55, vmin=0, vmax=1)
    fig.suptitle(heading, fontsize=10)
    return _save(fig, path)
