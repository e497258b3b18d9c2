"""Tests for deepfit.data.transforms: TabularPreprocessor and numeric_or_error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deepfit.data.transforms import MISSING_CATEGORY, TabularPreprocessor, numeric_or_error
from deepfit.errors import DataError


def _train_frame():
    return pd.DataFrame({
        "num": [1.0, 2.0, 3.0, 4.0, 5.0],
        "gap": [10.0, np.nan, 30.0, 50.0, np.nan],
        "const": [7.0, 7.0, 7.0, 7.0, 7.0],
        "colour": ["red", "blue", "red", "green", "blue"],
    })


# -- fitting on train only ---------------------------------------------------------------

def test_statistics_come_from_the_training_frame_only():
    train = pd.DataFrame({"a": [0.0, 2.0, 4.0, 6.0]})        # mean 3, sd sqrt(5)
    val = pd.DataFrame({"a": [100.0, 102.0]})
    pre = TabularPreprocessor().fit(train)
    assert pre.center_["a"] == 3.0
    assert pre.scale_["a"] == pytest.approx(np.sqrt(5.0))
    out_train = pre.transform(train)
    out_val = pre.transform(val)
    assert out_train.mean() == pytest.approx(0.0, abs=1e-6)
    assert out_train.std() == pytest.approx(1.0, abs=1e-6)
    # validation rows are scaled with the training statistics, so their mean is far from 0
    np.testing.assert_allclose(out_val[:, 0], (val["a"] - 3.0) / np.sqrt(5.0), rtol=1e-6)
    assert out_val.mean() > 40


def test_transform_does_not_refit():
    pre = TabularPreprocessor().fit(pd.DataFrame({"a": [1.0, 3.0]}))
    before = dict(pre.center_)
    pre.transform(pd.DataFrame({"a": [1000.0, 2000.0]}))
    assert pre.center_ == before


def test_output_names_order_numeric_indicators_then_one_hot():
    pre = TabularPreprocessor().fit(_train_frame())
    assert pre.output_names_ == ["num", "gap", "const", "gap__missing",
                                 "colour=blue", "colour=green", "colour=red"]
    assert pre.transform(_train_frame()).shape == (5, 7)
    assert pre.transform(_train_frame()).dtype == np.float32


def test_standardize_false_keeps_raw_values():
    frame = pd.DataFrame({"a": [1.0, 5.0, 9.0]})
    pre = TabularPreprocessor(standardize=False).fit(frame)
    np.testing.assert_array_equal(pre.transform(frame)[:, 0], [1.0, 5.0, 9.0])


def test_columns_in_other_order_and_extra_columns_are_fine():
    pre = TabularPreprocessor().fit(pd.DataFrame({"a": [1.0, 3.0], "b": ["x", "y"]}))
    out = pre.transform(pd.DataFrame({"extra": [0], "b": ["y"], "a": [3.0]}))
    np.testing.assert_array_equal(out, [[1.0, 0.0, 1.0]])


def test_missing_column_at_transform_is_named():
    pre = TabularPreprocessor().fit(pd.DataFrame({"a": [1.0, 3.0], "b": [2.0, 4.0]}))
    with pytest.raises(DataError, match=r"new rows: missing column\(s\) \['b'\]"):
        pre.transform(pd.DataFrame({"a": [1.0]}), origin="new rows")


def test_no_feature_columns_is_refused():
    with pytest.raises(DataError, match="no feature columns"):
        TabularPreprocessor().fit(pd.DataFrame(index=range(3)))


# -- categorical -------------------------------------------------------------------------

def test_one_hot_encoding_of_known_categories():
    pre = TabularPreprocessor().fit(pd.DataFrame({"c": ["b", "a", "b"]}))
    out = pre.transform(pd.DataFrame({"c": ["a", "b"]}))
    np.testing.assert_array_equal(out, [[1.0, 0.0], [0.0, 1.0]])


def test_unseen_category_gives_all_zeros():
    pre = TabularPreprocessor().fit(pd.DataFrame({"c": ["red", "blue"]}))
    out = pre.transform(pd.DataFrame({"c": ["purple", "red"]}))
    np.testing.assert_array_equal(out, [[0.0, 0.0], [0.0, 1.0]])


def test_categorical_gap_is_its_own_category():
    pre = TabularPreprocessor().fit(pd.DataFrame({"c": ["x", None, "y"]}))
    assert f"c={MISSING_CATEGORY}" in pre.output_names_
    out = pre.transform(pd.DataFrame({"c": [None]}))
    assert out[0, pre.output_names_.index(f"c={MISSING_CATEGORY}")] == 1.0
    assert out.sum() == 1.0


def test_too_many_categories_suggests_id_column_or_drop():
    frame = pd.DataFrame({"user": [f"u{i}" for i in range(6)]})
    with pytest.raises(DataError, match=r"column 'user' has 6 distinct text values.*"
                                        r"max_categories=5.*data.id_column=user.*"
                                        r"data.drop_columns=\[user\]"):
        TabularPreprocessor(max_categories=5).fit(frame)


def test_categories_at_the_limit_are_accepted():
    frame = pd.DataFrame({"c": list("abcde")})
    assert len(TabularPreprocessor(max_categories=5).fit(frame).categories_["c"]) == 5


# -- missing values ----------------------------------------------------------------------

def test_missing_numeric_imputed_with_training_median_and_indicator():
    train = pd.DataFrame({"a": [1.0, np.nan, 3.0, 100.0]})  # median of 1, 3, 100 is 3
    pre = TabularPreprocessor(standardize=False).fit(train)
    assert pre.fill_["a"] == 3.0
    assert pre.output_names_ == ["a", "a__missing"]
    out = pre.transform(train)
    np.testing.assert_array_equal(out[:, 0], [1.0, 3.0, 3.0, 100.0])
    np.testing.assert_array_equal(out[:, 1], [0.0, 1.0, 0.0, 0.0])


def test_gap_only_at_transform_time_is_filled_without_indicator():
    pre = TabularPreprocessor(standardize=False).fit(pd.DataFrame({"a": [2.0, 4.0, 6.0]}))
    out = pre.transform(pd.DataFrame({"a": [np.nan]}))
    assert pre.output_names_ == ["a"]
    assert out[0, 0] == 4.0


def test_all_missing_numeric_column_fills_zero_not_nan():
    train = pd.DataFrame({"a": [np.nan, np.nan, np.nan], "b": [1.0, 2.0, 3.0]})
    out = TabularPreprocessor().fit(train).transform(train)
    assert np.isfinite(out).all()


def test_strict_missing_policy_names_column_and_row():
    train = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0]}, index=[10, 11, 12, 13])
    with pytest.raises(DataError, match=r"column 'a' has 1 missing value\(s\), first at row 12.*"
                                        r"data.missing=strict"):
        TabularPreprocessor(missing="strict").fit(train)


def test_strict_missing_policy_at_transform_names_origin():
    pre = TabularPreprocessor(missing="strict").fit(pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(DataError, match=r"val split: column 'a' has 1 missing.*first at row 1"):
        pre.transform(pd.DataFrame({"a": [1.0, np.nan]}), origin="val split")


def test_strict_missing_policy_for_text_column():
    with pytest.raises(DataError, match="column 'c' has 1 missing value"):
        TabularPreprocessor(missing="strict").fit(pd.DataFrame({"c": ["x", None]}))


# -- numeric edge cases ------------------------------------------------------------------

def test_constant_column_gives_zeros_not_nan():
    frame = pd.DataFrame({"k": [5.0, 5.0, 5.0]})
    pre = TabularPreprocessor().fit(frame)
    assert pre.scale_["k"] == 1.0
    np.testing.assert_array_equal(pre.transform(frame), np.zeros((3, 1), dtype=np.float32))


def test_bool_and_nullable_int_columns_are_numeric():
    frame = pd.DataFrame({"flag": [True, False, True, False],
                          "n": pd.array([1, None, 3, 5], dtype="Int64")})
    pre = TabularPreprocessor().fit(frame)
    assert pre.numeric_ == ["flag", "n"]
    out = pre.transform(frame)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 0], [1, -1, 1, -1], atol=1e-6)


def test_non_numeric_value_in_numeric_column_at_transform_names_column_and_row():
    pre = TabularPreprocessor().fit(pd.DataFrame({"a": [1.0, 2.0, 3.0]}))
    rows = pd.DataFrame({"a": ["1.5", "abc", "2"]}, index=[7, 8, 9])
    with pytest.raises(DataError, match=r"test split: column 'a' has non-numeric value 'abc' "
                                        r"at row 8"):
        pre.transform(rows, origin="test split")


def test_numeric_strings_are_accepted_at_transform():
    pre = TabularPreprocessor(standardize=False).fit(pd.DataFrame({"a": [1.0, 2.0]}))
    np.testing.assert_array_equal(pre.transform(pd.DataFrame({"a": ["1.5", " 2"]}))[:, 0],
                                  [1.5, 2.0])


# -- log2p1 ------------------------------------------------------------------------------

def test_log2p1_transform_without_standardising():
    frame = pd.DataFrame({"a": [0.0, 1.0, 3.0, 7.0, 1023.0]})
    pre = TabularPreprocessor(standardize=False, feature_transform="log2p1").fit(frame)
    np.testing.assert_allclose(pre.transform(frame)[:, 0], [0, 1, 2, 3, 10])


def test_log2p1_is_applied_before_standardising():
    frame = pd.DataFrame({"a": [0.0, 3.0]})  # log2(x+1) = 0, 2 -> mean 1, sd 1
    pre = TabularPreprocessor(feature_transform="log2p1").fit(frame)
    assert pre.center_["a"] == pytest.approx(1.0)
    assert pre.scale_["a"] == pytest.approx(1.0)
    np.testing.assert_allclose(pre.transform(pd.DataFrame({"a": [15.0]}))[:, 0], [3.0])


def test_log2p1_negative_value_names_column_and_row():
    pre = TabularPreprocessor(feature_transform="log2p1").fit(pd.DataFrame({"a": [0.0, 1.0]}))
    with pytest.raises(DataError, match=r"column 'a' has negative value -2.0 at row 1"):
        pre.transform(pd.DataFrame({"a": [1.0, -2.0]}))


def test_log2p1_median_is_taken_after_the_transform():
    frame = pd.DataFrame({"a": [0.0, np.nan, 3.0, 7.0]})
    pre = TabularPreprocessor(standardize=False, feature_transform="log2p1").fit(frame)
    assert pre.fill_["a"] == pytest.approx(2.0)  # median of 0, 2, 3
    assert pre.transform(frame)[1, 0] == pytest.approx(2.0)


# -- persistence -------------------------------------------------------------------------

def test_state_dict_round_trip_gives_identical_output():
    train = _train_frame()
    pre = TabularPreprocessor(feature_transform="log2p1").fit(train)
    text = json.dumps(pre.state_dict())  # plain values only
    restored = TabularPreprocessor.from_state(json.loads(text))
    new = pd.DataFrame({"num": [2.5, np.nan], "gap": [np.nan, 20.0], "const": [7.0, 8.0],
                        "colour": ["green", "mauve"]})
    np.testing.assert_array_equal(restored.transform(new), pre.transform(new))
    np.testing.assert_array_equal(restored.transform(train), pre.transform(train))
    assert restored.output_names_ == pre.output_names_
    assert restored.describe() == pre.describe()


def test_state_dict_is_json_serialisable_with_numpy_input():
    frame = pd.DataFrame({"a": np.arange(5, dtype=np.int64), "b": np.float32([1, 2, 3, 4, 5]),
                          "flag": np.array([True, False, True, True, False])})
    state = TabularPreprocessor().fit(frame).state_dict()
    assert json.loads(json.dumps(state)) == state


def test_describe_mentions_each_step():
    text = TabularPreprocessor(feature_transform="log2p1").fit(_train_frame()).describe()
    assert "3 numeric column(s)" in text
    assert "log2(x+1)" in text
    assert "1 categorical column(s) one-hot encoded" in text
    assert "imputed with the training median" in text
    assert text.endswith("7 model inputs")


# -- numeric_or_error --------------------------------------------------------------------

def test_numeric_or_error_names_column_and_row_of_garbage():
    values = [str(i) for i in range(20)]
    values[13] = "abc"
    with pytest.raises(DataError, match=r"mydata: column 'a' is numeric except for 'abc' at "
                                        r"row 13; fix or blank"):
        numeric_or_error(pd.DataFrame({"a": values}), origin="mydata")


def test_numeric_or_error_counts_further_bad_values():
    values = [str(i) for i in range(30)]
    values[3], values[20] = "n/a?", "x"
    with pytest.raises(DataError, match=r"'n/a\?' at row 3 \(and 1 more\)"):
        numeric_or_error(pd.DataFrame({"a": values}), origin="t")


def test_numeric_or_error_converts_numeric_text():
    frame = numeric_or_error(pd.DataFrame({"a": ["1", "2.5", None], "b": [1, 2, 3]}), "t")
    assert pd.api.types.is_numeric_dtype(frame["a"])
    assert frame["a"].tolist()[:2] == [1.0, 2.5] and np.isnan(frame["a"].iloc[2])


def test_numeric_or_error_keeps_real_text_columns():
    frame = numeric_or_error(pd.DataFrame({"c": ["red", "blue", "3"]}), "t")
    assert frame["c"].tolist() == ["red", "blue", "3"]


def test_a_wide_table_matches_the_column_by_column_definition():
    # Numeric columns are fitted as one matrix; each must still be exactly its own column's
    # median fill, mean and standard deviation (ddof=0) as pandas computes them one by one.
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(50, 300)) * rng.uniform(0.01, 1e3, 300),
                         columns=[f"g{i}" for i in range(300)])
    frame.iloc[rng.integers(0, 50, 40), rng.integers(0, 300, 40)] = np.nan
    frame["empty"] = np.nan
    frame["flag"] = rng.integers(0, 2, 50).astype(bool)
    pre = TabularPreprocessor().fit(frame)
    for col in frame.columns:
        values = frame[col].astype(float)
        median = float(values.median()) if values.notna().any() else 0.0
        filled = values.fillna(median)
        std = float(filled.std(ddof=0))
        assert pre.fill_[col] == pytest.approx(median, rel=1e-12, abs=1e-300)
        assert pre.center_[col] == pytest.approx(float(filled.mean()), rel=1e-9, abs=1e-12)
        assert pre.scale_[col] == pytest.approx(std if std > 1e-12 else 1.0, rel=1e-9)
        assert (col in pre.indicators_) == bool(values.isna().any())
    out = pre.transform(frame)
    k = len(pre.numeric_)
    expected = (frame.astype(float).fillna(pd.Series(pre.fill_)) - pd.Series(pre.center_)) \
        / pd.Series(pre.scale_)
    assert np.allclose(out[:, :k], expected.to_numpy(dtype=np.float32), atol=1e-6)
    assert (out[:, k:] == frame[pre.indicators_].isna().to_numpy()).all()


def test_strict_refuses_a_gap_at_prediction_in_any_column():
    train = pd.DataFrame({"a": [1.0, 2.0, 3.0], "c": ["x", "y", "x"]})
    pre = TabularPreprocessor(missing="strict").fit(train)
    with pytest.raises(DataError, match="new rows: column 'c' has 1 missing value"):
        pre.transform(pd.DataFrame({"a": [1.0, 2.0], "c": ["x", None]}), origin="new rows")


# -- what new data hold that training never saw -----------------------------------------------
def test_unfamiliar_counts_unseen_categories_with_examples():
    pre = TabularPreprocessor().fit(_train_frame())
    new = pd.DataFrame({"num": [1.0] * 6, "gap": [1.0] * 6, "const": [7.0] * 6,
                        "colour": ["purple", "pink", "purple", "teal", "red", "navy"]})
    (line,) = pre.unfamiliar(new)
    assert line == ("column 'colour': 5 row(s) hold a category not seen in training ('purple', "
                    "'pink', 'teal', ...), encoded as 'no known category' (all zeros in its "
                    "one-hot inputs)")
    assert pre.unfamiliar(_train_frame()) == []  # known values and known gaps: nothing to say


def test_unfamiliar_names_gaps_in_columns_that_had_none_in_training():
    pre = TabularPreprocessor().fit(_train_frame())
    new = pd.DataFrame({"num": [np.nan, np.nan, 3.0], "gap": [np.nan] * 3, "const": [7.0] * 3,
                        "colour": [None, "red", "blue"]})
    lines = pre.unfamiliar(new)
    assert lines == [
        "column 'colour': 1 row(s) hold a category not seen in training (a missing value), "
        "encoded as 'no known category' (all zeros in its one-hot inputs)",
        "column 'num': 2 row(s) are missing a value, which training never had in this column; "
        "filled with the training median"]  # 'gap' had gaps in training: its indicator says it


def test_text_in_a_numeric_column_of_new_data_is_refused_not_counted():
    pre = TabularPreprocessor().fit(_train_frame())
    new = _train_frame().astype({"num": object})
    new.loc[2, "num"] = "n/a"
    with pytest.raises(DataError, match=r"new.csv: column 'num' has non-numeric value 'n/a' at "
                                        r"row 2; fix or blank it"):
        pre.transform(new, "new.csv")


def test_a_whole_number_is_the_same_category_however_it_was_read():
    # Training read "grade" as text (it holds 'x'); new data may come as floats (a column
    # of numbers with a blank), as ints, or as decimals in text (a JSON request's 3.0).
    train = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "grade": ["1", "2", "x", "2.0"]})
    pre = TabularPreprocessor().fit(train)
    assert pre.categories_ == {"grade": ["1", "2", "x"]}  # '2' and '2.0': one category
    one_hot = {"1": [1, 0, 0], "2": [0, 1, 0], "x": [0, 0, 1]}
    for values in ([1.0, 2.0, np.nan], [1, 2, 2], ["1.0", "2.00", None],
                   [1, 2.0, "x"]):
        new = pd.DataFrame({"a": [1.0, 2.0, 3.0], "grade": values})
        got = pre.transform(new)[:, -3:].tolist()
        expected = [one_hot.get(str(v).split(".")[0], [0, 0, 0]) for v in values]
        assert got == expected, values
    assert pre.unfamiliar(pd.DataFrame({"a": [1.0], "grade": [2.0]})) == []
    # a decimal that is not whole stays itself, and text like '03' is not a number's name
    assert pre.unfamiliar(pd.DataFrame({"a": [1.0, 1.0], "grade": ["2.5", "02"]}))


def test_a_run_saved_before_whole_numbers_were_named_alike_still_matches():
    pre = TabularPreprocessor().fit(pd.DataFrame({"a": [1.0, 2.0], "g": ["1", "2"]}))
    state = {**pre.state_dict(), "categories_": {"g": ["1.0", "2.0"]}}  # the old names
    old = TabularPreprocessor.from_state(state)
    assert old.categories_ == {"g": ["1", "2"]}  # same positions, today's names
    assert old.transform(pd.DataFrame({"a": [1.0], "g": [2]}))[:, -2:].tolist() == [[0, 1]]
    assert old.output_names_ == ["a", "g=1", "g=2"]
    # renaming would merge two inputs: the list is kept, and read as written, as in training
    clash = TabularPreprocessor.from_state({**state, "categories_": {"g": ["1.0", "2", "2.0"]},
                                            "output_names_": ["a", "g=1.0", "g=2", "g=2.0"]})
    assert clash.categories_ == {"g": ["1.0", "2", "2.0"]}
    rows = pd.DataFrame({"a": [1.0, 1.0, 1.0], "g": ["1.0", "2.0", "2"]})
    assert clash.transform(rows)[:, -3:].tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert clash.unfamiliar(rows) == []
