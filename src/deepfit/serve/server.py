"""``deepfit serve RUN``: load the run once, bind the address, run uvicorn.

FastAPI and uvicorn are the optional extra ``serve``; they are imported only here, when a
server is built, so the rest of deepfit never needs them.
"""

from __future__ import annotations

import importlib
import ipaddress
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from deepfit.errors import ConfigError, DeepfitError

if TYPE_CHECKING:  # the playground imports this module for its binding rules only
    from deepfit.result import Run

INSTALL = "pip install 'deepfit[serve]'"


def host_warning(host: str) -> Optional[str]:
    """One line when ``host`` is not a loopback address (the model is then reachable from
    the network, with no authentication); None for 127.0.0.1, ::1 or localhost."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return None
    return (f"warning: --host {host} makes the model reachable from the network with no "
            "authentication: anyone who can reach this machine can query it; keep the default "
            "127.0.0.1 behind a reverse proxy that checks who calls")


def require_extra() -> None:
    """The one-line error when FastAPI, uvicorn or python-multipart is missing."""
    needed = {"fastapi": ["fastapi"], "uvicorn": ["uvicorn"],
              "python-multipart": ["python_multipart", "multipart"]}  # its new and old names
    for package, modules in needed.items():
        if not any(_importable(m) for m in modules):
            raise DeepfitError(f"deepfit serve needs FastAPI, uvicorn and python-multipart "
                               f"({package} is not installed): {INSTALL}")


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def build_server(run: Run, host: str = "127.0.0.1", port: int = 8000,
                 max_request_mb: float = 10, max_rows: int = 10_000,
                 log_level: str = "info") -> tuple[Any, socket.socket]:
    """A ``uvicorn.Server`` for ``run`` and its socket, already bound (port 0: a free one);
    start it with ``server.run(sockets=[sock])``, stop it with ``server.should_exit = True``."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port; use 1-65535 (default 8000; 0: any "
                          "free port)")
    if not max_request_mb > 0:
        raise ConfigError(f"--max-request-mb {max_request_mb:g} must be more than 0")
    if max_rows < 1:
        raise ConfigError(f"--max-rows {max_rows} must be at least 1")
    require_extra()
    import uvicorn

    from deepfit.serve.app import create_app
    from deepfit.serve.predictor import Predictor

    app = create_app(Predictor(run, max_rows), int(max_request_mb * 2**20))
    sock = _bind(host, port)
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5)
    return uvicorn.Server(config), sock


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000,
          max_request_mb: float = 10, max_rows: int = 10_000) -> int:
    """Serve a finished run until Ctrl-C / SIGTERM."""
    require_extra()  # before loading the run: the missing extra is the first thing to say
    warning = host_warning(host)
    if warning:  # first: said even when the server then fails to start
        print(warning, file=sys.stderr)
    from deepfit.result import load

    run = load(run_dir)
    server, sock = build_server(run, host, port, max_request_mb, max_rows)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {run.path} ({run.task}, model {run.config.model.name}) on "
          f"http://{shown}:{bound}: POST /predict, GET /health, GET /schema, docs at /docs; "
          "Ctrl-C stops", flush=True)
    server.run(sockets=[sock])
    return 0


BACKLOG = 2048  # uvicorn's own


def _bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port``: an address in use is one line, not uvicorn's exit."""
    try:
        family, kind, proto = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][:3]
        # proto IPPROTO_TCP, as getaddrinfo says: asyncio sets TCP_NODELAY on the accepted
        # connections only then (with proto 0 each keep-alive reply waited ~40 ms for an ACK)
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"--host {host}: not an address of this machine ({exc}); use "
                          "127.0.0.1 (the default) or 0.0.0.0") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening now, not when uvicorn's loop starts: the address is printed (and the
        # browser opened) before that, and a connection in between was refused; now it
        # waits in the queue until the server accepts it.
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose "
                          "another --port (or stop what holds it)") from None
    return sock
