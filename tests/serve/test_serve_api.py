"""``deepfit serve`` in process: the routes answer what ``Run.predictions`` and ``deepfit
predict`` answer, bad input is one line naming the column or file, limits are 413."""

from __future__ import annotations

import io
import json
import socket
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import table_rows
from PIL import Image

import deepfit
from deepfit.cli import main
from deepfit.serve import host_warning
from deepfit.serve.app import create_app
from deepfit.serve.predictor import Predictor

with warnings.catch_warnings():  # starlette's TestClient would like httpx2; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def client(run, max_rows=10_000, max_bytes=10 * 2**20) -> TestClient:
    return TestClient(create_app(Predictor(deepfit.load(run.path), max_rows), max_bytes))


def as_json_rows(frame: pd.DataFrame) -> list[dict]:
    """Rows as a client sends them: blanks as null."""
    return json.loads(frame.to_json(orient="records", double_precision=15))


def test_health_and_schema_describe_the_run(table_run):
    c = client(table_run)
    health = c.get("/health").json()
    assert health == {"status": "ok", "run": str(table_run.path), "task": "binary",
                      "input": "table", "model": "mlp",
                      "deepfit_version": deepfit.__version__}
    schema = c.get("/schema").json()
    assert schema["columns"] == [{"name": "x", "type": "number"},
                                 {"name": "dose", "type": "number"},
                                 {"name": "colour", "type": "category",
                                  "categories": ["blue", "green", "red"]}]
    assert schema["output"] == {"classes": ["high", "low"]}
    assert schema["threshold"] == table_run.threshold and schema["id_column"] == "patient"
    assert "/predict" in c.get("/openapi.json").json()["paths"]
    assert c.get("/docs").status_code == 200


def test_served_rows_equal_run_predictions_and_deepfit_predict(table_run, tmp_path):
    frame = table_rows(12)
    c = client(table_run)
    reply = c.post("/predict", json={"rows": as_json_rows(frame)})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    expected = deepfit.load(table_run.path)
    with pytest.warns(deepfit.errors.DataWarning):
        ours = expected.predictions(frame).to_frame()
    served = body["predictions"]
    assert [r["id"] for r in served] == ours["patient"].tolist()
    assert [r["predicted"] for r in served] == ours["predicted"].tolist()
    for name in ("high", "low"):
        assert [r["probabilities"][name] for r in served] == ours[f"p_{name}"].tolist()
    assert body["threshold"] == table_run.threshold and body["classes"] == ["high", "low"]
    assert body["warnings"] == ["request: column 'colour': 1 row(s) hold a category not seen "
                                "in training ('purple'), encoded as 'no known category' (all "
                                "zeros in its one-hot inputs)"]
    # the command line on the same rows as a CSV file: the same numbers
    frame.to_csv(tmp_path / "new.csv", index=False)
    with pytest.warns(deepfit.errors.DataWarning, match="purple"):
        assert main(["predict", str(table_run.path), str(tmp_path / "new.csv"),
                     "-o", str(tmp_path / "out.csv")]) == 0
    cli = pd.read_csv(tmp_path / "out.csv")
    # deepfit predict writes the model's float32 probabilities as float32 text: the same
    # float32 numbers the server sends
    assert (np.float32([r["probabilities"]["low"] for r in served])
            == cli["p_low"].to_numpy(np.float32)).all()
    # a bare list of row objects is the same request
    assert c.post("/predict", json=as_json_rows(frame)).json() == body


@pytest.mark.parametrize("rows, line", [
    ([{"patient": "a", "x": 1.0, "colour": "red"}],
     "request: missing column(s) ['dose'] that the model was trained with; add them"),
    ([{"x": "abc", "dose": 1, "colour": "red"}],
     "request: column 'x' has non-numeric value 'abc' at row 0; fix or blank it"),
    ([{"x": 1, "dose": 1, "colour": "red", "weight": 70}],
     "request: column(s) ['weight'] were not seen in training"),
    ([{"x": 1, "dose": 1, "colour": "red"}, {"x": 1, "dose": 1}],
     "request: row 1 lacks column(s) ['colour'] that row 0 has"),
    ([{"x": 1, "dose": [1, 2], "colour": "red"}],
     "request: row 0, column 'dose': the value is not a number, text, true/false or null"),
    ({"data": []}, "request: the body is not table rows; send {\"rows\""),
    ([], "request: no rows to predict"),
])
def test_bad_rows_are_one_422_line_naming_the_column(table_run, rows, line):
    reply = client(table_run).post("/predict", json=rows)
    assert reply.status_code == 422
    assert reply.json()["detail"].startswith(line), reply.json()
    assert "Traceback" not in reply.text


