"""Image architectures: logits for gray, colour and non-square images, learning, residual
blocks at initialisation, torchvision surgery and offline loading of weights files."""

import doctest
import socket
import types

import pytest
import torch
import torchvision
from torch import nn

from deepfit.errors import ModelError
from deepfit.models import cnn, resnet, vision
from deepfit.models.cnn import build_cnn, build_lenet
from deepfit.models.registry import count_parameters
from deepfit.models.resnet import BasicBlock, build_resnet9, build_resnet18
from deepfit.models.vision import TORCHVISION_MODELS, build_torchvision, pretrained_stats

SHAPES = [(1, 28, 28), (3, 32, 32), (3, 40, 24)]


def make_cfg(**fields):
    """A stand-in for ModelConfig with the image fields (the factories only use getattr)."""
    base = dict(channels=(), pretrained=False, weights=None, dropout=0.3, kwargs={})
    return types.SimpleNamespace(**{**base, **fields})


def torchvision_factory(name):
    return lambda cfg, shape, n: build_torchvision(name, cfg, shape, n)


# Small widths keep the whole file fast; the defaults are checked separately below.
FACTORIES = {
    "cnn": (build_cnn, (8, 16)),
    "lenet": (build_lenet, ()),
    "resnet9": (build_resnet9, (4,)),
    "resnet18": (build_resnet18, (4,)),
    "tv_resnet18": (torchvision_factory("resnet18"), ()),
    "tv_mobilenet_v3_small": (torchvision_factory("mobilenet_v3_small"), ()),
}


def first_conv(net: nn.Module) -> nn.Conv2d:
    return next(m for m in net.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("arch", FACTORIES)
def test_factories_give_logits_and_gradients_reach_the_first_layer(arch, shape):
    factory, channels = FACTORIES[arch]
    torch.manual_seed(0)
    net = factory(make_cfg(channels=channels), shape, 5)
    logits = net(torch.randn(4, *shape))
    assert logits.shape == (4, 5) and torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    conv = first_conv(net)
    assert conv.in_channels == shape[0]
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("factory, params", [
    (build_cnn, 288_170), (build_lenet, 61_706), (build_resnet9, 6_571_978),
    (build_resnet18, 11_172_810)])
def test_default_sizes_on_fashion_mnist_shaped_input(factory, params):
    assert count_parameters(factory(make_cfg(), (1, 28, 28), 10)) == params


def test_cnn_defaults_are_three_double_conv_blocks_with_configured_dropout():
    net = build_cnn(make_cfg(dropout=0.2), (1, 28, 28), 10)
    widths = [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [32, 32, 64, 64, 128, 128]
    assert net.dropout.p == 0.2 and net.classifier.in_features == 128


def test_cnn_runs_with_more_blocks_than_the_image_has_halvings():
    net = build_cnn(make_cfg(channels=(4, 4, 4, 4, 4)), (1, 8, 8), 3)  # 8 -> 4 -> 2 -> 1 -> 1
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3)


@pytest.mark.parametrize("shape, flat", [((1, 28, 28), 400), ((3, 32, 32), 400),
                                         ((1, 8, 8), 64), ((3, 40, 24), 448)])
def test_lenet_is_classic_on_mnist_and_cifar_and_adapts_elsewhere(shape, flat):
    net = build_lenet(make_cfg(), shape, 10)
    assert net.classifier[1].in_features == flat
    assert net(torch.zeros(2, *shape)).shape == (2, 10)


def test_lenet_has_the_lectures_cifar_parameter_count():
    assert count_parameters(build_lenet(make_cfg(), (3, 32, 32), 10)) == 62_006


def test_cnn_learns_bright_left_versus_bright_right():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(64) % 2
    images = 0.3 * torch.randn(64, 1, 16, 16, generator=gen)
    images[labels == 0, :, :, :8] += 1.0  # class 0: the left half is bright
    images[labels == 1, :, :, 8:] += 1.0  # class 1: the right half
    torch.manual_seed(0)
    net = build_cnn(make_cfg(channels=(8, 16)), (1, 16, 16), 2)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(40):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(images), labels).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(images).argmax(1) == labels).float().mean().item()
    assert accuracy >= 0.97


def test_residual_block_at_init_is_its_shortcut():
    x = torch.rand(2, 8, 6, 6)  # non-negative, like the output of a ReLU
    assert torch.equal(BasicBlock(8, 8)(x), x)
    down = BasicBlock(8, 16, stride=2)
    assert torch.equal(down(x), torch.relu(down.shortcut(x)))


@pytest.mark.parametrize("factory", [build_resnet9, build_resnet18])
def test_every_block_of_a_fresh_resnet_passes_only_its_shortcut(factory):
    net = factory(make_cfg(channels=(4,)), (3, 32, 32), 10)
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
    seen = []

    def check(block, args, output):
        seen.append(torch.equal(output, torch.relu(block.shortcut(args[0]))))

    for block in blocks:
        block.register_forward_hook(check)
    net(torch.randn(2, 3, 32, 32))
    assert len(seen) == len(blocks) == (2 if factory is build_resnet9 else 8) and all(seen)


