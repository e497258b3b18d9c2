"""Image plots for the report: a grid of test images with their true and predicted labels,
and the test images the model got wrong with the highest confidence (often mislabelled
images, or the classes it confuses)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from deepfit.evaluate.plots import _save, plt

GRID = 24        # test images in the sample grid
WORST = 16       # most confidently wrong images shown


def pick_sample(n: int, seed: int = 0, k: int = GRID) -> np.ndarray:
    """Row indices of a seeded sample of ``k`` test images (sorted)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(k, n), replace=False))


def most_confidently_wrong(y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray,
                           task: str, k: int = WORST) -> np.ndarray:
    """Indices of wrong predictions, most confident first (single-label tasks)."""
    wrong = np.flatnonzero(y_true != y_pred)
    if not len(wrong):
        return wrong
    conf = _confidence(scores, y_pred, task)[wrong]
    return wrong[np.argsort(-conf, kind="stable")[:k]]


def _confidence(scores: np.ndarray, y_pred: np.ndarray, task: str) -> np.ndarray:
    """The probability the model gave its predicted class."""
    if task == "binary":
        p1 = scores.reshape(-1)
        return np.where(y_pred == 1, p1, 1.0 - p1)
    return scores[np.arange(len(y_pred)), y_pred]


def image_grid(images: np.ndarray, titles: list[str], correct: Optional[list[bool]],
               path: Path, heading: str) -> Path:
    """``images`` uint8 (n, C, H, W) in a grid, each with a title (green ✓: right, red ✗:
    wrong)."""
    n = len(images)
    cols = min(8, max(1, n))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.55 * cols, 1.75 * rows + 0.4),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(np.transpose(img, (1, 2, 0)))
        color = "black" if correct is None else ("#1a7f37" if correct[i] else "#cf222e")
        # A mark as well as the colour: red and green look alike to many colour-blind readers.
        mark = "" if correct is None else ("✓ " if correct[i] else "✗ ")
        ax.set_title(mark + titles[i], fontsize=7, color=color)
    fig.suptitle(heading, fontsize=10)
    return _save(fig, path)


def plot_images(images: np.ndarray, rows: np.ndarray, worst_images: np.ndarray,
                worst: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray,
                task: str, class_names: list[str], folder: Path) -> dict[str, Path]:
    """The sample grid (``images`` are test rows ``rows``) and the most confidently wrong
    (``worst_images`` are test rows ``worst``). Returns ``{title: path}``."""
    out = {}
    if task == "multilabel":
        def labels(v: np.ndarray) -> str:
            return ", ".join(c for c, on in zip(class_names, v) if on) or "none"
        titles = [f"true: {labels(y_true[r])}\npred: {labels(y_pred[r])}" for r in rows]
        correct = [bool((y_true[r] == y_pred[r]).all()) for r in rows]
        out["Test images"] = image_grid(images, titles, correct, folder / "test_images.png",
                                        "Test images (green ✓: every label right)")
        return out
    conf = _confidence(scores, y_pred, task)
    titles = [f"{_short(class_names[y_true[r]])}\n→ {_short(class_names[y_pred[r]])} "
              f"({conf[r]:.2f})" for r in rows]
    correct = [bool(y_true[r] == y_pred[r]) for r in rows]
    out["Test images"] = image_grid(images, titles, correct, folder / "test_images.png",
                                    "Random test images: true → predicted (confidence)")
    if len(worst):
        titles = [f"{_short(class_names[y_true[r]])}\n→ {_short(class_names[y_pred[r]])} "
                  f"({conf[r]:.2f})" for r in worst]
        out["Most confidently wrong"] = image_grid(
            worst_images, titles, [False] * len(worst), folder / "confidently_wrong.png",
            "Most confidently wrong test images: true → predicted (confidence)")
    return out


def _short(name: str, width: int = 14) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"
