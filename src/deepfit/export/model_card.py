"""model_card.md beside an export: what the model was trained on, how well it did (with
intervals), what it is for and not for, what it takes and returns, and how to run it.

Everything comes from the run's summary.json (as the report reads it, through the report's
own formatting helpers) and the export's input schema.
"""

from __future__ import annotations

from typing import Any, Optional

from deepfit.report.format import (balance_rows, describe_inputs, describe_split,
                                   describe_target, metric_table, threshold_sentence)

HOW_TO_RUN = {
    "onnx": """```python
import numpy as np, onnxruntime as ort
session = ort.InferenceSession("{file}")
{inputs_line}
{output} = session.run(None, inputs)[0]
print({output})
```""",
    "torchscript": """```python
import numpy as np, torch
model = torch.jit.load("{file}")
{inputs_line}
{output} = model(**inputs)
print({output})
```""",
    "exported-program": """```python
import numpy as np, torch
model = torch.export.load("{file}").module()
{inputs_line}
{output} = model(*inputs.values())  # positional, in the order of input_schema.json
print({output})
```""",
    "safetensors": """```python
from safetensors.torch import load_file
tensors = load_file("{file}")  # "model.*": the network's weights; "prepare.*": preprocessing
# No graph: rebuild the network (deepfit.load("RUN").model) and load the "model." tensors,
# or use deepfit itself: deepfit.load("RUN").predict(rows)
```""",
}

FORMAT_TEXT = {
    "onnx": "ONNX (torch.export-based exporter), for onnxruntime and other runtimes and "
            "languages",
    "torchscript": "TorchScript (traced), for LibTorch in C++ or torch.jit.load in Python",
    "exported-program": "a torch.export ExportedProgram (.pt2), for torch.export.load and "
                        "ahead-of-time compilation (AOTInductor)",
    "safetensors": "safetensors: tensors only (the network's weights and the preprocessing "
                   "constants), no graph",
}


def model_card(summary: dict[str, Any], schema: dict[str, Any],
               intended_use: Optional[str] = None) -> str:
    """The card's Markdown text."""
    data, model, metrics = summary["data"], summary["model"], summary["metrics"]
    out = [f"# Model card: {summary['name']}", "",
           f"Exported by deepfit {schema['deepfit']} as {FORMAT_TEXT[schema['format']]}, "
           f"file `{schema['file']}`; trained {summary['created']} (deepfit "
           f"{summary['versions']['deepfit']}, torch {summary['versions']['torch']}).", "",
           "## Data", "", f"- Source: {data['description']}",
           f"- Task: {data['task']}; target: {describe_target(data)}",
           f"- Rows and split: {describe_split(data)}",
           f"- Inputs: {describe_inputs(data)}",
           f"- Preprocessing (fitted on the training split only, inside the exported model): "
           f"{data['preprocessing']}"]
    if data.get("positive_class"):
        out.append(f"- Positive class: {data['positive_class']}")
    out += [f"- Note: {note}" for note in data.get("notes") or []]
    header, rows = balance_rows(data)
    if rows:
        out += ["", _table(header, rows)]
    out += ["", "## Model", "", f"- {model['description']}",
            f"- Trainable parameters: {model['parameters']:,}", "",
            "## Metrics", "", f"Held-out test split ({data['split_sizes']['test']} rows)"
            + (" and validation split" if metrics.get("val") else
               " (the model was fitted on its validation rows too)")
            + "; the interval is a bootstrap confidence interval over test rows where the run "
            "computed one.", "", _table(*metric_table(data["task"], metrics))]
    if data["task"] == "binary":
        out += ["", threshold_sentence(metrics) or
                f"Decision threshold {metrics.get('threshold', 0.5):.4g}."]
    out += ["", "## Intended use and limits", "", *_use(data, intended_use),
            "", "## Input", "", *_inputs(schema), "", "## Output", "", *_output(schema),
            "", "## How to run it", "", _snippet(schema), ""]
    return "\n".join(out)


