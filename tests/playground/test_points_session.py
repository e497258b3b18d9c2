"""The playground without a server: settings, points, uploads, the training session."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from deepfit.errors import ConfigError, DataError
from deepfit.playground.export import python_code, run_frame, train_options
from deepfit.playground.points import features, read_csv
from deepfit.playground.session import Session, r_squared
from deepfit.playground.settings import Settings


@pytest.mark.parametrize("raw, says", [
    ({"data": "mnist"}, "'data' = 'mnist' is not one of"),
    ({"hidden": [4] * 7}, "7 layers"),
    ({"hidden": [17]}, "'hidden' = 17 is outside"),
    ({"lr": "fast"}, "'lr' must be a number"),
    ({"seed": 1.5}, "whole number"),
    ({"features": []}, "at least one input feature"),
    ({"features": ["x3"]}, "'features' = 'x3'"),
    ({"colour": 1}, "unknown key(s) ['colour']"),
    ({"data": "linear", "features": ["x1", "x2"], "loss": "squared"}, "one input, x1"),
])
def test_bad_settings_are_one_line(raw, says):
    with pytest.raises(ConfigError, match=None) as exc:
        Settings.from_dict(raw)
    assert says in str(exc.value) and "\n" not in str(exc.value)


def test_features_are_the_named_functions():
    X = np.array([[1.0, 2.0], [-0.5, 0.0]], np.float32)
    got = features(X, ("x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"))
    np.testing.assert_allclose(got[0], [1, 2, 1, 4, 2, np.sin(1), np.sin(2)], rtol=1e-6)


def csv(text: str) -> bytes:
    return text.encode()


@pytest.mark.parametrize("data, says", [
    (csv("a,b,c\n1,2,x\n3,oops,y\n1,1,x\n2,2,y\n"), "column 'b', row 3: 'oops' is not a finite"),
    (csv("a,b\n1,2\n3,4\n1,1\n2,2\n"), "2 column(s)"),
    (csv("a,b,c\n1,2,x\n3,4,x\n1,1,x\n2,2,x\n"), "one class ('x')"),
    ("a,b,c\n1,2,é\n3,4,x\n1,1,é\n2,2,x\n".encode("latin-1"), "not UTF-8"),
    (csv(""), "not a CSV table"),
    (csv("a,b,c\n" + "".join(f"{i},{i},k{i}\n" for i in range(12))), "12 classes"),
    (csv("a,b,c\n1,2,x\n"), "1 row(s)"),
    (csv("a,b,c\n1,1e39,x\n3,4,y\n1,1,x\n2,2,y\n"), "row 2: '1e+39' is not a finite number"),
])
def test_bad_csv_is_one_clear_line(data, says):
    with pytest.raises(DataError) as exc:
        read_csv("../../etc/points.csv", data)
    line = str(exc.value)
    assert says in line and "\n" not in line
    assert "upload 'points.csv'" in line  # only the file's own name is shown


def test_csv_classes_and_regression():
    rng = np.random.default_rng(0)
    rows = "".join(f"{a:.3f},{b:.3f},{['cat', 'dog', 'eel'][i % 3]}\n"
                   for i, (a, b) in enumerate(rng.normal(size=(30, 2))))
    three = read_csv("p.csv", csv("x1,x2,kind\n" + rows))
    assert three.task == "multiclass" and three.class_names == ("cat", "dog", "eel")
    numeric = read_csv("r.csv", csv("x1,x2,t\n" + "".join(
        f"{a},{b},{a + 0.5 * b}\n" for a, b in rng.normal(size=(20, 2)))))
    assert numeric.task == "regression" and numeric.n_outputs == 1
    with pytest.raises(DataError, match="at most 10 points"):
        read_csv("p.csv", csv("x1,x2,kind\n" + rows), max_rows=10)


def test_a_seed_gives_the_same_run_and_learns_xor():
    settings = Settings(data="xor", hidden=(4,), activation="tanh", lr=0.03, seed=3,
                        optimizer="adam")
    a, b = Session(settings), Session(settings)
    a.step(300), b.step(300)
    fa, fb = a.frame(), b.frame()
    assert fa["metrics"] == fb["metrics"] and fa["map"] == fb["map"]
    assert fa["metrics"]["test_accuracy"] >= 0.95
    assert sum(map(sum, fa["metrics"]["confusion"])) == int((~a.points.train).sum())
    other = Session(dataclasses.replace(settings, seed=4))
    other.step(300)
    assert other.frame()["metrics"] != fa["metrics"]


def test_three_classes_squared_loss_and_regression():
    rows = "".join(f"{c + 0.1 * i % 1:.2f},{c:.1f},{c}\n" for i in range(60) for c in (0, 1, 2)
                   if i % 3 == c)
    upload = read_csv("three.csv", csv("x1,x2,y\n" + rows))
    s = Session(Settings(data="upload", loss="squared", hidden=(5,)), upload)
    s.step(20)
    frame = s.frame()
    assert frame["map_kind"] == "class" and np.array(frame["metrics"]["confusion"]).shape == (3, 3)
    with pytest.raises(ConfigError, match="cross-entropy needs classes"):
        Session(Settings(data="linear", features=("x1",), loss="cross_entropy"))
    reg = Session(Settings(data="linear", features=("x1",), loss="squared", hidden=(3,)))
    reg.step(50)
    assert reg.frame()["metrics"]["test_r2"] is not None
    assert r_squared(np.ones(3), np.ones(3)) is None  # undefined, never 0


def test_settings_that_only_pace_the_run_keep_the_network():
    s = Session(Settings(hidden=(3,)))
    s.step(7)
    assert s.configure(Settings(hidden=(3,), speed=50, stop_epoch=9)) is False
    assert s.step_count == 7
    assert s.configure(Settings(hidden=(3, 2))) is True and s.step_count == 0


def test_clicked_points_join_training():
    s = Session(Settings(points=40))
    n = int(s.points.train.sum())
    s.set_points(s.points.with_point(0.5, 0.5, 1))
    assert int(s.points.train.sum()) == n + 1
    with pytest.raises(DataError, match="class 5"):
        s.points.with_point(0, 0, 5)
    s.set_points(s.points.without_point_near(0.5, 0.5, 0.01))
    assert int(s.points.train.sum()) == n
    # The last training (or test) point cannot be removed: both splits need one.
    few = Session(Settings(points=10, test_ratio=0.9)).points
    alone = few.X[few.train][0]
    assert few.without_point_near(float(alone[0]), float(alone[1]), 1e-6) is few


def test_export_options_and_python():
    s = Session(Settings(hidden=(4, 2), optimizer="momentum", regularization="l2",
                         reg_rate=0.001, batch_size=20))
    s.step(2 * s.steps_per_epoch + 1)
    options = train_options(s)
    assert options["epochs"] == 3 and options["momentum"] == 0.9
    assert options["weight_decay"] == 0.001 and options["hidden"] == [4, 2]
    frame, split = run_frame(s)
    assert list(frame.columns) == ["x1", "x2", "y"] and set(split) == {"train", "test"}
    code = python_code(s)
    assert "deepfit.train(" in code["deepfit"] and "nn.Linear(2, 4)" in code["torch"]
    compile(code["torch"], "torch", "exec")
    # What deepfit.train does not have is said in the deepfit view (the torch view has it).
    l1 = Session(Settings(regularization="l1", reg_rate=0.01))
    assert "cannot train this run: deepfit trains with L2 weight decay only" in \
        python_code(l1)["deepfit"]
    assert "w.abs().sum()" in python_code(l1)["torch"]


@pytest.mark.parametrize("settings", [
    Settings(data="moons", points=60, seed=5, features=("x1", "x2", "x1sq", "x1x2", "sinx2")),
    Settings(data="linear", points=30, features=("x1", "sinx1"), loss="squared"),
])
def test_the_python_builds_the_pages_frame_and_split(settings):
    session = Session(settings)
    for clicked in (False, True):
        if clicked:  # edited points: the Python spells them out, not the generator's call
            session.set_points(session.points.with_point(0.1, 0.2, 1.0))
        code = python_code(session)["deepfit"]
        assert ("load_toy(" in code) != clicked
        data_part = code.split("run = deepfit.train(")[0]
        scope: dict = {}
        exec(compile(data_part, "playground-python", "exec"), scope)  # noqa: S102 (our own text)
        frame, split = run_frame(session)
        pd.testing.assert_frame_equal(scope["frame"], frame)
        assert scope["split"].tolist() == split.tolist()


def test_the_pages_choices_are_the_servers():
    """The page's drop-downs offer exactly the values the server takes (settings.py)."""
    import re
    from importlib import resources

    from deepfit.playground import settings as allowed

    page = (resources.files("deepfit.playground") / "static" / "index.html").read_text()
    for select, values in (("data", allowed.DATASETS), ("activation", allowed.ACTIVATIONS),
                           ("optimizer", allowed.OPTIMIZERS), ("loss", allowed.LOSSES),
                           ("regularization", allowed.REGULARIZATION)):
        body = re.search(rf'<select id="{select}">(.*?)</select>', page, re.S).group(1)
        assert tuple(re.findall(r'<option value="([^"]+)"', body)) == values, select


