"""How the report draws and lays out what it shows: every epoch visible however few, calibration
bins with their row counts (few-row bins marked), wide tables readable in HTML and Markdown,
confusion matrices that grow with the classes."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from deepfit.evaluate import plots
from deepfit.evaluate.rates import calibration_curve_data
from deepfit.report.markdown import MAX_COLUMNS, _table
from deepfit.report.page import table


def epochs(count: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_accuracy": 0.5 + e / 100,
             "val_accuracy": 0.5} for e in range(1, count + 1)]


@pytest.mark.parametrize("count", [1, 2, 150])
def test_every_epoch_is_drawn_however_many(count):
    fig = plots.learning_figure(epochs(count), "accuracy", 1)
    try:
        for ax in fig.axes:
            curves = [line for line in ax.get_lines() if line.get_label() in ("train",
                                                                                "validation")]
            assert len(curves) == 2
            for line in curves:
                assert len(line.get_xdata()) == count
                assert line.get_marker() == "o" and line.get_markersize() > 0  # one epoch shows
    finally:
        plots.plt.close(fig)


def test_a_one_epoch_run_writes_a_learning_curve_png(tmp_path):
    path = plots.learning_curves(epochs(1), "accuracy", 1, tmp_path / "lc.png")
    assert path.stat().st_size > 5000


def test_calibration_bins_show_their_rows_and_few_row_bins_are_hollow():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.uniform(0, 0.1, 60), [0.45, 0.55], rng.uniform(0.9, 1, 40)])
    y = (rng.uniform(size=len(scores)) < scores).astype(int)
    cal = calibration_curve_data(y, scores, n_bins=10)
    fig = plots.reliability_figure(cal)
    try:
        ax, hist = fig.axes
        filled, hollow = ax.collections  # model bins, then the few-row bins
        assert len(filled.get_offsets()) == 2 and len(hollow.get_offsets()) == 2
        assert hollow.get_facecolor().size == 0 or hollow.get_facecolor()[0][3] == 0
        assert "fewer than 5 rows" in hollow.get_label()
        sizes = filled.get_sizes()
        assert sizes[0] > sizes[1]  # 60 rows draw a bigger marker than 40
        bars = hist.patches
        assert [round(b.get_height()) for b in bars] == cal["count"]
        written = [t.get_text() for t in hist.texts]
        assert "60" in written and "1" in written  # the rows of every non-empty bin
        few = [b for b, n in zip(bars, cal["count"]) if 0 < n < plots.FEW_ROWS]
        assert all(b.get_facecolor() != to_rgba("tab:blue", b.get_alpha()) for b in few)
    finally:
        plots.plt.close(fig)


def test_wide_html_tables_scroll_with_the_first_column_in_view():
    rows = [("Sensitivity, recall (TPR)", *[f"0.{i}" for i in range(12)])]
    html = table(["rate (test)", *[f"class {i}" for i in range(12)]], rows)
    assert html.startswith("<div class='wide'><table>") and html.endswith("</table></div>")
    from deepfit.report.page import CSS

    assert "overflow-x:auto" in CSS and "position:sticky" in CSS


def test_wide_markdown_tables_are_split_into_chunks_that_repeat_the_first_column():
    header = ["rate (test)", *[f"c{i}" for i in range(30)], "macro", "weighted"]
    rows = [("F1", *[str(i) for i in range(32)]), ("MCC", *["x"] * 32)]
    text = _table(header, rows)
    chunks = text.split("\n\n")
    assert len(chunks) == -(-32 // MAX_COLUMNS)
    for chunk in chunks:
        lines = chunk.splitlines()
        assert lines[0].startswith("| rate (test) |") and lines[2].startswith("| F1 |")
        assert len({line.count("|") for line in lines}) == 1  # a well-formed table
        assert lines[0].count("|") <= MAX_COLUMNS + 2
    assert "| weighted |" in chunks[-1]
    assert _table(["a", "b"], [(1, 2)]) == "| a | b |\n|---|---|\n| 1 | 2 |"  # narrow: as was


@pytest.mark.parametrize("k", [2, 10, 30])
def test_confusion_matrix_scales_with_the_classes(k, tmp_path):
    names = [f"class_name_{i:02d}" for i in range(k)]
    cm = np.diag(np.full(k, 5)) + 1
    path = plots.confusion_matrix(cm.tolist(), names, tmp_path / "cm.png")
    from PIL import Image

    width, height = Image.open(path).size
    assert width <= 1700  # fits the page without shrinking labels to nothing
    if k > 5:
        assert height > width  # the two matrices stacked, each as wide as the page allows
