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
    assert warnings_for(summary)[0] == note
    assert deepfit.load(run.path, model=ConstantNet(3)).warnings == [note]


def test_a_model_that_learns_has_no_collapse_warning(tmp_path, quick):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    frame["y"] = np.where(frame["a"] > 0, "pos", "neg")
    run = deepfit.train(data=frame, out=tmp_path, epochs=30, bootstrap=0, **quick)
    assert run.metrics["test"]["predicted_counts"]["pos"] > 0 and run.warnings == []
