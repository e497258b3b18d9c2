"""What leaves the page: "Save as deepfit run" saves the page's own network (its weights, its
points and split, its history) as a run that ``deepfit.load`` predicts with exactly as the
page; the plain PyTorch the page shows trains the same network to the same weights; the
points of an edited run travel in the link (or the page says they cannot)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from deepfit.errors import DataError
from deepfit.playground.export import python_code, run_frame, save_run
from deepfit.playground.link import MAX_CHARS, decode, encode, link_message, points_csv
from deepfit.playground.points import read_csv
from deepfit.playground.session import Session
from deepfit.playground.settings import Settings


def page_outputs(session: Session) -> np.ndarray:
    """What the page's network predicts for its points: probabilities, or values."""
    with torch.no_grad():
        out = session.model(session.inputs)
    if session.points.task == "binary":
        return torch.sigmoid(out[:, 0]).numpy()
    if session.points.task == "multiclass":
        return torch.softmax(out, 1).numpy()
    return out[:, 0].numpy()


def three_classes_csv() -> bytes:
    rng = np.random.default_rng(0)
    labels = rng.choice([1, 5, 10], 60)  # whole numbers: the page and deepfit order 5 < 10
    return ("a,b,c\n" + "\n".join(f"{rng.normal():.4f},{rng.normal():.4f},{k}"
                                   for k in labels)).encode()


@pytest.mark.parametrize("settings, upload", [
    # Settings deepfit.train does not have (L1, squared error for classes, the features):
    # the weights are the page's, so they are saved, and the report names them.
    (Settings(data="xor", points=120, hidden=(4,), features=("x1", "x2", "x1sq", "sinx2"),
              optimizer="momentum", regularization="l1", reg_rate=0.001, loss="squared"),
     None),
    (Settings(data="upload", hidden=(3,), optimizer="adam", lr=0.05), three_classes_csv()),
    (Settings(data="linear", points=60, features=("x1", "x1sq"), hidden=(),
              loss="squared", noise=0.3), None),
])
def test_the_saved_run_is_the_pages_network(tmp_path, settings, upload):
    session = Session(settings, read_csv("c.csv", upload) if upload else None)
    session.step(3 * session.steps_per_epoch + 2)  # 3 whole epochs and 2 steps
    path = save_run(session, tmp_path, None)
    assert path.name.startswith(f"playground-{settings.data}-mlp-")
    run = deepfit.load(path)
    frame, split = run_frame(session)
    inputs = frame.drop(columns="y")
    mine = run.predict(inputs) if run.task == "regression" else run.predict_proba(inputs)
    if run.task == "binary":
        mine = mine[:, 1]
    np.testing.assert_allclose(np.asarray(mine, float), page_outputs(session), atol=1e-6)
    assert run.schema.class_names == list(session.points.class_names)
    # The page's split: its test points are the run's test rows; no validation rows.
    summary = json.loads((path / "summary.json").read_text())
    sizes = summary["data"]["split_sizes"]
    assert sizes == {"train": int(session.points.train.sum()), "val": 0,
                     "test": int((~session.points.train).sum())}
    assert run.metrics["val"] is None and summary["data"]["notes"] == []
    # The page's history: one row per whole epoch, its training loss as the page had it.
    assert len(run.history) == 3
    assert run.history.column("train_loss") == pytest.approx(
        [r["train_loss"] for r in session.history])
    page_rows = pd.read_csv(path / "playground_history.csv")
    assert page_rows["step"].iloc[-1] == session.step_count and "test_loss" in page_rows
    saved = json.loads((path / "playground.json").read_text())
    assert saved["settings"] == settings.to_dict() and saved["step"] == session.step_count
    html = (path / "report.html").read_text()
    assert "trained in the deepfit playground" in html and "no validation rows" in html
    assert "<th>validation</th>" not in html
    md = (path / "report.md").read_text()
    if settings.regularization == "l1":
        assert "L1: 0.001 · Σ|w|" in md and "squared error of the predicted probabilities" in md
        assert "SGD with momentum 0.9" in md and "not L1" in md


