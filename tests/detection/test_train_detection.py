"""deepfit train on boxes per image, end to end: a tiny synthetic smear set, the small
Faster R-CNN at 96 px, two epochs; the run directory, metrics, the submission CSV, the
report, exact resume, and the config keys that do not apply to detection."""

import csv

import pytest
import torch

import deepfit
from deepfit.config_scope import DETECTION_RULES
from deepfit.errors import ConfigError
from deepfit.train.checkpoint import load_checkpoint
from interrupts import SignalAtStep

# Small and fast: the MobileNet detector (not the default ResNet-50), 24 images (about 16
# for training), few sampled regions and proposals.
SETTINGS = {"model.name": "fasterrcnn_mobilenet_v3_large_fpn",
            "data.n_samples": 24, "data.image_size": [96], "train.epochs": 2,
            "train.progress": False, "eval.bootstrap": 20, "train.early_stopping": False,
            "model.kwargs": {"box_batch_size_per_image": 32, "rpn_post_nms_top_n_train": 100,
                             "rpn_post_nms_top_n_test": 100, "rpn_pre_nms_top_n_train": 200,
                             "rpn_pre_nms_top_n_test": 200}}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("smears"))


@pytest.fixture(scope="module")
def whole(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("runs")
    return deepfit.train(data="synthetic-smear", out=str(out), name="whole",
                         **{**SETTINGS, "data.root": data_root})


def test_a_detection_run_writes_its_files(whole):
    assert whole.task == "detection"
    for name in ("config.yaml", "schema.json", "history.csv", "metrics.json",
                 "predictions.csv", "summary.json", "model.safetensors", "report.html",
                 "report.md", "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (whole.path / name).is_file(), name
    config = (whole.path / "config.yaml").read_text()
    assert "task: detection" in config and "monitor: val_map50" in config
    assert "hidden:" not in config and "threshold_objective" not in config  # not applying
    test = whole.metrics["test"]
    assert test["class_names"] == ["Trophozoite", "WBC"]
    assert "map50" in test["ci"] and 0 <= (test["map50"] or 0) <= 1
    assert whole.metrics["score_threshold"]["how"]


def test_predictions_are_the_challenge_submission(whole):
    with open(whole.path / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["Image_ID", "class", "confidence", "ymin", "xmin", "ymax", "xmax"]
    test_images = set(deepfit.load  # noqa: B018 - the schema names the test images
                      and __import__("json").loads((whole.path / "schema.json").read_text())
                      ["images"]["test"])
    assert {r["Image_ID"] for r in rows} == test_images  # every image, NEG rows included
    for r in rows:
        assert r["class"] in ("Trophozoite", "WBC", "NEG")
        assert 0 <= float(r["xmin"]) <= float(r["xmax"]) <= 128  # the smears' own pixels


def test_the_report_has_detection_sections_only(whole):
    md = (whole.path / "report.md").read_text()
    for part in ("mAP@0.5", "mAP@[.5:.95]", "AP per class", "Counts per image",
                 "Confused classes", "by size", "Trophozoite per WBC", "trained from scratch"):
        assert part in md, part
    for absent in ("ROC", "calibration", "Calibration", "decision threshold"):
        assert absent not in md, absent
    assert "<img" in (whole.path / "report.html").read_text()


def test_the_test_images_are_one_grid_and_small_images_get_no_crops(whole):
    plots = sorted(p.name for p in (whole.path / "plots").glob("detection_*.png"))
    assert plots == ["detection_pr_curves.png", "detection_test_images.png"]  # 128 px: no crops
    summary = __import__("json").loads((whole.path / "summary.json").read_text())
    assert summary["plots"]["test images: worst, best and per class"] == "detection_test_images.png"


def test_an_interrupted_detection_run_resumes_bit_identically(whole, tmp_path, data_root):
    with pytest.raises(deepfit.errors.TrainingInterrupted):
        deepfit.train(data="synthetic-smear", out=str(tmp_path), name="cut",
                      callbacks=[SignalAtStep(5)], **{**SETTINGS, "data.root": data_root})
    resumed = deepfit.resume(tmp_path / "cut")
    a = load_checkpoint(whole.path / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(resumed.path / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert ((whole.path / "history.csv").read_text().splitlines()[1].split(",")[:3]
            == (resumed.path / "history.csv").read_text().splitlines()[1].split(",")[:3])
    assert resumed.metrics["test"]["map50"] == whole.metrics["test"]["map50"]


@pytest.mark.parametrize("key, value, reason", [
    ("model.hidden", [8], "does not apply to object detection"),
    ("data.normalize", "none", "normalise their input themselves"),
    ("train.loss", "bce", "its own box and class losses"),
    ("eval.threshold_objective", "youden", "does not apply to object detection"),
    ("data.noise", 0.1, "does not apply to object detection"),
])
def test_keys_that_do_not_apply_to_detection_are_refused(tmp_path, key, value, reason):
    with pytest.raises(ConfigError, match=f"{key}=.*{reason}"):
        deepfit.train(data="synthetic-smear", out=str(tmp_path), **{key: value})


def test_every_config_key_has_a_detection_scope():
    """Each key either applies to detection (DETECTION_RULES) or is refused with a reason;
    a key added to the config must take a side here."""
    from deepfit.config import RunConfig
    from deepfit.config_scope import RunFacts, not_applying
    facts = RunFacts(source="detection-file", model="fasterrcnn_mobilenet_v3_large_fpn",
                     family="detector", task="detection")
    refused = not_applying(RunConfig(), facts)
    keys = {f"{s}.{k}" for s, sec in RunConfig().to_dict().items() if isinstance(sec, dict)
            for k in sec}
    assert keys == set(refused) | {k for k in DETECTION_RULES if k not in refused}
    assert "data.n_samples" in refused  # a file's data: only the generator takes a size


def test_a_table_task_on_boxes_and_detection_on_a_table_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="data.task=binary does not fit boxes"):
        deepfit.train(data="synthetic-smear", out=str(tmp_path), **{"data.task": "binary"})
    with pytest.raises(ConfigError, match="data.task=detection .*needs boxes per image"):
        deepfit.train(data="iris", out=str(tmp_path), **{"data.task": "detection"})


def test_predict_writes_a_submission_for_new_images(whole, tmp_path, data_root):
    import shutil
    from pathlib import Path
    from deepfit.cli import main
    images = sorted(Path(data_root).glob("synthetic-smear-*/images/*.png"))[:3]
    (tmp_path / "new" / "sub").mkdir(parents=True)
    for p in images:
        shutil.copy(p, tmp_path / "new" / "sub" / p.name)
    out = tmp_path / "submission.csv"
    assert main(["predict", str(whole.path), str(tmp_path / "new"), "-o", str(out)]) == 0
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["Image_ID"] for r in rows} == {f"sub/{p.name}" for p in images}


def test_commands_for_classification_runs_refuse_a_detector_in_one_line(whole, capsys):
    from deepfit.cli import main

    run = str(whole.path)
    for args in (["evaluate", run], ["inspect", run], ["explain", run, run],
                 ["export", run, "--format", "onnx"], ["serve", run, "--port", "0"],
                 ["compare", run, run]):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert "is an object-detection run" in err and err.count("\n") == 1, (args, err)
    with pytest.raises(deepfit.RunError, match="deepfit predict RUN IMAGES"):
        deepfit.load(run)
    # deepfit runs lists it with its test mAPs beside other runs.
    assert main(["runs", "--out", str(whole.path.parent)]) == 0
    listing = capsys.readouterr().out
    assert "detection" in listing and "mAP@0.5" in listing and "synthetic-smear" in listing


def test_a_long_detection_run_on_a_cpu_names_the_detectors_faster_choices(
        tmp_path, data_root, monkeypatch, capsys):
    from deepfit.train.builtin import progress

    monkeypatch.setattr(progress, "ESTIMATE_MIN_S", 0.0)  # as if the run were long
    monkeypatch.setattr(progress, "LONG_CPU_S", 0.0)
    deepfit.train(data="synthetic-smear", out=str(tmp_path), name="long",
                  **{**SETTINGS, "data.root": data_root, "train.epochs": 1,
                     "train.progress": True, "eval.plots": False, "eval.report": False})
    err = capsys.readouterr().err
    assert "on a CPU that is long for a detector: a smaller data.image_size" in err
    assert "--model lenet" not in err  # the image classifiers' advice is not a detector's


def test_automatic_values_of_a_detection_run():
    """The defaults measured on synthetic smears: the ResNet-50 Faster R-CNN, AdamW at 3e-4
    with the gradient norm clipped at 10, fewer proposals on small images; a value the user
    sets is kept."""
    import numpy as np

    from deepfit.config import RunConfig
    from deepfit.detection.setup import resolved
    from deepfit.models.detection import build_detector, detector_name

    cpu = torch.device("cpu")
    auto = resolved(RunConfig(), cpu).train
    assert (auto.lr, auto.grad_clip) == (3e-4, 10.0)
    assert (auto.monitor, auto.min_delta) == ("val_map50", 0.0)  # a metric: any gain counts
    assert resolved(RunConfig().override({"train.lr": 1e-3, "train.grad_clip": 2.0}),
                    cpu).train.grad_clip == 2.0
    assert resolved(RunConfig().override({"train.lr": 1e-3}), cpu).train.lr == 1e-3
    assert RunConfig().train.resolved("table").lr == 1e-3  # other tasks keep theirs
    assert detector_name("auto") == "fasterrcnn_resnet50_fpn"
    sides = np.array([10.0, 20.0])
    small, notes = build_detector("fasterrcnn_mobilenet_v3_large_fpn", 2, (128, 128), sides)
    assert small.rpn._pre_nms_top_n == {"training": 600, "testing": 300}
    assert small.rpn._post_nms_top_n == {"training": 300, "testing": 100}
    assert small.roi_heads.fg_bg_sampler.batch_size_per_image == 64
    assert any(n.startswith("proposals for images up to 320 px: 600 / 300") for n in notes)
    given, _ = build_detector("fasterrcnn_mobilenet_v3_large_fpn", 2, (128, 128), sides,
                              kwargs={"rpn_post_nms_top_n_test": 50})
    assert given.rpn._post_nms_top_n["testing"] == 50
    large, notes = build_detector("fasterrcnn_mobilenet_v3_large_fpn", 2, (480, 640), sides)
    assert large.rpn._pre_nms_top_n == {"training": 2000, "testing": 1000}
    assert large.roi_heads.fg_bg_sampler.batch_size_per_image == 128
    assert not any(n.startswith("proposals") for n in notes)
