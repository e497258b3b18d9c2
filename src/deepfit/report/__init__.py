"""The report: report.html (self-contained) and report.md, built from a run directory's
plain files, so ``deepfit report RUN`` rebuilds it without retraining."""

from __future__ import annotations

from pathlib import Path

from deepfit.report.html import render_html
from deepfit.report.markdown import render_markdown
from deepfit.report.notes import warnings_for
from deepfit.run import RunDir


def write_report(run_dir: Path) -> Path:
    """Write the run's report.html and report.md from its summary and config (both read
    through ``RunDir``); returns the HTML path."""
    rd = RunDir(run_dir)
    summary = rd.read_summary()
    if summary.get("task") == "detection":  # its own sections (no threshold, ROC, ...)
        from deepfit.report.detection import write_detection_report
        return write_detection_report(rd, summary)
    config_yaml = rd.read_config_text()
    notes = warnings_for(summary)
    tuning = rd.read_json(rd.tuning) if rd.tuning.is_file() else None  # a tuned run
    # Atomic: rebuilding the report of a finished run never leaves half a file behind.
    rd.write_text(rd.report, render_html(summary, rd, notes, config_yaml, tuning))
    rd.write_text(rd.report_md, render_markdown(summary, notes, config_yaml, tuning,
                                                       str(rd.config)))
    return rd.report


__all__ = ["write_report"]
