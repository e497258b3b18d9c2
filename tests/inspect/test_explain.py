"""Image explanations: Grad-CAM finds the bright square that decides the class, the
randomised-weights check tells maps that depend on the weights from maps that do not, the
report shows them, and ``deepfit explain`` draws them for new images."""

import json

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

import deepfit
from deepfit.cli import main
from deepfit.errors import ModelError
from deepfit.evaluate.explain import (attribution_maps, class_scores, find_layer,
                                      rank_correlations, sanity_check)
from deepfit.explanations import Explainer, report_groups, targets_of
from deepfit.models.cnn import SmallCNN

SIZE, SIDE = 32, 14  # the square is 19% of the image: the top 20% of a map can cover it


def square_image(rng, square: bool):
    """Noise in [0, 90) and, for the class 'square', a white square at a random place;
    the image and the square's mask."""
    a = (rng.random((SIZE, SIZE)) * 90).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), bool)
    if square:
        r, c = rng.integers(0, SIZE - SIDE + 1, size=2)
        a[r:r + SIDE, c:c + SIDE] = 255
        mask[r:r + SIDE, c:c + SIDE] = True
    return a, mask


@pytest.fixture(scope="module")
def square_run(tmp_path_factory):
    """A CNN trained to tell images with a bright square from images without, with the
    report (and so the explanations) written."""
    root = tmp_path_factory.mktemp("squares")
    rng = np.random.default_rng(0)
    for label in ("none", "square"):
        (root / "img" / label).mkdir(parents=True)
        for i in range(60):
            Image.fromarray(square_image(rng, label == "square")[0]).save(
                root / "img" / label / f"{i}.png")
    return deepfit.train(data=str(root / "img"), model="cnn", epochs=4, out=root / "runs",
                         progress=False, bootstrap=0, **{"train.diagnostics": False})


def test_gradcam_highlights_the_square_that_decides_the_class(square_run):
    rng = np.random.default_rng(1)
    images, masks = zip(*(square_image(rng, True) for _ in range(16)))
    images = np.stack(images)[:, None]
    square = square_run.schema.class_names.index("square")
    explainer = Explainer(square_run.model, "binary", "logits", square_run.schema.image)
    maps = explainer.maps(images, [square] * len(images))
    assert explainer.layer.name == "features.2.5"  # the last block's ReLU, before its pooling
    ious = []
    for m, mask in zip(maps["gradcam"], masks):
        top = m >= np.quantile(m, 0.8)
        ious.append((top & mask).sum() / (top | mask).sum())
    assert np.median(ious) >= 0.5, ious
    # The maps depend on what the network learned.
    check = explainer.sanity(images[:4], [square] * 4, seed=1)
    assert check["gradcam"]["changes"] is True


def test_the_sanity_check_catches_a_map_that_ignores_the_weights():
    torch.manual_seed(0)
    model = SmallCNN(1, 2, channels=(4, 8)).eval()
    x = torch.rand(3, 1, 16, 16)
    brightness = sanity_check(lambda m: x[:, 0].numpy() ** 2, model)  # the image itself
    assert brightness["changes"] is False and brightness["rank_correlation"] == pytest.approx(1)
    # A constant map has no ranking: undefined, not "passes".
    flat = sanity_check(lambda m: np.ones((3, 16, 16)), model)
    assert flat["rank_correlation"] is None and flat["changes"] is None
    assert np.isnan(rank_correlations(np.ones((1, 2, 2)), np.eye(2)[None])[0])


def test_the_report_explains_test_images_and_checks_the_maps(square_run):
    summary = json.loads((square_run.path / "summary.json").read_text())
    explained = summary["explained"]
    assert explained["layer"] == "features.2.5" and explained["layer_chosen"] == "automatic"
    assert set(explained["sanity"]) == {"gradcam", "integrated_gradients"}
    assert "One per class" in explained["plots"]
    for rel in explained["plots"].values():
        assert (square_run.path / rel).stat().st_size > 1000
    html = (square_run.path / "report.html").read_text()
    assert "Why the network decided" in html and "sanity check" in html
    assert "Why the network decided" in (square_run.path / "report.md").read_text()


def test_deepfit_explain_draws_new_images_and_never_overwrites(square_run, tmp_path, capsys):
    rng = np.random.default_rng(2)
    for i in range(3):
        Image.fromarray(square_image(rng, True)[0]).save(tmp_path / f"new{i}.png")
    run = str(square_run.path)
    assert main(["explain", run, str(tmp_path / "new0.png"), "--method", "gradcam,saliency"]) == 0
    assert main(["explain", run, str(tmp_path), "--class", "none"]) == 0
    first, second = square_run.path / "explanations" / "1", square_run.path / "explanations" / "2"
    assert [p.name for p in first.iterdir()] == ["new0.png"]
    assert len(list(second.iterdir())) == 1
    out = capsys.readouterr().out
    assert "Grad-CAM read layer 'features.2.5' (automatic)" in out
    # Bad input: one line, exit 2, and no folder left behind.
    for args, says in ((["--layer", "nope"], "--layer 'nope' is not a layer of the model"),
                       (["--class", "cat"], "--class 'cat' is not a class of the model"),
                       (["--method", "shap"], "unknown method 'shap'"),
                       (["-o", str(first)], "is not empty")):
        assert main(["explain", run, str(tmp_path / "new1.png"), *args]) == 2
        assert says in capsys.readouterr().err
    assert sorted(p.name for p in (square_run.path / "explanations").iterdir()) == ["1", "2"]


