"""deepfit export: the exported files, read back by onnxruntime / torch, give deepfit's own
predictions on raw rows and uint8 images; the model card, the input schema and the refusals."""

from __future__ import annotations

import copy
import json
import os
import shutil
import warnings

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from torch import nn

import deepfit
from exported import image_model_call
from deepfit import cli
from deepfit.errors import ConfigError, ModelError, RunError

QUICK = {"train.progress": False, "eval.plots": False, "eval.report": False}
TOLERANCE = 1e-5


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(50, 12, n), "dose": rng.normal(3, 1, n),
                          "colour": rng.choice(["red", "green", "blue"], n)})
    frame["y"] = np.where(frame.dose + (frame.colour == "red") > 3.3, "sick", "healthy")
    if n > 11:
        frame.loc[[3, 9], "dose"] = np.nan     # gaps: median + a missing indicator
        frame.loc[[4, 11], "colour"] = np.nan  # a gap in a categorical: its own category
    return frame


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("table")
    return deepfit.train(data=_frame(90, 0), target="y", out=out, name="mlp", epochs=2,
                         hidden=[16], **{**QUICK, "eval.bootstrap": 50})


@pytest.fixture(scope="module")
def image_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    for cls in ("cat", "dog", "owl"):
        (root / "data" / cls).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                root / "data" / cls / f"{i}.png")
    settings = {**QUICK, "eval.bootstrap": 0, "train.batch_size": 8, "train.epochs": 1}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPFIT_CACHE", str(root / "cache"))
        return {model: deepfit.train(data=str(root / "data"), out=root / "runs", name=model,
                                     model=model, channels=channels, **settings)
                for model, channels in (("cnn", [4]), ("resnet9", [4, 4, 8, 8]))}


def _raw_rows(run) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """New rows with a numeric gap, a categorical gap and an unseen category, as deepfit
    takes them and as the exported model takes them (codes from the input schema's lists)."""
    rows = _frame(7, 5).drop(columns="y")
    rows.loc[1, "dose"] = np.nan
    rows.loc[2, "colour"] = np.nan
    rows.loc[3, "colour"] = "purple"
    pre = run.schema.preprocessor
    cats = pre.categories_["colour"]
    codes = [cats.index("<missing>") if pd.isna(v) else (cats.index(v) if v in cats else -1)
             for v in rows.colour]
    return rows, {"numeric": rows[pre.numeric_].to_numpy(np.float32),
                  "categorical": np.array(codes, dtype=np.int64)[:, None]}


def _torch_inputs(inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v.copy()) for k, v in inputs.items()}


