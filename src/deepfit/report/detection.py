"""The report of a detection run (report.html and report.md): data, model, training, and
the detection evaluation: mAP@0.5 and mAP@[.5:.95] with intervals, AP per class, PR
curves, true and predicted boxes on test images, confusion among matched boxes, missed
and false boxes by size, counts per image. None of the classification sections
(threshold, calibration, ROC, layer table) appear: they mean nothing for boxes."""

from __future__ import annotations

import re
from typing import Any

from deepfit.evaluate.bootstrap import format_ci
from deepfit.report.format import fmt, rerun_text
from deepfit.report.page import escape, figures_html, figures_markdown, page, table
from deepfit.run import RunDir

Section = tuple[str, list[tuple[str, Any]]]  # (title, [("p", text) | ("table", (h, rows))])


def _ci(m: dict, key: str) -> str:
    entry = m["ci"].get(key)
    if entry:
        return format_ci(entry)
    return fmt(m.get(key) if "." not in key else None, 3)


def _headline(metrics: dict, level: float) -> Section:
    rows = []
    for key, label in (("map50", "mAP@0.5"), ("map50_95", "mAP@[.5:.95]"), ("map75", "mAP@0.75")):
        rows.append((label, fmt(metrics["val"][key], 3), _ci(metrics["test"], key)))
    t = metrics["test"]
    text = (f"Test: {t['n_images']} images ({t['images_without_truth']} with nothing to find). "
            f"Intervals: {level:.0%} bootstrap over test images" if t["ci"] else
            "No intervals (eval.bootstrap=0).")
    # Why an interval shows "n/a": said once per metric, as the classification report does.
    gaps = [("p", f"No interval for {_ci_label(k)}: {e['reason']}.")
            for k, e in (t.get("ci") or {}).items() if e.get("reason")]
    return "Results", [("table", (["metric", "validation", "test [interval]"], rows)),
                       ("p", text)] + [("p", f"Undefined: {k}: {v}")
                                       for k, v in t["undefined"].items()] + gaps


def _ci_label(key: str) -> str:
    """``Trophozoite.ap50`` -> "AP@0.5 of Trophozoite"; ``map50`` -> "mAP@0.5"."""
    names = {"map50": "mAP@0.5", "map50_95": "mAP@[.5:.95]", "map75": "mAP@0.75",
             "ap50": "AP@0.5", "ap50_95": "AP@[.5:.95]", "ap75": "AP@0.75"}
    owner, _, metric = key.rpartition(".")
    label = names.get(metric, metric).replace("_", " ")
    return f"{label} of {owner}" if owner else label


def _per_class(t: dict) -> Section:
    rows = [(name, _ci(t, f"{name}.ap50"), fmt(c["ap50_95"], 3), c["true_boxes"],
             c["predicted_boxes"], c["images_with"]) for name, c in t["per_class"].items()]
    return "AP per class (test)", [("table", (["class", "AP@0.5 [interval]", "AP@[.5:.95]",
                                               "true boxes", "predicted", "images with"], rows))]


def _counts(t: dict) -> Section:
    c = t["counts"]
    rows = [(name, v["true_total"], v["predicted_total"], fmt(v["mae"], 2), fmt(v["bias"], 2),
             fmt(v["correlation"], 3)) for name, v in c["per_class"].items()]
    items: list = [("p", f"A box counts when its score is at least {c['threshold']:.3g} "
                         f"({c['threshold_how']}).")]
    items.append(("table", (["class", "true", "predicted", "MAE per image", "bias",
                             "correlation"], rows)))
    r = c.get("ratio")
    if r:
        items.append(("p", f"{r['numerator']} per {r['denominator']} (pooled): true "
                           f"{fmt(r['pooled_true'], 3)}, predicted {fmt(r['pooled_predicted'], 3)};"
                           f" per image ({r['images']} images with both): MAE "
                           f"{fmt(r['mae'], 3)}, bias {fmt(r['bias'], 3)}."))
    return "Counts per image (test)", items


def _confusion(t: dict) -> Section:
    c = t["confusion"]
    rows = [(f"true {label}", *row) for label, row in zip(c["labels"], c["matrix"])]
    return "Confused classes among matched boxes (test)", [
        ("p", f"Boxes scoring at least {c['threshold']:.3g} matched at IoU >= {c['iou']} to a "
              "true box of any class; 'none': a false box (row) or a missed one (column)."),
        ("table", (["", *(f"predicted {x}" for x in c["labels"])], rows))]


