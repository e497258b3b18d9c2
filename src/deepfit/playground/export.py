"""What a playground run becomes outside the page: a deepfit run directory ("Save as deepfit
run") and the Python that reproduces it (``deepfit.train(...)`` and plain PyTorch).

The saved run holds the page's own network: its weights after the steps the page took,
unchanged, in deepfit's ``MLP`` that the config describes (``deepfit.pipeline.save_trained``),
the page's points (the chosen features as columns) and train/test split, its history per
whole epoch, and a report made by deepfit's report code; ``deepfit.load`` predicts what the
page drew. Every setting is carried, deepfit's config or not: the report names the page's
optimiser, loss and regularisation, and playground.json keeps the settings as the page had
them.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfit.errors import DataError
from deepfit.models.mlp import ACTIVATIONS
from deepfit.playground.link import edited as points_edited
from deepfit.playground.points import Points, features
from deepfit.playground.session import Session
from deepfit.run import RunDir

TARGET = "y"
OPTIMIZERS = {"sgd": "SGD", "momentum": "SGD with momentum 0.9", "adam": "Adam"}


def train_options(session: Session) -> dict[str, Any]:
    """The config of ``deepfit.train`` nearest to the session's settings: the same network,
    data handling and hyperparameters deepfit has (``network_options``, the optimiser,
    learning rate, batch size, L2 as weight decay, the epochs the page trained, rounded up)."""
    s = session.settings
    options: dict[str, Any] = {
        **network_options(session),
        "optimizer": "adam" if s.optimizer == "adam" else "sgd",
        "lr": s.lr, "batch_size": s.batch_size,
        "weight_decay": s.reg_rate if s.regularization == "l2" else 0.0,
        "epochs": max(1, -(-session.step_count // session.steps_per_epoch)),
        "schedule": "constant", "early_stopping": False, "seed": s.seed,
    }
    if s.optimizer != "adam":  # deepfit refuses options that do not apply
        options["momentum"] = 0.9 if s.optimizer == "momentum" else 0.0
    return options


def network_options(session: Session) -> dict[str, Any]:
    """The config keys that make deepfit build the page's network on the page's inputs: the
    MLP (hidden layers, activation, no dropout), raw features (no standardising), the task,
    and for two classes the page's class 1 as the positive class (the one output)."""
    s, p = session.settings, session.points
    options: dict[str, Any] = {"model": "mlp", "hidden": list(s.hidden),
                               "activation": s.activation, "dropout": 0.0, "target": TARGET,
                               "standardize": False, "task": p.task}
    if p.task == "regression":
        options.update(scale_target=False, loss="mse")
    elif p.task == "binary":
        options["positive_class"] = p.class_names[1]
    return options


def deepfit_refusal(session: Session) -> str | None:
    """Why ``deepfit.train`` cannot train the session's way (a setting it does not have)."""
    s, task = session.settings, session.points.task
    if s.regularization == "l1" and s.reg_rate > 0:
        return "deepfit trains with L2 weight decay only, not L1"
    if s.loss == "squared" and task != "regression":
        return "deepfit trains classes with cross-entropy, not squared error"
    return None


def labels(points: Points) -> np.ndarray:
    """The target as deepfit gets it: values, or class names (whole numbers as numbers, so
    that deepfit orders the classes as the page does: 2 before 10)."""
    if points.task == "regression":
        return points.y
    names = np.asarray(points.class_names)[points.y]
    try:
        return names.astype(np.int64)
    except ValueError:
        return names


def run_frame(session: Session) -> tuple[pd.DataFrame, pd.Series]:
    """The session's points as deepfit data: one column per feature, the target, and the
    split (train / test) per row."""
    p, names = session.points, session.settings.features
    frame = pd.DataFrame(features(p.X, names), columns=list(names))
    frame[TARGET] = labels(p)
    return frame, pd.Series(np.where(p.train, "train", "test"))


def save_run(session: Session, out: Path, name: str | None) -> Path:
    """The session's network, as trained on the page, saved as a deepfit run in
    ``out/name``; its path."""
    from deepfit.pipeline import save_trained  # the whole pipeline: only when a run is saved

    if not session.history:
        raise DataError(f"export: train at least one whole epoch "
                        f"({session.steps_per_epoch} steps) before saving the run")
    s, p = session.settings, session.points
    frame, split = run_frame(session)
    main = "r2" if p.task == "regression" else "accuracy"
    history = [{"epoch": r["epoch"], "train_loss": r["train_loss"],
                "train_" + main: r["train_" + main], "lr": s.lr} for r in session.history]
    run = save_trained(session.model.state_dict(), history, data=frame, split=split,
                       classes=list(p.class_names), seconds=session.seconds,
                       origin=origin(session), out=str(out),
                       name=name, data_name=f"playground-{s.data}", progress=False,
                       **train_options(session))
    assert run.path is not None
    state = {"settings": s.to_dict(), "step": session.step_count, "epoch": session.epoch,
             "data": "the points in points.csv" if s.data == "upload" or edited(session)
             else "the generator's, as settings say"}
    rd = RunDir(run.path)
    rd.write_json(rd.playground, state)
    table = pd.DataFrame(p.X, columns=["x1", "x2"][:p.X.shape[1]])
    table[TARGET] = labels(p)
    table["split"] = split
    rd.write_text(rd.playground_points, table.to_csv(index=False))
    rows = list(session.history)
    if session.step_count > rows[-1]["step"]:  # and the steps since, as the page shows them
        rows.append(session.record(round(session.epoch, 4)))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    rd.write_text(rd.playground_history, text.getvalue())
    return run.path


