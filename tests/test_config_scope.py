"""Every option of ``deepfit config`` is either used by a run or refused with a reason.

Each key is set to a non-default value on a small table run and a small image run. The
run is then compared with the same run without the key, by what it produced: weights,
metrics, predictions, schema, summary, history, the files written, the image cache, and
what the trainer was given (optimiser and schedule settings, callbacks, batch sizes, the
deterministic flag, memory layout). The expected outcome of every key is listed below, so a
new option must say what it does here before it can ship:

- ``used``: the run differs;
- ``refused``: stopped before training because the key does not apply to this run;
- ``stops``: the key was acted on by stopping with one line that names it (e.g. a
  strict-missing policy meeting a gap, a weights file that does not exist);
- ``armed``: a policy for an event this run does not meet (a GPU running out of memory);
  the reason names the test that shows it acting.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from deepfit import Callback
from deepfit.config import RunConfig
from deepfit.config_rules import _all_keys
from deepfit.errors import ConfigError, DeepfitError
from deepfit.train.export import load_weights
from image_samples import class_folders

BASE = {"train.epochs": 2, "train.batch_size": 16, "train.progress": False,
        "eval.bootstrap": 20, "eval.plots": False, "eval.report": False}

# Keys the harness itself sets on every run (its baseline), so they are tested by changing
# them away from the harness value instead of away from the default.
HARNESS = {"train.epochs": 3, "train.batch_size": 8, "train.progress": True,
           "eval.bootstrap": 0, "eval.plots": True, "eval.report": True}

TINY_NET = '''
import torch
from torch import nn

class TinyNet(nn.Module):
    def __init__(self, in_features, out_features, width=4):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_features, width), nn.ReLU(),
                                  nn.Linear(width, out_features))

    def forward(self, x):
        return self.body(x)
'''

ARMED = {
    "train.on_nonfinite": "skips a step whose loss is NaN; tests/train/test_numerical_policies.py",
    "train.on_oom": "halves a batch when a GPU runs out of memory; tests/train/"
                    "test_numerical_policies.py",
    "data.bad_images": "leaves out an unreadable image; tests/images/test_image_inputs.py",
    "train.compile": "torch.compile (a minute to compile on CPU); tests/test_pipeline.py::"
                     "test_a_compiled_model_trains_and_saves_plain_weights",
    "train.checkpoint_every": "checkpoints between epochs, seen when a run is killed; "
                              "tests/train/test_resume.py",
    "train.device": "this machine has only a CPU, which is what auto picks; the CUDA and MPS "
                    "tests pass train.device explicitly",
    "train.precision": "fp32 is what auto picks on a CPU; bf16 / fp16 autocast are "
                       "tested in tests/train/test_trainer.py and on CUDA",
}


@pytest.fixture(autouse=True)
def own_cache(monkeypatch):
    """Each run of the harness points DEEPFIT_CACHE at its own folder; restored after."""
    monkeypatch.setenv("DEEPFIT_CACHE", os.environ.get("DEEPFIT_CACHE", ""))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A table (CSV + separate val/test files), an image folder and a custom module."""
    root = tmp_path_factory.mktemp("scope")
    rng = np.random.default_rng(0)
    n = 90
    x1, x2, x3 = rng.uniform(0, 2, size=(3, n))  # not negative: log2(x+1) applies
    frame = pd.DataFrame({
        "x1": x1, "x2": x2, "x3": x3, "colour": rng.choice(["red", "green", "blue"], n),
        "grade": rng.choice(["low", "high"], n), "site": [f"s{i % 9}" for i in range(n)],
        "fold": ["train"] * 60 + ["val"] * 15 + ["test"] * 15,
        "z": rng.integers(0, 2, n), "z2": rng.integers(0, 2, n), "y": np.where(x1 + x2 > 2, "yes", "no")})
    frame.to_csv(root / "t.csv", index=False)
    frame.iloc[:15].to_csv(root / "val.csv", index=False)
    frame.iloc[15:30].to_csv(root / "test.csv", index=False)
    class_folders(root / "img", {"a": 12, "b": 12, "c": 12}, size=(12, 12), color=True)
    (root / "tinynet.py").write_text(TINY_NET)
    return root


