"""The FastAPI application of ``deepfit serve``: routes, the request size limit, and errors as
one-line JSON (``{"detail": "..."}``), never a traceback.

``POST /predict`` takes JSON rows for a table run and uploaded image files for an image run
(the route is built for the run's input, so the OpenAPI docs at ``/docs`` show the right one).
Status codes: 422 bad input (the line names the column, row or file), 413 a body over
``--max-request-mb`` or more rows than ``--max-rows``, 500 a deepfit bug (one line).
"""

from __future__ import annotations

from typing import Any, Optional, Union

from fastapi import Body, FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from deepfit.errors import DeepfitError
from deepfit.serve.predictor import Predictor, TooLarge
from deepfit.version import __version__

# One cell of a row: JSON's scalars (null for a blank value); lists and objects are refused.
Cell = Optional[Union[bool, int, float, str]]
Row = dict[str, Cell]
ROWS_HINT = 'send {"rows": [{"column": value, ...}, ...]} (see GET /schema)'


class Rows(BaseModel):
    """Table rows to predict: one object per row, column name to value."""

    rows: list[Row]


def create_app(predictor: Predictor, max_request_bytes: int) -> FastAPI:
    """The application serving ``predictor``; bodies over ``max_request_bytes`` get 413."""
    run = predictor.run
    app = FastAPI(title=f"deepfit: {run.path.name if run.path else 'run'}", version=__version__,
                  description=f"Predictions of the deepfit run '{run.path}' ({run.task}, "
                  f"{predictor.kind} input). GET /schema says what /predict takes.")

    @app.get("/health", summary="the run being served and deepfit's version")
    def health() -> dict[str, Any]:
        return predictor.health()

    @app.get("/schema", summary="the input /predict takes and the output it gives")
    def schema() -> dict[str, Any]:
        return predictor.schema()

    if predictor.kind == "table":
        @app.post("/predict", summary="predict table rows")
        def predict_rows(body: Union[Rows, list[Row]] = Body(
                ..., examples=[{"rows": [_example_row(predictor)]}])) -> dict[str, Any]:
            return predictor.predict_rows(body.rows if isinstance(body, Rows) else body)
    else:
        @app.post("/predict", summary="predict uploaded image files (multipart, field 'files')")
        def predict_images(files: list[UploadFile] = File(...)) -> dict[str, Any]:
            uploads = [(f.filename or f"file {i}", f.file.read()) for i, f in enumerate(files)]
            return predictor.predict_images(uploads)

    @app.exception_handler(DeepfitError)
    def bad_input(request: Request, exc: DeepfitError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413 if isinstance(exc, TooLarge)
                            else 422)

    @app.exception_handler(RequestValidationError)
    def bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_line(exc.errors(), predictor.kind)},
                            status_code=422)

    @app.exception_handler(Exception)
    def bug(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc} (this is "
                             "a deepfit bug; the server's log has the traceback)"},
                            status_code=500)

    app.add_middleware(BodyLimit, limit=max_request_bytes)
    return app


def validation_line(errors: list[dict[str, Any]], kind: str) -> str:
    """FastAPI's validation errors as one line: where (row and column) and what."""
    if not errors:
        return "request: the body cannot be read"
    first = errors[0]
    if kind == "image":
        return ("request: no image files; send multipart/form-data with one or more parts "
                "named 'files'")
    if first.get("type") == "json_invalid":
        return f"request: the body is not valid JSON ({first.get('msg')}); {ROWS_HINT}"
    for error in errors:  # a bad cell: loc is ("body", [union tags], row, column, [type])
        loc = list(error.get("loc", ()))
        rows = [i for i, part in enumerate(loc) if isinstance(part, int)]
        if rows and rows[0] + 1 < len(loc):
            return (f"request: row {loc[rows[0]]}, column '{loc[rows[0] + 1]}': the value is "
                    "not a number, text, true/false or null")
    return f"request: the body is not table rows; {ROWS_HINT}"


def _example_row(predictor: Predictor) -> dict[str, Any]:
    pre = predictor.run.schema.preprocessor
    return {c: (0.0 if c in pre.numeric_ else (pre.categories_[c] or [""])[0])
            for c in pre.columns_[:20]}


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before the app reads it
    (by its Content-Length, or counted as it arrives when the client sends none)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._refuse(scope, receive, send)
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            if total > self.limit:
                return await self._refuse(scope, receive, send)
            if not message.get("more_body"):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, scope: dict, receive: Any, send: Any) -> None:
        response = JSONResponse({"detail": f"request: the body is over the limit of "
                                 f"{self.limit:,} bytes (--max-request-mb "
                                 f"{self.limit / 2**20:g}); send fewer rows or images per "
                                 "request"},
                                status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)
