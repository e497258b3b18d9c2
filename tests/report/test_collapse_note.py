"""A model that predicts one class for every test row (multi-label: every label the same way)
is named in the report's notes and on ``run.warnings``, with what to try."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from torch import nn

import deepfit
from deepfit.report.notes import collapse_warning, warnings_for


def _test(counts, cm=None, n=None, per_class=None):
    return {"n": n or sum(counts.values()), "predicted_counts": counts,
            "confusion_matrix": cm or [], "per_class": per_class or {}}


def test_one_predicted_class_is_a_collapse_only_if_the_truth_varies():
    note = collapse_warning("multiclass", _test({"a": 0, "b": 30, "c": 0},
                                                [[0, 10, 0], [0, 10, 0], [0, 10, 0]]))
    assert note.startswith("The model has collapsed: it predicts class 'b' for every one of "
                           "the 30 test rows, although the test split holds 3 classes")
    for advice in ("model.outputs=probabilities", "train.lr", "train.class_weights=balanced"):
        assert advice in note
    assert collapse_warning("binary", _test({"no": 9, "yes": 1}, [[8, 0], [1, 1]])) is None
    assert collapse_warning("binary", _test({"no": 10, "yes": 0}, [[10, 0], [0, 0]])) is None
    assert collapse_warning("regression", {"n": 10}) is None
    assert collapse_warning("binary", {"n": 10, "confusion_matrix": [[5, 0], [5, 0]]}) is None


def test_every_label_constant_is_a_multilabel_collapse():
    per_class = {"a": {"support": 4}, "b": {"support": 0}}
    note = collapse_warning("multilabel", _test({"a": 10, "b": 0}, n=10, per_class=per_class))
    assert "predicts labels ['a'] on every row, the others on none of the 10 test rows" in note
    assert "train.class_weights" not in note  # it does not apply to multi-label tasks
    assert collapse_warning("multilabel", _test({"a": 3, "b": 0}, n=10,
                                                per_class=per_class)) is None


class ConstantNet(nn.Module):
    """Ignores its input: one learned score per class, the same for every row."""

    def __init__(self, out_features):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        return self.bias.expand(len(x), -1)


def test_a_collapsed_run_says_so_in_its_notes_and_on_the_run(tmp_path, quick):
    run = deepfit.train(model=ConstantNet(3), data="iris", out=tmp_path, epochs=3,
                        bootstrap=0, **quick)
    counts = run.metrics["test"]["predicted_counts"]
    assert sorted(counts.values()) == [0, 0, 30]
    (note,) = run.warnings
    assert "The model has collapsed" in note
    summary = json.loads((run.path / "summary.json").read_text())
    # The report's note names the causes that fit the run (all 3 epochs used: too few).
    assert warnings_for(summary)[0] == note  # the console and the report say the same
    assert "too few epochs" in note
    assert deepfit.load(run.path, model=ConstantNet(3)).warnings == [note]


def test_a_model_that_learns_has_no_collapse_warning(tmp_path, quick):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    frame["y"] = np.where(frame["a"] > 0, "pos", "neg")
    run = deepfit.train(data=frame, out=tmp_path, epochs=30, bootstrap=0, **quick)
    assert run.metrics["test"]["predicted_counts"]["pos"] > 0 and run.warnings == []


def _summary(model="cnn", epochs_run=1, max_epochs=1, kind="image", regularisation="",
             layers=()):
    test = _test({"cat": 12, "dog": 0}, [[6, 0], [6, 0]])
    return {"data": {"task": "binary", "kind": kind, "split_sizes": {"test": 12}, "notes": []},
            "model": {"name": model, "layers": [{"type": t} for t in layers]},
            "training": {"epochs_run": epochs_run, "max_epochs": max_epochs,
                         "main_metric": "accuracy", "train_val_gap": 0.2,
                         "regularisation": regularisation},
            "metrics": {"test": test}}


def test_collapse_advice_fits_the_model_the_epochs_and_the_data():
    from deepfit.report.notes import summary_collapse

    note = summary_collapse(_summary())
    assert "12 test images" in note and "rows" not in note
    assert "model.outputs" not in note  # refused for deepfit's own networks
    assert "too few epochs (training stopped at the epoch limit" in note
    note = summary_collapse(_summary(model="nets.py:Net", epochs_run=3, max_epochs=9,
                                     kind="table"))
    assert "12 test rows" in note and "model.outputs=probabilities" in note
    assert "too few epochs" not in note


def test_overfitting_advice_names_only_what_the_model_has():
    def advice(**kw):
        return next(n for n in warnings_for(_summary(**kw)) if "may overfit" in n)

    assert "dropout" not in advice(model="resnet9", layers=("Conv2d", "BatchNorm2d"))
    assert "more dropout (model.dropout)" in advice(model="cnn", regularisation="dropout 0.3")
    assert "Dropout layers" in advice(model="tv:vgg11", layers=("Linear", "Dropout"))
    assert "data.augment" in advice(model="lenet")
    assert "data.augment" not in advice(model="mlp", kind="table")


def test_notes_use_the_table_labels_not_raw_keys():
    summary = _summary()
    summary["metrics"]["val"] = {"undefined": {"mcc": "every prediction is class 'cat'"}}
    summary["metrics"]["ci"] = {"precision": {"reason": "undefined in 900 of 1000 resamples"}}
    notes = warnings_for(summary)
    assert "Matthews correlation (MCC) on val is undefined: every prediction" in " ".join(notes)
    assert "No confidence interval for Precision (PPV)" in " ".join(notes)
    assert not any(n.startswith("mcc on") for n in notes)
