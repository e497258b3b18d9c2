"""summary.json: everything the report shows about a finished run, as plain values, built
from the run's config, data, trainer and metrics."""

from __future__ import annotations

import platform
from datetime import datetime
from typing import Optional

import torch

from deepfit.config import RunConfig
from deepfit.data.bundle import DataBundle
from deepfit.models import count_parameters
from deepfit.models.registry import torchvision_name
from deepfit.models.tabm import describe_tabm
from deepfit.evaluate.predict import Predictions
from deepfit.explanations import record_explanations
from deepfit.inspection import record_diagnostics, record_representations
from deepfit.models.graph import graph_of
from deepfit.models.summary import model_summary
from deepfit.run import RunDir
from deepfit.task import TaskHead
from deepfit.train.builtin import BestModel
from deepfit.train.history import MAIN_METRIC
from deepfit.train.trainer import Trainer
from deepfit.version import __version__


def describe_model(cfg: RunConfig, task: str) -> str:
    m = cfg.model
    if m.name == "mlp":
        if not m.hidden:
            return ("a single linear layer: " +
                    ("linear regression" if task == "regression" else "logistic regression"))
        return (f"MLP, hidden layers {list(m.hidden)} ({m.activation}, dropout {m.dropout}, "
                f"norm {m.norm})")
    described = {"cnn": "small CNN (conv-BN-ReLU blocks, max-pooling, global average pooling"
                        f", dropout {m.dropout})",
                 "lenet": "LeNet-5 style CNN (two conv + pool layers, three linear layers)",
                 "resnet9": "ResNet-9 (residual blocks sized for small images)",
                 "resnet18": "ResNet-18 (basic residual blocks; small-image stem for ≤ 64 px)"}
    if m.name in described:
        text = described[m.name]
        return text + (f", widths {list(m.channels)}" if m.channels else "")
    if m.name == "tabm":
        return describe_tabm(m)
    tv_name = torchvision_name(m.name)
    if tv_name is None:
        return f"custom model {m.name}"
    weights = (f"pretrained weights {m.weights or 'from the torch hub cache'}" if m.pretrained
               else f"weights from {m.weights}" if m.weights else "random initialisation")
    return f"torchvision {tv_name} ({weights}; new output layer)"


def versions() -> dict[str, str]:
    # str(): torch's TorchVersion object would not load back with weights_only=True.
    return {"deepfit": __version__, "torch": str(torch.__version__),
            "python": platform.python_version()}


def build_summary(cfg: RunConfig, bundle: DataBundle, trainer: Trainer,
                  best: Optional[BestModel], head: TaskHead, metrics: dict, rd: RunDir,
                  seconds: float, refit: Optional[dict] = None,
                  test: Optional[Predictions] = None, diagnostic_figures: bool = True) -> dict:
    """The run summary (``RunDir.summary``). Its ``plots`` are left to the caller (the figures);
    with ``diagnostic_figures`` false the diagnostics' figures are too (``eval.plots``
    still says whether the pictures of learned representations are drawn)."""
    task, tc = bundle.schema.task, cfg.train
    main = MAIN_METRIC[task]
    rows = {r["epoch"]: r for r in trainer.history.rows}
    at_best = rows.get(best.best_epoch, {}) if best else {}
    gap = None
    if at_best.get(f"train_{main}") is not None and at_best.get(f"val_{main}") is not None:
        gap = at_best[f"train_{main}"] - at_best[f"val_{main}"]
    model_desc = describe_model(cfg, task)
    optimizer = f"{tc.optimizer}, lr {tc.lr:g}"
    if tc.optimizer in ("sgd", "rmsprop"):
        optimizer += f", momentum {tc.momentum:g}" + (", Nesterov" if tc.nesterov else "")
    schedule = tc.schedule + (f" with {tc.warmup_epochs} warm-up epoch(s)" if tc.warmup_epochs else "")
    regular = [f"weight decay {tc.weight_decay:g} (not on biases or norm layers)",
               f"dropout {cfg.model.dropout:g}" if cfg.model.name in ("mlp", "cnn") else None,
               "data augmentation (see preprocessing)" if bundle.schema.image is not None
               and bundle.schema.image.augment else None,
               (f"early stopping on {tc.monitor} (patience {tc.patience}"
                + (f", gains above {tc.min_delta:g}" if tc.min_delta else "") + ")")
               if tc.early_stopping and best else None,
               f"gradient-norm clipping at {tc.grad_clip:g}" if tc.grad_clip else None]
    inside = model_summary(trainer.model, bundle.schema.input_shape, tc.batch_size)
    return {
        "name": rd.path.name, "created": datetime.now().isoformat(timespec="seconds"),
        "versions": versions(),
        "data": bundle.info,
        "model": {"name": cfg.model.name, "description": model_desc,
                  "parameters": count_parameters(trainer.model),
                  "loss": head.describe(), "outputs": cfg.model.outputs,
                  "layers": inside.rows, "summary": inside.to_dict(),
                  "graph": graph_of(trainer.model)},
        "diagnostics": record_diagnostics(trainer, rd,
                                          plots=cfg.eval.plots and diagnostic_figures),
        "learned": record_representations(trainer, bundle, head, rd, plots=cfg.eval.plots),
        "explained": None if test is None else record_explanations(
            trainer.model, bundle.schema, cfg, bundle.test.X, test, rd),
        "training": {"device": trainer.strategy.describe(),
                     "processes": trainer.strategy.world_size, "epochs_run": trainer.epoch,
                     "max_epochs": tc.epochs, "best_epoch": best.best_epoch if best else None,
                     "monitor": tc.monitor if best else None,
                     "best_value": best.best_value if best and best.best_epoch else None,
                     "early_stopping": tc.early_stopping and best is not None,
                     "refit": refit,
                     "stop_reason": trainer.stop_reason or "reached the last epoch",
                     "seconds": seconds, "optimizer": optimizer, "schedule": schedule,
                     "regularisation": "; ".join(r for r in regular if r),
                     "batch_size": tc.batch_size, "seed": tc.seed, "main_metric": main,
                     "precision": tc.precision, "channels_last": tc.channels_last,
                     "compiled": tc.compile, "sync_bn": tc.sync_bn,
                     "precise_bn": getattr(trainer, "precise_bn", False),
                     "cuda_graphs": trainer.cuda_graphs,
                     "micro_batches": trainer.micro_batches,
                     "oom_events": trainer.oom_events, "skipped_steps": trainer.skipped_steps,
                     "train_val_gap": gap},
        "metrics": metrics,
        "plots": {},  # the caller's: the run's figures, {title: path in the run folder}
    }
