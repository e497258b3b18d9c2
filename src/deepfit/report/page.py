"""The HTML pieces every deepfit page shares (report, comparison, cross-validation): one
stylesheet, escaping, tables, embedded images and the page shell. Pages are self-contained:
images are inlined as base64, nothing is fetched."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Optional

CSS = """
body{font:15px/1.5 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d2330;
max-width:1040px;margin:0 auto;padding:24px 28px 64px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 10px;padding-bottom:4px;
border-bottom:2px solid #e6e9ef}h3{font-size:16px;margin:22px 0 8px}
.sub{color:#5b6475;margin:0 0 18px}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #e1e5ec;border-radius:8px;padding:10px 16px;min-width:150px}
.card b{display:block;font-size:22px}.card span{color:#5b6475;font-size:13px}
.wide{overflow-x:auto;max-width:100%;margin:8px 0 16px}
table{border-collapse:collapse;font-size:14px}
th,td{border-bottom:1px solid #e6e9ef;padding:5px 10px;text-align:left;background:#fff}
th{background:#f5f7fa;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}.wide tr>:first-child{position:sticky;left:0;z-index:1;white-space:nowrap;
box-shadow:1px 0 0 #e6e9ef}dd ul{margin:0;padding-left:18px}summary{cursor:pointer;color:#5b6475}
img{max-width:100%;border:1px solid #eef0f4;border-radius:6px;margin:6px 0 14px}
.note{background:#fff8e6;border-left:4px solid #f0b429;padding:8px 12px;margin:6px 0}
pre{background:#f5f7fa;padding:12px;border-radius:6px;overflow-x:auto;font-size:12.5px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px}dt{color:#5b6475}dd{margin:0}
"""



def escape(value: Any) -> str:
    return html.escape(str(value))


def table(header: list[str], rows: list[tuple], numeric_from: int = 1) -> str:
    """An HTML table; columns from ``numeric_from`` on are right-aligned numbers.

    Inside a container that scrolls sideways when the table is wider than the page (e.g.
    the confusion-matrix rates of 10 or more classes), its first column staying in view."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f"<td class='num'>{escape(c)}</td>" if i >= numeric_from else f"<td>{escape(c)}</td>"
        for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<div class='wide'><table><tr>{head}</tr>{body}</table></div>"


def png(data: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG bytes inlined."""
    encoded = base64.b64encode(data).decode("ascii")
    return f"<img alt='{escape(alt)}' src='data:image/png;base64,{encoded}'>"


def page(title: str, body: str) -> str:
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>")


def figures_html(plots: dict[str, str], run_path: Path, reason: Optional[str]) -> str:
    """A titled picture per ``{title: path in the run}`` and, when some are missing, why."""
    parts = [f"<h4>{escape(title)}</h4>" + png((run_path / rel).read_bytes(), title)
             for title, rel in plots.items()]
    if reason:
        parts.append(f"<p class='sub'>Not drawn: {escape(reason)}.</p>")
    return "".join(parts)


def figures_markdown(plots: dict[str, str], reason: Optional[str]) -> list[str]:
    """The Markdown report's counterpart of ``figures_html``."""
    out = [line for title, rel in plots.items() for line in ("", f"![{title}]({rel})")]
    return out + (["", f"Not drawn: {reason}."] if reason else [])