def test_a_table_model_in_onnx_takes_raw_rows_and_gives_deepfits_probabilities(table_run,
                                                                               tmp_path):
    rows, inputs = _raw_rows(table_run)
    with pytest.warns(deepfit.errors.DataWarning, match="purple"):
        want = table_run.predict_proba(rows)[:, 1]
    done = table_run.export("onnx", tmp_path / "onnx")
    session = ort.InferenceSession(str(done.model), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["numeric", "categorical"]
    assert session.get_inputs()[0].shape == ["batch", 2]
    got = session.run(["probability"], inputs)[0]
    assert got.shape == (7,) and np.abs(got - want).max() <= TOLERANCE
    one = session.run(None, {k: v[:1] for k, v in inputs.items()})[0]  # dynamic batch
    assert np.abs(one - want[:1]).max() <= TOLERANCE
    schema = json.loads(done.schema.read_text())
    assert schema["inputs"][1]["columns"] == [
        {"name": "colour", "categories": ["<missing>", "blue", "green", "red"],
         "missing_code": 0}]
    assert schema["output"]["positive_class"] == "sick"
    card = done.card.read_text()
    assert "95% CI" in card and "not validated for clinical use" in card
    assert "| `colour` | 0: <missing>, 1: blue, 2: green, 3: red | 0 |" in card
    assert 'ort.InferenceSession("model.onnx")' in card


@pytest.mark.parametrize("fmt", ["torchscript", "exported-program"])
def test_torchscript_and_exported_program_reload_with_the_same_numbers(table_run, tmp_path,
                                                                       fmt):
    rows, inputs = _raw_rows(table_run)
    with pytest.warns(deepfit.errors.DataWarning):
        want = table_run.predict_proba(rows)[:, 1]
    done = table_run.export(fmt, tmp_path)
    model = (torch.jit.load(str(done.model)) if fmt == "torchscript"
             else torch.export.load(str(done.model)).module())
    # the model card's way of calling each: keywords for TorchScript, positions for the
    # ExportedProgram (its module takes the inputs in the input schema's order)
    call = (lambda x: model(**x)) if fmt == "torchscript" else (lambda x: model(*x.values()))
    got = call(_torch_inputs(inputs)).numpy()
    assert np.abs(got - want).max() <= TOLERANCE
    assert call(_torch_inputs({k: v[:3] for k, v in inputs.items()})).shape == (3,)


@pytest.mark.parametrize("model, formats", [("cnn", ["onnx"]),
                                            ("resnet9", ["onnx", "exported-program"])])
def test_image_models_take_uint8_images_and_give_deepfits_probabilities(image_runs, tmp_path,
                                                                        model, formats):
    run = image_runs[model]
    images = np.random.default_rng(7).integers(0, 256, (5, 3, 8, 8), dtype=np.uint8)
    want = run.predict_proba(images)
    for fmt in formats:
        done = run.export(fmt, tmp_path / fmt)
        if fmt == "onnx":
            session = ort.InferenceSession(str(done.model), providers=["CPUExecutionProvider"])
            got = session.run(None, {"images": images})[0]
        else:
            got = torch.export.load(str(done.model)).module()(torch.from_numpy(images)).numpy()
        assert got.shape == (5, 3) and np.abs(got - want).max() <= TOLERANCE
    schema = json.loads(done.schema.read_text())
    assert schema["inputs"][0]["shape"] == ["batch", 3, "height", "width"]
    assert schema["inputs"][0]["size"] == [8, 8]
    assert schema["output"]["classes"] == ["cat", "dog", "owl"]


# Probabilities: PIL's resize (files) against torch's (in the graph). Measured on torch 2.14.1:
# at most 0.0018 (resnet9, the 5×6 file); pixels differ by at most 1 of 255 (docs/deploy.md).
PIL_TOLERANCE = 0.02


def _other_sizes(folder) -> dict[str, np.ndarray]:
    """uint8 images (1, 3, H, W) of other sizes than the runs' 8×8, smaller, larger and
    out of shape, each also written as a PNG file in ``folder`` (named by its size)."""
    rng = np.random.default_rng(11)
    folder.mkdir()
    out = {}
    for i, (h, w) in enumerate([(5, 6), (13, 11), (32, 20), (8, 17), (1, 1), (64, 64)]):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}_{h}x{w}.png")
        out[f"{i}_{h}x{w}.png"] = pixels.transpose(2, 0, 1)[None].copy()
    return out


def test_image_models_take_any_size_and_resize_it_inside_the_graph(image_runs, tmp_path):
    images = _other_sizes(tmp_path / "new")
    for model, formats in (("cnn", ["onnx", "torchscript"]), ("resnet9", ["exported-program"])):
        run = image_runs[model]
        with pytest.warns(deepfit.errors.DataWarning, match="stretched"):
            from_files = run.predictions(str(tmp_path / "new"))
        by_file = dict(zip(from_files.ids, from_files.scores))
        for fmt in formats:
            done = run.export(fmt, tmp_path / model / fmt)
            call = image_model_call(done, fmt)
            for name, pixels in images.items():
                got = call(pixels)
                # deepfit resizes an array with torch, as the graph does: the same numbers
                with warnings.catch_warnings():  # out-of-shape arrays: a stretch warning
                    warnings.simplefilter("ignore", deepfit.errors.DataWarning)
                    # (N, H, W, C): deepfit would read a 1×1 (1, 3, 1, 1) as (N, H, W, C)
                    want = run.predict_proba(pixels.transpose(0, 2, 3, 1))
                    assert np.abs(got - want).max() <= TOLERANCE, name
                # a file is resized by PIL: close, not equal (measured: docs/deploy.md)
                assert np.abs(got[0] - by_file[name]).max() <= PIL_TOLERANCE, (fmt, name)
            both = call(np.concatenate([images["1_13x11.png"]] * 2))  # dynamic batch too
            assert both.shape == (2, 3)
    entry = json.loads(done.schema.read_text())["inputs"][0]
    assert "stretched to 8×8" in entry["resize"] and "at most 0.002" in entry["resize"]
    card = done.card.read_text()
    assert "any height and width (resized to 8×8 inside)" in card
    assert "np.zeros((1, 3, 8, 8), dtype=np.uint8)" in card  # the snippet runs at the run's size


