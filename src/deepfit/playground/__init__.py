"""``deepfit playground``: a local page where a network learns 2-D points live (FastAPI +
uvicorn + a WebSocket, the extra ``playground``); a run it saves is a normal deepfit run.

``playground()`` blocks until Ctrl-C; ``build_server()`` gives the uvicorn server and its
bound socket to run in a thread. FastAPI is imported only when a server is built.
"""

from deepfit.playground.server import build_server, playground

__all__ = ["build_server", "playground"]
