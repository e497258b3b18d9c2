"""Assemble one run before training: the config with every ``auto`` decided for this data
and device and checked against what the run is, the data bundle, the model, its task head
and the image inputs. ``deepfit.train`` and every tuning trial start here, so a trial is
built exactly as the run that would follow it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Optional

import pandas as pd
import torch
from torch import nn

from deepfit.config import RunConfig
from deepfit.config_scope import IMAGE_SOURCES, RunFacts, check_applies, model_family
from deepfit.data.bundle import DataBundle, build_bundle
from deepfit.data.images.imageset import ImageFiles
from deepfit.data.images.inputs import ImageInputs
from deepfit.data.source_kind import source_kind
from deepfit.errors import ConfigError
from deepfit.evaluate.evaluation import check_eval_config
from deepfit.models import build_model, model_names
from deepfit.models.outputs_check import check_outputs
from deepfit.models.registry import check_model_name, resolve_model_name, torchvision_name
from deepfit.models.tabm import fit_to_training
from deepfit.task import TaskHead, balanced_class_weights
from deepfit.train.device import resolve_device, seed_everything
from deepfit.train.distributed import make_strategy
from deepfit.train.history import check_monitor
from deepfit.train.strategy import SingleDevice


@dataclass
class Assembly:
    """Everything a run trains with; ``cfg`` is resolved (no ``auto`` left)."""

    cfg: RunConfig
    facts: RunFacts
    strategy: SingleDevice
    bundle: DataBundle
    model: nn.Module
    head: TaskHead
    inputs: Optional[ImageInputs]
    data_seed: int


def assemble(cfg: RunConfig, data: Any, model: Optional[nn.Module],
             split: Optional[pd.Series] = None,
             bundles: Optional[dict[str, DataBundle]] = None, refit: bool = False) -> Assembly:
    """Resolve, check and build one run (see the module's docstring).

    ``bundles``: a cache of data bundles by their data config, for callers that build many
    runs on the same data (tuning trials); None builds the bundle every time.
    ``refit``: the validation rows join the training rows (a tuned config's final fit).
    """
    seed_everything(cfg.train.seed)
    data_seed = cfg.data.seed if cfg.data.seed is not None else cfg.train.seed
    # One process, or one of a torchrun group (each process its own GPU, or CPUs).
    strategy = make_strategy(resolve_device(cfg.train.device))
    device = strategy.device
    given = cfg  # the options as the user set them, checked against what the run is
    facts = _scope_facts(cfg, data, strategy.world_size, device)
    shape = (1, 1, 1) if facts.kind == "image" else (1,)
    accepted = _resolve_auto(RunConfig(), facts.kind, shape, device).to_dict()
    # Every automatic value is decided here, once, for this kind of data and this device;
    # the run saves the result, and everything after (the trainer too) takes it as it is.
    cfg = _resolve_auto(cfg, facts.kind, shape, device)
    check_applies(given, facts, cfg, accepted)  # before loading: no time lost on a typo
    strategy.check(cfg.train)
    if tuple(cfg.data.augment) == ("auto",) and cfg.model.name == "mlp":
        # An MLP flattens the image: shifted or flipped copies are new patterns to it, not
        # the same object, so automatic augmentation is off for it.
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, augment=("none",)))
    stats = _pretrained_stats(cfg)
    key = json.dumps([dataclasses.asdict(cfg.data), stats, data_seed, refit], default=str)
    if bundles is not None and key in bundles:
        bundle = bundles[key]
    else:
        bundle = build_bundle(cfg.data, data, seed=data_seed, split=split, norm_stats=stats,
                              refit=refit)
        if bundles is not None:
            bundles[key] = bundle
    task, schema = bundle.schema.task, bundle.schema
    facts = dataclasses.replace(facts, task=task, streamed=isinstance(bundle.train.X, ImageFiles),
                                fixed_splits=frozenset({"val", "test"}
                                                       - set(bundle.info["drawn_splits"])))
    check_applies(given, facts, cfg, accepted)
    # The batch (and for images the epochs and patience) scale with the training rows.
    unset = {k: None for k in ("batch_size", "epochs", "patience")
             if getattr(given.train, k) is None}
    if unset and facts.kind in ("table", "image"):
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **unset).resolved(
            facts.kind, device.type, train_rows=len(bundle.train.y)))
        strategy.check(cfg.train)
    check_monitor(cfg.train.monitor, task)
    check_eval_config(cfg.eval)
    if model is None:
        model = build_model(cfg.model, schema.input_shape, schema.n_outputs)
    fit_to_training(model, bundle.train.X)  # e.g. TabM's bins: the training rows only
    inputs = None
    if schema.image is not None:  # uint8 batches -> augmented, normalised network input
        inputs = ImageInputs(schema.image, device, seed=cfg.train.seed + 1,
                             channels_last=cfg.train.channels_last)
    weights = None
    if cfg.train.class_weights == "balanced" and task in ("binary", "multiclass"):
        weights = balanced_class_weights(bundle.train.y, len(schema.class_names)).to(device)
    head = TaskHead(task, cfg.train.loss, cfg.model.outputs, weights)
    check_outputs(model, bundle.train.X, task, cfg.model.outputs, cfg.model.name, device, inputs)
    return Assembly(cfg, facts, strategy, bundle, model, head, inputs, data_seed)


def _scope_facts(cfg: RunConfig, data: Any, processes: int, device: torch.device) -> RunFacts:
    """What the run is, before its data are loaded (``deepfit.config_scope``)."""
    kind = source_kind(cfg.data, data)
    image = kind in IMAGE_SOURCES
    name = resolve_model_name(cfg.model.name, (1, 1, 1) if image else (1,))
    check_model_name(name)
    return RunFacts(source=kind, model=name, family=model_family(name, tuple(model_names())),
                    processes=processes, device=device.type)


def _pretrained_stats(cfg: RunConfig) -> Optional[tuple]:
    """Normalisation statistics given by the user (``data.mean``, ``data.std``) or expected
    by pretrained weights (``data.normalize=pretrained``); None: the training split's."""
    d = cfg.data
    if d.mean or d.std:
        if len(d.mean) != len(d.std) or len(d.mean) not in (1, 3):
            raise ConfigError(f"data.mean {list(d.mean)} and data.std {list(d.std)} must both "
                              "have 1 value, or 3 (one per RGB channel)")
        return d.mean, d.std
    if cfg.data.normalize != "pretrained":
        return None
    from deepfit.models.vision import pretrained_stats
    name = torchvision_name(cfg.model.name)
    if name is None:
        raise ConfigError(f"data.normalize=pretrained needs a torchvision model with pretrained "
                          f"weights (e.g. model.name=tv:resnet18 model.pretrained=true), not "
                          f"'{cfg.model.name}'; use data.normalize=train")
    return pretrained_stats(name)


def _resolve_auto(cfg: RunConfig, kind: str, input_shape: tuple,
                  device: torch.device) -> RunConfig:
    """Decide every ``auto`` value for this data and device; the run saves the result, so a
    re-run or a resume uses exactly these."""
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    name = resolve_model_name(cfg.model.name, input_shape)
    # Prediction batches: large for table rows; for images the activations of a batch grow
    # with the image area, so a few hundred at a time.
    eval_batch = cfg.eval.batch_size or (512 if kind == "image" else 4096)
    return dataclasses.replace(cfg, train=cfg.train.resolved(
                                   kind, device.type, bf16, raw_target=not cfg.data.scale_target),
                               model=dataclasses.replace(cfg.model, name=name),
                               eval=dataclasses.replace(cfg.eval, batch_size=eval_batch))