def test_zero_initialised_gamma_still_learns():
    # The ReLU sits after the sum: a zero gamma before a ReLU would get no gradient.
    net = build_resnet9(make_cfg(channels=(4,)), (3, 16, 16), 2)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    logits = net(torch.randn(4, 3, 16, 16))
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0, 1])).backward()
    optimizer.step()
    gammas = [m.bn2.weight for m in net.modules() if isinstance(m, BasicBlock)]
    assert all(g.abs().sum() > 0 for g in gammas)


def test_resnet18_stem_follows_the_image_size():
    small = build_resnet18(make_cfg(channels=(4,)), (3, 32, 32), 10)
    large = build_resnet18(make_cfg(channels=(4,)), (3, 96, 80), 10)
    assert first_conv(small).kernel_size == (3, 3) and first_conv(small).stride == (1, 1)
    assert first_conv(large).kernel_size == (7, 7) and first_conv(large).stride == (2, 2)
    assert any(isinstance(m, nn.MaxPool2d) for m in large.stem)
    assert large(torch.zeros(2, 3, 96, 80)).shape == (2, 10)


def test_one_width_doubles_per_stage_and_four_set_each():
    net = build_resnet9(make_cfg(channels=(4,)), (3, 16, 16), 2)
    assert net.fc.in_features == 32 and net.prep[0].out_channels == 4
    net = build_resnet18(make_cfg(channels=(2, 3, 5, 7)), (3, 16, 16), 2)
    assert [stage[0].conv1.out_channels for stage in net.stages] == [2, 3, 5, 7]


@pytest.mark.parametrize("factory, channels", [(build_resnet9, (8, 16)), (build_lenet, (6,)),
                                               (build_cnn, (8, 0))])
def test_bad_widths_are_model_errors(factory, channels):
    with pytest.raises(ModelError, match="model.channels"):
        factory(make_cfg(channels=channels), (3, 32, 32), 2)


def test_own_architectures_refuse_pretrained_and_load_their_own_file(tmp_path):
    with pytest.raises(ModelError, match="model.pretrained=false"):
        build_cnn(make_cfg(pretrained=True), (1, 28, 28), 10)
    trained = build_cnn(make_cfg(channels=(4, 8)), (1, 28, 28), 10)
    torch.save({"model": trained.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")  # deepfit's
    again = build_cnn(make_cfg(channels=(4, 8), weights=str(tmp_path / "ckpt.pt")), (1, 28, 28), 10)
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(),
                                                 again.state_dict().values()))
    with pytest.raises(ModelError, match="does not fit cnn"):
        build_cnn(make_cfg(weights=str(tmp_path / "ckpt.pt")), (1, 28, 28), 10)
    with pytest.raises(ModelError, match="nowhere.pt"):
        build_resnet9(make_cfg(weights=str(tmp_path / "nowhere.pt")), (3, 32, 32), 10)


def build_cheaply(name, cfg, shape, n):
    # On the meta device nothing is initialised, so the large models build in milliseconds;
    # a builder that computes with tensors (RegNet's widths) needs real ones.
    try:
        with torch.device("meta"):
            return build_torchvision(name, cfg, shape, n)
    except NotImplementedError:
        return build_torchvision(name, cfg, shape, n)


@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_every_torchvision_model_gets_the_task_head_and_a_gray_stem(name):
    net = build_cheaply(name, make_cfg(), (1, 32, 32), 7)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert linears[-1].out_features == 7 and first_conv(net).in_channels == 1


def test_torchvision_images_too_small_for_the_architecture_fail_at_build():
    with pytest.raises(ModelError, match=r"vgg11_bn fails on 1x28x28 images.*data.image_size"):
        build_cheaply("vgg11_bn", make_cfg(), (1, 28, 28), 10)


def test_other_torchvision_classifiers_build_and_misfits_are_refused():
    net = build_cheaply("resnet152", make_cfg(), (1, 32, 32), 3)
    assert net.fc.out_features == 3 and net.conv1.in_channels == 1
    with pytest.raises(ModelError, match="googlenet is not supported: in training it returns"):
        build_torchvision("googlenet", make_cfg(), (3, 32, 32), 3)
    with pytest.raises(ModelError, match="vit_b_16 fails on 3x32x32 images"):
        build_cheaply("vit_b_16", make_cfg(), (3, 32, 32), 3)


def test_unknown_torchvision_name_suggests_the_close_one():
    with pytest.raises(ModelError, match="did you mean 'resnet18'"):
        build_torchvision("resnet81", make_cfg(), (3, 32, 32), 10)
    with pytest.raises(ModelError, match="did you mean 'resnet18'"):
        pretrained_stats("resnet81")


