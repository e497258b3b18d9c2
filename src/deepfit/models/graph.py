"""The computational graph of a model as plain values: nodes and edges, traced with torch.fx
(every layer call, function and method, with the skip connections of a residual network), or,
where tracing fails (data-dependent control flow in ``forward``), the module hierarchy,
with the reason."""

from __future__ import annotations

from typing import Any

from torch import fx, nn

MAX_NODES = 400  # larger graphs are cut (the summary says how many nodes were left out)


def model_graph(model: nn.Module) -> dict[str, Any]:
    """``{"method": "torch.fx" | "module hierarchy", "reason": why not traced or None,
    "nodes": [{"id", "label", "kind"}], "edges": [[from, to]], "left_out": n}``.

    ``kind``: input, layer (a module call), function, method, parameter, output; in the
    hierarchy, module (with children) or layer (a leaf).

    Example:
        >>> from deepfit.models.mlp import MLP
        >>> g = model_graph(MLP(3, 1, hidden=(4,)))
        >>> g["method"], [n["label"] for n in g["nodes"]][:3]
        ('torch.fx', ['input', 'flatten', 'net.0: Linear'])
    """
    try:
        traced = fx.symbolic_trace(model)
    except Exception as exc:  # untraceable forward: the hierarchy, and say why
        return _hierarchy(model, (str(exc).splitlines() or [type(exc).__name__])[0][:200])
    modules = dict(traced.named_modules())
    nodes, edges, ids = [], [], {}
    for node in traced.graph.nodes:
        if len(nodes) >= MAX_NODES:
            break
        ids[node.name] = len(nodes)
        nodes.append({"id": len(nodes), "label": _label(node, modules), "kind": _kind(node)})
        for source in node.all_input_nodes:
            if source.name in ids:
                edges.append([ids[source.name], ids[node.name]])
    total = len(traced.graph.nodes)
    return {"method": "torch.fx", "reason": None, "nodes": nodes, "edges": edges,
            "left_out": total - len(nodes)}


def _kind(node: fx.Node) -> str:
    return {"placeholder": "input", "call_module": "layer", "call_function": "function",
            "call_method": "method", "get_attr": "parameter", "output": "output"}[node.op]


def _label(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "placeholder":
        return "input" if node.name in ("x", "input", "inputs") else f"input {node.name}"
    if node.op == "output":
        return "output"
    if node.op == "call_module":
        return f"{node.target}: {type(modules[str(node.target)]).__name__}"
    if node.op == "call_function":
        name = getattr(node.target, "__name__", str(node.target))
        return {"add": "+", "iadd": "+", "mul": "×", "getitem": "[ ]"}.get(name, name)
    return str(node.target)


def _hierarchy(model: nn.Module, reason: str) -> dict[str, Any]:
    """The module tree: an edge from each module to each of its children."""
    nodes, edges, ids = [], [], {}
    for name, module in model.named_modules():
        if len(nodes) >= MAX_NODES:
            break
        ids[name] = len(nodes)
        children = list(module.children())
        nodes.append({"id": len(nodes), "label": f"{name or 'model'}: {type(module).__name__}",
                      "kind": "module" if children else "layer"})
        parent = name.rsplit(".", 1)[0] if "." in name else ("" if name else None)
        if parent is not None and parent in ids:
            edges.append([ids[parent], ids[name]])
    total = sum(1 for _ in model.modules())
    return {"method": "module hierarchy", "reason": reason, "nodes": nodes, "edges": edges,
            "left_out": total - len(nodes)}


def graph_of(model: nn.Module) -> dict[str, Any]:
    """``model_graph`` that never raises (a summary must not break a run)."""
    try:
        return model_graph(model)
    except Exception as exc:
        return {"method": "none", "reason": str(exc).splitlines()[0][:200] if str(exc) else
                type(exc).__name__, "nodes": [], "edges": [], "left_out": 0}


__all__ = ["graph_of", "model_graph"]