VALUES = {  # key -> (table value, image value); None: the same value for both
    "data.source": ("iris", "{root}/t.csv"),
    "data.target": ("grade", "label"),
    "data.sheet": ("Sheet1", None),
    "data.targets": (["z", "z2"], None),
    "data.task": ("multiclass", "binary"),
    "data.val_size": (0.3, None), "data.test_size": (0.3, None),
    "data.split_column": ("fold", None),
    "data.val_file": ("{root}/val.csv", None), "data.test_file": ("{root}/test.csv", None),
    "data.id_column": ("x3", None), "data.group_column": ("site", None),
    "data.positive_class": ("no", "a"),
    "data.drop_columns": (["x2"], None), "data.missing": ("strict", None),
    "data.standardize": (False, None), "data.scale_target": (False, None),
    "data.feature_transform": ("log2p1", None), "data.max_categories": (2, None),
    "data.n_samples": (50, None), "data.noise": (0.3, None), "data.seed": (5, None),
    "data.root": ("{root}", None), "data.image_size": ([16], None),
    "data.resize": ("pad", None), "data.color": ("gray", None), "data.augment": (["none"], None),
    "data.normalize": ("none", None), "data.mean": ([0.5], None), "data.std": ([0.25], None),
    "data.bad_images": ("skip", None), "data.image_column": ("path", None),
    "data.label_map": ({"yes": "positive"}, {"a": "b"}), "data.cache": (False, None),
    "data.max_memory_gb": (1e-6, None), "data.workers": (0, None),
    "data.trust_remote_code": (True, None),
    "model.name": ("{root}/tinynet.py:TinyNet", "lenet"), "model.hidden": ([8], None),
    "model.activation": ("tanh", None), "model.dropout": (0.05, None),
    "model.norm": ("batch", None), "model.init": ("xavier", None),
    "model.outputs": ("probabilities", None), "model.channels": ([4], None),
    "model.pretrained": (True, None), "model.weights": ("{root}/missing.pt", None),
    "model.kwargs": ({"width": 3}, None),
    "model.embeddings": ("piecewise", None), "model.bins": (8, None),
    "train.epochs": (3, None), "train.batch_size": (8, None), "train.optimizer": ("sgd", None),
    "train.lr": (0.05, None), "train.momentum": (0.5, None), "train.nesterov": (True, None),
    "train.weight_decay": (0.0, None), "train.grad_clip": (1e-3, None),
    "train.schedule": ("cosine", None), "train.warmup_epochs": (1, None),
    "train.step_size": (1, None), "train.gamma": (0.5, None),
    "train.plateau_patience": (0, None), "train.checkpoint_every": (1, None),
    "train.early_stopping": (False, None), "train.patience": (1, None),
    "train.monitor": ("val_accuracy", None), "train.min_delta": (0.5, None),
    "train.loss": ("nll", "nll"), "train.class_weights": ("balanced", None),
    "train.device": ("cpu", None), "train.precision": ("fp32", None),
    "train.channels_last": (True, False), "train.compile": (True, None),
    "train.cuda_graphs": (True, None), "train.on_nonfinite": ("skip", None),
    "train.on_oom": ("halve", None), "train.deterministic": (True, None),
    "train.sync_bn": (True, None), "train.precise_bn": (True, False),
    "train.seed": (3, None), "train.progress": (True, None),
    "train.diagnostics": (False, None),
    "eval.batch_size": (7, None), "eval.threshold_objective": ("youden", None),
    "eval.apply_threshold": (True, None), "eval.beta": (2.0, None),
    "eval.target": (0.9, None), "eval.betas": ([1.5], None), "eval.bootstrap": (0, None),
    "eval.ci_level": (0.8, None), "eval.calibration_bins": (4, None),
    "eval.plots": (True, None), "eval.report": (True, None),
    "eval.explain": (False, None), "eval.explain_layer": ("features.0.0", None),
    "track.tensorboard": (True, None), "track.mlflow": ("{root}/mlruns", None),
    "track.experiment": ("other", None),
    "name": ("named-run", None), "out": ("{root}/elsewhere", None),
}

USED_IN_BOTH = {"data.source", "data.val_size", "data.test_size",
                "data.label_map", "data.seed", "model.name", "model.dropout", "train.epochs",
                "train.batch_size", "train.optimizer", "train.lr", "train.weight_decay",
                "train.grad_clip", "train.schedule", "train.warmup_epochs",
                "train.early_stopping", "train.patience", "train.monitor", "train.min_delta",
                "train.class_weights", "train.deterministic", "train.seed", "train.progress",
                "train.diagnostics",
                "eval.batch_size", "eval.bootstrap", "eval.ci_level", "eval.plots",
                "eval.report", "track.tensorboard", "track.mlflow", "name", "out"}
