"""Start-up and fixed cost: `import deepfit`, `deepfit --help`, and `deepfit train --data
breast_cancer` from process start to exit, with where its time goes.

Each command runs in a fresh process (the cost a user pays), the arms interleaved, repeated;
medians with min-max. `import torch` alone is shown as the floor any torch program pays, and the train command
ended by the interpreter's own teardown (which ``deepfit.entry`` skips) beside it.
The breakdown of the train command wraps the pipeline's stages with timers in a process of
its own (imports, data + model, training, evaluation, summary, the wait for the figures
drawn in forked processes, report); the train command with every figure drawn in its own
process (``deepfit.forked`` refused) runs beside it.

    nice -n 5 .venv/bin/python benchmarks/startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ARMS = {
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "python -c 'import deepfit'": [sys.executable, "-c", "import deepfit"],
    "deepfit --help": [str(BIN / "deepfit"), "--help"],
}

# Runs in a fresh process: times the CLI's train command stage by stage.
STAGES = r'''
import json, sys, time
started = time.perf_counter()
from deepfit import cli, pipeline, summary, report
from deepfit.train import trainer
times = {"imports (deepfit, torch, scikit-learn, matplotlib)": time.perf_counter() - started}
def timed(owner, name, label):
    inner = getattr(owner, name)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            times[label] = times.get(label, 0.0) + time.perf_counter() - t
    setattr(owner, name, wrapper)
timed(pipeline, "assemble", "data + model (assemble)")
timed(trainer.Trainer, "fit", "training")
timed(pipeline, "predict", "prediction (val, test)")
timed(pipeline, "evaluate", "evaluation (metrics, bootstrap)")
from deepfit import forked
timed(pipeline, "build_summary", "summary (layers, inspection, representations)")
timed(forked.Forked, "result", "figures (time left waiting for the forked processes)")
timed(pipeline, "write_report", "report (html, md)")
code = cli.main(["train", "--data", "breast_cancer", "--quiet", "--out", sys.argv[1]])
times["total (process start to exit, less interpreter start)"] = time.perf_counter() - started
print(json.dumps(times))
'''


def run(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    env_note = f"load avg {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    print(f"date {time.strftime('%Y-%m-%d')}  {platform.machine()}  {os.cpu_count()} cores  "
          f"python {platform.python_version()}  {env_note}")
    with tempfile.TemporaryDirectory() as out:
        train = [str(BIN / "deepfit"), "train", "--data", "breast_cancer", "--quiet",
                 "--out", out]
        # The same command ended by the interpreter's own teardown (what deepfit.entry skips)
        teardown = [sys.executable, "-c", "import sys; from deepfit.cli import main; "
                    "sys.exit(main())", *train[1:]]
        # The same command with its figures drawn in this process (deepfit.forked refused)
        in_process = [sys.executable, "-c", "import deepfit.forked as f; f.can_fork = lambda: "
                      "False; from deepfit.entry import run; run()", *train[1:]]
        arms = {**ARMS, "deepfit train --data breast_cancer": train,
                "  the same, interpreter's own exit": teardown,
                "  the same, figures in one process": in_process}
        for cmd in arms.values():  # warm the file cache once
            run(cmd)
        times: dict[str, list[float]] = {name: [] for name in arms}
        stages: list[dict[str, float]] = []
        for repeat in range(args.repeats):
            order = list(arms) if repeat % 2 == 0 else list(reversed(arms))
            for name in order:
                times[name].append(run(arms[name]))
            done = subprocess.run([sys.executable, "-c", STAGES, out], check=True,
                                  capture_output=True, text=True)
            stages.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"\nwall time per command, fresh process, median [min-max] of {args.repeats}:")
    for name, values in times.items():
        print(f"  {name:<38} {statistics.median(values):6.2f} s "
              f"[{min(values):.2f}-{max(values):.2f}]")
    print("\ndeepfit train --data breast_cancer, by stage (median s):")
    for label in stages[0]:
        values = [s.get(label, 0.0) for s in stages]
        print(f"  {label:<55} {statistics.median(values):6.2f}")
    print(f"  (load avg at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