def _use(data: dict[str, Any], intended_use: Optional[str]) -> list[str]:
    test = data["split_sizes"]["test"]
    lines = [f"- Trained and evaluated only on the data above ({data['name']}, {data['rows']} "
             f"rows); the metrics above come from {test} held-out rows of that same data. They do "
             "not carry over to data from another source, site, device or time without a new "
             "evaluation on such data."]
    if intended_use:
        lines.append(f"- Intended use, as stated by whoever exported it: {intended_use}")
    else:
        lines.append("- Intended use: not stated. This model is not validated for clinical "
                     "use or any decision about a person; it is a research result.")
    lines.append("- Inputs outside what training saw (unseen categories, gaps where training "
                 "had none, other image sizes or kinds of image) are encoded as the input "
                 "section says, without a warning: check them before calling the model.")
    return lines


def _inputs(schema: dict[str, Any]) -> list[str]:
    lines = ["Batch size dynamic (axis 0); an image model takes any height and width (axes "
             "2, 3) and resizes inside. Machine-readable: `input_schema.json`."]
    for entry in schema["inputs"]:
        shape = "(" + ", ".join(str(d) for d in entry["shape"]) + ")"
        lines += ["", f"**`{entry['name']}`**: {entry['dtype']} {shape}"]
        if entry["name"] == "images":
            size = "×".join(str(d) for d in entry["size"])
            lines += [f"- {entry['channels']}, layout {entry['layout']}, any height and width "
                      f"(resized to {size} inside), values 0-255",
                      f"- Resizing: {entry['resize']}", f"- Scaling: {entry['scaling']} "
                      f"(mean {entry['mean']}, std {entry['std']})"]
        elif entry["name"] == "numeric":
            lines += [f"- Columns, in order: {', '.join(f'`{c}`' for c in entry['columns'])}",
                      f"- A gap: {entry['missing']}", f"- Transform: {entry['transform']}"]
        else:
            lines += [f"- Codes: {entry['codes']}", f"- A gap: {entry['missing']}", "",
                      _table(["column (in order)", "categories (code 0, 1, ...)",
                              "code of a gap"],
                             [(f"`{c['name']}`", ", ".join(f"{i}: {v}" for i, v in
                                                           enumerate(c["categories"])),
                               c["missing_code"]) for c in entry["columns"]])]
    return lines


def _output(schema: dict[str, Any]) -> list[str]:
    out = schema["output"]
    shape = "(" + ", ".join(str(d) for d in out["shape"]) + ")"
    lines = [f"**`{out['name']}`**: {out['dtype']} {shape}: {out['meaning']}."]
    if "classes" in out:
        lines.append(f"- Classes, in order: {', '.join(str(c) for c in out['classes'])}")
    if "threshold" in out:
        lines.append(f"- The run predicts a positive when the probability is >= "
                     f"{out['threshold']:.4g}")
    return lines


def _snippet(schema: dict[str, Any]) -> str:
    fmt, out = schema["format"], schema["output"]["name"]
    inputs = []
    for entry in schema["inputs"]:
        width = entry["shape"][1:]
        if entry["dtype"] == "uint8":  # an example at the run's size (any size works)
            width = [width[0], *entry["size"]]
            value = f"np.zeros((1, {', '.join(map(str, width))}), dtype=np.uint8)"
        elif entry["dtype"] == "int64":
            value = f"np.zeros((1, {width[0]}), dtype=np.int64)"
        else:
            value = f"np.full((1, {width[0]}), np.nan, dtype=np.float32)"
        inputs.append(f'"{entry["name"]}": ' + (value if fmt == "onnx"
                                                else f"torch.from_numpy({value})"))
    line = "inputs = {" + ", ".join(inputs) + "}"
    code = HOW_TO_RUN[fmt].format(file=schema["file"], inputs_line=line, output=out)
    if fmt == "safetensors":
        return code
    return ("One batch of one example (numeric gaps, code 0, or a black image at the run's "
            "size); put your own values in the same shapes and types.\n\n" + code)


def _table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows])
