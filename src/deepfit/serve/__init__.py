"""``deepfit serve``: a finished run behind HTTP (FastAPI + uvicorn, the extra ``serve``).

``serve(run_dir)`` blocks until Ctrl-C; ``build_server(run)`` gives the uvicorn server and its
bound socket to run in a thread. FastAPI is imported only when a server is built.
"""

from deepfit.serve.server import build_server, host_warning, serve

__all__ = ["build_server", "host_warning", "serve"]