def origin(session: Session) -> dict[str, Any]:
    """What the report says of a network trained on the page (``save_trained``)."""
    s, p = session.settings, session.points
    where = f"step {session.step_count} (epoch {session.epoch:.2f})"
    regular = {"none": "none", "l1": f"L1: {s.reg_rate:g} · Σ|w| added to the loss",
               "l2": f"L2: {s.reg_rate:g} / 2 · Σw² added to the loss"}[s.regularization]
    loss = {"regression": "mean squared error", "binary": "binary cross-entropy with logits "
            "(sigmoid inside the loss)", "multiclass": "cross-entropy (softmax)"}[p.task]
    if s.loss == "squared" and p.task != "regression":
        loss = ("squared error of the predicted probabilities (sigmoid)" if p.task == "binary"
                else "squared error of the softmax probabilities, summed over the classes")
    differs = ", ".join(filter(None, ["its own initial weights and batch order",
                                      deepfit_refusal(session)]))
    return {"sentences": {
        "best_epoch": f"none picked: the page's network as it was after {where}, when it "
                      "was saved (no validation rows)",
        "evaluation": "The network trained in the deepfit playground, with its weights as "
                      f"the page had them after {where}, evaluated on the page's test "
                      "points. There are no validation figures: the page splits its points "
                      "into training and test only. The test loss was in view on the page "
                      "while it trained, so the test figures are as optimistic as "
                      "validation figures would be if the run was stopped by eye.",
        "rerun": "This network was trained in the deepfit playground; its settings are in "
                 "playground.json, its points in points.csv, and the page's link (its "
                 "settings and points) trains it again step by step. `deepfit train` on this config "
                 f"would train differently ({differs}). history.csv holds the training "
                 "points' loss after each whole epoch; playground_history.csv the test "
                 "points' too."},
        "summary": {"data": {"name": f"deepfit playground: {s.data}",
                             "description": f"the playground's points ({s.data}"
                             + (", edited on the page" if edited(session) and s.data != "upload"
                                else "") + f"), {len(p.y)} rows"},
                    "training": {"optimizer": f"{OPTIMIZERS[s.optimizer]}, lr {s.lr:g}",
                                 "regularisation": f"{regular} (weights, not biases)"
                                 if s.regularization != "none" and s.reg_rate else "none",
                                 "schedule": "constant",
                                 "stop_reason": f"saved from the page after {where}"},
                    "model": {"loss": loss}}}


def edited(session: Session) -> bool:
    """Whether the points are not the generator's as the settings make them."""
    return points_edited(session.settings, session.points)


def python_code(session: Session) -> dict[str, str]:
    """``deepfit``: the ``deepfit.train`` call on the page's points; ``torch``: a plain
    PyTorch script that trains the page's network as the page does, step for step."""
    data = data_code(session)
    refusal = deepfit_refusal(session)
    if refusal:
        call = f"# deepfit.train cannot train this run: {refusal}.\n"
    else:
        args = ",\n    ".join(f"{k}={v!r}" for k, v in train_options(session).items())
        call = (f"import deepfit\n{data}\n{frame_code(session)}\n"
                f"run = deepfit.train(data=frame, split=split,\n    {args})\n")
    return {"deepfit": call, "torch": torch_code(session, data)}


def _numbers(values: np.ndarray) -> str:
    """Values as Python literals that read back exactly (float32 as its shortest text)."""
    return ", ".join(str(v) for v in values.tolist()) if values.dtype.kind in "iub" else \
        ", ".join(str(np.float32(v)) for v in values)


def data_code(session: Session) -> str:
    """Python that makes the page's points: ``x1`` (and ``x2``) float32, ``y`` (class index or
    value) and ``train`` (a mask); the generator's call, or, for edited or uploaded points,
    the points themselves."""
    s, p = session.settings, session.points
    dtype = "float32" if p.task == "regression" else "int64"
    code = "import numpy as np\n"
    if edited(session):
        for i, name in enumerate(["x1", "x2"][:p.X.shape[1]]):
            code += f"{name} = np.array([{_numbers(p.X[:, i])}], 'float32')\n"
        return (code + f"y = np.array([{_numbers(p.y)}], '{dtype}')\n"
                f"train = np.array([{_numbers(p.train.astype(int))}], bool)\n")
    columns = {"x1": "x"} if s.data == "linear" else {"x1": "x1", "x2": "x2"}
    return (code + "from deepfit.data.sources.toy2d import load_toy\n\n"
            f"points = load_toy({s.data!r}, {s.points}, {s.noise!r}, {s.seed}).frame\n"
            + "".join(f"{name} = points['{column}'].to_numpy('float32')\n"
                      for name, column in columns.items())
            + f"y = points['y'].to_numpy('{dtype}')\n"
            f"train = np.ones({s.points}, bool)  # the page's split: the seed + 1 draws the "
            f"test points\ntrain[np.random.default_rng({s.seed + 1}).permutation({s.points})"
            f"[:{int((~p.train).sum())}]] = False\n")


