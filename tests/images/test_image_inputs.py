"""The image data stage: statistics from the training split only, train-only augmentation,
and the ImageSpec round trip; a MedMNIST-style multi-label set through the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import deepfit
from deepfit.config import DataConfig
from deepfit.data.bundle import Schema, build_bundle
from deepfit.data.images.inputs import ImageInputs, ImageSpec, channel_stats


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFIT_CACHE", str(tmp_path / "cache"))


def medmnist_npz(path, n=(60, 20, 20), labels=2, multilabel=False, seed=0):
    """A file in the MedMNIST layout: {split}_images (N, 12, 12) uint8, {split}_labels."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        if multilabel:
            y = rng.integers(0, 2, (count, labels)).astype(np.uint8)
            y[:2] = [[1] * labels, [0] * labels]  # every label both on and off in each split
            images = (y[:, :1, None] * 150 + rng.integers(0, 80, (count, 12, 12))).astype(np.uint8)
        else:
            y = rng.integers(0, labels, (count, 1)).astype(np.uint8)
            y[:labels, 0] = np.arange(labels)
            images = (y[:, :, None] * 120 + rng.integers(0, 60, (count, 12, 12))).astype(np.uint8)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, y
    np.savez(path, **arrays)
    return path


def test_normalisation_statistics_come_from_the_training_split_only(tmp_path):
    path = medmnist_npz(tmp_path / "set.npz")
    bundle = build_bundle(DataConfig(source=str(path)))
    with np.load(path) as f:
        train = f["train_images"].astype(np.float64) / 255
    spec = bundle.schema.image
    assert spec.mean == pytest.approx([train.mean()], abs=1e-9)
    assert spec.std == pytest.approx([train.std()], abs=1e-9)
    # The official splits are kept as they are: 60 / 20 / 20.
    assert [len(bundle.train), len(bundle.val), len(bundle.test)] == [60, 20, 20]
    assert bundle.train.X.dtype == torch.uint8 and bundle.train.X.shape[1:] == (1, 12, 12)
    # Brighter test images do not move the statistics.
    with np.load(path) as f:
        arrays = dict(f)
    arrays["test_images"] = np.full_like(arrays["test_images"], 255)
    np.savez(tmp_path / "bright.npz", **arrays)
    assert build_bundle(DataConfig(source=str(tmp_path / "bright.npz"))).schema.image.mean \
        == pytest.approx(spec.mean)


def test_channel_stats_of_a_constant_channel_does_not_divide_by_zero():
    images = torch.zeros(4, 3, 5, 5, dtype=torch.uint8)
    images[:, 0] = 200
    mean, std = channel_stats(images, np.arange(4))
    assert mean == pytest.approx([200 / 255, 0, 0]) and std == [1.0, 1.0, 1.0]


def test_inputs_augment_training_batches_only_and_normalise():
    spec = ImageSpec((8, 8), 3, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], ["hflip:1.0"])
    inputs = ImageInputs(spec, torch.device("cpu"), seed=0)
    xb = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    expected = (xb.float() / 255 - 0.5) / 0.25
    evaluated = inputs(xb, train=False)
    assert evaluated.dtype == torch.float32 and torch.allclose(evaluated, expected)
    assert torch.allclose(inputs(xb, train=True), expected.flip(-1))  # p = 1 flip
    assert torch.equal(xb, xb.clone())  # the stored batch is never changed


def test_the_augmentation_stream_is_saved_and_restored():
    spec = ImageSpec((8, 8), 1, [0.5], [0.25], ["crop:2", "noise:0.1"])
    a = ImageInputs(spec, torch.device("cpu"), seed=3)
    xb = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    a(xb, train=True)
    state = a.state_dict()
    after = a(xb, train=True)
    b = ImageInputs(spec, torch.device("cpu"), seed=99)
    b.load_state_dict(state)
    assert torch.equal(b(xb, train=True), after)


def test_the_image_schema_survives_json(tmp_path):
    bundle = build_bundle(DataConfig(source=str(medmnist_npz(tmp_path / "s.npz"))))
    state = json.loads(json.dumps(bundle.schema.to_dict()))
    back = Schema.from_dict(state)
    assert back.image == bundle.schema.image and back.kind == "image"
    assert back.input_shape == (1, 12, 12) and back.preprocessor is None


def test_a_chestmnist_like_multilabel_set_trains_as_a_multilabel_task(tmp_path):
    path = medmnist_npz(tmp_path / "chestlike.npz", n=(80, 20, 20), labels=3, multilabel=True)
    run = deepfit.train(data=path, out=tmp_path, model="cnn", channels=[8], epochs=3,
                        batch_size=16, progress=False, eval={"plots": True, "report": False,
                                                            "bootstrap": 0})
    assert run.task == "multilabel" and run.schema.n_outputs == 3
    test = run.metrics["test"]
    assert test["n"] == 20 and len(test["per_class"]) == 3
    assert run.predict(np.zeros((2, 12, 12), np.uint8)).shape == (2, 3)
    assert (run.path / "plots" / "test_images.png").is_file()


def test_large_images_get_a_note_suggesting_a_smaller_size(tmp_path):
    from deepfit.report.notes import warnings_for

    path = medmnist_npz(tmp_path / "s.npz")
    run = deepfit.train(data=path, out=tmp_path, model="cnn", channels=[8], epochs=1,
                        progress=False, eval={"plots": False, "report": False, "bootstrap": 0})
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["data"]["image_shape"] == [1, 12, 12]
    assert not any("data.image_size" in n for n in warnings_for(summary))
    summary["data"]["image_shape"] = [3, 512, 384]
    assert any("512×384 pixels" in n and "data.image_size=128" in n
               for n in warnings_for(summary))


def test_given_normalisation_statistics_replace_the_training_splits(tmp_path):
    path = medmnist_npz(tmp_path / "s.npz")
    run = deepfit.train(data=path, out=tmp_path, model="cnn", channels=[8], epochs=1,
                        mean=[0.5], std=[0.5], progress=False,
                        eval={"plots": False, "report": False, "bootstrap": 0})
    assert run.schema.image.mean == [0.5] and run.schema.image.std == [0.5]
    from deepfit.errors import ConfigError
    with pytest.raises(ConfigError, match="must both have 1 value, or 3"):
        deepfit.train(data=path, out=tmp_path, mean=[0.5, 0.5], std=[0.5, 0.5], epochs=1,
                      progress=False)
