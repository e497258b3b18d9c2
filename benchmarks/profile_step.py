"""Where one training step's time goes: deepfit's image pipeline under ``torch.profiler``.

Builds the same run as ``deepfit train --data fashion-mnist`` (or ``--data``), runs a few
epochs' worth of steps of the real ``Trainer`` under the profiler, and prints the operators
that take the most device (or CPU) time, plus the wall time per step. Written for the next
GPU session (docs/benchmarks.md: an H200 step of the small CNN took ~5 ms, far above its
arithmetic). Run: ``python benchmarks/profile_step.py --steps 60 [--device cuda]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from torch.profiler import ProfilerActivity, profile, schedule

import deepfit
from deepfit.data.bundle import build_bundle
from deepfit.data.images.inputs import ImageInputs
from deepfit.models import build_model
from deepfit.task import TaskHead
from deepfit.train.device import deterministic_algorithms, resolve_device
from deepfit.train.callbacks import Callback
from deepfit.train.trainer import Trainer


class StepClock(Callback):
    """Advances the profiler's schedule and notes the wall time at the end of every step
    (after the device finished it)."""

    def __init__(self, device: torch.device, prof: profile) -> None:
        self.device, self.prof, self.ends = device, prof, []

    def on_batch_end(self, trainer, step, loss, **kwargs) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())
        self.prof.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--root", default=None)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=60, help="profiled steps (after warm-up)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", nargs="*", default=[], help="extra key=value overrides")
    args = parser.parse_args()

    cfg = deepfit.RunConfig().override({"data.source": args.data, "data.root": args.root,
                                        "model.name": args.model,
                                        "train.batch_size": args.batch_size})
    cfg = cfg.override(args.set) if args.set else cfg
    device = resolve_device(cfg.train.device if args.device == "auto" else args.device)
    bundle = build_bundle(cfg.data, seed=0)
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    tcfg = cfg.train.resolved("image", device.type, bf16)
    model = build_model(cfg.model, bundle.schema.input_shape, bundle.schema.n_outputs)
    inputs = ImageInputs(bundle.schema.image, device, 1, tcfg.channels_last)
    warm = 20  # cuDNN autotuning, allocator, lazy init, CUDA-graph capture: not measured
    n = (warm + args.steps) * args.batch_size  # warm-up + profiled steps, one epoch
    X, y = bundle.train.X[:n], bundle.train.y[:n]
    one_epoch = dataclasses.replace(tcfg, epochs=1, progress=False)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                           else [])
    prof = profile(activities=activities,
                   schedule=schedule(wait=warm - 1, warmup=1, active=args.steps))
    clock = StepClock(device, prof)
    trainer = Trainer(model, TaskHead(bundle.schema.task), one_epoch, task=bundle.schema.task,
                      n_outputs=bundle.schema.n_outputs, device=device, inputs=inputs,
                      callbacks=[clock])
    with deterministic_algorithms(False), prof:
        trainer.fit(X, y, X[:256], y[:256])
    measured = clock.ends[warm:warm + args.steps + 1]
    per_step = (measured[-1] - measured[0]) / (len(measured) - 1)
    graphs = trainer.cuda_graphs
    print(f"{args.model} on {bundle.info['name']}, batch {args.batch_size}, {device}, "
          f"{tcfg.precision}, channels_last={tcfg.channels_last}, CUDA graphs="
          f"{'on' if graphs and graphs['used'] else 'off'}: {per_step * 1e3:.2f} ms/step wall "
          "(profiler on)" + (f"; graphs not used: {graphs['reason']}"
                             if graphs and not graphs["used"] else ""))
    key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=25))


if __name__ == "__main__":
    main()
