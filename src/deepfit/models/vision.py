"""torchvision's ImageNet architectures, fitted to the task: any number of classes, gray or
colour images, and pretrained weights read from a local file only.

Nothing here downloads: a pretrained run reads the file torch.hub would have cached
(``<torch.hub.get_dir()>/checkpoints/<file name of the weights' URL>``) or the file named by
``model.weights``, and says how to get it when it is absent. A run that quietly reached for
the network would hang or fail on an offline cluster in the middle of a job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from deepfit.errors import ModelError, did_you_mean
from deepfit.models.cnn import (check_image_shape, read_state_dict, state_mismatch,
                                weights_path)

# Each builds with a new head and gray input and runs on 32x32 images. ConvNeXt, DenseNet
# and VGG halve the image five times without padding, so they need at least 32 pixels on
# each side; the build says so rather than the first batch. The others take 28x28 too.
TORCHVISION_MODELS = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d", "wide_resnet50_2",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_v2_s", "convnext_tiny",
    "convnext_small", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "densenet121", "regnet_y_400mf", "shufflenet_v2_x1_0", "vgg11_bn", "vgg16_bn",
)
# Other torchvision classification models build through the same generic surgery (the
# build checks that they run on the images), except these, whose outputs it cannot fit.
REFUSED = {
    "googlenet": "in training it returns auxiliary outputs besides the logits",
    "inception_v3": "in training it returns auxiliary outputs besides the logits",
    "squeezenet1_0": "its classifier is a convolution followed by a ReLU, so no logit can be "
                     "negative",
    "squeezenet1_1": "its classifier is a convolution followed by a ReLU, so no logit can be "
                     "negative",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's DenseNet files predate a renaming: 'denselayer1.norm.1.weight' is now
# 'denselayer1.norm1.weight' (torchvision rewrites the names when it loads them itself).
_OLD_DENSENET_NAME = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.")


def build_torchvision(name: str, cfg: Any, input_shape: tuple[int, int, int],
                      n_outputs: int) -> nn.Module:
    """torchvision model ``name`` (one of ``TORCHVISION_MODELS``, or another torchvision
    classification model except those in ``REFUSED``) with a new ``n_outputs`` head and a
    first convolution for ``C`` input channels; ImageNet weights when ``model.pretrained``
    (from a local file only), or the user's ``model.weights`` file. ``model.kwargs`` go to
    the torchvision builder (e.g. ``{dropout: 0.2}`` for EfficientNet).

    A weights file may hold the ImageNet architecture (then the head is replaced and the
    first convolution adapted after loading) or this exact adapted model (a fine-tuned one).

    Example:
        >>> from types import SimpleNamespace
        >>> cfg = SimpleNamespace(pretrained=False, weights=None, kwargs={})
        >>> net = build_torchvision("resnet18", cfg, (1, 28, 28), 10)
        >>> net.conv1.in_channels, net.fc.out_features, net(torch.zeros(2, 1, 28, 28)).shape
        (1, 10, torch.Size([2, 10]))
    """
    _check_name(name)
    c, h, w = check_image_shape(input_shape, name)
    kwargs = dict(getattr(cfg, "kwargs", None) or {})
    if "num_classes" in kwargs:
        raise ModelError("model.kwargs.num_classes cannot be set: the task gives the number of "
                         "outputs")
    try:
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{name} rejects model.kwargs {kwargs} ({exc})") from None
    path = _weights_file(name, cfg)
    state = read_state_dict(path) if path is not None else None
    if state is not None and name.startswith("densenet"):
        state = {_OLD_DENSENET_NAME.sub(r"\1\2.", k): v for k, v in state.items()}
    as_built = state_mismatch(model, state) if state is not None else ""
    if state is not None and not as_built:
        # An ImageNet-shaped file loads before the surgery, so the gray stem sums the
        # pretrained filters rather than random ones.
        model.load_state_dict(state, strict=False)
        state = None
    adapt_first_conv(model, c, name)
    replace_head(model, n_outputs, name)
    if state is not None:
        if state_mismatch(model, state):
            raise ModelError(f"weights file '{path}' does not fit {name}: {as_built}")
        model.load_state_dict(state, strict=False)
    _check_runs(model, (c, h, w), name)
    return model


def pretrained_stats(name: str, channels: int = 3) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``(mean, std)`` that the pretrained weights of ``name`` expect inputs
    (scaled to [0, 1]) to be normalised with.

    With a number of channels other than 3 each channel gets the average of the RGB values:
    a gray image feeds the summed RGB filters (see ``adapt_first_conv``), so it should look
    like its RGB copy did to the original model, and one mean/std is the closest match.

    Example:
        >>> pretrained_stats("resnet18")
        ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        >>> [round(v, 3) for v in pretrained_stats("resnet18", channels=1)[0]]
        [0.449]
    """
    _check_name(name)
    try:
        preset = torchvision.models.get_model_weights(name).DEFAULT.transforms()
        mean = tuple(float(v) for v in preset.mean)
        std = tuple(float(v) for v in preset.std)
    except (AttributeError, TypeError, ValueError):  # a preset without mean/std: ImageNet's
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    if channels != len(mean):
        mean = (sum(mean) / len(mean),) * channels
        std = (sum(std) / len(std),) * channels
    return mean, std


