"""What the server does with a request, without HTTP: rows or uploaded images in, the run's
predictions out, through ``Run.predictions`` (the code path of ``deepfit predict``).

One ``threading.Lock`` serialises the model: requests arrive on many threads, the network
runs one batch at a time (no batching across requests; a request's own rows are one batch).
"""

from __future__ import annotations

import math
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from deepfit.data.images.decode import IMAGE_SUFFIXES, Unreadable, bomb_guard, decode_bytes
from deepfit.data.images.decode import open_image
from deepfit.errors import DataError, DeepfitWarning
from deepfit.evaluate.predict import Predictions
from deepfit.result import Run
from deepfit.version import __version__

ORIGIN = "request"  # how error and warning lines name the input of a request
# PIL's format names of the suffixes deepfit reads (IMAGE_SUFFIXES)
_FORMAT_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif",
                  "WEBP": ".webp"}


class TooLarge(DataError):
    """More rows or images than the server takes per request (HTTP 413)."""


class Predictor:
    """A loaded run and a lock: health, schema and predictions as plain JSON-able dicts."""

    def __init__(self, run: Run, max_rows: int = 10_000) -> None:
        self.run, self.max_rows = run, max_rows
        self.kind = run.schema.kind  # "table" or "image"
        self._lock = threading.Lock()

    # -- descriptions ----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        run = self.run
        return {"status": "ok", "run": str(run.path), "task": run.task, "input": self.kind,
                "model": str(run.config.model.name), "deepfit_version": __version__}

    def schema(self) -> dict[str, Any]:
        """The input the model takes and the output it gives."""
        run, schema = self.run, self.run.schema
        out: dict[str, Any] = {"input": self.kind, "task": run.task}
        if schema.image is not None:
            spec = schema.image
            out.update(size=list(spec.size), channels=spec.channels, resize=spec.resize,
                       formats=list(IMAGE_SUFFIXES),
                       request="multipart/form-data, one or more parts named 'files'")
        else:
            pre = schema.preprocessor
            numeric = set(pre.numeric_)
            out["columns"] = [{"name": c, "type": "number"} if c in numeric else
                              {"name": c, "type": "category", "categories": pre.categories_[c]}
                              for c in pre.columns_]
            out.update(blank_values=("allowed (filled as in training)" if pre.missing != "strict"
                                     else "refused (data.missing=strict)"),
                       id_column=schema.id_column,
                       request='{"rows": [{column: value, ...}, ...]} or a list of row objects')
        out["max_rows"] = self.max_rows
        if run.task == "regression":
            out["output"] = {"target": schema.target.column, "value": "in the target's units"}
        else:
            out["output"] = {"classes": schema.class_names}
        if run.task in ("binary", "multilabel"):
            out["threshold"] = run.threshold
        return out

    # -- predictions -----------------------------------------------------------------------
    def predict_rows(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Predictions for table rows (one dict per row, the same keys in each)."""
        self._check_count(len(rows), "rows")
        columns = list(rows[0])
        first = set(columns)
        for i, row in enumerate(rows):
            if set(row) != first:
                lacks = [c for c in columns if c not in row]
                what = (f"lacks column(s) {lacks} that row 0 has" if lacks else
                        f"has column(s) {[c for c in row if c not in first]} that row 0 lacks")
                raise DataError(f"{ORIGIN}: row {i} {what}; give every row the same columns "
                                "(null for a blank value)")
        frame = pd.DataFrame.from_records(list(rows), columns=columns)
        return self._predict(frame)

    def predict_images(self, uploads: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
        """Predictions for uploaded image files ``(file name, bytes)``, in upload order."""
        self._check_count(len(uploads), "images")
        spec = self.run.schema.image
        with tempfile.TemporaryDirectory(prefix="deepfit-serve-") as folder:
            for i, (name, data) in enumerate(uploads):
                suffix = _image_suffix(name, data, spec)
                # numbered names keep the order; the ids are mapped back to the upload names
                (Path(folder) / f"{i:06d}{suffix}").write_bytes(data)
            payload = self._predict(folder)
        for row in payload["predictions"]:
            row["id"] = uploads[int(Path(str(row["id"])).stem)][0]
        return payload

    def _check_count(self, count: int, what: str) -> None:
        if count == 0:
            raise DataError(f"{ORIGIN}: no {what} to predict")
        if count > self.max_rows:
            raise TooLarge(f"{ORIGIN}: {count:,} {what}; this server takes at most "
                           f"{self.max_rows:,} per request (--max-rows); send them in parts")

    def _predict(self, data: Any) -> dict[str, Any]:
        """``Run.predictions`` under the lock, with deepfit's warnings kept for the reply."""
        with self._lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            p = self.run.predictions(data, origin=ORIGIN)
        said = []
        for w in caught:
            if issubclass(w.category, DeepfitWarning):
                said.append(str(w.message))
            else:  # a library's warning: the server's log, not the client's business
                print(f"warning: {w.message}", file=sys.stderr)
        payload = prediction_payload(p)
        payload["warnings"] = list(dict.fromkeys(said))
        return payload


def prediction_payload(p: Predictions) -> dict[str, Any]:
    """The reply to a request: one object per input row with what ``Predictions.to_frame``
    (the table ``deepfit predict`` writes) holds, the threshold already applied; built from
    the arrays, as a DataFrame per request would cost more than the model."""
    ids = p.ids.tolist()
    out: dict[str, Any] = {"task": p.task}
    if p.task == "regression":
        rows = [{"id": i, "predicted": _finite(v)} for i, v in zip(ids, p.scores.tolist())]
    else:
        names = list(p.class_names)
        probs = np.c_[1 - p.scores, p.scores] if p.task == "binary" else p.scores
        if p.task == "multilabel":
            predicted = [[n for n, on in zip(names, row) if on] for row in p.y_pred.tolist()]
        else:
            predicted = [names[k] for k in p.y_pred.tolist()]
        rows = [{"id": i, "predicted": pred,
                 "probabilities": {n: _finite(v) for n, v in zip(names, row)}}
                for i, pred, row in zip(ids, predicted, probs.tolist())]
        out["classes"] = names
        if p.task in ("binary", "multilabel"):
            out["threshold"] = p.threshold
    if p.y_true is not None:  # the request held the target: its values, as read
        true = p.y_true.tolist()
        for row, value in zip(rows, true):
            row["true"] = (value if p.task == "regression" else
                           [n for n, on in zip(p.class_names, value) if on]
                           if p.task == "multilabel" else p.class_names[int(value)])
    out["predictions"] = rows
    return out


def _finite(value: Any) -> Optional[float]:
    """A float for JSON; NaN or infinity (undefined) as null, never a made-up number."""
    value = float(value)
    return value if math.isfinite(value) else None


def _image_suffix(name: str, data: bytes, spec: Any) -> str:
    """The file suffix of an uploaded image of a format deepfit reads, after a full decode
    at the model's size; anything else is a ``DataError`` naming the upload."""
    try:
        with bomb_guard():
            fmt = open_image(data).format
            decode_bytes(data, spec.size, spec.channels, spec.resize)
    except Unreadable as exc:
        raise DataError(f"upload '{name}' is not an image deepfit can read: {exc}; send "
                        f"{', '.join(s.lstrip('.').upper() for s in IMAGE_SUFFIXES)} "
                        "files") from None
    if fmt not in _FORMAT_SUFFIX:
        raise DataError(f"upload '{name}' is a {fmt} image, which deepfit does not read; "
                        f"convert it to PNG or JPEG")
    return _FORMAT_SUFFIX[fmt]
