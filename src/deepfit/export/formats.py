"""The four export formats: each turns the servable module (``servable.py``) into the
bytes of one file, with a dynamic batch size.

- onnx: torch.export, then torch's ONNX exporter from that ExportedProgram (the
  torch.export-based "dynamo" exporter, torch's default since 2.9; the TorchScript-based one
  is deprecated). Its inputs and output are named as in the input schema; the batch axis
  is called "batch"; an image model has "height" and "width" axes too.
- torchscript: ``torch.jit.trace``, checked on a second batch size (and image size); a
  tracer warning (a Python value made from a tensor, which would freeze one branch) is an
  error.
- exported-program: ``torch.export`` (a ``.pt2`` file for ``torch.export.load``).
- safetensors: the tensors of the servable module (the network's weights and the
  preprocessing constants); no graph: the code that uses them must rebuild the model.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from deepfit.data.bundle import Schema
from deepfit.errors import ConfigError, did_you_mean, one_of
from deepfit.export.failures import tracer_warning, unexportable
from deepfit.run import EXPORT_FILES
from deepfit.export.servable import (EXAMPLE_BATCH, HEIGHT, IMAGES, OUTPUT_NAMES, WIDTH,
                                     example_inputs, input_names, resizes)

FILE_NAMES = EXPORT_FILES  # format name -> the model's file in the export folder
FORMATS = tuple(FILE_NAMES)
BATCH = "batch"
DYNAMIC_AXES = {0: BATCH, 2: HEIGHT, 3: WIDTH}  # axes 2, 3 dynamic only for images that resize


def model_bytes(module: nn.Module, schema: Schema, fmt: str, run_name: str,
                metadata: dict[str, Any]) -> bytes:
    """The file of ``module`` in ``fmt``; ``metadata`` (the input schema) goes into the
    formats that hold text (ONNX metadata_props, safetensors metadata)."""
    inputs = example_inputs(schema, other_size=True)  # not the run's size: nothing specialises
    if fmt == "safetensors":
        tensors = {k: t.detach().cpu().contiguous().clone()
                   for k, t in module.state_dict().items()}
        return safetensors_bytes(tensors, metadata={"deepfit_input_schema":
                                                    json.dumps(metadata)})
    if fmt == "torchscript":
        return _torchscript(module, schema, inputs, run_name)
    with _quiet():
        try:
            program = torch.export.export(module, inputs, dynamic_shapes=_dynamic(schema),
                                          strict=False)
        except Exception as exc:  # noqa: BLE001 - any exporter failure is the model's
            raise unexportable(exc, fmt, run_name) from None
    if fmt == "exported-program":
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        return buffer.getvalue()
    return _onnx(program, schema, fmt, run_name, metadata)


def _onnx(program: Any, schema: Schema, fmt: str, run_name: str,
          metadata: dict[str, Any]) -> bytes:
    with _quiet():
        try:
            onnx_program = torch.onnx.export(program, dynamo=True, verbose=False,
                                             output_names=[OUTPUT_NAMES[schema.task]])
        except Exception as exc:  # noqa: BLE001
            raise unexportable(exc, fmt, run_name) from None
    proto = onnx_program.model_proto
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        for axis, name in DYNAMIC_AXES.items():  # the exporter's symbols (s31) renamed
            if axis < len(dims) and not dims[axis].HasField("dim_value"):
                dims[axis].dim_param = name
    entry = proto.metadata_props.add()
    entry.key, entry.value = "deepfit_input_schema", json.dumps(metadata)
    return proto.SerializeToString()


def _torchscript(module: nn.Module, schema: Schema, inputs: tuple, run_name: str) -> bytes:
    other = example_inputs(schema, EXAMPLE_BATCH + 3, other_size=False)  # the run's own size
    with _quiet(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            traced = torch.jit.trace(module, inputs, check_inputs=[other])
        except Exception as exc:  # noqa: BLE001
            raise unexportable(exc, "torchscript", run_name) from None
    for w in caught:
        if issubclass(w.category, torch.jit.TracerWarning):
            raise tracer_warning(str(w.message), w.filename, w.lineno, "torchscript", run_name)
    buffer = io.BytesIO()
    with _quiet():  # torch.jit.save's FutureWarning: TorchScript is still what LibTorch loads
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _dynamic(schema: Schema) -> dict[str, dict[int, Any]]:
    batch = torch.export.Dim(BATCH)
    if resizes(schema):  # any height and width, resized inside the graph
        return {IMAGES: {0: batch, 2: torch.export.Dim(HEIGHT, min=1),
                         3: torch.export.Dim(WIDTH, min=1)}}
    return {name: {0: batch} for name in input_names(schema)}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters print graphs, progress and advice to stdout / stderr and raise
    warnings meant for PyTorch developers; deepfit says what matters itself."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def check_format(fmt: str) -> str:
    """``fmt`` if it is a format name, else a ConfigError with a did-you-mean."""
    if fmt not in FILE_NAMES:
        raise ConfigError(f"unknown export format {fmt!r}{did_you_mean(fmt, FORMATS)}; use one "
                          f"of {one_of(FORMATS)}")
    return fmt
