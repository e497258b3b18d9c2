"""The playground tests' fixtures: a real playground server (uvicorn on a free 127.0.0.1 port,
in a thread) and a headless Chromium driven by Playwright (the system's /usr/bin/chromium; no
browser download). Test modules import the fixtures they use from here: a conftest.py in this
folder would shadow tests/serve's (both are imported as ``conftest``)."""

from __future__ import annotations

import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the playground needs the extra deepfit[playground]")
pytest.importorskip("websockets", reason="the playground needs the extra deepfit[playground]")

from deepfit.playground import build_server  # noqa: E402


@contextmanager
def running(out: Path, **options):
    """The playground on a free port until the block ends; yields its base URL."""
    server, sock = build_server("127.0.0.1", 0, out, **options)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the playground server did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    out = tmp_path_factory.mktemp("playground-runs")
    with running(out, max_upload_mb=0.05, max_sessions=4) as url:
        yield url, out


# Module scope, not session: sync Playwright keeps an asyncio loop running in this thread
# while it is open, and a later test's asyncio.run() (tests/serve's load test) then fails.
@pytest.fixture(scope="module")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed "
                                   "(pip install playwright; no browser download needed)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no system Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
