"""The real playground server on 127.0.0.1: the WebSocket protocol, Origin checks, upload
limits, the session limit, and path-traversal names refused by every endpoint."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from playground_server import chromium, live, running  # noqa: F401 (fixtures)
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

TRAVERSAL = ["../pyproject.toml", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2fsecret", "/etc/passwd",
             "..\\..\\boot.ini", "%252e%252e%252fetc", "....//....//etc/passwd"]


def socket(url: str, origin: str | None = "same"):
    host = url.split("//", 1)[1]
    return connect(f"ws://{host}/ws", origin=url if origin == "same" else origin,
                   open_timeout=10)


def until(ws, kind: str) -> dict:
    while True:
        message = json.loads(ws.recv(timeout=30))
        if message["type"] == kind or message["type"] == "error":
            return message


def test_protocol_frames_and_steps(live):
    url, _ = live
    with socket(url) as ws:
        hello = until(ws, "hello")
        ws.send(json.dumps({"type": "settings", "settings": {"hidden": [3], "points": 50}}))
        points = until(ws, "points")
        assert len(points["x"]) == 50 and points["classes"] == ["0", "1"]
        assert until(ws, "frame")["step"] == 0
        ws.send(json.dumps({"type": "step"}))
        frame = until(ws, "frame")
        assert frame["step"] == 1 and len(frame["neurons"][0]) == 3
        ws.send(json.dumps({"type": "settings", "settings": {"hidden": [3], "lr": -1}}))
        error = until(ws, "error")
        assert "'lr' = -1.0 is outside" in error["message"]
        ws.send(json.dumps({"type": "warp"}))
        assert "unknown type 'warp'" in until(ws, "error")["message"]
        ws.send("not json")  # ends the session; the server stays up
    assert hello["session"]
    assert httpx.get(url + "/").status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", None, "http://127.0.0.1:1",
                                    "null"])
def test_websocket_from_another_origin_is_refused(live, origin):
    url, _ = live
    with pytest.raises(InvalidStatus):
        with socket(url, origin):
            pass


def test_upload_checks_origin_session_size_and_rows(live):
    url, _ = live
    body = b"x1,x2,y\n" + b"".join(b"%d,%d,%d\n" % (i, i % 7, i % 3) for i in range(60))
    with socket(url) as ws:
        key = until(ws, "hello")["session"]
        ok = httpx.post(f"{url}/upload/{key}?name=three.csv", content=body,
                        headers={"Origin": url})
        assert ok.status_code == 200 and ok.json()["classes"] == ["0", "1", "2"]
        assert httpx.post(f"{url}/upload/{key}", content=body,
                          headers={"Origin": "http://evil.example"}).status_code == 403
        assert httpx.post(f"{url}/upload/{key}", content=body).status_code == 403
        big = httpx.post(f"{url}/upload/{key}", content=b"1,2,3\n" * 20_000,
                         headers={"Origin": url})
        assert big.status_code == 413 and "--max-upload-mb" in big.json()["detail"]
        bad = httpx.post(f"{url}/upload/{key}?name=..%2F..%2Fbad.csv", content=b"\xff\xfe1,2",
                         headers={"Origin": url})
        assert bad.status_code == 422 and bad.json()["detail"].startswith(
            "upload 'bad.csv': not UTF-8")
        ws.send(json.dumps({"type": "settings", "settings": {"data": "upload", "hidden": [4],
                                                               "features": ["x1", "x2"]}}))
        assert until(ws, "points")["classes"] == ["0", "1", "2"]


def test_path_traversal_is_refused_everywhere(live):
    url, out = live
    before = sorted(p.name for p in out.iterdir())
    for name in TRAVERSAL:
        assert httpx.get(f"{url}/static/{name}").status_code == 404, name
        reply = httpx.post(f"{url}/upload/{name}", content=b"a,b,c\n", headers={"Origin": url})
        assert reply.status_code == 404, name
        assert b"[tool" not in httpx.get(f"{url}/{name}").content
    with socket(url) as ws:
        until(ws, "hello")
        ws.send(json.dumps({"type": "settings", "settings": {"hidden": [2], "points": 20}}))
        until(ws, "frame")
        for _ in range(2):  # one whole epoch (14 training points, batches of 10): savable
            ws.send(json.dumps({"type": "step"}))
            until(ws, "frame")
        for name in TRAVERSAL + ["..", ".", "a/b"]:
            ws.send(json.dumps({"type": "export", "name": name}))
            assert "may only use letters" in until(ws, "error")["message"], name
    assert sorted(p.name for p in out.iterdir()) == before


def test_at_most_max_sessions(tmp_path):
    with running(tmp_path, max_sessions=1) as url:
        with socket(url) as first:
            until(first, "hello")
            with socket(url) as second:
                refused = until(second, "hello")
                assert refused["type"] == "error" and "--max-sessions" in refused["message"]
        with socket(url) as again:  # the first tab closed: its session ended
            assert until(again, "hello")["type"] == "hello"


def test_idle_session_times_out(tmp_path):
    with running(tmp_path, idle_minutes=0.01) as url:
        with socket(url) as ws:
            until(ws, "hello")
            assert "idle minutes" in until(ws, "frame")["message"]


def test_cli_refuses_bad_options_in_one_line(capsys, tmp_path):
    from deepfit.cli import main

    assert main(["playground", "--no-browser", "--port", "70000"]) != 0
    assert main(["playground", "--no-browser", "--max-sessions", "0"]) != 0
    (tmp_path / "file").write_text("x")
    assert main(["playground", "--no-browser", "--out", str(tmp_path / "file")]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and "--port 70000 is not a port" in lines[0]
    assert "--max-sessions 0 must be more than 0" in lines[1] and "is a file" in lines[2]


def test_another_host_than_loopback_is_warned_about(capsys):
    from deepfit.errors import ConfigError
    from deepfit.playground import playground

    with pytest.raises(ConfigError):  # the warning comes first, even when the start fails
        playground(host="0.0.0.0", port=70000, browser=False)
    err = capsys.readouterr().err
    assert "--host 0.0.0.0 makes the playground" in err and "no authentication" in err


def test_the_command_prints_its_address_and_opens_the_browser(tmp_path):
    """`deepfit playground` as typed: a free port on 127.0.0.1, printed and opened in the
    browser ($BROWSER, here a script that writes what it was given); Ctrl-C stops it."""
    import os
    import signal
    import subprocess
    import sys

    opened = tmp_path / "opened"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    server = subprocess.Popen([sys.executable, "-m", "deepfit", "playground", "--out",
                               str(tmp_path / "runs")], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "BROWSER": str(browser)})
    try:
        line = server.stdout.readline()
        url = line.split(" on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and "Ctrl-C stops" in line, line
        assert httpx.get(url, timeout=10).text.startswith("<!doctype html>")
        for _ in range(100):
            if opened.exists() and opened.read_text().strip():
                break
            time.sleep(0.05)
        assert opened.read_text().strip() == url
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(20)
    assert not (tmp_path / "runs").exists()  # nothing written but saved runs


def test_every_file_the_page_loads_is_served(live):
    import re
    url, _ = live
    page = httpx.get(f"{url}/").text
    files = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert {"/static/playground_draw.js", "/static/playground.js"} <= set(files), files
    assert files.index("/static/playground_draw.js") < files.index("/static/playground.js")
    for path in files:
        reply = httpx.get(f"{url}{path}")
        assert reply.status_code == 200 and reply.text.strip(), path
