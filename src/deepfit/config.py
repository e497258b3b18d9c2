"""Run configuration: one frozen dataclass per stage, nested in ``RunConfig``.

Loaded from YAML with ``yaml.safe_load`` only, overridden by ``key=value`` strings
(``train.lr=0.01``, ``model.hidden=[128,64]``), and validated strictly before any work
starts: an unknown key names the closest valid one; a wrong type or an out-of-range value
names the key, the value and what is allowed.

Example:
    >>> cfg = RunConfig().override(["train.lr=0.01", "model.hidden=[16]"])
    >>> cfg.train.lr, cfg.model.hidden
    (0.01, (16,))
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import yaml

from deepfit.config_rules import build, comment, opt as _opt, plain, set_dotted
from deepfit.config_rules import read_yaml_file, split_assignment, yaml_line
from deepfit.errors import ConfigError


TASKS = ("auto", "binary", "multiclass", "regression", "multilabel", "detection")
ACTIVATIONS = ("linear", "relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid")
OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "onecycle", "plateau")
THRESHOLD_OBJECTIVES = ("none", "f1", "fbeta", "youden", "sensitivity", "specificity")
LOSSES = ("auto", "bce", "cross_entropy", "nll", "mse", "l1", "huber")


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split and preprocessed."""

    source: str = _opt("breast_cancer", help="built-in name, toy generator, or a file path")
    target: Optional[str] = _opt(None, help="target column (default: the last column)")
    sheet: Optional[str] = _opt(None, help="Excel source: the sheet to read (default: the "
                                "first)")
    targets: tuple[str, ...] = _opt((), help="several 0/1 target columns: a multi-label task")
    task: str = _opt("auto", choices=TASKS)
    val_size: float = _opt(0.15, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    test_size: float = _opt(0.2, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    split_column: Optional[str] = _opt(None, help="column with train/val/test per row")
    val_file: Optional[str] = _opt(None, help="separate validation file")
    test_file: Optional[str] = _opt(None, help="separate test file")
    id_column: Optional[str] = _opt(None, help="row identifier, kept out of the features")
    group_column: Optional[str] = _opt(None, help="rows sharing a value (e.g. a patient) stay "
                                       "in one split; kept out of the features")
    positive_class: Optional[str] = _opt(None, help="the 'positive' class of a binary task")
    drop_columns: tuple[str, ...] = _opt((), help="columns to ignore")
    missing: str = _opt("impute", choices=("impute", "strict"))
    standardize: str = _opt("z", choices=("z", "robust", "none"),
                            help="numeric features, fitted on train: z-score, robust (median "
                            "and interquartile range, then smooth clipping to (-3, 3), as "
                            "RealMLP-TD) or none; true / false = z / none")
    scale_target: bool = _opt(True, help="z-score a regression target (fitted on train)")
    feature_transform: str = _opt("none", choices=("none", "log2p1"))
    max_categories: int = _opt(50, lo=2)
    n_samples: int = _opt(1000, lo=8, help="size of a toy dataset")
    noise: Optional[float] = _opt(None, lo=0.0, help="noise of a toy dataset")
    seed: Optional[int] = _opt(None, lo=0, help="seed of the split and toy data (default: train.seed)")
    root: Optional[str] = _opt(None, help="folder of named image datasets (default: "
                               "$DEEPFIT_DATA or ~/.cache/deepfit/datasets)")
    image_size: tuple[int, ...] = _opt((), lo=8, help="images: resize to [S] or [H, W]; [] = as stored")
    resize: str = _opt("stretch", choices=("stretch", "pad"),
                       help="images of another shape than data.image_size: stretch them to "
                       "it, or pad (letterbox: scale to fit, keep the aspect ratio, fill the "
                       "rest)")
    color: str = _opt("auto", choices=("auto", "gray", "rgb"),
                         help="images: auto = gray only if every image is gray")
    augment: tuple[str, ...] = _opt(("auto",), help="images: none | light | standard | strong | "
                                    "auto (light; none for an mlp), or a list of ops such as "
                                    "[hflip, crop:4, rotate:15]")
    normalize: str = _opt("train", choices=("train", "pretrained", "none"),
                          help="images: per-channel mean/std from the training split, the "
                          "pretrained weights' statistics, or none")
    mean: tuple[float, ...] = _opt((), help="images: per-channel mean to normalise with (in "
                                   "[0, 1] units) instead of the training split's")
    std: tuple[float, ...] = _opt((), lo=0.0, lo_open=True, help="images: per-channel std, "
                                  "with data.mean")
    bad_images: str = _opt("error", choices=("error", "skip"),
                           help="an unreadable image stops (error) or is left out and counted")
    image_column: Optional[str] = _opt(None, help="images: column of paths or images (CSV, "
                                       "Parquet, Hugging Face; default: found)")
    label_map: dict = _opt({}, help="rename or merge classes: {old: new}")
    cache: bool = _opt(True, help="images: keep decoded images in $DEEPFIT_CACHE "
                       "(default ~/.cache/deepfit/images)")
    max_memory_gb: float = _opt(8.0, lo=0.0, lo_open=True,
                                help="images larger than this decoded are streamed from disk")
    workers: Optional[int] = _opt(None, lo=0, help="streaming: decoding processes (default: cores)")
    trust_remote_code: bool = _opt(False, help="let a Hugging Face hub dataset run its own code")


@dataclass(frozen=True)
class ModelConfig:
    """The network: a built-in architecture or the user's own nn.Module."""

    name: str = _opt("auto", help="auto (mlp for tables, cnn for images), mlp, tabm, cnn, "
                     "lenet, resnet9, resnet18, a torchvision name (tv:NAME), or "
                     "'package.module:ClassName'")
    hidden: tuple[int, ...] = _opt((128, 64), lo=1, help="hidden layer sizes; [] = linear model")
    activation: str = _opt("relu", choices=ACTIVATIONS)
    dropout: float = _opt(0.3, lo=0.0, hi=1.0, hi_open=True)
    norm: str = _opt("none", choices=("none", "batch", "layer"))
    init: str = _opt("default", choices=("default", "kaiming", "xavier", "orthogonal"))
    outputs: str = _opt("logits", choices=("logits", "probabilities", "log_probabilities"),
                        help="what the model's forward returns")
    channels: tuple[int, ...] = _opt((), lo=1, help="conv widths of cnn / resnet; [] = default")
    pretrained: bool = _opt(False, help="torchvision models: load the pretrained weights "
                            "(from the local torch hub cache; never downloaded)")
    weights: Optional[str] = _opt(None, help="torchvision models: a local weights file")
    kwargs: dict = _opt({}, help="keyword arguments for a custom model, a torchvision model "
                        "or tabm (k, n_blocks, d_block, dropout, ...)")
    embeddings: str = _opt("none", choices=("none", "piecewise", "periodic"),
                           help="tabm: numerical embeddings (piecewise: bins from the training "
                           "rows)")
    bins: int = _opt(48, lo=2, help="tabm: piecewise-linear bins per column")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: loss, optimiser, schedule, stopping, device and seed."""

    epochs: Optional[int] = _opt(None, lo=1, help="default: 200 for tables; images: 20, more "
                                 "for a small set (at least 500 steps, up to 200 epochs)")
    batch_size: Optional[int] = _opt(None, lo=1, help="default: tables: training rows / 64 "
                                     "rounded up to a power of two, 32 to 512; images: "
                                     "training images / 16 rounded down to a power of two, "
                                     "16 to 128")
    optimizer: str = _opt("adamw", choices=OPTIMIZERS)
    lr: Optional[float] = _opt(None, lo=0.0, lo_open=True, help="default: 1e-3; detectors: "
                               "3e-4")
    momentum: float = _opt(0.9, lo=0.0, hi=1.0, hi_open=True)
    nesterov: bool = _opt(False)
    weight_decay: float = _opt(1e-2, lo=0.0, help="not applied to biases and norm layers")
    grad_clip: Optional[float] = _opt(None, lo=0.0, lo_open=True, help="max gradient norm "
                                      "(default: none; detectors: 10)")
    schedule: str = _opt("auto", choices=("auto",) + SCHEDULES,
                         help="auto: plateau for tables, onecycle for images")
    warmup_epochs: int = _opt(0, lo=0)
    step_size: int = _opt(30, lo=1, help="epochs between decays of the 'step' schedule")
    gamma: float = _opt(0.1, lo=0.0, hi=1.0, lo_open=True, help="decay factor (step, plateau)")
    plateau_patience: int = _opt(10, lo=0)
    checkpoint_every: int = _opt(0, lo=0, help="also checkpoint every N steps (0: epoch ends)")
    early_stopping: bool = _opt(True)
    patience: Optional[int] = _opt(None, lo=1, help="default: 20 for tables; images: 2/5 of "
                                   "the epochs, at least 8")
    monitor: str = _opt("val_loss", help="validation metric for early stopping and 'best'")
    min_delta: Optional[float] = _opt(
        None, lo=0.0, help="the least change of the monitored value that counts as better, "
        "for early stopping and the best epoch (default: 1e-4 for val_loss on a "
        "standardised or cross-entropy scale, else 0)")
    loss: str = _opt("auto", choices=LOSSES)
    class_weights: str = _opt("none", choices=("none", "balanced"))
    device: str = _opt("auto", pattern=r"auto|cpu|mps|cuda(:\d+)?",
                       help="auto, cpu, cuda, cuda:N or mps")
    precision: str = _opt("auto", choices=("auto", "fp32", "bf16", "fp16"),
                          help="auto: bf16 autocast for images on a GPU that has it, else fp32")
    channels_last: Optional[bool] = _opt(None, help="images: channels-last memory layout "
                                         "(default: on CUDA and CPU)")
    compile: bool = _opt(False, help="torch.compile the model (slower start, faster steps)")
    cuda_graphs: bool = _opt(False, help="CUDA: replay the network's forward and backward as "
                             "CUDA graphs (fewer kernel launches; see docs/images.md)")
    on_nonfinite: str = _opt("stop", choices=("stop", "skip"),
                             help="a NaN/Inf loss or gradient stops training or skips the step")
    on_oom: str = _opt("stop", choices=("stop", "halve"),
                       help="GPU out of memory: stop, or halve the batch size and go on")
    deterministic: bool = _opt(False, help="PyTorch deterministic algorithms (bit-exact CUDA)")
    sync_bn: bool = _opt(False, help="several processes on GPUs: batch-norm statistics over "
                         "the whole batch, not each process's share (SyncBatchNorm)")
    precise_bn: Optional[bool] = _opt(None, help="recompute batch-norm statistics over the "
                                      "training rows before each validation (default: when "
                                      "an epoch has under 30 steps)")
    seed: int = _opt(0, lo=0)
    progress: bool = _opt(True)
    diagnostics: bool = _opt(True, help="record gradient norms, weight updates and activation "
                             "statistics per layer once per epoch, for the report's 'Inside "
                             "the network' (see docs/inspect.md)")


    def resolved(self, kind: str = "table", device: str = "cpu", bf16: bool = False,
                 train_rows: Optional[int] = None, raw_target: bool = False) -> TrainConfig:
        """A copy with every automatic value decided for the data ``kind`` ("table" or
        "image") and the ``device`` type; ``bf16``: the device supports bfloat16;
        ``train_rows``: the training rows or images (a table's batch, and an image set's
        batch, epochs and patience, scale with them; unknown: 32 for a table, 128 for
        images); ``raw_target``: a regression target in its own units
        (``data.scale_target=false``), whose loss has no known scale."""
        image = kind == "image"
        if image:
            auto = image_training_values(train_rows or 0, self.batch_size, self.epochs)
        else:
            auto = {"epochs": 200, "batch_size": table_batch_size(train_rows or 0),
                    "patience": 20}
        values = {k: v for k, v in auto.items() if getattr(self, k) is None}
        if self.lr is None:
            values["lr"] = DEFAULT_LR
        if self.min_delta is None:  # an absolute step needs a loss of known scale
            values["min_delta"] = MIN_DELTA if self.monitor == "val_loss" and not raw_target \
                else 0.0
        if self.schedule == "auto":
            values["schedule"] = "onecycle" if image else "plateau"
        if self.precision == "auto":
            values["precision"] = "bf16" if image and device == "cuda" and bf16 else "fp32"
        if self.channels_last is None:  # faster convolutions on CUDA and on CPU (oneDNN)
            values["channels_last"] = image and device in ("cuda", "cpu")
        return dataclasses.replace(self, **values) if values else self


def table_batch_size(train_rows: int) -> int:
    """The automatic batch of a table: the power of two at or above ``train_rows / 64``,
    from 32 to 512, so that an epoch takes at most about 64 steps (up to 32,768 training
    rows) and a large table trains in seconds; small tables keep 32 (docs/benchmarks.md,
    "Tabular suite", has the measurements)."""
    return min(512, max(32, 1 << max(0, math.ceil(math.log2(max(train_rows, 1) / 64)))))


DEFAULT_LR = 1e-3  # train.lr=auto for tables and images (detectors: detection.setup)
# train.min_delta=auto for a validation loss of known scale (cross-entropy, or a standardised
# regression target): scikit-learn's MLP tolerance. On the 14 tables of the tabular suite
# it left 11 results unchanged, moved two within noise and improved one (fair), and a
# separable set (xor) stops at epoch 61 instead of running all 200 while its loss creeps
# towards zero (docs/benchmarks.md).
MIN_DELTA = 1e-4
IMAGE_MIN_STEPS = 500  # optimiser steps a small image set trains for at least


def image_training_values(train_images: int, batch: Optional[int] = None,
                          epochs: Optional[int] = None) -> dict[str, int]:
    """The automatic batch, epochs and patience of an image set of ``train_images``
    training images (0: unknown, a large set), given the ``batch`` and ``epochs`` the user
    set, if any: the batch is the power of two at or below ``train_images / 16`` (an epoch of
    at least 16 steps), from 16 to 128; the epochs give at least 500 optimiser steps, from 20
    to 200; patience is 2/5 of the epochs, at least 8 (docs/benchmarks.md, "Small image
    sets", has the measurements)."""
    auto_batch = 128 if train_images <= 0 else min(128, max(16, 1 << max(0, int(
        math.floor(math.log2(train_images / 16))))))
    steps = math.ceil(train_images / (batch or auto_batch))
    auto_epochs = (20 if train_images <= 0
                   else min(200, max(20, math.ceil(IMAGE_MIN_STEPS / steps))))
    return {"batch_size": auto_batch, "epochs": auto_epochs,
            "patience": max(8, math.ceil(0.4 * (epochs or auto_epochs)))}


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation and reporting."""

    batch_size: Optional[int] = _opt(None, lo=1, help="batch size for prediction (default: "
                                     "4096 rows of a table, 512 images)")
    threshold_objective: str = _opt("f1", choices=THRESHOLD_OBJECTIVES,
                                    help="binary: what the threshold tuned on validation maximises")
    apply_threshold: bool = _opt(False, help="predict with the tuned threshold instead of 0.5")
    beta: float = _opt(1.0, lo=0.0, lo_open=True, help="beta of the 'fbeta' objective")
    target: Optional[float] = _opt(None, lo=0.0, hi=1.0, lo_open=True,
                                   help="sensitivity or specificity the threshold must reach")
    betas: tuple[float, ...] = _opt((0.5, 2.0), lo=0.0, lo_open=True, help="F-beta scores reported")
    bootstrap: int = _opt(1000, lo=0, help="bootstrap resamples for confidence intervals; 0 = none")
    ci_level: float = _opt(0.95, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    calibration_bins: int = _opt(10, lo=2, help="equal-width bins for ECE and the diagram")
    plots: bool = _opt(True)
    explain: bool = _opt(True, help="image runs: Grad-CAM and integrated-gradients maps of "
                         "test images in the report, with the randomised-weights sanity check "
                         "(see docs/inspect.md)")
    explain_layer: Optional[str] = _opt(None, help="the layer Grad-CAM reads, by its name in "
                                        "model.named_modules() (default: the last layer with "
                                        "feature maps)")
    report: bool = _opt(True)


@dataclass(frozen=True)
class TrackConfig:
    """Experiment tracking (pip install 'deepfit[track]'); both off by default."""

    tensorboard: bool = _opt(False, help="TensorBoard logs in the run's tensorboard/ folder: "
                             "scalars per epoch, weight and gradient histograms, the model "
                             "graph, image grids, the test metrics")
    mlflow: Optional[str] = _opt(None, help="MLflow tracking URI: a local folder, "
                                 "sqlite:///file.db or an http(s):// server; null = off")
    experiment: str = _opt("deepfit", pattern=r".*\S.*", help="a non-empty name: the MLflow "
                           "experiment the run is logged in")


# The names other tools give deepfit's options (PyTorch Lightning, Keras, scikit-learn,
# Hugging Face), accepted where they can mean only one key; config.yaml uses deepfit's name.
ALIASES: dict[str, dict[str, str]] = {
    "data": {"label": "target", "label_column": "target", "target_column": "target",
             "validation_size": "val_size", "validation_fraction": "val_size",
             "validation_split": "val_size", "val_split": "val_size", "test_split": "test_size",
             "img_size": "image_size", "augmentation": "augment", "num_workers": "workers"},
    "model": {"architecture": "name", "arch": "name", "hidden_layer_sizes": "hidden",
              "hidden_sizes": "hidden", "hidden_layers": "hidden", "dropout_rate": "dropout"},
    "train": {"learning_rate": "lr", "n_epochs": "epochs", "max_epochs": "epochs",
              "num_epochs": "epochs", "batch": "batch_size", "optimiser": "optimizer",
              "scheduler": "schedule", "lr_scheduler": "schedule", "random_state": "seed",
              "gradient_clip_val": "grad_clip", "max_grad_norm": "grad_clip",
              "early_stopping_patience": "patience"},
    "eval": {"n_bootstrap": "bootstrap", "n_resamples": "bootstrap"},
}


@dataclass(frozen=True)
class RunConfig:
    """The whole experiment. ``RunConfig.load(path).override([...])`` is the usual way in."""

    ALIASES: ClassVar[dict[str, dict[str, str]]] = ALIASES

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    name: Optional[str] = _opt(None, help="run name (default: <data>-<model>-<time>)")
    out: str = _opt("runs", help="folder that holds the run directories")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Any, *, origin: str = "config") -> RunConfig:
        """Build and validate a config from nested plain values."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: expected a mapping of sections, got {type(raw).__name__}")
        data = raw.get("data")
        if isinstance(data, dict) and isinstance(data.get("standardize"), bool):
            # data.standardize was true / false before it named a scaling: keep old configs
            raw = {**raw, "data": {**data, "standardize": "z" if data["standardize"] else "none"}}
        return _build_root(cls, raw, origin)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a YAML file (safe loader only) into a validated config."""
        return cls.from_dict(read_yaml_file(path, "config file"), origin=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain nested values (tuples as lists), ready for YAML or JSON."""
        return plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def override(self, assignments: list[str] | dict[str, Any]) -> RunConfig:
        """Return a copy with ``section.key=value`` assignments applied and validated."""
        raw = self.to_dict()
        items = assignments.items() if isinstance(assignments, dict) else map(split_assignment, assignments)
        for dotted, value in items:
            set_dotted(RunConfig, raw, dotted, value)
        return RunConfig.from_dict(raw, origin="override")


def describe_config(cfg: Optional[RunConfig] = None) -> str:
    """The config as YAML with each key's allowed values and meaning as comments."""
    cfg = cfg or RunConfig()
    lines = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines.append(f"{f.name}:  # {type(value).__doc__.splitlines()[0]}")
            for sub in dataclasses.fields(value):
                lines.append(f"  {yaml_line(sub.name, getattr(value, sub.name))}{comment(sub)}")
        else:
            lines.append(f"{yaml_line(f.name, value)}{comment(f)}")
    return "\n".join(lines) + "\n"




def _build_root(cls: type, raw: dict[str, Any], origin: str) -> Any:
    return build(cls, raw, prefix="", origin=origin, root=cls)
