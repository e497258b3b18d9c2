"""What the network learned, as pictures of the test set: a 2-D projection of the last
hidden layer (PCA; t-SNE too when the test set is small), coloured by class; for 2-D inputs
the decision boundary and each hidden neuron's output over the plane (the XOR picture); for
CNNs the first layer's filters and the feature maps of a few test images."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from deepfit.evaluate.plots import _save, plt
from deepfit.train.builtin.diagnostics import RELU_LIKE, SATURATING, is_norm

TSNE_MAX = 600  # test rows up to which t-SNE is drawn too (about 1-2 s on a CPU core)
ROWS_MAX = 5000  # test rows projected at most (the first ones)
GRID = 120  # points per axis of the decision-boundary map
UNITS_MAX = 16  # hidden neurons drawn per layer


def _weight_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if list(m.parameters(recurse=False))
            and not is_norm(type(m).__name__)]


def _forward_capturing(model: nn.Module, X: torch.Tensor,
                       targets: list[nn.Module], pre: bool) -> tuple[torch.Tensor, list]:
    """The model's output on ``X`` and the inputs (``pre``) or outputs of ``targets``."""
    seen: list[list[torch.Tensor]] = [[] for _ in targets]
    hooks = []
    for k, module in enumerate(targets):
        if pre:
            hooks.append(module.register_forward_pre_hook(
                lambda m, args, k=k: seen[k].append(args[0].detach().flatten(1).float().cpu())))
        else:
            hooks.append(module.register_forward_hook(
                lambda m, args, out, k=k: seen[k].append(out.detach().float().cpu())))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = torch.cat([model(X[i:i + 1024]).float().cpu() for i in range(0, len(X), 1024)])
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return out, [torch.cat(parts) if parts else None for parts in seen]


def _scatter(ax: Any, points: np.ndarray, y: np.ndarray, names: list[str], title: str) -> None:
    if y.ndim == 1 and names and len(names) <= 20:
        for k, name in enumerate(names):
            mask = y == k
            ax.scatter(points[mask, 0], points[mask, 1], s=10, alpha=0.75, label=str(name))
        ax.legend(fontsize=7, markerscale=1.5)
    else:  # regression or many classes: colour by value; several labels: by their count
        sc = ax.scatter(points[:, 0], points[:, 1], s=10,
                        c=y if y.ndim == 1 else y.sum(axis=1), cmap="viridis")
        plt.colorbar(sc, ax=ax, label=None if y.ndim == 1 else "labels per row")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def projection(model: nn.Module, X: torch.Tensor, y: np.ndarray, names: list[str],
               path: Path, seed: int = 0) -> Optional[Path]:
    """PCA (and t-SNE for up to ``TSNE_MAX`` rows) of the last hidden layer's values: the
    input of the output layer. None when the model has no hidden layer."""
    layers = _weight_modules(model)
    if len(layers) < 2:
        return None
    _, (hidden,) = _forward_capturing(model, X[:ROWS_MAX], [layers[-1]], pre=True)
    if hidden is None or hidden.shape[1] < 2:
        return None
    h = hidden.numpy().astype(np.float64)
    h = h - h.mean(axis=0)
    u, s, _ = np.linalg.svd(h, full_matrices=False)
    pca = u[:, :2] * s[:2]
    share = (s[:2] ** 2).sum() / max((s ** 2).sum(), 1e-12)
    views = [(pca, f"PCA of the last hidden layer ({hidden.shape[1]} values; "
                   f"{share:.1%} of its variance)")]
    if len(h) <= TSNE_MAX and len(h) > 5:
        from sklearn.manifold import TSNE
        # The exact gradient: at these sizes 2-8x faster than Barnes-Hut (measured on 114
        # and 600 rows of 64 values: 0.6-0.8 s against 4 s, and 4-5 s against 8-11 s, busy
        # 2-core machine), and no approximation.
        tsne = TSNE(2, perplexity=min(30.0, (len(h) - 1) / 3), random_state=seed,
                    init="pca", max_iter=500, method="exact", n_jobs=1).fit_transform(h)
        views.append((tsne, "t-SNE of the last hidden layer"))
    fig, axes = plt.subplots(1, len(views), figsize=(5.2 * len(views), 4.4), squeeze=False)
    for ax, (points, title) in zip(axes[0], views):
        _scatter(ax, points, y[:len(points)], names, title)
    return _save(fig, path)


