"""The report: report.html (self-contained) and report.md, built from a run directory's
plain files, so ``deepfit report RUN`` rebuilds it without retraining."""

from __future__ import annotations

import json
from pathlib import Path

from deepfit.errors import RunError
from deepfit.files import atomic_write
from deepfit.report.html import render_html
from deepfit.report.markdown import render_markdown
from deepfit.report.notes import warnings_for


def write_report(run_dir: Path) -> Path:
    """Write report.html and report.md from ``summary.json`` and ``config.yaml``; returns the
    HTML path."""
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise RunError(f"'{run_dir}' has no summary.json; is it a finished deepfit run?")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    config_yaml = (run_dir / "config.yaml").read_text(encoding="utf-8")
    notes = warnings_for(summary)
    html_path = run_dir / "report.html"
    html = render_html(summary, run_dir, notes, config_yaml).encode("utf-8")
    markdown = render_markdown(summary, notes, config_yaml).encode("utf-8")
    # Atomic: rebuilding the report of a finished run never leaves half a file behind.
    atomic_write(html_path, lambda fh: fh.write(html))
    atomic_write(run_dir / "report.md", lambda fh: fh.write(markdown))
    return html_path


__all__ = ["write_report"]
