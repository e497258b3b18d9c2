"""Inside the network from a finished run: diagnostics.json, the report's section and
notes, ``deepfit inspect RUN`` and ``Run.summary()``."""

from __future__ import annotations

import json

import deepfit
from deepfit.cli import main
from image_samples import class_folders


def test_a_run_records_inspects_and_reports_inside_the_network(tmp_path, capsys):
    run = deepfit.train(data="xor", out=str(tmp_path), **{
        "data.n_samples": 200, "train.epochs": 3, "model.hidden": [8, 8],
        "model.activation": "sigmoid", "train.progress": False, "eval.bootstrap": 0})
    records = json.loads((run.path / "diagnostics.json").read_text())["records"]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["diagnostics"]["last"] == records[-1]
    assert set(summary["diagnostics"]["plots"]) == {"Gradient flow",
                                                   "Inside the network over epochs"}
    assert summary["model"]["summary"]["parameters"] == sum(
        p.numel() for p in run.model.parameters())
    html = run.report_path.read_text()
    assert "Inside the network" in html and "FLOPs / sample" in html
    # What it learned: the XOR picture (2-D inputs), the projection, the graph as SVG.
    assert set(summary["learned"]["plots"]) == {"Last hidden layer, projected",
                                                "Decision boundary", "Hidden neurons"}
    assert summary["model"]["graph"]["method"] == "torch.fx"
    assert "What the network learned (test split)" in html and "<svg" in html
    md = (run.path / "report.md").read_text()
    assert "### Inside the network" in md and "](plots/gradient_flow.png)" in md

    table = run.summary()
    assert table.parameters == sum(p.numel() for p in run.model.parameters())
    assert table.flops == 2 * (2 * 8 + 8 * 8 + 8 * 1)
    assert main(["inspect", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "Layers of mlp (105 parameters, 105 trainable)" in out
    assert "Gradients and updates at epoch 3" in out and "Activations on" in out


def test_a_run_without_diagnostics_says_so(tmp_path, quick, capsys):
    run = deepfit.train(data="xor", out=str(tmp_path), **{
        **quick, "data.n_samples": 100, "train.epochs": 1, "train.diagnostics": False})
    assert not (run.path / "diagnostics.json").exists()
    assert json.loads((run.path / "summary.json").read_text())["diagnostics"] is None
    assert main(["inspect", str(run.path)]) == 0
    assert "No training diagnostics in this run (train.diagnostics=false" in \
        capsys.readouterr().out


def test_inspect_of_a_missing_run_is_one_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) != 0
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_an_image_run_shows_its_filters_and_feature_maps(tmp_path):
    folder = class_folders(tmp_path / "img", {"a": 12, "b": 12}, size=(12, 12), color=True)
    run = deepfit.train(data=str(folder), out=str(tmp_path / "runs"), model="cnn", **{
        "train.epochs": 1, "train.progress": False, "eval.bootstrap": 0, "eval.report": False})
    learned = json.loads((run.path / "summary.json").read_text())["learned"]
    assert set(learned["plots"]) == {"Last hidden layer, projected", "First-layer filters",
                                     "Feature maps"}
    assert all((run.path / rel).is_file() for rel in learned["plots"].values())