def test_the_layers_are_found_once_per_network():
    s = Session(Settings(hidden=(3,), regularization="l1", reg_rate=0.01))
    layers = s.linears
    s.step(3)
    assert s.linears is layers and [m.weight.shape[0] for m in layers] == [3, 1]
    manual = 0.01 * sum(p.abs().sum() for n, p in s.model.named_parameters() if "weight" in n)
    assert s.penalty().item() == pytest.approx(manual.item())
    s.reset()
    assert s.linears is not layers and s.linears[0].weight is next(s.model.parameters())


def test_the_lecture_exercises_of_the_docs():
    """docs/playground.md's exercises, as it states them (seed 0): XOR needs a hidden layer
    (2-2-1 sigmoid, learning rate 1: 1.0 within 3,000 steps; no hidden layer: no line does);
    circles are separable by a linear model on x1², x2², not on x1, x2."""
    def accuracy(steps, **settings):
        session = Session(Settings(**settings))
        session.step(steps)
        return session.metrics()["test_accuracy"]

    assert accuracy(3000, data="xor", hidden=(2,), activation="sigmoid", lr=1.0) == 1.0
    assert accuracy(1000, data="xor", hidden=(), lr=1.0) < 0.8
    assert accuracy(1000, data="circles", features=("x1sq", "x2sq"), hidden=()) >= 0.95
    assert accuracy(1000, data="circles", features=("x1", "x2"), hidden=()) < 0.8


@pytest.mark.parametrize("data, activation", [
    ("xor", "relu"), ("circles", "sigmoid"), ("moons", "linear"), ("spiral", "leaky_relu"),
    ("gaussians", "gelu"), ("linear", "tanh")])
def test_every_generator_and_activation_trains(data, activation):
    settings = Settings(data=data, activation=activation, points=60, hidden=(3,),
                        features=("x1",) if data == "linear" else ("x1", "x2"),
                        loss="squared" if data == "linear" else "cross_entropy")
    session = Session(settings)
    before = session.metrics()["train_loss"]
    session.step(3 * session.steps_per_epoch)
    frame = session.frame()
    assert frame["metrics"]["train_loss"] < before and len(frame["neurons"][0]) == 3
    assert len(session.points_message()["inputs"]) == len(settings.features)