def adapt_first_conv(model: nn.Module, channels: int, name: str = "model") -> None:
    """Give ``model``'s first (RGB) convolution ``channels`` input channels, in place.

    For one channel the new filter is the sum of the R, G and B filters: a gray image is an
    RGB image with R = G = B = x, and ``w_r*x + w_g*x + w_b*x = (w_r + w_g + w_b)*x``, so the
    gray model computes exactly what the RGB model computes on the gray image replicated, and
    the activations keep the scale the later layers were trained on. For other counts each
    channel gets the mean RGB filter times 3/C, which keeps the same property.
    """
    if channels == 3:
        return
    found = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    if found is None or found[1].in_channels != 3 or found[1].groups != 1:
        raise ModelError(f"cannot adapt {name} to {channels}-channel images: its first "
                         "layer is not a plain RGB convolution")
    path, conv = found
    new = nn.Conv2d(channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, bias=conv.bias is not None,
                    padding_mode=conv.padding_mode, device=conv.weight.device,
                    dtype=conv.weight.dtype)
    with torch.no_grad():
        rgb = conv.weight  # (out, 3, kh, kw)
        if channels == 1:
            new.weight.copy_(rgb.sum(dim=1, keepdim=True))  # (out, 1, kh, kw)
        else:
            new.weight.copy_(rgb.mean(dim=1, keepdim=True).expand(-1, channels, -1, -1)
                             * (3 / channels))  # (out, C, kh, kw)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _set_submodule(model, path, new)


def replace_head(model: nn.Module, n_outputs: int, name: str = "model") -> None:
    """Swap ``model``'s last ``nn.Linear`` (its classifier, wherever the family keeps it:
    ``fc``, ``classifier[-1]``, ``head``) for a freshly initialised one with ``n_outputs``."""
    found = None
    for path, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = (path, module)
    if found is None:
        raise ModelError(f"{name} has no linear classifier to replace")
    path, head = found
    _set_submodule(model, path, nn.Linear(head.in_features, n_outputs,
                                          bias=head.bias is not None,
                                          device=head.weight.device, dtype=head.weight.dtype))


def _set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _check_name(name: str) -> None:
    if name in TORCHVISION_MODELS:
        return
    if name in REFUSED:
        raise ModelError(f"torchvision's {name} is not supported: {REFUSED[name]}; choose "
                         "another model, e.g. resnet18, efficientnet_b0 or mobilenet_v3_small")
    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        raise ModelError(f"unknown torchvision model '{name}'"
                         f"{did_you_mean(name, [*TORCHVISION_MODELS, *available])}; use one of "
                         f"{', '.join(TORCHVISION_MODELS)}, or another torchvision "
                         "classification model")


def _weights_file(name: str, cfg: Any) -> Optional[Path]:
    """The file to load: ``model.weights``, else with ``model.pretrained`` the torch.hub cache
    file of the default ImageNet weights, else None."""
    explicit = getattr(cfg, "weights", None)
    if explicit:
        return weights_path(explicit)
    if not getattr(cfg, "pretrained", False):
        return None
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    # The same place torch.hub stores a download, so one done once while online is found.
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    if not path.is_file():
        raise ModelError(
            f"pretrained weights for {name} not found: looked for '{path}'; download them once "
            f"while online with python -c \"import torchvision; torchvision.models.get_model("
            f"'{name}', weights='DEFAULT')\", or set model.weights=PATH, or "
            "model.pretrained=false")
    return path


def _check_runs(model: nn.Module, shape: tuple[int, int, int], name: str) -> None:
    """Fail at build time, not at the first batch, when the images do not fit the
    architecture (too small for its downsampling, or not the one size a ViT takes)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # batch norm in training mode refuses a batch of one 1x1 map
    try:
        with torch.no_grad():
            if shape[1] * shape[2] <= 64 * 64 or device.type == "meta":
                # Small images are where architectures run out of pixels; a real pass over
                # one costs milliseconds and catches every failure (some torch versions'
                # shape-only kernels miss a too-small image).
                model(torch.zeros((1, *shape), device=device))
            else:  # shapes only, on the meta device: no arithmetic, no memory
                tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
                meta = {k: torch.empty_like(v, device="meta") for k, v in tensors.items()}
                torch.func.functional_call(model, meta,
                                           (torch.empty((1, *shape), device="meta"),))
    except NotImplementedError:
        pass  # an operation without a meta kernel: skip the check rather than refuse the model
    except Exception as exc:  # shape errors come as RuntimeError, ValueError, AssertionError
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ModelError(f"{name} fails on {shape[0]}x{shape[1]}x{shape[2]} images ({first}); if "
                         "they are too small for it, enlarge them with data.image_size or "
                         "choose another model") from None
    finally:
        model.train(was_training)