# feature name -> its column from a = x1, b = x2 (float64), as deepfit.playground.points
_FEATURE_CODE = {"x1": "a", "x2": "b", "x1sq": "a * a", "x2sq": "b * b", "x1x2": "a * b",
                 "sinx1": "np.sin(a)", "sinx2": "np.sin(b)"}


def features_code(session: Session) -> str:
    """``X``: the network's inputs, one column per chosen feature, float32."""
    second = "x2.astype('float64')" if session.points.X.shape[1] == 2 else "np.zeros_like(a)"
    columns = ", ".join(_FEATURE_CODE[f] for f in session.settings.features)
    return (f"a = x1.astype('float64')\nb = {second}\n"
            f"X = np.stack([{columns}], 1).astype('float32')  # "
            f"{', '.join(session.settings.features)}\n")


def frame_code(session: Session) -> str:
    p, names = session.points, session.settings.features
    target = "y"
    if p.task != "regression":
        target = f"np.array({list(p.class_names)!r})[y]"
        if np.asarray(labels(p)).dtype.kind == "i":
            target += ".astype(int)"
    return ("import pandas as pd\n" + features_code(session)
            + f"frame = pd.DataFrame(X, columns={list(names)!r})\n"
            f"frame['{TARGET}'] = {target}\n"
            "split = pd.Series(np.where(train, 'train', 'test'))\n")


def torch_code(session: Session, data: str) -> str:
    """A plain PyTorch script: the points, the features, the page's network with the seed's
    initial weights, its loss, penalty and optimiser, and the page's batches; ``steps`` of
    training give the weights the page has after as many steps."""
    s, p = session.settings, session.points
    widths = [len(s.features), *s.hidden, p.n_outputs]
    act = f"nn.{ACTIVATIONS[s.activation].__name__}()"  # the MLP the page trains has these
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(f"nn.Linear({a}, {b})")
        if i < len(widths) - 2:
            layers.append(act)
    loss = {("regression", "squared"): "F.mse_loss(out[:, 0], y)",
            ("binary", "cross_entropy"): "F.binary_cross_entropy_with_logits(out[:, 0], "
                                         "y.float())",
            ("binary", "squared"): "F.mse_loss(torch.sigmoid(out[:, 0]), y.float())",
            ("multiclass", "cross_entropy"): "F.cross_entropy(out, y)",
            ("multiclass", "squared"): "(F.softmax(out, 1) - F.one_hot(y, "
                                        f"{p.n_classes}).float()).pow(2).sum(1).mean()"}
    penalty = ""
    if s.regularization != "none" and s.reg_rate > 0:
        rate, term = ((s.reg_rate, "w.abs().sum()") if s.regularization == "l1"
                      else (s.reg_rate / 2, "w.pow(2).sum()"))
        penalty = (f"\n    loss = loss + {rate!r} * sum({term} for n, w in "
                   "net.named_parameters() if n.endswith('weight'))  # "
                   f"{s.regularization.upper()}, weights only")
    optimizer = (f"torch.optim.Adam(net.parameters(), lr={s.lr!r})" if s.optimizer == "adam"
                 else f"torch.optim.SGD(net.parameters(), lr={s.lr!r}"
                 f"{', momentum=0.9' if s.optimizer == 'momentum' else ''})")
    return ("import torch\nfrom torch import nn\nfrom torch.nn import functional as F\n" + data
            + "\n" + features_code(session)
            + "inputs, targets = torch.from_numpy(X), torch.from_numpy(y)\n"
            "train_rows = torch.from_numpy(np.flatnonzero(train))\n\n"
            "# the seed's initial weights, as the page draws them\n"
            f"seed = torch.randint(2**31 - 1, (1,), generator=torch.Generator()"
            f".manual_seed({s.seed}))\ntorch.manual_seed(int(seed))\n"
            f"net = nn.Sequential(\n    {(',' + chr(10) + '    ').join(layers)},\n)\n"
            f"optimizer = {optimizer}\n\n\ndef step(x, y):\n"
            f"    out = net(x)\n    loss = {loss[(p.task, s.loss)]}{penalty}\n"
            "    optimizer.zero_grad()\n    loss.backward()\n    optimizer.step()\n"
            "    return loss.item()\n\n\n"
            f"rng = np.random.default_rng({s.seed})  # the batches: each epoch a permutation\n"
            f"order = np.empty(0, np.int64)\nsteps = {max(session.step_count, 1)}  "
            "# as many as the page took\n"
            "for _ in range(steps):\n"
            "    if len(order) == 0:\n"
            "        order = rng.permutation(len(train_rows))\n"
            f"    take, order = order[:{s.batch_size}], order[{s.batch_size}:]\n"
            "    rows = train_rows[torch.from_numpy(take)]\n"
            "    step(inputs[rows], targets[rows])\n")
