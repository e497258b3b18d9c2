"""Tests for deepfit.data.target: task inference, class coding, regression scaling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deepfit.data.target import MAX_INTEGER_CLASSES, TargetSpec, infer_task
from deepfit.errors import DataError

# -- infer_task --------------------------------------------------------------------------


@pytest.mark.parametrize("values,task", [
    (["yes", "no", "yes"], "binary"),
    (["spam", "ham", None, "spam"], "binary"),           # gaps are ignored
    ([True, False, False], "binary"),
    ([0, 1, 1, 0], "binary"),
    ([1.0, 2.0, 1.0], "binary"),
    (["cat", "dog", "bird"], "multiclass"),
    ([0, 1, 2, 3, 2], "multiclass"),
    ([1.0, 2.0, 3.0], "multiclass"),                     # integral floats are classes
    ([0.5, 1.7, 3.3], "regression"),
    (list(range(MAX_INTEGER_CLASSES + 1)), "regression"),  # too many integers for classes
])
def test_infer_task(values, task):
    assert infer_task(pd.Series(values), "y") == task


def test_infer_task_integer_classes_at_the_limit():
    assert infer_task(pd.Series(list(range(MAX_INTEGER_CLASSES))), "y") == "multiclass"


@pytest.mark.parametrize("values,shown", [([1, 1, 1], "1"), (["a", "a"], "'a'"),
                                          ([np.nan, np.nan], "'nothing'")])
def test_infer_task_one_class_names_column_and_value(values, shown):
    with pytest.raises(DataError, match=rf"target column 'label' has a single value "
                                        rf"\({shown}\); a model needs at least two"):
        infer_task(pd.Series(values), "label")


# -- classification TargetSpec -----------------------------------------------------------

def test_classes_are_sorted_and_encoded():
    spec = TargetSpec.fit(pd.Series(["dog", "cat", "bird", "cat"]), "animal", "multiclass")
    assert spec.classes == ["bird", "cat", "dog"]
    assert spec.class_names == ["bird", "cat", "dog"]
    codes = spec.encode(pd.Series(["cat", "dog", "bird"]))
    assert codes.dtype == np.int64
    assert codes.tolist() == [1, 2, 0]


def test_numeric_classes_sort_numerically():
    spec = TargetSpec.fit(pd.Series([10, 2, 1, 2]), "y", "multiclass")
    assert spec.classes == [1, 2, 10]


def test_binary_encode_is_float_zero_one():
    spec = TargetSpec.fit(pd.Series(["no", "yes", "no"]), "y", "binary")
    codes = spec.encode(pd.Series(["yes", "no"]))
    assert codes.dtype == np.float32
    assert codes.tolist() == [1.0, 0.0]


def test_positive_class_becomes_code_one():
    spec = TargetSpec.fit(pd.Series(["benign", "malignant", "benign"]), "dx", "binary",
                          positive="benign")
    assert spec.class_names == ["malignant", "benign"]
    assert spec.encode(pd.Series(["benign", "malignant"])).tolist() == [1.0, 0.0]


def test_positive_class_already_second_keeps_order():
    spec = TargetSpec.fit(pd.Series(["a", "b"]), "y", "binary", positive="b")
    assert spec.class_names == ["a", "b"]


def test_positive_class_uses_display_names():
    spec = TargetSpec.fit(pd.Series([0, 1, 1]), "target", "binary",
                          names={0: "malignant", 1: "benign"}, positive="malignant")
    assert spec.classes == [1, 0]
    assert spec.class_names == ["benign", "malignant"]
    assert spec.encode(pd.Series([0, 1])).tolist() == [1.0, 0.0]


def test_positive_class_of_integer_target_given_as_text():
    spec = TargetSpec.fit(pd.Series([0, 1, 1]), "y", "binary", positive="0")
    assert spec.encode(pd.Series([0, 1])).tolist() == [1.0, 0.0]


def test_unknown_positive_class_suggests_close_name():
    with pytest.raises(DataError, match=r"positive class 'yess' is not a class of 'y' "
                                        r"\(did you mean 'yes'\?\)"):
        TargetSpec.fit(pd.Series(["yes", "no"]), "y", "binary", positive="yess")


def test_positive_class_is_ignored_for_multiclass():
    spec = TargetSpec.fit(pd.Series(["a", "b", "c"]), "y", "multiclass", positive="a")
    assert spec.class_names == ["a", "b", "c"]


def test_binary_task_with_three_classes_is_refused():
    with pytest.raises(DataError, match="data.task=binary but target column 'y' has 3 classes"):
        TargetSpec.fit(pd.Series(["a", "b", "c"]), "y", "binary")


def test_encode_unknown_class_names_value_row_and_origin():
    spec = TargetSpec.fit(pd.Series(["cat", "dog"]), "pet", "binary")
    with pytest.raises(DataError, match=r"test split: target 'pet' has value 'fish' at row 6 "
                                        r"that is not a known class \['cat', 'dog'\]"):
        spec.encode(pd.Series(["dog", "fish"], index=[5, 6]), origin="test split")


def test_encode_matches_int_float_and_text_forms_of_a_class():
    spec = TargetSpec.fit(pd.Series([0, 1, 2]), "y", "multiclass")
    assert spec.encode(pd.Series([1.0, "2", 0])).tolist() == [1, 2, 0]


def test_bool_classes():
    spec = TargetSpec.fit(pd.Series([True, False, True]), "ok", "binary")
    assert spec.class_names == ["False", "True"]
    assert spec.encode(pd.Series([True, False])).tolist() == [1.0, 0.0]


def test_class_spec_round_trips_through_json():
    spec = TargetSpec.fit(pd.Series(np.array([2, 0, 1], dtype=np.int64)), "y", "multiclass",
                          names={0: "a", 1: "b", 2: "c"})
    restored = TargetSpec(**json.loads(json.dumps(spec.to_dict())))
    assert restored == spec
    y = pd.Series([2, 1, 0])
    np.testing.assert_array_equal(restored.encode(y), spec.encode(y))


# -- regression TargetSpec ---------------------------------------------------------------

def test_regression_scaled_with_training_rows_only():
    y = pd.Series([1.0, 2.0, 3.0, 1000.0])
    spec = TargetSpec.fit(y, "price", "regression", train_rows=np.array([0, 1, 2]))
    assert spec.mean == pytest.approx(2.0)
    assert spec.std == pytest.approx(np.sqrt(2 / 3))
    encoded = spec.encode(y)
    assert encoded.dtype == np.float32
    assert encoded[:3].mean() == pytest.approx(0.0, abs=1e-6)
    assert encoded[3] > 100
    np.testing.assert_allclose(spec.decode_regression(encoded), y, rtol=1e-5)


def test_regression_without_scaling():
    spec = TargetSpec.fit(pd.Series([5.0, 7.0]), "y", "regression", scale=False)
    assert (spec.mean, spec.std) == (0.0, 1.0)
    assert spec.encode(pd.Series([5.0, 7.0])).tolist() == [5.0, 7.0]


def test_regression_constant_target_does_not_divide_by_zero():
    spec = TargetSpec.fit(pd.Series([4.0, 4.0, 4.0]), "y", "regression")
    assert spec.std == 1.0
    assert spec.encode(pd.Series([4.0, 5.0])).tolist() == [0.0, 1.0]


def test_regression_non_numeric_value_names_column_and_row():
    with pytest.raises(DataError, match=r"target column 'y' has non-numeric value 'high' at row 1"):
        TargetSpec.fit(pd.Series([1.0, "high", 3.0]), "y", "regression")


def test_regression_spec_round_trips_through_json():
    spec = TargetSpec.fit(pd.Series(np.float32([1.5, 2.5, 4.0])), "y", "regression")
    assert TargetSpec(**json.loads(json.dumps(spec.to_dict()))) == spec