def _by_size(t: dict) -> Section:
    b = t["by_size"]
    rows = [(name, bin_["name"], v["true"][i], v["missed"][i], v["predicted"][i], v["false"][i])
            for name, v in b["per_class"].items() for i, bin_ in enumerate(b["bins"])]
    return "Missed and false boxes by size (test)", [
        ("p", f"Size bins: {b['how']}."),
        ("table", (["class", "size", "true", "missed", "predicted", "false"], rows))]


def _about(s: dict) -> Section:
    d, m, tr = s["data"], s["model"], s["training"]
    splits = ", ".join(f"{k} {v['images']} images ({v['negative_images']} NEG)"
                       for k, v in d["splits"].items())
    items = [("p", f"Data: {d['description']}; classes {', '.join(d['classes'])}; {splits}"
                   + (f"; whole {d['grouped_by']}s kept in one split" if d["grouped_by"] else "")
                   + f". Images letterboxed to {d['image_size'][1]}x{d['image_size'][0]}.")]
    items += [("p", f"Data note: {n}") for n in d["notes"]]
    items.append(("p", "Training augmentation: " + "; ".join(d["augment"]) + "."))
    items.append(("p", f"Model: {'; '.join(m['notes'])}; {m['parameters']:,} parameters. "
                       "The layer table and FLOPs are not shown for detectors (their forward "
                       "takes lists of images, not a batch tensor)."))
    best = tr["best_epoch"]
    items.append(("p", f"Training: {tr['epochs_run']} of {tr['epochs']} epochs in "
                       f"{tr['seconds']:.1f} s on {tr['device']} ({tr['precision']}), batch "
                       f"{tr['batch_size']}, {tr['optimizer']} lr {tr['lr']:g}, "
                       f"{tr['schedule']} schedule; the kept weights are those of epoch {best}, "
                       f"best {tr['monitor']}" + (f"; {tr['stop_reason']}" if tr["stop_reason"]
                                                   else "") + "."))
    rows = [(r["epoch"], fmt(r["train_loss"]), fmt(r["val_map50"]), f"{r['lr']:.3g}")
            for r in tr["history"]]
    items.append(("table", (["epoch", "training loss", "validation mAP@0.5", "lr"], rows)))
    return "Data, model and training", items


def sections(summary: dict, metrics: dict) -> list[Section]:
    t = metrics["test"]
    return [_headline(metrics, summary["evaluation"]["ci_level"]), _per_class(t), _counts(t),
            _confusion(t), _by_size(t), _about(summary)]


def _html(title: str, parts: list[Section], plots: dict, rd: RunDir) -> str:
    body = [f"<h1>{escape(title)}</h1>"]
    for head, items in parts:
        body.append(f"<h2>{escape(head)}</h2>")
        for kind, value in items:
            body.append(table(*value) if kind == "table" else f"<p>{escape(value)}</p>")
    body.append("<h2>Precision-recall curves and boxes on test images</h2>")
    body.append(figures_html(plots, rd.path, None if plots else "eval.plots=false"))
    rerun = re.sub(r"`([^`]*)`", r"<code>\1</code>", escape(rerun_text({}, str(rd.config))))
    body.append(f"<h2>Configuration</h2><p>{rerun}</p>"
                f"<pre>{escape(rd.read_config_text())}</pre>")
    return page(title, "".join(body))


def _markdown(title: str, parts: list[Section], plots: dict, config_path: Any) -> str:
    lines = [f"# {title}"]
    for head, items in parts:
        lines += ["", f"## {head}"]
        for kind, value in items:
            if kind == "table":
                header, rows = value
                lines += ["", "| " + " | ".join(map(str, header)) + " |",
                          "|" + "---|" * len(header)]
                lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
            else:
                lines += ["", str(value)]
    lines += ["", "## Precision-recall curves and boxes on test images"]
    lines += figures_markdown(plots, None if plots else "eval.plots=false")
    lines += ["", "## Configuration", "", rerun_text({}, str(config_path))]
    return "\n".join(lines) + "\n"


def write_detection_report(rd: RunDir, summary: dict) -> Any:
    """report.html and report.md of a detection run; returns the HTML path."""
    metrics = rd.read_json(rd.metrics)
    parts = sections(summary, metrics)
    plots = {title: f"plots/{name}" for title, name in summary["plots"].items()}
    title = f"deepfit detection run {summary['name']}"
    rd.write_text(rd.report, _html(title, parts, plots, rd))
    rd.write_text(rd.report_md, _markdown(title, parts, plots, rd.config))
    return rd.report
