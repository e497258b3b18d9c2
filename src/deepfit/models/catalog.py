"""What ``--model`` accepts, in words, for ``deepfit models``: deepfit's own networks (the
names come from the registry), torchvision's classification models and a user's module."""

from __future__ import annotations

import textwrap

from deepfit.models.registry import TORCHVISION_PREFIX, model_names

DESCRIPTIONS = {
    "auto": "mlp for tables, cnn for images (the default)",
    "mlp": "multi-layer perceptron: model.hidden, model.activation, model.dropout, model.norm "
           "(images are flattened)",
    "tabm": "TabM (tables; optional extra deepfit[tabm]): k MLPs sharing weights, their mean "
            "prediction; model.kwargs (k, n_blocks, d_block, dropout), model.embeddings",
    "cnn": "small CNN: conv-BN-ReLU blocks, max-pooling, global average pooling, dropout",
    "lenet": "LeNet-5 style CNN: two conv + pool layers, three linear layers",
    "resnet9": "ResNet-9: residual blocks sized for small images",
    "resnet18": "ResNet-18: basic residual blocks, a small-image stem for images up to 64 px",
}


def torchvision_names() -> list[str]:
    """torchvision's classification models that deepfit can build (all but the refused)."""
    import torchvision.models

    from deepfit.models.vision import REFUSED

    return [n for n in torchvision.models.list_models(module=torchvision.models)
            if n not in REFUSED]


def describe_models(width: int = 96) -> str:
    """The text of ``deepfit models``."""
    from deepfit.models.vision import REFUSED, TORCHVISION_MODELS

    lines = ["deepfit's models (--model NAME, or model.name=NAME in a config):"]
    lines += [f"  {name:<10} {DESCRIPTIONS.get(name, 'added with deepfit.register_model')}"
              for name in ["auto", *model_names()]]
    every = torchvision_names()
    lines += ["", textwrap.fill(
        f"torchvision classification models (images only): --model NAME, or "
        f"{TORCHVISION_PREFIX}NAME where deepfit has a model of that name "
        f"({TORCHVISION_PREFIX}resnet18 is torchvision's); ImageNet weights with "
        "model.pretrained=true, read from a local file only. Tested with deepfit:", width),
        textwrap.fill(", ".join(TORCHVISION_MODELS), width, initial_indent="  ",
                      subsequent_indent="  "),
        textwrap.fill(f"and {len(every) - len(TORCHVISION_MODELS)} more: 'deepfit models "
                      f"--torchvision' lists all {len(every)}. Refused: {', '.join(REFUSED)} "
                      "(outputs deepfit cannot fit).", width, initial_indent="  ",
                      subsequent_indent="  "),
        "", textwrap.fill("Your own nn.Module: --model package.module:ClassName or --model "
                          "path/to/file.py:ClassName, constructor arguments as "
                          "model.kwargs.NAME=VALUE (in_features / out_features are filled in "
                          "from the data).", width)]
    return "\n".join(lines)
