"""What a playground run becomes outside the page: a deepfit run directory ("Save as deepfit
run") and the Python that reproduces it (``deepfit.train(...)`` and plain PyTorch).

The run is made by ``deepfit.train`` itself, on the session's points (the chosen features as
columns, the page's train/test split as ``split``) with the session's network and
hyperparameters, for the epochs the page trained: config.yaml, model.safetensors,
history.csv and report.html are deepfit's own, and ``deepfit.load``, ``deepfit report`` and
``deepfit predict`` take it. deepfit's trainer draws its own initial weights and batches, so
its curves are close to the page's, not the same numbers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.errors import ConfigError
from deepfit.models.mlp import ACTIVATIONS
from deepfit.playground.points import features, split as split_points
from deepfit.playground.session import Session

TARGET = "y"


def train_options(session: Session) -> dict[str, Any]:
    """The keyword arguments of ``deepfit.train`` that match the session's settings; what
    deepfit cannot train the same way is one ``ConfigError``."""
    s, task = session.settings, session.points.task
    if s.regularization == "l1" and s.reg_rate > 0:
        raise ConfigError("export: deepfit trains with L2 weight decay only; set "
                          "regularization to L2 or none to save this run")
    if s.loss == "squared" and task != "regression":
        raise ConfigError("export: deepfit trains classes with cross-entropy; set the loss "
                          "to cross-entropy to save this run")
    options: dict[str, Any] = {
        "model": "mlp", "hidden": list(s.hidden), "activation": s.activation, "dropout": 0.0,
        "optimizer": "adam" if s.optimizer == "adam" else "sgd",
        "lr": s.lr, "batch_size": s.batch_size,
        "weight_decay": s.reg_rate if s.regularization == "l2" else 0.0,
        "epochs": max(1, math.ceil(session.epoch)), "schedule": "constant",
        "early_stopping": False, "seed": s.seed, "target": TARGET, "standardize": False,
        "loss": "mse" if task == "regression" else "auto",
    }
    if s.optimizer != "adam":  # deepfit refuses options that do not apply
        options["momentum"] = 0.9 if s.optimizer == "momentum" else 0.0
    if task == "regression":
        options["scale_target"] = False
    return options


def run_frame(session: Session) -> tuple[pd.DataFrame, pd.Series]:
    """The session's points as deepfit data: one column per feature, the target, and the
    split (train / test) per row."""
    p, names = session.points, session.settings.features
    frame = pd.DataFrame(features(p.X, names), columns=list(names))
    frame[TARGET] = p.y if p.task == "regression" else np.asarray(p.class_names)[p.y]
    return frame, pd.Series(np.where(p.train, "train", "test"))


def save_run(session: Session, out: Path, name: str | None) -> Path:
    """Train the session's network with ``deepfit.train`` into ``out/name``; its path."""
    from deepfit.pipeline import train  # the whole pipeline: only when a run is saved

    options = train_options(session)
    frame, split = run_frame(session)
    run = train(data=frame, split=split, out=str(out), name=name, progress=False, **options)
    assert run.path is not None
    return run.path


def python_code(session: Session) -> dict[str, str]:
    """``deepfit``: the ``deepfit.train`` call; ``torch``: the same network as a plain
    ``nn.Module`` with its training step."""
    try:
        options = train_options(session)
        args = ",\n    ".join(f"{k}={v!r}" for k, v in options.items())
        call = (f"import deepfit\n{data_code(session)}\nrun = deepfit.train(data=frame, "
                f"split=split,\n    {args})\n")
    except ConfigError as exc:
        call = f"# {exc}\n"
    return {"deepfit": call, "torch": torch_code(session)}


# feature name -> its column computed from the generator's frame ``points``
_FEATURE_CODE = {"x1": "{a}", "x2": "{b}", "x1sq": "{a} ** 2", "x2sq": "{b} ** 2",
                 "x1x2": "{a} * {b}", "sinx1": "np.sin({a})", "sinx2": "np.sin({b})"}


