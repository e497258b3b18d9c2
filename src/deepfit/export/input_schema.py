"""input_schema.json: what the exported model takes and returns, machine-readable.

Tables: ``numeric`` (float32, NaN for a gap) and ``categorical`` (int64 codes into the
category lists learned in training) matrices, columns in the listed order. Images: uint8
(N, C, H, W) of any H and W, which the graph stretches or letterboxes to the run's size as the
run did. The output: P(positive class), class or label probabilities,
or regression values in the target's units.
"""

from __future__ import annotations

from typing import Any

from deepfit.data.bundle import Schema
from deepfit.data.transforms import MISSING_CATEGORY, SCALING_WORDS, scaling_name
from deepfit.export.image_resize import PAD
from deepfit.export.servable import (CATEGORICAL, HEIGHT, IMAGES, NUMERIC, OUTPUT_NAMES,
                                     WIDTH, input_names)
from deepfit.version import __version__

UNKNOWN_CODE = -1


def input_schema(schema: Schema, threshold: float, fmt: str, file_name: str,
                 run_name: str) -> dict[str, Any]:
    """The schema file's content (plain JSON values)."""
    inputs = _image_inputs(schema) if schema.image is not None else _table_inputs(schema)
    return {"run": run_name, "deepfit": __version__, "format": fmt, "file": file_name,
            "kind": schema.kind, "task": schema.task, "batch_axis": "dynamic (axis 0)",
            "inputs": inputs, "output": _output(schema, threshold)}


def _table_inputs(schema: Schema) -> list[dict[str, Any]]:
    pre = schema.preprocessor
    out = []
    for name in input_names(schema):
        if name == NUMERIC:
            out.append({"name": NUMERIC, "dtype": "float32", "shape": ["batch", len(pre.numeric_)],
                        "columns": list(pre.numeric_),
                        "missing": "NaN: filled with the training median"
                                   + (", plus a missing-indicator input for "
                                      f"{list(pre.indicators_)}" if pre.indicators_ else ""),
                        "transform": _numeric_steps(pre.state_dict())})
        else:
            columns = []
            for col in pre.categorical_:
                cats = list(pre.categories_[col])
                gap = cats.index(MISSING_CATEGORY) if MISSING_CATEGORY in cats else UNKNOWN_CODE
                columns.append({"name": col, "categories": cats, "missing_code": gap})
            out.append({"name": CATEGORICAL, "dtype": "int64",
                        "shape": ["batch", len(pre.categorical_)], "columns": columns,
                        "codes": "the position of the value in the column's categories "
                                 "(0-based); any other code (e.g. -1) is a category not seen "
                                 "in training: all zeros in its one-hot inputs, as deepfit "
                                 "encodes an unseen category",
                        "missing": "the code of the category "
                                   f"'{MISSING_CATEGORY}' where training had gaps (missing_code), "
                                   "else an unseen category (-1)"})
    return out


def _numeric_steps(state: dict[str, Any]) -> str:
    steps = ["log2(x + 1)"] if state["feature_transform"] == "log2p1" else []
    scaling = scaling_name(state["standardize"])
    if scaling != "none":
        steps.append(SCALING_WORDS[scaling])
    return "; ".join(steps) or "none (used as given)"


# Measured by tests/export/test_export_formats.py (the largest difference over its PNG files
# of six other sizes, a CNN and a ResNet, torch 2.14.1); docs/deploy.md gives the same numbers.
# test_export_letterbox.py checks that a letterboxing run stays within the same tolerance.
PIL_DIFFERENCE = ("at most 0.002 in deepfit's tests (resized pixels differ by at most 1 of 255; "
                  "a model more sensitive to one grey level can differ more)")


def _image_inputs(schema: Schema) -> list[dict[str, Any]]:
    spec = schema.image
    height, width = spec.size
    size = f"{height}×{width}"
    if spec.resize == PAD:
        how = (f"letterboxed into {size} (data.resize=pad, as deepfit does): scaled by "
               f"min({height}/height, {width}/width) with the aspect ratio kept, the sides "
               "rounded (half to even, at least 1 pixel), resampled with antialiased bilinear "
               "(torch's, as deepfit resizes arrays of images), rounded to uint8 and centred "
               "on black (0; an odd pixel of border goes below / right); in ONNX a picture "
               "whose letterboxed width rounds to 1 pixel is resampled slightly differently "
               "by onnxruntime (docs/deploy.md)")
    else:
        how = (f"stretched to {size} with antialiased bilinear resampling (torch's, as "
               "deepfit resizes arrays of images) and rounded to uint8")
    resize = (f"inside the graph: images of any height and width are {how}; images already "
              f"{size} pass unchanged. deepfit resizes image files with PIL, whose resampling "
              "differs slightly: probabilities differ from deepfit's on the same files by "
              f"{PIL_DIFFERENCE}")
    shape = ["batch", spec.channels, HEIGHT, WIDTH]
    return [{"name": IMAGES, "dtype": "uint8", "shape": shape,
             "layout": "NCHW", "channels": "RGB" if spec.channels == 3 else "grayscale",
             "size": [height, width], "resize": resize,
             "scaling": "divided by 255, then normalised per channel inside the graph",
             "mean": list(spec.mean), "std": list(spec.std)}]


def _output(schema: Schema, threshold: float) -> dict[str, Any]:
    task, names = schema.task, list(schema.class_names)
    name = OUTPUT_NAMES[task]
    if task == "regression":
        return {"name": name, "dtype": "float32", "shape": ["batch"],
                "meaning": f"predicted '{schema.target.column}' in its own units"}
    if task == "binary":
        return {"name": name, "dtype": "float32", "shape": ["batch"],
                "meaning": f"P('{names[1]}'), the probability of the positive class",
                "classes": names, "positive_class": names[1], "threshold": threshold}
    what = "label" if task == "multilabel" else "class"
    out = {"name": name, "dtype": "float32", "shape": ["batch", len(names)],
           "meaning": f"the probability of each {what}, in the order of 'classes'"
                      + (" (each label on its own)" if task == "multilabel" else
                         " (rows sum to 1)"), "classes": names}
    if task == "multilabel":
        out["threshold"] = threshold
    return out
