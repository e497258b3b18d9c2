"""The network with its preprocessing and output head, as one ``nn.Module`` that exporters
can turn into a graph: raw inputs in, probabilities or values out.

A table run's fitted ``TabularPreprocessor`` becomes tensor arithmetic: numeric columns
(float32, NaN for a gap) get the training median where they are missing, the optional
log2(x+1), the training centre and scale, and a 0/1 missing-indicator where training had
gaps; each categorical column is an integer code into the categories the run learned, one-hot
encoded (a code outside them, e.g. -1, is all zeros: what deepfit does for an unseen
category). An image run takes uint8 images (N, C, H, W) of any H and W, brings them to its
size as deepfit resizes an array of images, stretched or letterboxed as the run did
(``image_resize.py``: antialiased bilinear, rounded to uint8; an image already at that size
passes unchanged), and scales and normalises them as ``ImageInputs`` does. The output is the
task head's scores (see ``TaskHead.scores``), regression values brought back to the target's
units.

Every constant is a buffer, so the safetensors export carries the preprocessing too.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from deepfit.data.bundle import Schema
from deepfit.data.transforms import scaling_name, smooth_clip
from deepfit.export.image_resize import resized
from deepfit.task import TaskHead

# Names of the graph's inputs and output, as the input schema and the model card give them.
NUMERIC, CATEGORICAL, IMAGES = "numeric", "categorical", "images"
HEIGHT, WIDTH = "height", "width"  # the dynamic image axes (2, 3) of an image model
OUTPUT_NAMES = {"binary": "probability", "multiclass": "probabilities",
                "multilabel": "probabilities", "regression": "values"}
EXAMPLE_BATCH = 2  # exporters specialise a batch of 1; 2 keeps the batch size dynamic


class TablePreparation(nn.Module):
    """Raw table columns -> the network's inputs, exactly as ``TabularPreprocessor.transform``."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__()
        numeric, categories = state["numeric_"], state["categories_"]
        self.log2p1 = state["feature_transform"] == "log2p1"
        self.clip = scaling_name(state["standardize"]) == "robust"  # then smooth clipping
        self.has_numeric, self.has_categorical = bool(numeric), bool(state["categorical_"])
        self.has_indicators = bool(state["indicators_"])

        def column_values(key: str) -> torch.Tensor:
            return torch.tensor([state[key][c] for c in numeric], dtype=torch.float32)
        self.register_buffer("fill", column_values("fill_"))
        self.register_buffer("center", column_values("center_"))
        self.register_buffer("scale", column_values("scale_"))
        self.register_buffer("indicators", torch.tensor(
            [numeric.index(c) for c in state["indicators_"]], dtype=torch.long))
        # One row of codes per categorical column: 0..K-1 for its K categories, padded with
        # -2 (never a valid code) up to the widest column; the one-hot keeps the real ones.
        widest = max([len(categories[c]) for c in state["categorical_"]] or [0])
        codes = torch.full((len(state["categorical_"]), widest), -2, dtype=torch.long)
        for j, col in enumerate(state["categorical_"]):
            codes[j, :len(categories[col])] = torch.arange(len(categories[col]))
        self.register_buffer("codes", codes)
        # Positions of the real codes in the flattened (columns × widest) one-hot: an index,
        # not a boolean mask, whose result size a graph would have to treat as data-dependent.
        self.register_buffer("known", torch.nonzero(codes.flatten() >= 0).flatten())

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.has_numeric:
            values = torch.log2(numeric + 1.0) if self.log2p1 else numeric
            gaps = torch.isnan(values)
            scaled = (torch.where(gaps, self.fill, values) - self.center) / self.scale
            parts.append(smooth_clip(scaled) if self.clip else scaled)
            if self.has_indicators:
                parts.append(gaps[:, self.indicators].to(torch.float32))
        if self.has_categorical:
            # (N, columns, 1) == (columns, widest) -> (N, columns, widest), then the real codes.
            onehot = (categorical.unsqueeze(2) == self.codes).flatten(1)
            parts.append(onehot.index_select(1, self.known).to(torch.float32))
        return torch.cat(parts, dim=1)


