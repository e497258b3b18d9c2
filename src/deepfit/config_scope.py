"""Which config keys apply to which run: nothing a user sets is silently ignored.

Every key of ``RunConfig`` has a scope here: the kind of data (table or images), the kind
of source (a file, a toy generator, an image folder, ...), the model family, the task, or
another key it depends on (``train.momentum`` only moves SGD and RMSprop). A key whose value
differs from its default but does not apply to the run is refused before training, in one
line that names the key, why it does not apply and what to do; a key that does not apply is
left out of the run's ``config.yaml`` and the report, so a CNN run's config no longer shows
an MLP's hidden layers.

A rule answers ``None`` when the key applies, or the reason it does not. Rules that need the
task or the loaded data answer ``None`` while the fact is still unknown (``RunFacts.task``
is None before the data are read), so the check runs once before loading (configuration
mistakes cost no loading time) and again once the data are there.

``tests/test_config_scope.py`` runs every key of ``deepfit config`` on a table run and an
image run and checks that each is either used (it changes the run) or refused here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional

from deepfit.errors import ConfigError

IMAGE_NETS = ("cnn", "lenet", "resnet9", "resnet18")
# Where the data come from: tables ...
TABLE_SOURCES = ("table-file", "builtin", "toy", "object")
# ... and images. "image-table": a CSV / Parquet / Arrow file or a Hugging Face set, whose
# label and image columns are named; "image-hub": a Hugging Face hub name (hf:...).
IMAGE_SOURCES = ("image-folder", "image-table", "image-hub", "image-named", "image-medmnist",
                 "image-object")
# ... and object detection: boxes per image (a challenge CSV, COCO JSON, YOLO folder), or
# the synthetic smears deepfit generates (--data synthetic-smear).
DETECTION_SOURCES = ("detection-file", "detection-synthetic")


@dataclass(frozen=True)
class RunFacts:
    """What a run is, as far as the scope of its options goes.

    Attributes:
        source: one of ``TABLE_SOURCES`` or ``IMAGE_SOURCES``.
        model: the resolved model name (``mlp``, ``cnn``, ``tv:NAME``, ``pkg.mod:Class``).
        family: ``mlp``, ``tabm``, ``image-net`` (deepfit's CNNs / ResNets), ``torchvision``,
            ``custom`` (the user's nn.Module) or ``registered`` (``register_model``).
        task: ``binary``, ``multiclass``, ``regression``, ``multilabel``; None until known.
        streamed: images decoded from disk batch by batch; None until known.
        fixed_splits: the splits that came complete from the source (e.g. ``{"val",
            "test"}`` with data.val_file and data.test_file); None until known.
        processes: how many processes train the model together (torchrun).
        device: the device type training runs on (``cpu``, ``cuda``, ``mps``).
    """

    source: str
    model: str
    family: str
    task: Optional[str] = None
    streamed: Optional[bool] = None
    fixed_splits: Optional[frozenset] = None
    processes: int = 1
    device: str = "cpu"

    @property
    def kind(self) -> str:
        if self.source in DETECTION_SOURCES:
            return "detection"
        return "image" if self.source in IMAGE_SOURCES else "table"


Rule = Callable[[Any, RunFacts], Optional[str]]


def _images(_: Any, f: RunFacts) -> Optional[str]:
    return None if f.kind == "image" else "it applies to images, and this run's data are a table"


def _tables(_: Any, f: RunFacts) -> Optional[str]:
    return None if f.kind == "table" else "it applies to tables, and this run's data are images"


def _sources(*sources: str, what: str) -> Rule:
    def rule(_: Any, f: RunFacts) -> Optional[str]:
        return None if f.source in sources else f"it applies only to {what}"
    return rule


def _families(*families: str, what: str) -> Rule:
    def rule(_: Any, f: RunFacts) -> Optional[str]:
        # A factory added with register_model gets the whole model section: any key may apply.
        if f.family in families or f.family == "registered":
            return None
        return f"it applies to {what}, not to {_model(f)}"
    return rule


def _tasks(*tasks: str, what: str) -> Rule:
    def rule(_: Any, f: RunFacts) -> Optional[str]:
        if f.task is None or f.task in tasks:
            return None
        return f"it applies to {what}, and this is a {f.task} task"
    return rule


def _when(key: str, allowed: tuple, what: str) -> Rule:
    def rule(cfg: Any, _: RunFacts) -> Optional[str]:
        value = _get(cfg, key)
        return None if value in allowed else f"it applies {what}, and {key} is {value!r}"
    return rule


def _all(*rules: Rule) -> Rule:
    def rule(cfg: Any, f: RunFacts) -> Optional[str]:
        return next((r for r in (rule(cfg, f) for rule in rules) if r), None)
    return rule


def _model(f: RunFacts) -> str:
    return {"custom": f"your own model {f.model}", "torchvision": f"torchvision's {f.model}",
            "mlp": "the mlp"}.get(f.family, f"deepfit's {f.model}")


def _split_size(split: str) -> Rule:
    def rule(_: Any, f: RunFacts) -> Optional[str]:
        if f.fixed_splits is None or split not in f.fixed_splits:
            return None
        return (f"the {'validation' if split == 'val' else split} rows are given by the data "
                "(a file, a split column or the source's own split), so no share is drawn")
    return rule


def _workers(_: Any, f: RunFacts) -> Optional[str]:
    if f.kind != "image":
        return "it applies to images streamed from disk, and this run's data are a table"
    if f.streamed is False:
        return ("it sets the processes that decode images streamed from disk, and these "
                "images fit in memory (decoded once; see data.max_memory_gb)")
    return None


_BINARY = _tasks("binary", what="binary tasks (a decision threshold)")
_CLASSES = _tasks("binary", "multiclass", what="binary and multiclass tasks")

RULES: dict[str, Rule] = {
    "data.sheet": _sources("table-file", what="Excel workbooks"),
    "data.target": _sources(*TABLE_SOURCES, "image-table", "image-hub",
                            what="tables and image tables (a CSV / Parquet of images with a "
                                 "label column); an image folder's classes are its folders"),
    "data.targets": _tables,
    "data.task": lambda cfg, f: None if cfg.data.task != "detection" or f.kind == "detection"
    else "it needs boxes per image (a detection CSV, COCO JSON, YOLO folder or "
         "synthetic-smear; docs/detection.md)",
    "data.val_size": _split_size("val"),
    "data.test_size": _split_size("test"),
    "data.split_column": _tables,
    "data.val_file": _tables,
    "data.test_file": _tables,
    "data.id_column": _tables,
    "data.group_column": _sources(*TABLE_SOURCES, "image-table",
                                  what="tables and image CSVs (a column per row); keep each "
                                       "group together with train/ val/ test/ folders"),
    "data.positive_class": _BINARY,
    "data.drop_columns": _tables,
    "data.missing": _tables,
    "data.standardize": _tables,
    "data.scale_target": _all(_tables, _tasks("regression", what="a regression target")),
    "data.feature_transform": _tables,
    "data.max_categories": _tables,
    "data.n_samples": _sources("toy", what="toy generators (see 'deepfit datasets')"),
    "data.noise": _sources("toy", what="toy generators (see 'deepfit datasets')"),
    "data.root": _sources("image-named", "image-medmnist", "image-hub",
                          what="named image datasets (mnist, cifar10, medmnist:NAME, hf:...)"),
    "data.image_size": _images,
    "data.resize": _all(_images, lambda cfg, _: None if cfg.data.image_size else
                        "it says how images are brought to data.image_size, which is not set"),
    "data.color": _images,
    "data.augment": _images,
    "data.normalize": _images,
    "data.mean": _images,
    "data.std": _images,
    "data.bad_images": _images,
    "data.image_column": _sources("image-table", "image-hub",
                                  what="image tables (CSV / Parquet / Hugging Face)"),
    "data.label_map": _CLASSES,
    "data.cache": _images,
    "data.max_memory_gb": _images,
    "data.workers": _workers,
    "data.trust_remote_code": _sources("image-hub", what="Hugging Face hub datasets (hf:...)"),
    "model.hidden": _families("mlp", what="the mlp's hidden layers"),
    "model.activation": _families("mlp", what="the mlp"),
    "model.dropout": lambda _, f: None if f.model in ("mlp", "cnn") or f.family == "registered"
    else (f"it applies to the mlp and deepfit's cnn, not to {_model(f)}, " + (
        "whose dropout (0.1) is model.kwargs={dropout: ...}" if f.family == "tabm" else
        "which has no dropout layer to set" + (" (torchvision models take theirs in "
                                               "model.kwargs)" if f.family == "torchvision"
                                               else ""))),
    "model.norm": _families("mlp", what="the mlp"),
    "model.init": _families("mlp", what="the mlp"),
    "model.outputs": _families("custom", what="your own nn.Module (deepfit's and "
                               "torchvision's networks return logits)"),
    "model.channels": _families("image-net", what="deepfit's cnn, lenet, resnet9 and resnet18"),
    "model.pretrained": _families("torchvision", what="torchvision models (tv:NAME)"),
    "model.weights": _families("image-net", "torchvision", what="image networks"),
    "model.kwargs": _families("custom", "torchvision", "tabm", what="your own model, "
                              "torchvision models and tabm"),
    "model.embeddings": _families("tabm", what="tabm"),
    "model.bins": _all(_families("tabm", what="tabm"),
                       _when("model.embeddings", ("piecewise",), "to piecewise embeddings")),
    "train.momentum": _when("train.optimizer", ("sgd", "rmsprop"), "to sgd and rmsprop"),
    "train.nesterov": _when("train.optimizer", ("sgd",), "to sgd"),
    "train.step_size": _when("train.schedule", ("step",), "to the step schedule"),
    "train.gamma": _when("train.schedule", ("step", "plateau"),
                         "to the step and plateau schedules"),
    "train.plateau_patience": _when("train.schedule", ("plateau",), "to the plateau schedule"),
    "train.patience": _when("train.early_stopping", (True,), "with early stopping"),
    "train.class_weights": _CLASSES,
    "train.channels_last": _images,
    "train.cuda_graphs": lambda _, f: None if f.device == "cuda" else (
        f"it replays CUDA graphs, and this run trains on {f.device}"),
    "train.sync_bn": lambda _, f: None if f.processes > 1 else (
        "it synchronises batch norm across processes, and this run has one (see "
        "docs/scaling.md)"),
    "train.precise_bn": lambda cfg, f: None if f.model in ("cnn", "resnet9", "resnet18")
    or f.family in ("torchvision", "custom", "registered")
    or (f.model == "mlp" and cfg.model.norm == "batch") else (
        f"it recomputes batch-norm statistics, and {_model(f)} has no batch-norm layer"
        + (" (model.norm=batch gives the mlp some)" if f.model == "mlp" else "")),
    "eval.threshold_objective": _BINARY,
    "eval.apply_threshold": _all(_BINARY, lambda cfg, _: None
                                 if cfg.eval.threshold_objective != "none" else
                                 "there is no tuned threshold with "
                                 "eval.threshold_objective=none"),
    "eval.beta": _all(_BINARY, _when("eval.threshold_objective", ("fbeta",),
                                     "to the fbeta objective")),
    "eval.target": _all(_BINARY, _when("eval.threshold_objective", ("sensitivity", "specificity"),
                                       "to the sensitivity and specificity objectives")),
    "eval.betas": _CLASSES,
    "eval.calibration_bins": _CLASSES,
    "eval.bootstrap": lambda cfg, f: None if not cfg.eval.bootstrap else _tasks(
        "binary", "multiclass", "regression",
        what="single-label tasks (multi-label runs have no intervals yet)")(cfg, f),
    "eval.ci_level": lambda cfg, _: None if cfg.eval.bootstrap else (
        "it is the level of the bootstrap intervals, and eval.bootstrap is 0"),
    "eval.explain": _all(_images, lambda cfg, _: None if cfg.eval.plots else (
        "it draws maps over test images, and eval.plots=false")),
    "eval.explain_layer": _all(_images, lambda cfg, _: None if cfg.eval.plots
                               and cfg.eval.explain else (
                                   "it names the layer Grad-CAM reads, and the report draws no "
                                   "maps (eval.explain=false or eval.plots=false)")),
    "track.experiment": lambda cfg, _: None if cfg.track.mlflow else (
        "it names the MLflow experiment runs are logged in, and track.mlflow is not set"),
}


# Object detection (docs/detection.md): the keys that apply; every other key is refused.
# A key's rule above still applies when it is listed here without its own detection rule
# (train.momentum moves SGD and RMSprop only).
_GENERATED = _sources("toy", "detection-synthetic",
                      what="generated data (toy generators, synthetic-smear)")
DETECTION_RULES: dict[str, Optional[Rule]] = {
    "data.source": None, "data.task": None, "data.val_size": None, "data.test_size": None,
    "data.group_column": None, "data.seed": None, "data.image_size": None,
    "data.augment": None, "data.label_map": None, "data.workers": None,
    "data.n_samples": _GENERATED, "data.root": _GENERATED,
    "model.name": None, "model.weights": None, "model.kwargs": None,
    **{f"train.{k}": RULES.get(f"train.{k}") for k in (
        "epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
        "grad_clip", "schedule", "warmup_epochs", "step_size", "gamma", "checkpoint_every",
        "early_stopping", "patience", "monitor", "min_delta", "device", "precision",
        "on_nonfinite", "deterministic", "seed", "progress")},
    **{f"eval.{k}": RULES.get(f"eval.{k}") for k in ("batch_size", "plots", "report",
                                                    "ci_level")},
    "eval.bootstrap": None,
}
_DETECTION_WHY = {
    "data.resize": "detection images are letterboxed (aspect ratio kept) to data.image_size",
    "data.normalize": "torchvision's detectors normalise their input themselves",
    "model.pretrained": "detectors are built without downloads; give model.weights=PATH",
    "train.loss": "a detector trains on its own box and class losses",
    "train.diagnostics": "the per-layer diagnostics are not wired for detectors yet",
    "train.on_oom": "a detection batch is not split into micro-batches",
    "track.tensorboard": "tracking is not wired for detection runs yet",
    "track.mlflow": "tracking is not wired for detection runs yet",
}


def _detection_not_applying(cfg: Any, facts: RunFacts) -> dict[str, str]:
    out = {}
    for key in _defaults(type(cfg)):
        if key not in DETECTION_RULES:
            out[key] = _DETECTION_WHY.get(key, "it does not apply to object detection "
                                          "(docs/detection.md lists the keys that do)")
        elif (rule := DETECTION_RULES[key]) is not None and (reason := rule(cfg, facts)):
            out[key] = reason
    return out


def model_family(name: str, registered: tuple = ()) -> str:
    """``mlp``, ``tabm``, ``image-net``, ``torchvision``, ``custom`` or ``registered`` (a
    factory added with ``register_model``, one of ``registered``) for a resolved model name."""
    if name in registered and name not in ("mlp", "tabm") and name not in IMAGE_NETS:
        return "registered"
    if name in ("mlp", "tabm"):
        return name
    if name in IMAGE_NETS:
        return "image-net"
    if ":" in name and not name.startswith("tv:"):
        return "custom"
    return "torchvision"


def not_applying(cfg: Any, facts: RunFacts) -> dict[str, str]:
    """``{key: reason}`` for every key of ``cfg`` that does not apply to this run."""
    if facts.kind == "detection":
        return _detection_not_applying(cfg, facts)
    return {key: reason for key, rule in RULES.items() if (reason := rule(cfg, facts))}


def check_applies(cfg: Any, facts: RunFacts, resolved: Any = None,
                  accepted: Optional[dict[str, Any]] = None) -> None:
    """Refuse, in one line, every key of ``cfg`` (as the user gave it) set to a non-default
    value that does not apply.

    ``resolved``: the same config with its ``auto`` values decided (``train.schedule=auto``
    is plateau for a table), which the rules read. ``accepted``: ``{"section.key": value}``
    that count as not set although they differ from the default (what deepfit resolves an
    ``auto`` to, as an older run's config.yaml holds it).
    """
    defaults = _defaults(type(cfg))
    accepted = accepted or {}
    wrong = []
    for key, reason in not_applying(resolved if resolved is not None else cfg, facts).items():
        value = _get(cfg, key)
        section, name = key.split(".")
        if value == defaults[key] or value == accepted.get(section, {}).get(name, defaults[key]):
            continue
        wrong.append(f"{key}={_show(value)} ({reason})")
    if wrong:
        many = len(wrong) > 1
        raise ConfigError(f"option{'s' if many else ''} that do{'' if many else 'es'} not apply "
                          f"to this run: {'; '.join(wrong)}; remove {'them' if many else 'it'}")


def applying_dict(cfg: Any, facts: RunFacts) -> dict[str, Any]:
    """``cfg.to_dict()`` without the keys that do not apply (for config.yaml and the report)."""
    out = cfg.to_dict()
    for key in not_applying(cfg, facts):
        section, name = key.split(".")
        out[section].pop(name, None)
    return out


def _get(cfg: Any, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def _defaults(cls: type) -> dict[str, Any]:
    root = cls()
    return {f"{s.name}.{f.name}": getattr(getattr(root, s.name), f.name)
            for s in dataclasses.fields(root) if dataclasses.is_dataclass(getattr(root, s.name))
            for f in dataclasses.fields(getattr(root, s.name))}


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value).lower() if isinstance(value, bool) else str(value)
