"""What an exporter's failure means, in one line that names the operation.

torch.export, the ONNX exporter and the TorchScript tracer fail with pages of text (the
graph so far, advice for PyTorch developers). The user needs the one thing in it they can
change: the operation ONNX has no function for (``aten.linalg_matrix_exp``), or the line of
their ``forward`` that branches on a tensor's value (``if x.sum() > 0:``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from deepfit.errors import ModelError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# 'No ONNX function found for <OpOverload(op='aten.linalg_matrix_exp', overload='default')>'
_NO_ONNX_FUNCTION = re.compile(r"No ONNX function found for <OpOverload\(op='([^']+)'")
# The legacy exporter: "Exporting the operator 'aten::fft_fft' to ONNX opset version 17 ..."
_LEGACY_OPERATOR = re.compile(r"Exporting the operator '([^']+)' to ONNX")
# torch.export names the user's line: 'File "net.py", line 7, in forward\n    if x.sum() > 0:'
_USER_LINE = re.compile(r'File "([^"]+)", line (\d+), in (\w+)\n\s+(\S[^\n]*)')
_UNSUPPORTED_OP = re.compile(r"(?:unsupported|not supported)[^\n]*?'?((?:aten|prims)[.:]{1,2}\w+)")


def unexportable(exc: BaseException, fmt: str, run_name: str) -> ModelError:
    """A ``ModelError`` naming the operation that stopped ``fmt``'s exporter."""
    text = _ANSI.sub("", _chain_text(exc))
    return ModelError(f"cannot export the model of '{run_name}' as {fmt}: "
                      f"{_what_failed(text, fmt)}")


def tracer_warning(message: str, filename: str, lineno: int, fmt: str,
                   run_name: str) -> ModelError:
    """The TorchScript tracer's warning that it would record one branch or one value for
    every input (a Python bool or number made from a tensor): an export that would be wrong
    for other inputs is refused, not written."""
    first = str(message).splitlines()[0].rstrip(".")
    where = f"{Path(filename).name} line {lineno}"
    code = _source_line(filename, lineno)
    parts = Path(filename).parts
    fix = ("use tensor operations (torch.where) instead of Python values made from tensors")
    if "site-packages" in parts:  # an installed library's code, not the user's to change
        package = parts[parts.index("site-packages") + 1:][:1] or ("a package",)
        fix = (f"that code is in the installed package '{package[0]}', not yours: export "
               "with --format onnx or exported-program, which record it correctly")
    return ModelError(f"cannot export the model of '{run_name}' as {fmt}: at {where}"
                      f"{f' (`{code}`)' if code else ''} the tracer warns: {first}; the "
                      f"traced graph would be wrong for other inputs: {fix}")


def _what_failed(text: str, fmt: str) -> str:
    other = "exported-program" if fmt != "exported-program" else "torchscript"
    op = _NO_ONNX_FUNCTION.search(text) or _LEGACY_OPERATOR.search(text)
    if op:
        return (f"ONNX has no function for the operation '{op.group(1)}' in the model's "
                f"forward; replace that operation, or use --format {other}")
    user = _USER_LINE.search(text)
    if user and "data-dependent" in text:
        return (f"the forward branches on a tensor's value at {Path(user.group(1)).name} line "
                f"{user.group(2)} (`{user.group(4).strip()}`), which a graph cannot hold; use "
                "torch.where (or torch.cond) instead of a Python if on tensor values")
    op = _UNSUPPORTED_OP.search(text)
    if op:
        return f"the operation '{op.group(1)}' is not supported by the {fmt} exporter"
    where = (f" (at {Path(user.group(1)).name} line {user.group(2)}: "
             f"`{user.group(4).strip()}`)") if user else ""
    return f"{_summary(text)}{where}"


def _summary(text: str) -> str:
    """The first meaningful line: torch.onnx's "## Exception summary" entry, else the
    error's own first line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "## Exception summary" in lines:
        rest = lines[lines.index("## Exception summary") + 1:]
        if rest:
            return rest[0].split(">: ", 1)[-1]
    return lines[0] if lines else "the exporter failed without a message"


def _chain_text(exc: Optional[BaseException]) -> str:
    """The messages of an exception and its causes, outermost first."""
    seen: list[str] = []
    while exc is not None and len(seen) < 8:
        seen.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(seen)


def _source_line(filename: str, lineno: int) -> str:
    try:
        return Path(filename).read_text(encoding="utf-8").splitlines()[lineno - 1].strip()
    except (OSError, IndexError, UnicodeDecodeError):
        return ""
