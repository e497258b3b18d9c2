"""data.standardize=robust: RealMLP-TD's robust scaling and smooth clipping, against a hand
computation; older true / false values still read; the saved state is plain JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deepfit.config import DataConfig, RunConfig
from deepfit.data.bundle import build_bundle
from deepfit.data.transforms import TabularPreprocessor


def _clip(x):
    return x / np.sqrt(1 + (x / 3) ** 2)


def test_robust_scaling_is_median_and_quartile_range_then_smooth_clipping():
    train = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 100.0, np.nan],  # a gap: the median 2
                          "b": [5.0, 5.0, 5.0, 5.0, 5.0, 9.0],       # quartile range 0
                          "c": [7.0] * 6})                            # constant
    pre = TabularPreprocessor(standardize="robust").fit(train)
    # a: filled [0, 1, 2, 3, 100, 2]: median 2, q25 1.25, q75 2.75 (linear) -> range 1.5
    assert pre.center_["a"] == 2.0 and pre.scale_["a"] == pytest.approx(1.5)
    # b: q75 = q25 = 5 -> half the range (9 - 5) / 2 = 2; c: constant -> scale 1
    assert (pre.center_["b"], pre.scale_["b"]) == (5.0, 2.0)
    assert (pre.center_["c"], pre.scale_["c"]) == (7.0, 1.0)
    new = pd.DataFrame({"a": [2.0, 3.5, 1000.0, np.nan], "b": [5.0, 9.0, -100.0, 5.0],
                        "c": [7.0, 7.0, 8.0, 7.0]})
    want = np.column_stack([_clip((np.array([2.0, 3.5, 1000.0, 2.0]) - 2) / 1.5),
                            _clip((np.array([5.0, 9.0, -100.0, 5.0]) - 5) / 2),
                            _clip(np.array([0.0, 0.0, 1.0, 0.0]))])
    got = pre.transform(new)
    assert pre.output_names_ == ["a", "b", "c", "a__missing"]
    np.testing.assert_allclose(got[:, :3], want, rtol=1e-6)
    assert got[:, 3].tolist() == [0, 0, 0, 1]
    assert np.abs(got).max() < 3  # 1000 is far out, its input stays below 3
    assert "robust-scaled" in pre.describe()
    back = TabularPreprocessor.from_state(json.loads(json.dumps(pre.state_dict())))
    assert back.standardize == "robust" and np.array_equal(back.transform(new), got)


def test_old_true_false_values_still_mean_z_and_none():
    cfg = RunConfig()
    assert cfg.data.standardize == "z"  # the default (docs/benchmarks.md: why not robust)
    assert cfg.override(["data.standardize=false"]).data.standardize == "none"
    assert cfg.override({"data.standardize": True}).data.standardize == "z"
    assert RunConfig.from_dict({"data": {"standardize": False}}).data.standardize == "none"
    frame = pd.DataFrame({"a": [1.0, 3.0]})
    state = TabularPreprocessor().fit(frame).state_dict()
    state["standardize"] = True  # a run saved before the scalings had names
    assert TabularPreprocessor.from_state(state).transform(frame).tolist() == [[-1.0], [1.0]]
    assert TabularPreprocessor(standardize=False).fit(frame).transform(frame).tolist() == \
        [[1.0], [3.0]]


def test_a_misspelt_scaling_is_one_line_naming_the_choices():
    with pytest.raises(Exception, match="'robust'"):
        RunConfig().override(["data.standardize=robst"])


def test_a_robust_table_is_scaled_on_its_training_rows_only():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"amount": rng.lognormal(0, 2, 200), "x": rng.normal(size=200)})
    frame["y"] = frame.x + rng.normal(size=200)
    bundle = build_bundle(DataConfig(standardize="robust"), data=frame)
    pre = bundle.schema.preprocessor
    train = frame["amount"].to_numpy()[bundle.train.ids]
    assert pre.standardize == "robust" and pre.center_["amount"] == np.median(train)
    amount = bundle.train.X[:, 0].numpy()
    assert np.median(amount) == pytest.approx(0, abs=1e-6) and np.abs(amount).max() < 3
