"""Residual networks sized for small images: the fast ResNet-9 and a ResNet-18.

A skip connection adds a block's input to its output, ``y = relu(x + F(x))``, so the block
only has to learn the residual ``F(x) = y - x``. Two things follow, as the lectures show:
a block that is not needed can settle at ``F = 0`` and pass its input through unchanged,
so adding depth cannot make the network worse in principle; and the gradient reaches
early layers through the ``+ x`` path without being multiplied by every layer's weights,
so deep stacks still train.

Both nets zero the last batch-norm scale (gamma) of every residual branch: at
initialisation each block is then exactly its shortcut, so the network starts as a
shallower one and grows into its depth, which trains faster and more stably (Goyal et al.,
2017). Neither uses ``model.dropout``: batch norm and weight decay are their regularisers
in the reference recipes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from deepfit.models.cnn import apply_own_weights, check_image_shape, conv_widths

RESNET9_CHANNELS = (64, 128, 256, 512)
RESNET18_CHANNELS = (64, 128, 256, 512)
RESNET18_BLOCKS = (2, 2, 2, 2)
SMALL_IMAGE_MAX = 64  # up to this side (min of H, W) the stem keeps full resolution


def conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    """conv3x3 -> batch norm -> ReLU, resolution kept."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """``relu(shortcut(x) + bn2(conv2(relu(bn1(conv1(x))))))``, the ResNet-18 block.

    The shortcut is the identity when shapes match, else a strided 1x1 conv + batch norm
    that projects ``x`` to the new width and resolution. ``bn2`` starts with gamma = 0, so
    at initialisation ``block(x) = relu(shortcut(x))``, which is ``x`` itself for the
    non-negative output of a previous ReLU. The ReLU comes after the sum, never at the end
    of the branch: a zero gamma followed by a ReLU would get no gradient (ReLU'(0) = 0) and
    the branch would stay dead.

    Example:
        >>> block = BasicBlock(8, 8)
        >>> x = torch.rand(2, 8, 5, 5)
        >>> torch.equal(block(x), x)
        True
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        nn.init.zeros_(self.bn2.weight)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in, H, W) -> (B, out, H/s, W/s)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet9(nn.Module):
    """The fast "ResNet-9" of the DAWNBench CIFAR-10 entries (Myrtle.ai, D. Page):

    prep conv(w0) -> [conv(w1), pool, residual] -> [conv(w2), pool] -> [conv(w3), pool,
    residual] -> global max pool -> linear. Each residual is a ``BasicBlock``: the original
    puts a ReLU at the end of the branch, this one after the sum, so the zero-initialised
    gamma can learn (see ``BasicBlock``). Pools use ``ceil_mode`` so images down to 1 pixel
    on a side never pool to nothing.

    Example:
        >>> net = ResNet9(3, 10, widths=(8, 16, 32, 64))
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, n_outputs: int,
                 widths: Sequence[int] = RESNET9_CHANNELS) -> None:
        super().__init__()
        w0, w1, w2, w3 = widths
        self.prep = conv_bn_relu(in_channels, w0)
        self.layer1 = nn.Sequential(conv_bn_relu(w0, w1), nn.MaxPool2d(2, ceil_mode=True),
                                    BasicBlock(w1, w1))
        self.layer2 = nn.Sequential(conv_bn_relu(w1, w2), nn.MaxPool2d(2, ceil_mode=True))
        self.layer3 = nn.Sequential(conv_bn_relu(w2, w3), nn.MaxPool2d(2, ceil_mode=True),
                                    BasicBlock(w3, w3))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(w3, n_outputs)
        _init_convs(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, n_outputs)
        x = self.prep(x)  # (B, w0, H, W)
        x = self.layer1(x)  # (B, w1, H/2, W/2)
        x = self.layer2(x)  # (B, w2, H/4, W/4)
        x = self.layer3(x)  # (B, w3, H/8, W/8)
        return self.fc(self.pool(x).flatten(1))  # (B, w3) -> (B, n_outputs)


class ResNet(nn.Module):
    """He et al.'s ResNet with ``BasicBlock`` stages (``blocks`` per stage, one width each).

    Small images (min side <= 64) get a 3x3 stride-1 stem and no max-pool, as on CIFAR: the
    ImageNet stem's 4x downsampling would leave a 32x32 image 8x8 before the first block.
    Larger images get the ImageNet stem, 7x7 stride 2 + 3x3 max-pool stride 2. Every stage
    after the first halves the resolution and the blocks end in global average pooling, so
    any image size works.

    Example:
        >>> net = ResNet(3, 10, widths=(8, 16), blocks=(1, 1), image_side=32)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, n_outputs: int,
                 widths: Sequence[int] = RESNET18_CHANNELS,
                 blocks: Sequence[int] = RESNET18_BLOCKS, image_side: int = 32) -> None:
        super().__init__()
        w0 = widths[0]
        if image_side <= SMALL_IMAGE_MAX:
            self.stem = conv_bn_relu(in_channels, w0)  # (B, w0, H, W)
        else:
            self.stem = nn.Sequential(  # (B, w0, H/4, W/4)
                nn.Conv2d(in_channels, w0, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(w0), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        stages: list[nn.Module] = []
        width = w0
        for i, (out, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            stage = [BasicBlock(width, out, stride)] + [BasicBlock(out, out) for _ in range(n - 1)]
            stages.append(nn.Sequential(*stage))
            width = out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, n_outputs)
        _init_convs(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, n_outputs)
        x = self.stages(self.stem(x))  # (B, widths[-1], ~H/2^(k-1), ~W/2^(k-1)) on small images
        return self.fc(self.pool(x).flatten(1))  # (B, widths[-1]) -> (B, n_outputs)


def _init_convs(model: nn.Module) -> None:
    # He init keeps the activations' variance through ReLU layers (torchvision does the same);
    # BasicBlock's zero gammas are left as they are.
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


def _stage_widths(cfg: Any, default: tuple[int, ...], arch: str) -> tuple[int, ...]:
    # One width is the first stage's, doubled at each later stage; four give every stage.
    widths = conv_widths(cfg, default, arch, (1, 4))
    if len(widths) == 1:
        widths = tuple(widths[0] * 2 ** i for i in range(4))
    return widths


def build_resnet9(cfg: Any, input_shape: tuple[int, int, int], n_outputs: int) -> ResNet9:
    """ResNet-9 (widths 64-128-256-512; ``model.channels=[c]`` gives c-2c-4c-8c, four values
    give each). About 6.6 M parameters at the default widths.

    Example:
        >>> from types import SimpleNamespace
        >>> cfg = SimpleNamespace(channels=(16,))
        >>> net = build_resnet9(cfg, (3, 32, 32), 10)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    c, _, _ = check_image_shape(input_shape, "resnet9")
    model = ResNet9(c, n_outputs, _stage_widths(cfg, RESNET9_CHANNELS, "resnet9"))
    return apply_own_weights(model, cfg, "resnet9")


def build_resnet18(cfg: Any, input_shape: tuple[int, int, int], n_outputs: int) -> ResNet:
    """ResNet-18 (BasicBlock x [2, 2, 2, 2], widths 64-128-256-512, or from
    ``model.channels`` as for ``build_resnet9``). About 11.2 M parameters; the stem follows
    the image size (see ``ResNet``).

    Example:
        >>> from types import SimpleNamespace
        >>> cfg = SimpleNamespace(channels=(8,))
        >>> net = build_resnet18(cfg, (1, 28, 28), 10)
        >>> net(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    c, h, w = check_image_shape(input_shape, "resnet18")
    model = ResNet(c, n_outputs, _stage_widths(cfg, RESNET18_CHANNELS, "resnet18"),
                   RESNET18_BLOCKS, image_side=min(h, w))
    return apply_own_weights(model, cfg, "resnet18")