EXPECTED = {
    "table": {**dict.fromkeys(USED_IN_BOTH, "used"), **dict.fromkeys(ARMED, "armed"),
              **dict.fromkeys(["data.targets", "data.split_column", "data.val_file",
                               "data.test_file", "data.id_column", "data.group_column",
                               "data.positive_class", "data.drop_columns", "data.standardize",
                               "data.feature_transform", "data.missing", "model.hidden",
                               "model.activation",
                               "model.norm", "model.init", "train.gamma",
                               "train.plateau_patience", "eval.threshold_objective",
                               "eval.apply_threshold", "eval.betas", "eval.calibration_bins"],
                              "used"),
              **dict.fromkeys(["data.sheet", "data.max_categories", "data.image_column",
                               "train.loss"], "stops"),
              **dict.fromkeys(["data.scale_target", "data.n_samples", "data.noise",
                               "data.root", "data.image_size", "data.resize", "data.color",
                               "data.augment", "data.normalize", "data.mean", "data.std",
                               "data.cache", "data.max_memory_gb", "model.weights",
                               "data.workers", "data.trust_remote_code", "model.outputs",
                               "model.channels", "model.pretrained", "model.kwargs",
                               "model.embeddings", "model.bins",
                               "train.momentum", "train.nesterov", "train.step_size",
                               "train.channels_last", "train.sync_bn", "eval.beta",
                               "eval.explain", "eval.explain_layer", "track.experiment"],
                              "refused"), "train.precise_bn": "refused"},
    "image": {**dict.fromkeys(USED_IN_BOTH, "used"), **dict.fromkeys(ARMED, "armed"),
              **dict.fromkeys(["data.image_size", "data.color", "data.augment",
                               "data.normalize", "data.cache", "data.max_memory_gb",
                               "model.channels", "train.channels_last", "train.precise_bn",
                               "eval.betas", "eval.calibration_bins"], "used"),
              **dict.fromkeys(["data.mean", "data.std", "model.weights"], "stops"),
              **dict.fromkeys(["data.sheet", "data.targets", "data.split_column",
                               "data.val_file", "data.test_file", "data.id_column",
                               "data.group_column", "data.positive_class",
                               "data.drop_columns", "data.missing", "data.standardize",
                               "data.scale_target", "data.feature_transform",
                               "data.max_categories", "data.n_samples", "data.noise",
                               "data.root", "data.resize", "data.image_column",
                               "data.workers", "data.trust_remote_code", "model.hidden",
                               "model.activation", "model.norm", "model.init",
                               "model.outputs", "model.pretrained", "model.kwargs",
                               "model.embeddings", "model.bins",
                               "train.momentum", "train.nesterov", "train.step_size",
                               "train.gamma", "train.plateau_patience", "train.sync_bn",
                               "eval.threshold_objective", "eval.apply_threshold",
                               "eval.beta", "eval.explain", "eval.explain_layer",
                               "track.experiment"], "refused"),
              "train.loss": "used", "data.target": "refused", "data.task": "stops",
              "eval.target": "refused"},
}
EXPECTED["table"].update({"train.loss": "stops",  # a binary task has one loss: bce
                          "data.target": "used", "data.task": "used", "eval.target": "refused"})
for kind in EXPECTED:  # CUDA graphs apply where training runs on a CUDA GPU
    EXPECTED[kind]["train.cuda_graphs"] = "used" if torch.cuda.is_available() else "refused"
# Settings that go with a key in both arms: a multi-label task has no bootstrap intervals.
WITH = {"data.targets": {"eval.bootstrap": 0}}

