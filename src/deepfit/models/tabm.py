"""TabM (Gorishniy et al., ICLR 2025): k MLPs that share most of their weights, trained at
once, through its authors' packages ``tabm`` and ``rtdl_num_embeddings`` (an optional
extra: ``pip install 'deepfit[tabm]'``).

What comes from where:
- the network is ``tabm.TabM.make``: its defaults are the authors' (k=32 members, 3 blocks of
  512 (2 with numerical embeddings), dropout 0.1, ReLU, the ``tabm`` BatchEnsemble
  architecture); ``model.kwargs`` passes on any of ``KWARGS`` under the package's names.
- ``model.embeddings=piecewise``: ``rtdl_num_embeddings.PiecewiseLinearEmbeddings(bins,
  d_embedding=16, activation=False, version="B")`` on ``compute_bins(X_train, n_bins=48)``,
  as the tabm README sets them up; ``periodic``: ``PeriodicEmbeddings(F, lite=False)``.
- the optimiser the authors recommend (AdamW, lr 2e-3, weight decay 3e-4) is not forced on
  the run: deepfit's ``train.*`` settings apply as to every model (docs/models.md says
  which to set).

Outputs: ``forward`` returns ``(B, k, outputs)``, the members' own logits (or values), in
training and in evaluation alike. ``deepfit.task.TaskHead`` reads a 3-D output as an
ensemble: the loss is the mean of the members' losses (the paper trains every member on the
same batch) and the scores are the mean of the members' probabilities (or values). Pooling
inside the model in eval mode would need the task (one output is a binary logit or a
regression value), and averaging logits is not averaging probabilities; the head knows the
task, so the ensemble is pooled there, once, for training metrics, validation, prediction,
serving and the exported ONNX graph alike.

Bins: the piecewise-linear bins come from the training rows only (``fit_bins``, called once
the data are split) and are a buffer of the model (``bin_edges``), so a saved run predicts
with the bins it trained with.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from deepfit.config import ModelConfig
from deepfit.errors import ModelError

INSTALL = "pip install 'deepfit[tabm]' (or pip install tabm rtdl-num-embeddings)"
# TabM.make's own argument names that model.kwargs may set.
KWARGS = ("k", "n_blocks", "d_block", "dropout", "activation", "arch_type", "d_embedding")
_D_PIECEWISE = 16  # the tabm README's d_embedding for piecewise-linear embeddings


def missing_message(package: str) -> str:
    return f"model.name=tabm needs the TabM packages ({package} is not installed): {INSTALL}"


def tabm_packages() -> tuple[Any, Any]:
    """``(tabm, rtdl_num_embeddings)``, or the one-line ModelError saying how to install."""
    try:
        import tabm
    except ImportError:
        raise ModelError(missing_message("tabm")) from None
    try:
        import rtdl_num_embeddings
    except ImportError:
        raise ModelError(missing_message("rtdl-num-embeddings")) from None
    return tabm, rtdl_num_embeddings


class TabMNet(nn.Module):
    """TabM on a flat table row (every column a number, as deepfit prepares them).

    Example:
        >>> net = TabMNet(5, 1, k=4, d_block=16)
        >>> net(torch.zeros(3, 5)).shape
        torch.Size([3, 4, 1])
    """

    ensemble_outputs = True  # (B, k, outputs): k members (``deepfit.task.TaskHead``)

    def __init__(self, n_features: int, n_outputs: int, embeddings: str = "none",
                 n_bins: int = 48, **kwargs: Any) -> None:
        super().__init__()
        tabm, rtdl = tabm_packages()
        unknown = sorted(set(kwargs) - set(KWARGS))
        if unknown:
            raise ModelError(f"model.kwargs {unknown} are not TabM settings; it takes "
                             f"{', '.join(KWARGS)}")
        self.n_features, self.embeddings, self.n_bins = n_features, embeddings, n_bins
        self.d_embedding = kwargs.pop("d_embedding", _D_PIECEWISE if embeddings == "piecewise"
                                      else None)
        if self.d_embedding is not None and embeddings == "none":
            raise ModelError("model.kwargs d_embedding sets the numerical embeddings' size; "
                             "set model.embeddings=piecewise or periodic, or leave it out")
        num = None
        if embeddings == "piecewise":
            # Placeholder edges until fit_bins sees the training rows (or a saved run's
            # bins are loaded): the network's shape does not depend on them.
            self.register_buffer("bin_edges", torch.linspace(-1.0, 1.0, n_bins + 1)
                                 .repeat(n_features, 1))
            num = self._piecewise(self._bin_list(self.bin_edges))
        elif embeddings == "periodic":
            extra = {} if self.d_embedding is None else {"d_embedding": self.d_embedding}
            num = rtdl.PeriodicEmbeddings(n_features, lite=False, **extra)
        try:
            self.net = tabm.TabM.make(n_num_features=n_features, d_out=n_outputs,
                                      num_embeddings=num, **kwargs)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"TabM could not be built from model.kwargs {kwargs}: "
                             f"{str(exc).splitlines()[0]}") from None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F) -> (B, k, out)
        # TabM.forward's steps for one batch shared by all members, without its input checks:
        # their len(x) pins the batch size when torch.export traces the model (ONNX export).
        # tests/models/test_tabm.py checks that this equals self.net(x).
        x = x.flatten(1)
        if self.net.num_module is not None:
            x = self.net.num_module(x).flatten(1)
        return self.net.output(self.net.backbone(self.net.ensemble_view(x)))

    # -- piecewise-linear bins ---------------------------------------------------------------
    def fit_bins(self, X: torch.Tensor) -> None:
        """Bins from the training rows ``X`` (N, F): the quantiles of each column; a column
        with one value gets one bin starting there."""
        if self.embeddings != "piecewise":
            return
        _, rtdl = tabm_packages()
        X = torch.as_tensor(X, dtype=torch.float32).cpu().flatten(1)
        if not torch.isfinite(X).all():
            raise ModelError("model.embeddings=piecewise needs finite training values; "
                             "set data.missing to impute the missing ones")
        if len(X) < 3:
            raise ModelError(f"model.embeddings=piecewise needs at least 3 training rows to "
                             f"place its bins, and there are {len(X)}")
        varies = (X != X[0]).any(dim=0)
        n_bins = min(self.n_bins, len(X) - 1)
        with _one_bin_is_meant():
            fitted = iter(rtdl.compute_bins(X[:, varies], n_bins=n_bins) if varies.any()
                          else [])
        bins = [next(fitted) if v else X[0, j] + torch.tensor([0.0, 1.0])
                for j, v in enumerate(varies.tolist())]
        edges = torch.full((self.n_features, self.n_bins + 1), math.nan)
        for j, b in enumerate(bins):
            edges[j, :len(b)] = b
        self._set_bins(edges.to(self.bin_edges.device))

    def _piecewise(self, bins: list[torch.Tensor]) -> nn.Module:
        _, rtdl = tabm_packages()
        with _one_bin_is_meant():
            return rtdl.PiecewiseLinearEmbeddings(bins, self.d_embedding, activation=False,
                                                  version="B")

    @staticmethod
    def _bin_list(edges: torch.Tensor) -> list[torch.Tensor]:
        return [row[~row.isnan()].float().cpu() for row in edges]

    def _set_bins(self, edges: torch.Tensor) -> None:
        """New edges: a new embedding module on them (its size follows the most bins)."""
        device = self.bin_edges.device
        self.bin_edges = edges.to(device)
        self.net.num_module = self._piecewise(self._bin_list(edges)).to(device)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        # A saved run's bins: the embedding is rebuilt on them before its own weights load
        # (torch loads a module's own entries before its children's).
        edges = state_dict.get(prefix + "bin_edges")
        if (self.embeddings == "piecewise" and isinstance(edges, torch.Tensor)
                and edges.shape == self.bin_edges.shape
                and not _same(edges.cpu(), self.bin_edges.cpu())):
            self._set_bins(edges)
        super()._load_from_state_dict(state_dict, prefix, *args)


@contextlib.contextmanager
def _one_bin_is_meant() -> Iterator[None]:
    """rtdl warns of a column with one bin (2 values: min-max scaling); that is meant here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*just two bin edges")
        yield


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


