"""Paired tests and `deepfit compare` on runs that do and do not differ."""

import numpy as np
import pytest
from scipy.stats import binomtest, chi2

import deepfit
from deepfit.cli import main
from deepfit.compare import compare_runs
from deepfit.errors import RunError
from deepfit.evaluate.paired import mcnemar, paired_bootstrap


def test_mcnemar_exact_and_chi_square_match_the_textbook_formulas():
    a = np.array([1] * 10 + [0] * 3 + [1] * 20, dtype=bool)
    b = np.array([0] * 10 + [1] * 3 + [1] * 20, dtype=bool)
    small = mcnemar(a, b)
    assert (small["a_only"], small["b_only"]) == (10, 3)
    assert small["p_value"] == pytest.approx(binomtest(10, 13, 0.5).pvalue)
    a = np.array([1] * 30 + [0] * 10, dtype=bool)
    b = ~a
    big = mcnemar(a, b)
    assert big["method"].startswith("chi-square")
    assert big["p_value"] == pytest.approx(chi2.sf((30 - 10 - 1) ** 2 / 40, 1))


def test_paired_bootstrap_of_identical_scores_is_zero_with_p_one():
    x = np.random.default_rng(0).integers(0, 2, 300).astype(float)
    r = paired_bootstrap(x, x.copy())
    assert r["difference"] == 0 and r["low"] == r["high"] == 0 and r["p_value"] == 1.0


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(1)
    good = (rng.random(500) < 0.9).astype(float)
    bad = (rng.random(500) < 0.7).astype(float)
    r = paired_bootstrap(good, bad, seed=0)
    assert r["low"] > 0 and r["p_value"] < 0.01 and r["p_below"]
    same_quality = (rng.random(500) < 0.9).astype(float)
    null = paired_bootstrap(good, same_quality, seed=0)
    assert null["low"] < 0 < null["high"] and null["p_value"] > 0.05


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    quick = {"train.progress": False, "eval.plots": False, "eval.report": False}
    good = deepfit.train(data="wine", out=out, name="good", **quick)
    weak = deepfit.train(data="wine", out=out, name="weak", epochs=2, **quick,
                         **{"model.hidden": [], "train.lr": 1e-4})
    other = deepfit.train(data="wine", out=out, name="other_split", epochs=2, **quick,
                          **{"data.seed": 5})
    reg = deepfit.train(data="diabetes", out=out, name="reg", epochs=2, **quick)
    return out, good, weak, other, reg


def test_compare_pairs_runs_on_the_same_rows(runs):
    out, good, weak, *_ = runs
    result = compare_runs([good.path, weak.path])
    pair = result["pairs"][0]
    assert pair["paired"] and pair["n"] == good.metrics["test"]["n"]
    assert pair["bootstrap"]["difference"] == pytest.approx(
        good.metrics["test"]["accuracy"] - weak.metrics["test"]["accuracy"])
    assert pair["mcnemar"]["p_value"] < 0.05


def test_compare_refuses_to_pair_different_test_sets_or_tasks(runs):
    out, good, _, other, reg = runs
    pair = compare_runs([good.path, other.path])["pairs"][0]
    assert not pair["paired"] and "different rows" in pair["reason"]
    with pytest.raises(RunError, match="different tasks"):
        compare_runs([good.path, reg.path])


def test_compare_command_writes_html(runs, capsys, tmp_path):
    out, good, weak, *_ = runs
    target = tmp_path / "cmp.html"
    assert main(["compare", str(good.path), str(weak.path), "-o", str(target)]) == 0
    text = capsys.readouterr().out
    assert "McNemar p" in text and "good" in text
    page = target.read_text()
    assert "Paired tests" in page and "data:image/png;base64," in page