def test_gray_stem_is_the_sum_of_the_pretrained_rgb_filters(tmp_path):
    torch.manual_seed(0)
    rgb = torchvision.models.get_model("resnet18", weights=None)
    state = rgb.state_dict()
    torch.save(state, tmp_path / "resnet18.pth")
    gray = build_torchvision("resnet18", make_cfg(pretrained=True,
                                                  weights=str(tmp_path / "resnet18.pth")),
                             (1, 28, 28), 10)
    assert torch.equal(gray.conv1.weight, state["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(gray.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert gray.fc.out_features == 10
    # So the gray model sees a gray image as the RGB model sees its three-channel copy.
    rgb.fc, gray.fc = nn.Identity(), nn.Identity()
    rgb.eval(), gray.eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(gray(x), rgb(x.expand(-1, 3, -1, -1)))


def test_a_fine_tuned_file_of_the_adapted_model_loads(tmp_path):
    tuned = build_torchvision("mobilenet_v3_small", make_cfg(), (1, 32, 32), 4)
    torch.save({"model": tuned.state_dict()}, tmp_path / "tuned.pt")
    again = build_torchvision("mobilenet_v3_small", make_cfg(weights=str(tmp_path / "tuned.pt")),
                              (1, 32, 32), 4)
    for key, value in tuned.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_pretrained_without_the_cached_file_says_where_and_how_and_stays_offline(
        tmp_path, monkeypatch):
    _no_network(monkeypatch)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    url = torchvision.models.get_model_weights("resnet18").DEFAULT.url
    expected = tmp_path / "checkpoints" / url.rsplit("/", 1)[-1]
    with pytest.raises(ModelError) as info:
        build_torchvision("resnet18", make_cfg(pretrained=True), (3, 32, 32), 10)
    message = str(info.value)
    assert str(expected) in message and "model.pretrained=false" in message
    assert "model.weights=PATH" in message and "\n" not in message


def test_pretrained_reads_the_torch_hub_cache_file(tmp_path, monkeypatch):
    _no_network(monkeypatch)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    url = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT.url
    state = torchvision.models.get_model("mobilenet_v3_small", weights=None).state_dict()
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, tmp_path / "checkpoints" / url.rsplit("/", 1)[-1])
    net = build_torchvision("mobilenet_v3_small", make_cfg(pretrained=True), (3, 32, 32), 3)
    assert torch.equal(net.features[0][0].weight, state["features.0.0.weight"])


def test_densenet_files_with_the_old_layer_names_load(tmp_path):
    state = torchvision.models.get_model("densenet121", weights=None).state_dict()
    old = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v for k, v in state.items()}
    assert old.keys() != state.keys()
    torch.save(old, tmp_path / "densenet121.pth")
    net = build_torchvision("densenet121", make_cfg(weights=str(tmp_path / "densenet121.pth")),
                            (3, 32, 32), 2)
    key = "features.denseblock1.denselayer1.norm1.weight"
    assert torch.equal(net.state_dict()[key], state[key])


@pytest.mark.parametrize("content, match", [
    (b"certainly not a checkpoint", "cannot be loaded"),
    (None, "does not fit resnet18"),
])
def test_bad_weights_files_are_model_errors_naming_the_file(tmp_path, content, match):
    path = tmp_path / "weights.pth"
    if content is None:  # a real state dict, of another architecture
        torch.save(torchvision.models.get_model("shufflenet_v2_x0_5").state_dict(), path)
    else:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=match) as info:
        build_torchvision("resnet18", make_cfg(pretrained=True, weights=str(path)), (3, 32, 32), 2)
    assert str(path) in str(info.value)


def test_torchvision_kwargs_reach_the_builder_except_the_class_count():
    net = build_torchvision("efficientnet_b0", make_cfg(kwargs={"dropout": 0.5}), (3, 32, 32), 2)
    assert net.classifier[0].p == 0.5 and net.classifier[-1].out_features == 2
    with pytest.raises(ModelError, match="num_classes"):
        build_torchvision("resnet18", make_cfg(kwargs={"num_classes": 5}), (3, 32, 32), 2)
    with pytest.raises(ModelError, match="resnet18 rejects model.kwargs"):
        build_torchvision("resnet18", make_cfg(kwargs={"bogus": 1}), (3, 32, 32), 2)


def test_pretrained_stats_are_imagenets_and_averaged_for_gray():
    mean, std = pretrained_stats("convnext_tiny")
    assert mean == pytest.approx((0.485, 0.456, 0.406))
    assert std == pytest.approx((0.229, 0.224, 0.225))
    gray_mean, gray_std = pretrained_stats("convnext_tiny", channels=1)
    assert gray_mean == pytest.approx((sum(mean) / 3,))
    assert gray_std == pytest.approx((sum(std) / 3,))


@pytest.mark.parametrize("module", [cnn, resnet, vision])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