def data_code(session: Session) -> str:
    """Python that builds ``frame`` and ``split`` as the page has them (a generator's points;
    uploaded or clicked points are described, not spelt out)."""
    s, p = session.settings, session.points
    feats = ", ".join(f"'{f}'" for f in s.features)
    generated = s.data != "upload" and len(p.y) == s.points and np.array_equal(
        p.train, split_points(s.points, s.test_ratio, s.seed))
    if not generated:
        return (f"# frame: your points, one column per feature ({feats}) and '{TARGET}';\n"
                "# split: 'train' or 'test' per row")
    inputs = {"x1": "x"} if s.data == "linear" else {"x1": "x1", "x2": "x2"}
    columns = ", ".join(f"'{f}': {_FEATURE_CODE[f].format(a='x1', b='x2')}"
                        for f in s.features)
    target = "points.y.astype('float32')" if p.task == "regression" else "points.y.astype(str)"
    read = "".join(f"{name} = points['{column}'].to_numpy('float32').astype('float64')\n"
                   for name, column in inputs.items())
    return ("import numpy as np\nimport pandas as pd\n"
            "from deepfit.data.sources.toy2d import load_toy\n\n"
            f"points = load_toy({s.data!r}, {s.points}, {s.noise!r}, {s.seed}).frame\n"
            f"{read}frame = pd.DataFrame({{{columns}}}).astype('float32')\n"
            f"frame['{TARGET}'] = {target}\n"
            f"test = np.random.default_rng({s.seed + 1}).permutation({s.points})"
            f"[:{int((~p.train).sum())}]\n"
            "split = pd.Series('train', index=frame.index)\nsplit[test] = 'test'")


def torch_code(session: Session) -> str:
    s, p = session.settings, session.points
    widths = [len(s.features), *s.hidden, p.n_outputs]
    act = f"nn.{ACTIVATIONS[s.activation].__name__}()"  # the MLP the page trains has these
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(f"nn.Linear({a}, {b})")
        if i < len(widths) - 2:
            layers.append(act)
    loss = {("regression", "squared"): "F.mse_loss(out[:, 0], y)",
            ("binary", "cross_entropy"): "F.binary_cross_entropy_with_logits(out[:, 0], y)",
            ("binary", "squared"): "F.mse_loss(torch.sigmoid(out[:, 0]), y)",
            ("multiclass", "cross_entropy"): "F.cross_entropy(out, y)",
            ("multiclass", "squared"): "(F.softmax(out, 1) - F.one_hot(y, "
                                        f"{p.n_classes}).float()).pow(2).sum(1).mean()"}
    penalty = ""
    if s.regularization != "none" and s.reg_rate > 0:
        term = "w.abs().sum()" if s.regularization == "l1" else "w.pow(2).sum() / 2"
        penalty = (f"\n    loss = loss + {s.reg_rate!r} * sum({term} for n, w in "
                   "net.named_parameters() if n.endswith('weight'))")
    optimizer = (f"torch.optim.Adam(net.parameters(), lr={s.lr!r})" if s.optimizer == "adam"
                 else f"torch.optim.SGD(net.parameters(), lr={s.lr!r}"
                 f"{', momentum=0.9' if s.optimizer == 'momentum' else ''})")
    return ("import torch\nfrom torch import nn\nfrom torch.nn import functional as F\n\n"
            f"# inputs: {', '.join(s.features)} (one column each)\n"
            f"net = nn.Sequential(\n    {(',' + chr(10) + '    ').join(layers)},\n)\n"
            f"optimizer = {optimizer}\n\n\ndef step(x, y):  # one batch of {s.batch_size}\n"
            f"    out = net(x)\n    loss = {loss[(p.task, s.loss)]}{penalty}\n"
            "    optimizer.zero_grad()\n    loss.backward()\n    optimizer.step()\n"
            "    return loss.item()\n")
