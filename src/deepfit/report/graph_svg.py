"""The computational graph (``deepfit.models.graph``) drawn as an inline SVG for the HTML
report: a traced graph top to bottom in layers (a node one row below its lowest input; skip
connections curve along the right), a module hierarchy as an indented tree."""

from __future__ import annotations

from typing import Any

from deepfit.report.page import escape

ROW, BOX_W, BOX_H, GAP, MARGIN = 34, 210, 24, 16, 12
COLOURS = {"input": "#dbeafe", "output": "#dbeafe", "layer": "#fef3c7", "function": "#e5e7eb",
           "method": "#e5e7eb", "parameter": "#f3e8ff", "module": "#e0f2fe"}


def graph_svg(graph: dict[str, Any]) -> str:
    """The SVG text ("" for an empty graph)."""
    nodes, edges = graph.get("nodes") or [], graph.get("edges") or []
    if not nodes:
        return ""
    if graph["method"] == "torch.fx":
        places = _layered(nodes, edges)
    else:
        places = _tree(nodes, edges)
    width = max(x for x, _ in places.values()) + BOX_W + 2 * MARGIN + 60
    height = max(y for _, y in places.values()) + BOX_H + 2 * MARGIN
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' font-family='sans-serif' font-size='11'>",
             "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='6' "
             "markerHeight='6' orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='#6b7280'/>"
             "</marker></defs>"]
    tree = graph["method"] != "torch.fx"
    for a, b in edges:
        parts.append(_edge(places[a], places[b], tree))
    for node in nodes:
        x, y = places[node["id"]]
        fill = COLOURS.get(node["kind"], "#ffffff")
        label = node["label"] if len(node["label"]) <= 34 else node["label"][:33] + "…"
        parts.append(f"<rect x='{x}' y='{y}' width='{BOX_W}' height='{BOX_H}' rx='4' "
                     f"fill='{fill}' stroke='#9ca3af'><title>{escape(node['label'])}</title>"
                     f"</rect><text x='{x + 6}' y='{y + 16}'>{escape(label)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _layered(nodes: list[dict], edges: list[list[int]]) -> dict[int, tuple[int, int]]:
    """Each node one row below its lowest input (nodes come in topological order); nodes of
    one row side by side."""
    inputs: dict[int, list[int]] = {}
    for a, b in edges:
        inputs.setdefault(b, []).append(a)
    depth: dict[int, int] = {}
    for node in nodes:
        depth[node["id"]] = max((depth[a] + 1 for a in inputs.get(node["id"], []) if a in depth),
                                default=0)
    columns: dict[int, int] = {}
    places = {}
    for node in nodes:
        d = depth[node["id"]]
        col = columns.get(d, 0)
        columns[d] = col + 1
        places[node["id"]] = (MARGIN + col * (BOX_W + GAP), MARGIN + d * ROW)
    return places


def _tree(nodes: list[dict], edges: list[list[int]]) -> dict[int, tuple[int, int]]:
    """One node a row, indented by its depth in the hierarchy."""
    parent = {b: a for a, b in edges}
    level: dict[int, int] = {}
    places = {}
    for row, node in enumerate(nodes):
        level[node["id"]] = level[parent[node["id"]]] + 1 if node["id"] in parent else 0
        places[node["id"]] = (MARGIN + 18 * level[node["id"]], MARGIN + row * ROW)
    return places


def _edge(a: tuple[int, int], b: tuple[int, int], tree: bool) -> str:
    style = "stroke='#6b7280' fill='none' marker-end='url(#arrow)'"
    if tree:  # an elbow from the parent's left side down to the child
        x0, y0 = a[0] + 8, a[1] + BOX_H
        return f"<path d='M{x0},{y0} V{b[1] + BOX_H / 2} H{b[0]}' {style}/>"
    x0, y0 = a[0] + BOX_W / 2, a[1] + BOX_H
    x1, y1 = b[0] + BOX_W / 2, b[1]
    if b[1] - a[1] <= ROW or a[0] != b[0]:  # the next row (or a branch): straight
        return f"<path d='M{x0},{y0} L{x1},{y1}' {style}/>"
    # a skip connection: out of the right side, down, back into the right side
    xr = a[0] + BOX_W
    bend = xr + 20 + min(40, (b[1] - a[1]) / ROW * 6)
    return (f"<path d='M{xr},{a[1] + BOX_H / 2} C{bend},{a[1] + BOX_H / 2} {bend},"
            f"{b[1] + BOX_H / 2} {b[0] + BOX_W},{b[1] + BOX_H / 2}' {style}/>")
