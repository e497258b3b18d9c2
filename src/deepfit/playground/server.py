"""``deepfit playground``: bind a free port on 127.0.0.1, print the address, open the browser,
run uvicorn until Ctrl-C.

FastAPI, uvicorn and websockets are the optional extra ``playground``; they are imported
only here, when a server is built.
"""

from __future__ import annotations

import importlib
import socket
import sys
import webbrowser
from pathlib import Path
from typing import Any

from deepfit.errors import ConfigError, DeepfitError
from deepfit.serve.server import _bind, host_warning

INSTALL = "pip install 'deepfit[playground]'"


def require_extra() -> None:
    """The one-line error when FastAPI, uvicorn or websockets is missing."""
    for package in ("fastapi", "uvicorn", "websockets"):
        try:
            importlib.import_module(package)
        except ImportError:
            raise DeepfitError(f"deepfit playground needs FastAPI, uvicorn and websockets "
                               f"({package} is not installed): {INSTALL}") from None


def build_server(host: str = "127.0.0.1", port: int = 0, out: str | Path = "runs",
                 max_sessions: int = 4, idle_minutes: float = 30, max_upload_mb: float = 5,
                 log_level: str = "warning") -> tuple[Any, socket.socket]:
    """A ``uvicorn.Server`` and its bound socket (port 0: a free one); start it with
    ``server.run(sockets=[sock])``, stop it with ``server.should_exit = True``."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port; use 1-65535 (default 0: a free one)")
    for name, value in (("--max-sessions", max_sessions), ("--idle-minutes", idle_minutes),
                        ("--max-upload-mb", max_upload_mb)):
        if not value > 0:
            raise ConfigError(f"{name} {value:g} must be more than 0")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file; give the folder runs are saved in")
    require_extra()
    import uvicorn

    from deepfit.playground.app import Options, create_app

    options = Options(out=out, max_sessions=max_sessions, idle_seconds=idle_minutes * 60,
                      max_upload_bytes=int(max_upload_mb * 2**20))
    sock = _bind(host, port)
    config = uvicorn.Config(create_app(options), log_level=log_level,
                            timeout_graceful_shutdown=2, ws_max_size=2**20)
    return uvicorn.Server(config), sock


def playground(host: str = "127.0.0.1", port: int = 0, out: str | Path = "runs",
               browser: bool = True, max_sessions: int = 4, idle_minutes: float = 30,
               max_upload_mb: float = 5) -> int:
    """Serve the playground until Ctrl-C / SIGTERM."""
    require_extra()
    warning = host_warning(host)
    if warning:
        print(warning.replace("the model", "the playground (it trains and saves runs)"),
              file=sys.stderr)
    server, sock = build_server(host, port, out, max_sessions, idle_minutes, max_upload_mb)
    import torch

    # The playground's networks are tiny: one thread per step is fastest (several threads
    # on small matrices wait for each other: 16 frames/s against 200 on 2 busy cores). Set
    # here, for the server's process, not in build_server (a library call).
    torch.set_num_threads(1)
    bound = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host
                                                             else host)
    url = f"http://{shown}:{bound}/"
    print(f"deepfit playground on {url} (runs are saved in '{Path(out).resolve()}'); "
          "Ctrl-C stops", flush=True)
    if browser:
        webbrowser.open(url)
    server.run(sockets=[sock])
    return 0
