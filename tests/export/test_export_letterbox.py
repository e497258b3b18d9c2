"""deepfit export of a run that letterboxed its images (data.resize=pad): the graph takes
images of any height and width and letterboxes them as deepfit does, in ONNX, TorchScript
and an ExportedProgram alike."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import deepfit
from exported import image_model_call
from deepfit.data.images.decode import arrays_to_tensor, letterbox
from deepfit.export.image_resize import letterbox as graph_letterbox

QUICK = {"train.progress": False, "eval.plots": False, "eval.report": False}
# The same tolerance as the stretching runs' tests: the graph's letterboxed pixels equal
# deepfit's (the same torch resampling, the same box), so only float32 arithmetic of the
# network in another runtime differs.
TOLERANCE = 1e-5
# Against deepfit on image files, which PIL letterboxes: the same box, PIL's resampling
# (pixels within one grey level), as for a stretching run (test_export_formats.py).
PIL_TOLERANCE = 0.02
SIZE = (8, 12)  # the run's (H, W): not square, so a height / width mix-up shows
# Taller, wider, smaller, exactly the run's size, an odd border (9×16 -> 7×12: 0 rows above,
# 1 below), and a tie: 16×5 at scale 0.5 is 8×2.5, which deepfit (Python's round) makes 2.
SIZES = [(20, 6), (5, 30), (3, 4), SIZE, (9, 16), (16, 5), (1, 1), (64, 48)]


@pytest.fixture(scope="module")
def pad_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pad")
    rng = np.random.default_rng(3)
    for cls in ("a", "b"):
        (root / "data" / cls).mkdir(parents=True)
        for i in range(6):
            shape = (6, 10, 3) if i % 2 else (11, 7, 3)  # wide and tall training images
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(
                root / "data" / cls / f"{i}.png")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPFIT_CACHE", str(root / "cache"))
        return deepfit.train(data=str(root / "data"), out=root / "runs", name="pad",
                             model="cnn", channels=[4], **{**QUICK, "eval.bootstrap": 0,
                                                           "train.epochs": 1,
                                                           "data.image_size": list(SIZE),
                                                           "data.resize": "pad"})


def _images(folder) -> dict[str, np.ndarray]:
    """uint8 (1, 3, H, W) images of ``SIZES``, each also a PNG file in ``folder``."""
    rng = np.random.default_rng(5)
    folder.mkdir()
    out = {}
    for i, (h, w) in enumerate(SIZES):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}_{h}x{w}.png")
        out[f"{i}_{h}x{w}.png"] = pixels.transpose(2, 0, 1)[None].copy()
    return out


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_the_graphs_letterbox_is_deepfits_pixel_for_pixel():
    rng = np.random.default_rng(0)
    for h, w in [*SIZES, (7, 300), (300, 7), (2, 3)]:
        pixels = rng.integers(0, 256, (2, 3, h, w), dtype=np.uint8)
        want = arrays_to_tensor(pixels, "NCHW", SIZE, "rgb", "test", "pad")
        got = graph_letterbox(torch.from_numpy(pixels).float(), *SIZE)
        assert torch.equal(got, want.float()), (h, w)
        scripted = torch.jit.script(graph_letterbox)(torch.from_numpy(pixels).float(), *SIZE)
        assert torch.equal(scripted, want.float()), (h, w)
    assert letterbox((16, 5), SIZE) == (0, 5, 8, 2)  # the tie above: half to even


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "exported-program"])
def test_a_letterboxing_run_exports_a_model_of_any_image_size(pad_run, tmp_path, fmt):
    images = _images(tmp_path / "new")
    from_files = pad_run.predictions(str(tmp_path / "new"))
    by_file = dict(zip(from_files.ids, from_files.scores))
    done = pad_run.export(fmt, tmp_path / fmt)
    call = image_model_call(done, fmt)
    for name, pixels in images.items():
        got = call(pixels)
        # (N, H, W, C): deepfit would read a 1×1 (1, 3, 1, 1) as (N, H, W, C)
        want = pad_run.predict_proba(pixels.transpose(0, 2, 3, 1))[:, 1]
        assert got.shape == (1,) and np.abs(got - want).max() <= TOLERANCE, name
        assert np.abs(got[0] - by_file[name]).max() <= PIL_TOLERANCE, name
    both = call(np.concatenate([images["0_20x6.png"]] * 2))  # dynamic batch too
    assert both.shape == (2,) and both[0] == both[1]
    entry = json.loads(done.schema.read_text())["inputs"][0]
    assert entry["shape"] == ["batch", 3, "height", "width"] and entry["size"] == [8, 12]
    assert "letterboxed into 8×12" in entry["resize"]
    assert "not done in the graph" not in entry["resize"]
    card = done.card.read_text()
    assert "any height and width (resized to 8×12 inside)" in card
    assert "letterboxed into 8×12" in card