def test_a_run_without_a_whole_epoch_is_refused(tmp_path):
    session = Session(Settings(points=100))
    session.step(1)
    with pytest.raises(DataError, match="train at least one whole epoch"):
        save_run(session, tmp_path, None)
    assert not any(tmp_path.iterdir())


def run_shown_torch(sessions: list[Session], tmp_path) -> list[dict[str, np.ndarray]]:
    """The page's plain-PyTorch code of each session, each run as its own script (one Python
    for all: it starts slowly); each network's weights and inputs ``X``."""
    runner = ["import runpy, sys", "import numpy as np"]
    for i, session in enumerate(sessions):
        (tmp_path / f"shown{i}.py").write_text(python_code(session)["torch"])
        runner.append(f"g = runpy.run_path(r'{tmp_path / f'shown{i}.py'}')")
        runner.append(f"np.savez(r'{tmp_path / f'net{i}.npz'}', X=g['X'], **{{k: v.numpy() "
                      "for k, v in g['net'].state_dict().items()})")
    done = subprocess.run([sys.executable, "-c", "\n".join(runner)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [dict(np.load(tmp_path / f"net{i}.npz")) for i in range(len(sessions))]


def test_the_shown_pytorch_trains_the_pages_network(tmp_path):
    """Generated points (the generator's call), and edited points (spelt out); L2 with Adam,
    L1 with momentum and squared error for classes."""
    sessions = [Session(Settings(data="spiral", points=100, hidden=(5, 3), optimizer="adam",
                                 features=("x1", "x2", "sinx1", "x1x2"), lr=0.01,
                                 regularization="l2", reg_rate=0.01)),
                Session(Settings(data="gaussians", points=60, hidden=(3,), activation="relu",
                                 optimizer="momentum", regularization="l1", reg_rate=0.001,
                                 loss="squared")),
                Session(Settings(data="moons", points=40, hidden=(2,)))]
    edited = sessions[2].points.with_point(0.25, -0.5, 1).with_point(1.5, 0.75, 0)
    sessions[2].set_points(edited)
    sessions[2].reset()
    for session in sessions:
        session.step(25)
    codes = [python_code(s)["torch"] for s in sessions]
    assert "load_toy" in codes[0] and "load_toy" not in codes[2] and "0.25" in codes[2]
    for session, shown in zip(sessions, run_shown_torch(sessions, tmp_path)):
        np.testing.assert_array_equal(shown.pop("X"), session.inputs.numpy())
        page = {k.removeprefix("net."): v.numpy() for k, v in session.model.state_dict().items()}
        assert shown.keys() == page.keys()
        for key in page:
            np.testing.assert_allclose(shown[key], page[key], atol=1e-6)


def test_points_travel_in_the_link_exactly():
    session = Session(Settings(data="spiral", points=200))
    assert link_message(session.settings, session.points)["link"] is None  # the seed makes them
    points = session.points.with_point(0.3, -0.2, 1)
    text = link_message(session.settings, points)["link"]
    back = decode(text)
    for a, b in ((back.X, points.X), (back.y, points.y), (back.train, points.train)):
        np.testing.assert_array_equal(a, b)
    assert (back.task, back.class_names) == (points.task, points.class_names)
    upload = Session(Settings(data="upload"), read_csv("c.csv", three_classes_csv())).points
    assert decode(encode(upload)).class_names == ("1", "5", "10")
    # Too many points for a link: none in it, and the page says why and what to do.
    many = Session(Settings(data="spiral", points=4000))
    clicked = many.points.with_point(0, 0, 0)
    message = link_message(many.settings, clicked)
    assert message["link"] is None and len(encode(clicked)) > MAX_CHARS
    assert "does not carry these 4,001 points" in message["link_note"]
    assert "download them as CSV" in message["link_note"]
    # The CSV it offers is one the page uploads again, with the same values.
    again = read_csv("points.csv", points_csv(clicked).encode())
    np.testing.assert_array_equal(again.X, clicked.X)
    np.testing.assert_array_equal(again.y, clicked.y)


@pytest.mark.parametrize("text", ["", "abc", "x" * 50, encode(
    Session(Settings(points=20)).points)[:-6], 7])
def test_a_damaged_link_is_one_line(text):
    with pytest.raises(DataError, match="points in the address .* are damaged"):
        decode(text)
