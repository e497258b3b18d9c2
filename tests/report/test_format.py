"""The shared wording of values: the decision-threshold sentence and undefined values."""

import numpy as np

from deepfit.evaluate.thresholds import tune_threshold
from deepfit.report.format import metric_rows, threshold_rows, threshold_sentence


def _metrics(y, s, applied=False):
    tuning = {**tune_threshold(np.array(y), np.array(s), "f1"), "applied": applied}
    chosen = tuning["threshold"] if applied else 0.5
    other = 0.5 if applied else tuning["threshold"]
    return {"threshold": chosen, "tuning": tuning, "test": {"accuracy": 0.9, "mcc": None},
            "test_at_other_threshold": {"threshold": other, "accuracy": 0.8, "mcc": 0.5}}


def test_a_suggested_threshold_reads_as_a_suggestion_not_a_score():
    m = _metrics([0, 0, 1, 1, 0, 1], [0.1, 0.3, 0.35, 0.8, 0.4, 0.7])
    assert threshold_sentence(m) == (
        "Decision threshold 0.5 (default). Tuning on validation for F1 suggests 0.325 "
        "(validation F1 0.8571 vs 0.8000 at 0.5); to use it, rerun with "
        "eval.apply_threshold=true.")
    sentence, rows = threshold_rows(m)
    assert sentence == threshold_sentence(m)
    assert rows[0] == ("metric", "test at 0.5 (in use)", "test at 0.325")
    assert ("Matthews correlation (MCC)", "undefined", "0.5000") in rows
    applied = _metrics([0, 0, 1, 1, 0, 1], [0.1, 0.3, 0.35, 0.8, 0.4, 0.7], applied=True)
    assert threshold_sentence(applied).startswith(
        "Decision threshold 0.325, tuned on validation for F1 (validation F1 0.8571 vs 0.8000 "
        "at 0.5); applied")


def test_a_perfectly_separated_validation_split_keeps_one_half_and_says_so():
    m = _metrics([0, 0, 1, 1], [0.05, 0.12, 0.93, 0.99])
    assert threshold_sentence(m) == (
        "Decision threshold 0.5 (default). Tuning on validation for F1: the validation split "
        "separates the classes perfectly at every threshold in [0.12, 0.93], 0.5 among them: "
        "it cannot choose one; 0.5 kept.")
    assert threshold_rows(m)[1] == []  # both columns would be the 0.5 column


def test_undefined_metrics_are_never_numbers():
    metrics = {"val": {"mcc": None}, "test": {"mcc": None, "accuracy": 0.5},
               "ci": {"mcc": {"value": 0.0, "low": 0.0, "high": 0.0}}}
    rows = dict((label, (v, t)) for label, v, t in metric_rows("binary", metrics))
    assert rows["Matthews correlation (MCC)"] == ("undefined", "undefined")


def test_shorten_cuts_at_a_word_and_closes_what_it_opened():
    from deepfit.report.format import shorten

    text = ("failed (unknown history column <deepfit.train.builtin.best_model.BestModel "
            "object at 0x7f9825e2d810>)")
    short = shorten(text, 60)
    assert len(short) <= 61 and short.endswith("…)") and short.count("(") == short.count(")")
    assert text.startswith(short[:-2])  # a clean prefix: no word cut in half
    assert shorten("fits   as it is", 60) == "fits as it is"


def test_an_image_folder_target_is_the_class_folders():
    from deepfit.report.format import describe_target

    assert describe_target({"kind": "table", "target": "label"}) == "label"
    folders = {"kind": "image", "target": "label",
               "description": "images in class folders under 'imgs' (2 classes)"}
    assert describe_target(folders) == "the class folders (one folder per class)"
    assert describe_target({"kind": "image", "target": "label", "description": "cifar10"}) \
        == "the image source's labels"
