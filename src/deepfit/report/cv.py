"""cv.html: a cross-validation summary, rendered from plain values."""

from __future__ import annotations

import io
from typing import Any

from deepfit.evaluate.plots import overlaid_curves
from deepfit.report.format import LABELS, collapsed_folds_line, fmt, mean_sd_cell
from deepfit.report.page import escape, page, png, table


def render_cv(result: dict[str, Any], histories: dict[str, list[dict]]) -> str:
    """cv.html: the summary (mean ± sd), the per-fold table and the folds' curves.

    ``result`` is cv.json's content (``CVResult.to_dict()``), so a cv folder written by any
    version renders; ``histories`` maps each fold's name to its per-epoch rows."""
    keys = list(result["summary"])
    total = len(result["per_fold"])
    rows = [(LABELS.get(k, k), mean_sd_cell(s, total)) for k, s in result["summary"].items()]
    folds = [(f["fold"] + (" (collapsed)" if f.get("collapsed") else ""),
              *(fmt(f.get(k)) for k in keys)) for f in result["per_fold"]]
    main = "r2" if result["task"] == "regression" else "accuracy"
    buffer = io.BytesIO()
    overlaid_curves(histories, main, buffer)
    how = (f"{result['folds']}-fold" + (f", repeated {result['repeats']} times"
                                        if result["repeats"] > 1 else "")
           + (f", grouped by '{result['groups']}'" if result["groups"] else "")
           + (", stratified by class" if result["task"] in ("binary", "multiclass") else ""))
    body = (f"<h1>Cross-validation</h1><p class='sub'>{escape(result['data'])} &middot; "
            f"{escape(result['task'])} &middot; {escape(how)}</p>"
            "<p>Each fold is a full run: preprocessing fitted on its training part, early "
            "stopping on a validation part carved from it, evaluated once on the held-out "
            "fold.</p>" + (f"<div class='note'>{escape(collapsed)}</div>"
                           if (collapsed := collapsed_folds_line(result)) else "")
            + "<h2>Summary (test folds)</h2>"
            + table(["metric", f"mean ± sd over {total} folds"], rows)
            + "<h2>Per fold</h2>" + table(["fold", *(LABELS.get(k, k) for k in keys)], folds)
            + "<h2>Learning curves</h2>" + png(buffer.getvalue(), "Validation curves of the folds"))
    return page("deepfit cross-validation", body)