def build_tabm(cfg: ModelConfig, input_shape: Sequence[int], n_outputs: int) -> TabMNet:
    if len(input_shape) != 1:
        raise ModelError("model 'tabm' is for tables, but the data are images; use "
                         "model.name=cnn (or resnet9)")
    return TabMNet(input_shape[0], n_outputs, embeddings=cfg.embeddings, n_bins=cfg.bins,
                   **cfg.kwargs)


def describe_tabm(cfg: ModelConfig) -> str:
    """The report's line: the settings TabM.make gets, its defaults filled in."""
    kw = dict(cfg.kwargs)
    blocks = kw.get("n_blocks", 3 if cfg.embeddings == "none" else 2)
    text = (f"TabM ({kw.get('k', 32)} members sharing weights, {kw.get('arch_type', 'tabm')}; "
            f"{blocks} blocks of {kw.get('d_block', 512)}, dropout {kw.get('dropout', 0.1)}")
    if cfg.embeddings == "piecewise":
        text += f"; piecewise-linear embeddings, {cfg.bins} bins from the training rows"
    elif cfg.embeddings == "periodic":
        text += "; periodic embeddings"
    return text + "); loss: the members' mean, probabilities: the members' mean"


def fit_to_training(model: nn.Module, X: Any) -> None:
    """Whatever a deepfit network learns from the training rows before training (TabM's
    piecewise-linear bins); nothing for other networks."""
    if isinstance(model, TabMNet):
        model.fit_bins(X)