def test_two_images_of_the_same_name_get_two_figures(square_run, tmp_path, capsys):
    rng = np.random.default_rng(3)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(square_image(rng, True)[0]).save(tmp_path / folder / "scan.png")
    out = tmp_path / "maps"
    assert main(["explain", str(square_run.path), str(tmp_path / "a" / "scan.png"),
                 str(tmp_path / "b" / "scan.png"), "--method", "saliency", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["scan-2.png", "scan.png"]  # none overwritten
    assert capsys.readouterr().out.count("wrote ") == 2


def test_deepfit_explain_refuses_a_table_run(tmp_path, capsys):
    run = deepfit.train(data="iris", epochs=1, out=tmp_path, progress=False, plots=False,
                        report=False, bootstrap=0)
    assert main(["explain", str(run.path), str(tmp_path)]) == 2
    assert "was trained on a table" in capsys.readouterr().err


def test_the_layer_grad_cam_reads_is_found_in_every_kind_of_network():
    x = torch.rand(1, 3, 32, 32)
    resnet = torchvision.models.resnet18(num_classes=3).eval()
    big = torch.rand(1, 3, 64, 64)
    assert find_layer(resnet, big).name == "layer4"  # after the stage's skip connections
    assert find_layer(resnet, x).name == "layer3"  # 32 pixels: layer4's map is 1 x 1
    shared = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3),
                           nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 28 * 28, 2))
    assert find_layer(shared, x).name == "3"
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))
    assert find_layer(mlp, x) is None
    assert find_layer(resnet, x, "layer3").chosen == "named"
    with pytest.raises(ModelError, match="eval.explain_layer 'layer9' is not a layer"):
        find_layer(resnet, x, "layer9")
    with pytest.raises(ModelError, match="Grad-CAM needs a layer with feature maps"):
        attribution_maps(class_scores(mlp, "binary", "logits"), x, [1], "gradcam", None)
    # Integrated gradients and saliency need no layer: a map per image, never negative.
    for method in ("integrated_gradients", "saliency"):
        maps = attribution_maps(class_scores(mlp, "multiclass", "logits"), x, [1], method)
        assert maps.shape == (1, 32, 32) and (maps >= 0).all()


def test_the_explained_score_is_the_class_logit_whatever_the_model_returns():
    z = torch.tensor([[0.3], [-1.2]])
    binary = class_scores(lambda x: z, "binary", "logits")(None)
    assert torch.equal(binary, torch.cat([-z, z], dim=1))  # target 0 explains "not positive"
    probs = class_scores(lambda x: torch.sigmoid(z), "binary", "probabilities")(None)
    assert torch.allclose(probs, binary, atol=1e-5)
    members = class_scores(lambda x: torch.stack([z, 3 * z], dim=1), "binary", "logits")(None)
    assert torch.allclose(members, 2 * binary)  # an ensemble: the mean of its members' logits
    value = class_scores(lambda x: z, "regression", "logits")(None)
    assert value.shape == (2,)


def test_regression_and_multilabel_runs_are_explained_too():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 16, 16)
    net = SmallCNN(1, 1, channels=(4, 8)).eval()
    value = class_scores(net, "regression", "logits")
    for method in ("gradcam", "integrated_gradients"):  # the predicted value is explained
        maps = attribution_maps(value, x, None, method, find_layer(net, x))
        assert maps.shape == (3, 16, 16) and np.isfinite(maps).all()
    groups = report_groups("regression", np.array([1.0, 2.0, 3.0]), np.array([1.1, 4.0, 3.0]),
                           np.array([1.1, 4.0, 3.0]), [])
    assert list(groups["Smallest errors"]) == [2, 0, 1] and groups["Largest errors"][0] == 1
    scores = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.3]])
    assert targets_of("multilabel", scores, (scores > 0.5).astype(int)) == [0, 1]
    assert targets_of("regression", scores, scores) is None
    # A resnet from torchvision: Grad-CAM through its last stage.
    resnet = torchvision.models.resnet18(num_classes=2).eval()
    big = torch.rand(2, 3, 64, 64)
    cam = attribution_maps(class_scores(resnet, "multiclass", "logits"), big, [0, 1], "gradcam",
                           find_layer(resnet, big))
    assert cam.shape == (2, 64, 64) and (cam >= 0).all()


def test_per_class_group_names_how_many_classes_it_leaves_out():
    y = np.arange(15)
    scores = np.eye(15)
    groups = report_groups("multiclass", y, y, scores, [f"c{i}" for i in range(15)])
    assert list(groups["One per class (the first 12 of 15)"]) == list(range(12))
    assert "Wrong, most confident" not in groups  # no mistakes: no empty figure


def test_the_sanity_check_leaves_the_random_streams_as_it_found_them():
    from deepfit.evaluate.explain import randomised

    model = SmallCNN(1, 2, channels=(4,))
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    fresh = randomised(model, seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert not torch.equal(fresh.features[0][0].weight, model.features[0][0].weight)


def test_explain_refuses_a_file_as_output_and_gradcam_without_feature_maps(square_run,
                                                                            tmp_path, capsys):
    rng = np.random.default_rng(3)
    Image.fromarray(square_image(rng, True)[0]).save(tmp_path / "one.png")
    (tmp_path / "file.txt").write_text("x")
    run = str(square_run.path)
    assert main(["explain", run, str(tmp_path / "one.png"), "-o", str(tmp_path / "file.txt")]) == 2
    assert "is a file; give a new or empty folder" in capsys.readouterr().err
    mlp = deepfit.train(data=str(square_run.path.parent.parent / "img"), model="mlp", epochs=1,
                        out=tmp_path / "runs", progress=False, plots=False, report=False,
                        bootstrap=0)
    assert main(["explain", str(mlp.path), str(tmp_path / "one.png"), "--method",
                 "gradcam"]) == 2
    assert "no layer with feature maps" in capsys.readouterr().err
    assert not (mlp.path / "explanations").exists() or not any(
        (mlp.path / "explanations").iterdir())