def test_a_regression_export_gives_values_in_the_targets_units(tmp_path):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    frame["price"] = 1000 + 50 * frame.a + rng.normal(size=60)
    run = deepfit.train(data=frame, target="price", out=tmp_path, name="reg", epochs=2,
                        hidden=[8], **{**QUICK, "eval.bootstrap": 0})
    done = run.export("torchscript", tmp_path / "ts")
    got = torch.jit.load(str(done.model))(torch.from_numpy(frame[["a", "b"]].to_numpy(
        np.float32))).numpy()
    want = run.predict(frame[["a", "b"]])
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()  # float32 at ~1000


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(7, 1)

    def forward(self, x):
        if x.sum() > 0:
            return self.out(x)
        return -self.out(x)


class MatrixExp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(7, 1)

    def forward(self, x):
        square = x[:, :2].reshape(-1, 1, 2).expand(-1, 2, 2)
        return self.out(x) + torch.linalg.matrix_exp(square).sum(dim=(1, 2)).unsqueeze(1)


def test_a_model_that_cannot_be_exported_is_one_line_naming_the_operation(table_run,
                                                                          tmp_path):
    branchy = copy.copy(table_run)  # the same finished run, holding the user's own network
    branchy.model = Branchy()
    with pytest.raises(ModelError, match=r"branches on a tensor's value at test_export_formats.py "
                                         r"line \d+ \(`if x.sum\(\) > 0:`\)") as err:
        branchy.export("onnx", tmp_path / "a")
    assert "\n" not in str(err.value)
    with pytest.raises(ModelError, match=r"test_export_formats.py line \d+ \(`if x.sum\(\) > 0:`\)"):
        branchy.export("torchscript", tmp_path / "b")
    odd = copy.copy(table_run)
    odd.model = MatrixExp()
    with pytest.raises(ModelError, match="ONNX has no function for the operation "
                                         "'aten.linalg_matrix_exp'") as err:
        odd.export("onnx", tmp_path / "c")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()  # nothing half-made


def test_the_cli_exports_refuses_overwrites_bad_formats_and_unfinished_runs(table_run, tmp_path,
                                                                           capsys):
    out = tmp_path / "weights"
    old = os.umask(0o027)
    try:
        assert cli.main(["export", str(table_run.path), "--format", "safetensors", "-o",
                         str(out)]) == 0
    finally:
        os.umask(old)
    assert "exported safetensors to" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "input_schema.json",
                                               "model_card.md"}
    assert all(p.stat().st_mode & 0o777 == 0o640 for p in out.iterdir())  # the umask's
    with safe_open(str(out / "model.safetensors"), "pt") as fh:
        assert any(k.startswith("model.") for k in fh.keys())
        assert "prepare.center" in fh.keys()
        assert json.loads(fh.metadata()["deepfit_input_schema"])["format"] == "safetensors"
    assert cli.main(["export", str(table_run.path), "--format", "safetensors", "-o",
                     str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["export", str(table_run.path), "--format", "safetensors", "-o", str(out),
                     "--force", "--intended-use", "teaching only"]) == 0
    assert "as stated by whoever exported it: teaching only" in (out / "model_card.md").read_text()
    assert cli.main(["export", str(table_run.path), "--format", "onxx"]) == 2
    assert "did you mean 'onnx'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="did you mean 'torchscript'"):
        table_run.export("torchscrip", tmp_path / "x")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(table_run.path, unfinished)
    (unfinished / "summary.json").unlink()
    moved = copy.copy(table_run)
    moved.path = unfinished
    with pytest.raises(RunError, match="did not finish"):
        moved.export("onnx")
    assert cli.main(["export", str(unfinished), "--format", "onnx"]) == 2
    assert "did not finish" in capsys.readouterr().err