# A key refused in the runs above is shown acting where it applies: (extra settings of
# both arms, the key, its value, table or image).
IN_CONTEXT = [
    ({"data.target": "x1"}, "data.scale_target", False, "table"),
    ({"train.optimizer": "sgd"}, "train.momentum", 0.5, "table"),
    ({"train.optimizer": "sgd"}, "train.nesterov", True, "table"),
    ({"train.schedule": "step"}, "train.step_size", 1, "table"),
    ({"eval.threshold_objective": "fbeta"}, "eval.beta", 3.0, "table"),
    ({"eval.threshold_objective": "sensitivity", "eval.target": 0.5}, "eval.target", 0.9,
     "table"),
    ({"model.name": "{root}/tinynet.py:TinyNet"}, "model.kwargs", {"width": 3}, "table"),
    ({"model.name": "tabm"}, "model.kwargs", {"k": 2, "d_block": 8}, "table"),
    ({"model.name": "tabm", "model.kwargs": {"k": 2, "d_block": 8}}, "model.embeddings",
     "piecewise", "table"),
    ({"model.name": "tabm", "model.kwargs": {"k": 2, "d_block": 8},
      "model.embeddings": "piecewise"}, "model.bins", 4, "table"),
    ({"data.image_size": [16]}, "data.resize", "pad", "image"),
    ({"data.max_memory_gb": 1e-6}, "data.workers", 0, "image"),
    ({"data.mean": [0.5], "data.std": [0.25]}, "data.std", [0.5], "image"),
    ({"track.mlflow": "{root}/mlruns"}, "track.experiment", "other", "table"),
    ({"eval.plots": True}, "eval.explain", False, "image"),
    ({"eval.plots": True}, "eval.explain_layer", "features.0.0", "image"),
    ({"model.norm": "batch"}, "train.precise_bn", False, "table"),
]


class Recorder(Callback):
    """What the trainer was given, as plain values."""

    def __init__(self) -> None:
        self.seen: dict = {}

    def on_train_begin(self, trainer) -> None:
        groups = [{k: v for k, v in g.items() if k != "params"}
                  for g in trainer.optimizer.param_groups]
        first = next(iter(trainer.model.parameters()))
        self.seen = {
            "optimizer": type(trainer.optimizer).__name__, "groups": repr(groups),
            "schedule": type(trainer.schedule.inner).__name__ + repr(
                getattr(trainer.schedule.inner, "state_dict", dict)()),
            "callbacks": [(type(c).__name__, {k: v for k, v in sorted(vars(c).items())
                                               if isinstance(v, (bool, int, float, str))})
                          for c in trainer.callbacks.callbacks],
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "channels_last": first.dim() == 4 and first.is_contiguous(
                memory_format=torch.channels_last) and not first.is_contiguous(),
            "eval_batch": trainer.eval_batch_size, "workers": trainer.workers,
            "model": repr(trainer.model)}


