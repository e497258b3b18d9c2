"""``--devices N``: run the same command as N processes under torchrun (one machine), so
``deepfit train ... --devices 2`` is ``torchrun --standalone --nproc-per-node 2 -m deepfit
train ...``. Several machines are torchrun's (or Slurm's) business: see docs/scaling.md."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Optional



def relaunch(argv: list[str], devices: Optional[int]) -> Optional[int]:
    """Run ``deepfit <argv without --devices>`` under torchrun with ``devices`` processes
    and return its exit code; None when this process should do the work itself (one device,
    or already one of torchrun's processes)."""
    if devices is None or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return None
    if devices < 1:
        print(f"error: --devices {devices}: give a number of processes, 1 or more",
              file=sys.stderr)
        return 2
    if devices == 1:
        return None
    rest = _without_devices(argv)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={devices}", "-m", "deepfit", *rest]
    return subprocess.call(command)


def _without_devices(argv: list[str]) -> list[str]:
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--devices":
            skip = True
            continue
        if token.startswith("--devices="):
            continue
        out.append(token)
    return out


def is_main_process() -> bool:
    """False in torchrun's processes other than rank 0 (they print nothing)."""
    return int(os.environ.get("RANK", "0")) == 0