class ImagePreparation(nn.Module):
    """uint8 images (N, C, H, W) -> normalised float32, as ``ImageInputs`` (no augmentation).

    Any H × W is first brought to ``size`` (H, W) exactly as ``arrays_to_tensor`` does for
    deepfit's own predictions on arrays: stretched, or letterboxed (``resize="pad"``), with
    antialiased bilinear, then rounded and clamped to 0-255; at ``size`` itself the identity.
    """

    def __init__(self, mean: list[float], std: list[float], size: tuple[int, int],
                 resize: str = "stretch") -> None:
        super().__init__()
        shape = (1, len(mean), 1, 1)
        self.size, self.resize = (int(size[0]), int(size[1])), resize
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("inv_std", 1.0 / torch.tensor(std, dtype=torch.float32).view(shape))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = resized(images.to(torch.float32), self.size, self.resize)
        return (pixels / 255.0 - self.mean) * self.inv_std


class Scores(nn.Module):
    """The network's outputs -> what ``Run.predictions`` reports: P(positive) (N,), class or
    label probabilities (N, K), or regression values (N,) in the target's units."""

    def __init__(self, head: TaskHead, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.head = head
        self.register_buffer("target_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(std, dtype=torch.float32))

    def forward(self, out: torch.Tensor) -> torch.Tensor:
        scores = self.head.scores(out)
        if self.head.task == "regression":
            scores = scores * self.target_std + self.target_mean
        return scores


class ServableTable(nn.Module):
    """``forward(numeric, categorical)`` of a table run with both kinds of columns; the
    subclasses take the one kind a run has (a graph input with no columns would only puzzle)."""

    def __init__(self, model: nn.Module, schema: Schema, head: TaskHead) -> None:
        super().__init__()
        self.prepare = TablePreparation(schema.preprocessor.state_dict())
        self.model = model
        self.scores = Scores(head, schema.target.mean, schema.target.std)
        self.register_buffer("no_columns", torch.empty(0, 0), persistent=False)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        return self.scores(self.model(self.prepare(numeric, categorical)))


class NumericTable(ServableTable):
    def forward(self, numeric: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(numeric, self.no_columns)


class CategoricalTable(ServableTable):
    def forward(self, categorical: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(self.no_columns, categorical)


class ServableImages(nn.Module):
    """``forward(images)`` of an image run."""

    def __init__(self, model: nn.Module, schema: Schema, head: TaskHead) -> None:
        super().__init__()
        spec = schema.image
        self.prepare = ImagePreparation(spec.mean, spec.std, spec.size, spec.resize)
        self.model = model
        self.scores = Scores(head, schema.target.mean, schema.target.std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.scores(self.model(self.prepare(images)))


def servable(model: nn.Module, schema: Schema, head: TaskHead) -> nn.Module:
    """The whole path from raw input to scores, on the CPU in eval mode; ``model`` itself
    (the run's, maybe on a GPU) is left as it was."""
    own = copy.deepcopy(model).to("cpu").eval().requires_grad_(False)
    names = input_names(schema)
    kind = {(IMAGES,): ServableImages, (NUMERIC,): NumericTable,
            (CATEGORICAL,): CategoricalTable}.get(tuple(names), ServableTable)
    return kind(own, schema, head).eval()


def input_names(schema: Schema) -> list[str]:
    """The graph's inputs, in order."""
    if schema.image is not None:
        return [IMAGES]
    pre = schema.preprocessor
    return [name for name, columns in ((NUMERIC, pre.numeric_), (CATEGORICAL, pre.categorical_))
            if columns]


def resizes(schema: Schema) -> bool:
    """Whether the exported model takes images of any height and width: every image run,
    stretching or letterboxing them to its size inside the graph."""
    return schema.image is not None


def example_inputs(schema: Schema, batch: int = EXAMPLE_BATCH,
                   other_size: bool = False) -> tuple[torch.Tensor, ...]:
    """Inputs of the right types and shapes for tracing: mid-grey images, or the training
    fill values and the first category of every column. ``other_size``: images of another
    height and width (one more than the run's height, twice its width: a letterbox with a
    border) where the model resizes, so that a trace holds for them too."""
    if schema.image is not None:
        spec = schema.image
        height, width = spec.size
        if other_size and resizes(schema):
            height, width = height + 1, 2 * width
        return (torch.full((batch, spec.channels, height, width), 128, dtype=torch.uint8),)
    pre = schema.preprocessor
    tensors = {NUMERIC: torch.tensor([[pre.fill_[c] for c in pre.numeric_]] * batch,
                                     dtype=torch.float32),
               CATEGORICAL: torch.zeros((batch, len(pre.categorical_)), dtype=torch.long)}
    return tuple(tensors[name] for name in input_names(schema))