def test_a_body_that_is_not_json_is_422(table_run):
    reply = client(table_run).post("/predict", content=b"{not json",
                                   headers={"content-type": "application/json"})
    assert reply.status_code == 422 and "not valid JSON" in reply.json()["detail"]


def test_too_many_rows_or_bytes_are_413_naming_the_limit(table_run):
    rows = as_json_rows(table_rows(6))
    reply = client(table_run, max_rows=5).post("/predict", json={"rows": rows})
    assert reply.status_code == 413
    assert reply.json()["detail"] == ("request: 6 rows; this server takes at most 5 per request "
                                      "(--max-rows); send them in parts")
    small = client(table_run, max_bytes=2**10)
    over = json.dumps({"rows": as_json_rows(table_rows(40))}).encode()
    reply = small.post("/predict", content=over, headers={"content-type": "application/json"})
    assert reply.status_code == 413 and "limit of 1,024 bytes" in reply.json()["detail"]
    # no Content-Length (chunked): counted as it arrives
    chunks = (over[i:i + 256] for i in range(0, len(over), 256))
    reply = small.post("/predict", content=chunks, headers={"content-type": "application/json"})
    assert reply.status_code == 413 and "--max-request-mb" in reply.json()["detail"]
    assert small.post("/predict", json={"rows": rows[:2]}).status_code == 200


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_uploaded_images_equal_run_predictions_and_a_text_file_is_named(image_run, tmp_path):
    rng = np.random.default_rng(5)
    arrays = [rng.integers(0, 256, (8, 8), dtype=np.uint8),
              rng.integers(0, 256, (12, 10), dtype=np.uint8)]  # another size: resized
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(tmp_path / f"scan{i}.png")
    c = client(image_run)
    files = [("files", ("scan0.png", png(arrays[0]), "image/png")),
             ("files", ("scan1.png", png(arrays[1]), "image/png"))]
    reply = c.post("/predict", files=files)
    assert reply.status_code == 200, reply.text
    with pytest.warns(deepfit.errors.DataWarning, match="stretched"):
        ours = deepfit.load(image_run.path).predictions(str(tmp_path)).to_frame()
    served = reply.json()["predictions"]
    assert [r["id"] for r in served] == ours["image"].tolist() == ["scan0.png", "scan1.png"]
    assert [r["predicted"] for r in served] == ours["predicted"].tolist()
    assert [r["probabilities"]["top"] for r in served] == ours["p_top"].tolist()
    assert "stretched" in reply.json()["warnings"][0]
    schema = c.get("/schema").json()
    assert (schema["size"], schema["channels"], schema["input"]) == ([8, 8], 1, "image")
    bad = c.post("/predict", files=[files[0], ("files", ("notes.txt", b"hello", "text/plain"))])
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("upload 'notes.txt' is not an image deepfit can "
                                           "read: not an image file (unknown format)")
    none = c.post("/predict", json={"rows": []})
    assert none.status_code == 422 and "parts named 'files'" in none.json()["detail"]


def test_host_warning_for_any_address_but_loopback():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert host_warning(host) is None
    line = host_warning("0.0.0.0")
    assert "reachable from the network with no authentication" in line and "\n" not in line


def test_the_command_line_warns_and_refuses_in_one_line(table_run, capsys):
    # --max-rows 0 stops it before anything is bound: only the warning and the error
    assert main(["serve", str(table_run.path), "--host", "0.0.0.0", "--max-rows", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == host_warning("0.0.0.0")
    assert err[1] == "error: --max-rows 0 must be at least 1"
    with socket.socket() as held:  # a port in use on loopback
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["serve", str(table_run.path), "--port", str(port)]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert main(["serve", str(table_run.path.parent / "nothing")]) == 2
    assert "nothing" in capsys.readouterr().err


def test_the_address_accepts_connections_as_soon_as_it_is_printed():
    # The server's socket listens from the moment it is bound: the address is printed and
    # the browser opened before uvicorn's loop starts, and a connection in between waits
    # in the queue instead of being refused.
    from deepfit.serve.server import _bind
    sock = _bind("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname()[:2], timeout=5):
            pass  # refused before the fix ([Errno 111])
    finally:
        sock.close()


def test_a_missing_extra_is_one_line_saying_what_to_install(table_run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    assert main(["serve", str(table_run.path)]) == 2
    assert capsys.readouterr().err == ("error: deepfit serve needs FastAPI, uvicorn and "
                                       "python-multipart (uvicorn is not installed): pip install "
                                       "'deepfit[serve]'\n")
