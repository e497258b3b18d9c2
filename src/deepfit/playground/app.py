"""The FastAPI application of ``deepfit playground``: the page, its static files, the CSV
upload and one WebSocket per browser tab (``channel.py`` runs the training behind it).

Safety: the WebSocket and the upload take requests only from the page itself (the Origin is
``http://`` + the Host asked for, and that host is an IP address or localhost, so another
site, or a DNS name rebound to this machine, is refused); uploads are limited in bytes
and rows; only the files of ``static/`` are served, by
exact name; nothing is written but the run folders under the export folder.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response

from deepfit.errors import DeepfitError
from deepfit.playground.channel import Channel
from deepfit.playground.points import read_csv, shown_name
from deepfit.playground.settings import MAX_POINTS

STATIC = {"index.html": "text/html", "playground.js": "text/javascript",
          "playground_draw.js": "text/javascript", "playground.css": "text/css"}


@dataclass
class Options:
    """What the server allows: where runs are saved, sessions, idle time, upload size."""

    out: Path = Path("runs")
    max_sessions: int = 4
    idle_seconds: float = 1800.0
    max_upload_bytes: int = 5 * 2**20
    max_rows: int = MAX_POINTS
    channels: dict[str, Channel] = field(default_factory=dict)


def create_app(options: Options) -> FastAPI:
    app = FastAPI(title="deepfit playground", docs_url=None, redoc_url=None, openapi_url=None)
    folder = resources.files("deepfit.playground") / "static"
    files = {name: (folder / name).read_bytes() for name in STATIC}

    @app.get("/")
    def page() -> Response:
        return Response(files["index.html"], media_type=STATIC["index.html"])

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in files:  # exact names only: no path is ever built from the request
            return JSONResponse({"detail": "not found"}, status_code=404)
        return Response(files[name], media_type=STATIC[name],
                        headers={"Cache-Control": "no-cache"})

    @app.post("/upload/{session}")
    async def upload(session: str, request: Request, name: str = "upload.csv") -> Response:
        if not same_origin(request.headers):
            return JSONResponse({"detail": "upload refused: it does not come from the "
                                 "playground's own page"}, status_code=403)
        channel = options.channels.get(session)
        if channel is None:
            return JSONResponse({"detail": "upload refused: no such session (reload the "
                                 "page)"}, status_code=404)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > options.max_upload_bytes:
                return JSONResponse({"detail": f"upload '{shown_name(name)}' is over the limit of "
                                     f"{options.max_upload_bytes / 2**20:g} MB "
                                     "(--max-upload-mb); upload fewer points"}, status_code=413)
        try:
            points = read_csv(name, bytes(body), options.max_rows)
        except DeepfitError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        channel.upload = points
        return JSONResponse({"rows": len(points.y), "task": points.task,
                             "classes": list(points.class_names)})

    @app.websocket("/ws")
    async def socket(websocket: WebSocket) -> None:
        if not same_origin(websocket.headers):
            await websocket.close(code=1008, reason="not the playground's own page")
            return
        await websocket.accept()
        if len(options.channels) >= options.max_sessions:
            await websocket.send_json({"type": "error", "fatal": True, "message":
                                       f"the playground already runs {options.max_sessions} "
                                       "sessions (--max-sessions); close a tab and reload"})
            await websocket.close()
            return
        key = secrets.token_urlsafe(16)
        channel = options.channels[key] = Channel(websocket, key, options.out,
                                                  options.idle_seconds)
        try:
            await channel.run()
        finally:
            options.channels.pop(key, None)

    @app.exception_handler(Exception)
    def bug(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc} (a "
                             "deepfit bug; the server's log has the traceback)"},
                            status_code=500)

    return app


def same_origin(headers: Any) -> bool:
    """Whether a request comes from the page this server served: Origin is ``http://`` and
    the Host of the request, and that host is an IP address or localhost."""
    origin, host = headers.get("origin"), headers.get("host")
    if not origin or not host or origin != f"http://{host}":
        return False
    name = urlsplit(origin).hostname or ""
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
