"""A run with data.standardize=robust: deepfit.load and the exported ONNX graph apply the
same robust scaling and smooth clipping as the run itself."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pandas as pd

import deepfit

QUICK = {"train.progress": False, "eval.plots": False, "eval.report": False,
         "eval.bootstrap": 0}


def test_robust_scaling_survives_load_and_onnx_export(tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"dose": rng.lognormal(0, 1.5, 80), "age": rng.normal(50, 12, 80)})
    frame["y"] = np.where(frame.dose > 1, "sick", "healthy")
    run = deepfit.train(data=frame, target="y", out=tmp_path, name="robust", epochs=2,
                        hidden=[8], **{**QUICK, "data.standardize": "robust"})
    assert json.loads((run.path / "schema.json").read_text())["preprocessor"]["standardize"] \
        == "robust"
    rows = pd.DataFrame({"dose": [0.1, 1.0, 50.0, 1e6], "age": [20.0, 50.0, 80.0, 50.0]})
    want = run.predict_proba(rows)[:, 1]
    assert np.array_equal(deepfit.load(run.path).predict_proba(rows)[:, 1], want)
    done = run.export("onnx", tmp_path / "onnx")
    session = ort.InferenceSession(str(done.model), providers=["CPUExecutionProvider"])
    got = session.run(["probability"], {"numeric": rows.to_numpy(np.float32)})[0]
    assert np.abs(got - want).max() <= 1e-5
    steps = json.loads(done.schema.read_text())["inputs"][0]["transform"]
    assert "robust-scaled" in steps and "clipped" in steps
