"""A rendered report: it parses, every image is embedded, every section is present, and
`deepfit report` rebuilds it from the run directory alone."""

from html.parser import HTMLParser

import pytest

import deepfit
from deepfit.report import write_report
from deepfit.report.notes import wilson_interval


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.headings, self.links, self._in = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag in ("h2", "h3"):
            self._in = tag
        if tag in ("link", "script") or (tag == "a" and attrs.get("href")):
            self.links.append(tag)

    def handle_data(self, data):
        if self._in:
            self.headings.append(data.strip())

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    return deepfit.train(data="breast_cancer", out=tmp_path_factory.mktemp("r"), epochs=25,
                         progress=False, **{"eval.bootstrap": 200})


def test_html_report_is_self_contained_and_complete(binary_run):
    html = (binary_run.path / "report.html").read_text()
    page = _Collect()
    page.feed(html)
    page.close()
    for section in ("1. Data", "2. Method", "3. Training", "4. Evaluation", "5. Notes",
                    "Configuration", "Decision threshold", "Every rate of the confusion matrix",
                    "Confusion matrix", "ROC curve", "Precision-recall curve", "Calibration",
                    "Threshold tuning", "Class balance", "Layers"):
        assert section in page.headings, section
    import json

    summary = json.loads((binary_run.path / "summary.json").read_text())
    plots, inside = summary["plots"], summary["diagnostics"]["plots"]  # + inside the network
    learned = summary["learned"]["plots"]  # + what it learned (the last hidden layer)
    assert len(plots) == 6 and len(inside) == 2 and len(learned) == 1
    assert len(page.images) == len(plots) + len(inside) + len(learned)
    assert all(src.startswith("data:image/png;base64,") and len(src) > 5000 for src in page.images)
    assert not page.links  # nothing to fetch: opens offline
    assert "Diagnostic odds ratio (DOR)" in html and "test [95% CI]" in html


def test_markdown_report_links_existing_plots(binary_run):
    md = (binary_run.path / "report.md").read_text()
    for line in md.splitlines():
        if line.startswith("!["):
            assert (binary_run.path / line.split("(")[1].rstrip(")")).is_file(), line
    assert "## 4. Evaluation" in md and "| Accuracy |" in md


def test_report_is_rebuilt_from_the_run_directory(binary_run):
    path = binary_run.path / "report.html"
    before = path.read_text()
    path.unlink()
    assert write_report(binary_run.path) == path
    assert path.read_text() == before


def test_every_number_in_the_report_comes_from_metrics_json(binary_run):
    import json

    metrics = json.loads((binary_run.path / "metrics.json").read_text())
    html = (binary_run.path / "report.html").read_text()
    assert f"{metrics['test']['accuracy']:.4f}" in html
    assert f"{metrics['test']['rates']['binary']['npv']:.4f}" in html


def test_wilson_interval_matches_the_textbook_value():
    lo, hi = wilson_interval(30, 30)
    assert lo == pytest.approx(0.8865, abs=1e-3) and hi == 1.0