def _units(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, RELU_LIKE + tuple(SATURATING))]


def decision_maps(model: nn.Module, X: torch.Tensor, y: np.ndarray, names: list[str],
                  scores: Callable[[torch.Tensor], torch.Tensor], path: Path,
                  units_path: Path) -> dict[str, Path]:
    """For 2-D inputs: the predicted score over the plane with the test points, and each
    hidden neuron's output over the same plane (up to ``UNITS_MAX`` per layer)."""
    pts = X.float().cpu().numpy()
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.1 * (hi - lo + 1e-9)
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID))
    grid = torch.tensor(np.c_[gx.ravel(), gy.ravel()], dtype=X.dtype,
                        device=next(model.parameters()).device)
    units = _units(model)
    out, hidden = _forward_capturing(model, grid, units, pre=False)
    s = scores(out).numpy()
    s = s if s.ndim == 1 else (s.argmax(axis=1) if s.shape[1] > 1 else s[:, 0])
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    cm = ax.contourf(gx, gy, s.reshape(gx.shape), levels=20, cmap="RdBu_r", alpha=0.8)
    plt.colorbar(cm, ax=ax)
    _scatter(ax, pts, y, names, "Decision map (model score) and test points")
    ax.set_xticks(np.linspace(gx.min(), gx.max(), 5).round(1))
    ax.set_yticks(np.linspace(gy.min(), gy.max(), 5).round(1))
    drawn = {"Decision boundary": _save(fig, path)}
    layers = [h for h in hidden if h is not None and h.dim() == 2]
    if layers:
        cols = min(UNITS_MAX, max(h.shape[1] for h in layers))
        fig, axes = plt.subplots(len(layers), cols, figsize=(1.3 * cols + 0.5,
                                                             1.6 * len(layers) + 0.5),
                                 squeeze=False)
        for r, h in enumerate(layers):
            for c in range(cols):
                ax = axes[r][c]
                ax.axis("off")
                if c < h.shape[1]:
                    ax.imshow(h[:, c].numpy().reshape(gx.shape), origin="lower", cmap="RdBu_r")
                    ax.set_title(f"L{r + 1} n{c + 1}", fontsize=7)
        fig.suptitle("Each hidden neuron's output over the input plane", fontsize=10)
        drawn["Hidden neurons"] = _save(fig, units_path)
    return drawn


def cnn_pictures(model: nn.Module, X: torch.Tensor, filters_path: Path,
                 maps_path: Path, images: int = 4) -> dict[str, Path]:
    """The first convolution's filters (each input channel averaged) and its feature maps
    (after the following activation when there is one) for a few test images."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        return {}
    w = conv.weight.detach().float().cpu().mean(dim=1)  # (out, k, k)
    n = min(32, len(w))
    cols = min(8, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(w[i].numpy(), cmap="gray")
    fig.suptitle(f"First-layer filters ({n} of {len(w)}; input channels averaged)", fontsize=10)
    drawn = {"First-layer filters": _save(fig, filters_path)}
    _, (maps,) = _forward_capturing(model, X[:images], [conv], pre=False)
    if maps is not None:
        k = min(8, maps.shape[1])
        fig, axes = plt.subplots(len(maps), k + 1, figsize=(1.2 * (k + 1), 1.25 * len(maps)),
                                 squeeze=False)
        for r in range(len(maps)):
            image = X[r].float().cpu()
            image = image.permute(1, 2, 0).numpy() if image.shape[0] == 3 else image[0].numpy()
            image = (image - image.min()) / (image.max() - image.min() + 1e-9)
            axes[r][0].imshow(image, cmap=None if image.ndim == 3 else "gray")
            for c in range(k):
                axes[r][c + 1].imshow(maps[r, c].numpy(), cmap="viridis")
            for ax in axes[r]:
                ax.axis("off")
        fig.suptitle("Test images and the first layer's feature maps", fontsize=10)
        drawn["Feature maps"] = _save(fig, maps_path)
    return drawn