def _digest(path: Path) -> str:
    """The tensors' values (safetensors writes its metadata in no fixed order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(load_weights(path).items()):
        digest.update(name.encode() + tensor.numpy().tobytes())
    return digest.hexdigest()[:16]


def fingerprint(root: Path, settings: dict, kind: str) -> dict:
    """Run once and describe everything it produced, without names and times."""
    settings = {k: (v.format(root=root) if isinstance(v, str) else v)
                for k, v in settings.items()}
    out = root / "runs" / f"r{len(list((root / 'runs').glob('*'))) if (root / 'runs').exists() else 0}"
    cache = out.with_name(out.name + "-cache")
    os.environ["DEEPFIT_CACHE"] = str(cache)
    recorder = Recorder()
    source = str(root / ("t.csv" if kind == "table" else "img"))
    run = deepfit.train(**{"data.source": source, "out": str(out), **BASE, **settings},
                        callbacks=[recorder])
    summary = json.loads((run.path / "summary.json").read_text())
    summary.pop("created"), summary.pop("name")
    summary["training"].pop("seconds")
    history = pd.read_csv(run.path / "history.csv").drop(columns=["time", "seconds"],
                                                          errors="ignore")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return {"summary": json.dumps(summary, sort_keys=True, default=str),
            "metrics": (run.path / "metrics.json").read_text(),
            "schema": (run.path / "schema.json").read_text(),
            "predictions": (run.path / "predictions.csv").read_text(),
            "weights": _digest(run.path / "model.safetensors"),
            "history": history.round(10).to_csv(index=False),
            "files": [f.replace(run.path.name, "RUN") for f in files],
            "run_name": "named" if not run.path.name.startswith(
                ("t-", "img-")) else "default",
            "cache": sorted(p.suffix for p in cache.rglob("*") if p.is_file()),
            "trainer": recorder.seen}


def outcome(root: Path, kind: str, key: str, value, context: dict, baseline: dict) -> str:
    try:
        got = fingerprint(root, {**context, key: value}, kind)
    except ConfigError as exc:
        text = str(exc)
        if "not apply" in text and key in text:
            return "refused"
        assert key in text or key.split(".")[-1] in text, text
        return "stops"
    except DeepfitError as exc:
        assert key.split(".")[-1] in str(exc) or key in str(exc), str(exc)
        return "stops"
    changed = [part for part in got if got[part] != baseline[part]]
    return "used" if changed else "unchanged"


def test_every_key_of_deepfit_config_is_listed_here():
    keys = set(_all_keys(RunConfig))
    assert keys == set(VALUES), (keys ^ set(VALUES))
    for kind in EXPECTED:
        assert set(EXPECTED[kind]) == keys, (kind, keys ^ set(EXPECTED[kind]))


@pytest.mark.parametrize("kind", ["table", "image"])
def test_every_option_is_used_or_refused(world, kind):
    baseline = fingerprint(world, {}, kind)
    assert fingerprint(world, {}, kind) == baseline  # the harness itself is deterministic
    wrong = {}
    for key, values in VALUES.items():
        expected = EXPECTED[kind][key]
        if expected == "armed":
            continue
        value = values[0] if kind == "table" or values[1] is None else values[1]
        if key in HARNESS:
            value = HARNESS[key]
        got = outcome(world, kind, key, value, WITH.get(key, {}), baseline)
        if got != expected:
            wrong[key] = f"{got}, expected {expected}"
    assert not wrong, wrong


@pytest.mark.parametrize("context,key,value,kind", IN_CONTEXT,
                         ids=[c[1] for c in IN_CONTEXT])
def test_refused_keys_act_where_they_apply(world, context, key, value, kind):
    context = {k: (v.format(root=world) if isinstance(v, str) else v) for k, v in
               context.items()}
    baseline = fingerprint(world, context, kind)
    assert outcome(world, kind, key, value, context, baseline) == "used"


def test_config_dump_leaves_out_keys_that_do_not_apply(world):
    run = deepfit.train(data=str(world / "img"), out=str(world / "dump"), **BASE)
    text = (run.path / "config.yaml").read_text()
    assert "hidden:" not in text and "activation:" not in text and "standardize" not in text
    assert "channels:" in text and "image_size" in text
    again = deepfit.train(str(run.path / "config.yaml"), out=str(world / "dump2"))
    again_text = (again.path / "config.yaml").read_text()
    assert again_text.replace("dump2", "dump") == text  # re-runs from its own dump
    table = deepfit.train(data=str(world / "t.csv"), out=str(world / "dump3"), **BASE)
    text = (table.path / "config.yaml").read_text()
    assert "image_size" not in text and "channels" not in text and "hidden:" in text


def test_an_older_config_with_resolved_values_still_runs(world):
    """A config.yaml written before keys were left out holds every key, with automatic
    values resolved (channels_last: false for a table): it must still run."""
    old = RunConfig().override({"data.source": str(world / "t.csv"), "out": str(
        world / "old"), "train.channels_last": False, "train.patience": 20,
        "train.schedule": "plateau", **BASE})
    path = world / "old.yaml"
    path.write_text(old.to_yaml())
    assert deepfit.train(str(path)).metrics["test"]["accuracy"] is not None


def test_refusal_is_one_line_naming_every_key(world):
    with pytest.raises(ConfigError) as err:
        deepfit.train(data=str(world / "t.csv"), out=str(world / "x"), **BASE,
                      **{"data.image_size": [32], "model.channels": [8]})
    text = str(err.value)
    assert "\n" not in text and "data.image_size=[32]" in text and "model.channels=[8]" in text
    assert "remove them" in text
    assert not (world / "x").exists() or not any((world / "x").iterdir())


@pytest.mark.parametrize("model", ["lenet", "resnet9"])
def test_dropout_is_refused_for_image_networks_without_dropout(world, model):
    with pytest.raises(ConfigError, match=rf"model.dropout=0.5 \(it applies to the mlp and "
                                          rf"deepfit's cnn, not to deepfit's {model}, which has "
                                          r"no dropout layer to set\)"):
        deepfit.train(data=str(world / "img"), out=str(world / "x"), model=model,
                      **{**BASE, "model.dropout": 0.5})

