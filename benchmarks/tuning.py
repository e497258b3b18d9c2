"""Tuning: ``deepfit tune`` against a plain Optuna loop around the same trainer, and tuned
against default test scores.

Part 1, overhead (``digits``, 30 trials by default). Three arms, interleaved, repeated:

  (a) plain        a hand-written Optuna loop: TPESampler(seed=0), MedianPruner(5, 2) (the
                   values deepfit.tune.study uses), in-memory storage. Each trial draws the
                   same space, builds the config, ``assemble(...)`` (with a bundle cache, as
                   deepfit tune has), ``Trainer(...).fit(...)`` with a callback that scores the
                   validation split with scikit-learn's ROC-AUC (one-vs-rest, macro; the
                   metric deepfit tune optimises), ``trial.report`` + ``should_prune`` per
                   epoch, and scores the kept (best-epoch) model on validation at the end.
  (b) plain+sqlite the same loop on an SQLite study in a temporary folder (what deepfit
                   stores by default): what the storage alone costs.
  (c) deepfit      ``deepfit.tune.tune(...)`` (SQLite study in its tuning folder). Its time
                   is split into the search (from the call until best.yaml is written:
                   setup, space check, every trial, tune.json after each) and the rest (the
                   final run retrained and evaluated on test, its report, tune.json and
                   tune.html).

Every arm draws the same values for the same trial (same sampler seed, space and pruner,
the same deterministic training), which the output checks trial by trial.

Part 2, tuned vs defaults: on three built-in data sets, the test score of ``deepfit train``
with every default against the final run of ``deepfit tune`` (default space, same data
seed, so the same test rows): ROC-AUC for classes, R² for regression.

Run: ``nice -n 10 .venv/bin/python benchmarks/tuning.py`` (``--quick`` for a smoke run,
``--profile`` for a cProfile of one search per arm, in seconds per trial).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import json
import os
import platform
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import torch
from sklearn.metrics import r2_score, roc_auc_score

from deepfit.assemble import assemble
from deepfit.config import RunConfig
from deepfit.pipeline import train
from deepfit.train.callbacks import Callback
from deepfit.train.trainer import Trainer
from deepfit.tune import tune

# deepfit's default space for an MLP on a table, written out so both arms search exactly it.
SPACE = {
    "train.lr": {"low": 1e-4, "high": 3e-2, "log": True},
    "train.weight_decay": {"low": 1e-6, "high": 1e-1, "log": True},
    "train.optimizer": ["adamw", "sgd"],
    "train.batch_size": [32, 64, 128, 256],
    "model.hidden": [[64], [128], [128, 64], [256, 128], [256, 256, 128]],
    "model.dropout": {"low": 0.0, "high": 0.5},
}
SEED = 0
PART2 = {"breast_cancer": "roc_auc", "wine": "roc_auc", "diabetes": "r2"}


# -- (a), (b): the plain Optuna loop -------------------------------------------------------
def draw(trial: optuna.Trial) -> dict:
    """The space's values for one trial; list choices travel through Optuna as JSON text."""
    values = {}
    for key, entry in SPACE.items():
        if isinstance(entry, dict):
            values[key] = trial.suggest_float(key, entry["low"], entry["high"],
                                              log=entry.get("log", False))
        else:
            encoded = any(isinstance(c, list) for c in entry)
            options = [json.dumps(c) for c in entry] if encoded else entry
            raw = trial.suggest_categorical(key, options)
            values[key] = json.loads(raw) if encoded else raw
    return values


def validation_score(task: str, y: np.ndarray, scores: np.ndarray) -> float:
    if task == "regression":
        return float(r2_score(y, scores))
    if task == "binary":
        return float(roc_auc_score(y, scores))
    return float(roc_auc_score(y.astype(int), scores, multi_class="ovr", average="macro",
                               labels=list(range(scores.shape[1]))))


class Report(Callback):
    def __init__(self, trial: optuna.Trial, built) -> None:
        self.trial, self.built, self.pruned = trial, built, False

    def on_epoch_end(self, trainer, epoch: int, logs: dict, **kwargs) -> None:
        scores = self.built.head.scores(trainer.val_outputs).numpy().astype(np.float64)
        value = validation_score(trainer.task, self.built.bundle.val.y.numpy(), scores)
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned = trainer.should_stop = True


def plain_search(data: str, epochs: int, trials: int, storage) -> optuna.Study:
    base = RunConfig().override({"data.source": data, "train.epochs": epochs,
                                 "train.progress": False, "train.diagnostics": False})
    bundles: dict = {}

    def objective(trial: optuna.Trial) -> float:
        built = assemble(base.override(draw(trial)), None, None, None, bundles)
        b, c = built.bundle, built.cfg
        report = Report(trial, built)
        trainer = Trainer(built.model, built.head, c.train, task=b.schema.task,
                          n_outputs=b.schema.n_outputs, strategy=built.strategy,
                          callbacks=[report], eval_batch_size=c.eval.batch_size)
        trainer.fit(b.train.X, b.train.y, b.val.X, b.val.y)
        if report.pruned:
            raise optuna.TrialPruned()
        trainer.model.eval()  # the kept model: the trainer restored the best epoch
        with torch.no_grad():
            scores = built.head.scores(trainer.model(b.val.X)).numpy().astype(np.float64)
        return validation_score(b.schema.task, b.val.y.numpy(), scores)

    study = optuna.create_study(
        storage=storage, direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))
    study.optimize(objective, n_trials=trials)
    return study


# -- measurement ---------------------------------------------------------------------------
def run_arm(arm: str, data: str, epochs: int, trials: int, folder: Path, tag: str) -> dict:
    start, cpu = time.time(), time.process_time()
    if arm == "deepfit":
        r = tune(data=data, trials=trials, epochs=epochs, out=str(folder), name=f"tune-{tag}",
                 space=SPACE, pruner="median", sampler="tpe", progress=False)
        study, total = r.study, time.time() - start
        # best.yaml is written the moment the search has ended, before the final run.
        search = (r.path / "best.yaml").stat().st_mtime - start
    else:
        storage = None
        if arm == "plain+sqlite":
            storage = f"sqlite:///{folder / f'plain-{tag}.db'}"
        study = plain_search(data, epochs, trials, storage)
        total = search = time.time() - start
    trials_ = sorted(study.trials, key=lambda t: t.number)
    return {"search": search, "total": total, "cpu": time.process_time() - cpu,
            "pruned": sum(t.state.name == "PRUNED" for t in trials_),
            "trace": [(t.state.name, json.dumps(t.params, sort_keys=True), t.value)
                      for t in trials_]}


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):7.1f} s [{min(xs):.1f}-{max(xs):.1f}]"


def overhead(args, folder: Path) -> None:
    arms = ["plain", "plain+sqlite", "deepfit"] if args.sqlite_arm else ["plain", "deepfit"]
    print(f"\n== Part 1: overhead, {args.data}, {args.trials} trials x {args.epochs} epochs, "
          f"TPE seed {SEED}, median pruner, {args.repeats} repeats interleaved ==")
    # Warm-up (imports, lazy torch and sklearn initialisation): not timed.
    for arm in arms:
        run_arm(arm, args.data, 1, 2, folder, f"warm-{arm}")
    results: dict[str, list[dict]] = {arm: [] for arm in arms}
    for rep in range(args.repeats):
        order = arms if rep % 2 == 0 else arms[::-1]  # drift falls on every arm alike
        for arm in order:
            results[arm].append(run_arm(arm, args.data, args.epochs, args.trials, folder,
                                        f"{arm}-{rep}"))
            r = results[arm][-1]
            print(f"  repeat {rep + 1} {arm:<13} search {r['search']:6.1f} s  total "
                  f"{r['total']:6.1f} s  pruned {r['pruned']}", flush=True)
    plain = [r["search"] for r in results["plain"]]
    print(f"\n{'arm':<28}{'median [min-max]':>24}{'vs (a)':>9}  pruned")
    rows = [("(a) plain, in-memory", [r["search"] for r in results["plain"]], "plain")]
    if "plain+sqlite" in arms:
        rows.append(("(b) plain, SQLite", [r["search"] for r in results["plain+sqlite"]],
                     "plain+sqlite"))
    rows += [("(c) deepfit, search", [r["search"] for r in results["deepfit"]], "deepfit"),
             ("(c) deepfit, final+report", [r["total"] - r["search"] for r in
                                            results["deepfit"]], None),
             ("(c) deepfit, whole tune()", [r["total"] for r in results["deepfit"]],
              "deepfit")]
    for name, xs, arm in rows:
        ratios = [x / p for x, p in zip(xs, plain)]  # per repeat: same load on both
        pruned = "-" if arm is None else "/".join(str(r["pruned"]) for r in results[arm])
        print(f"{name:<28}{spread(xs):>24}{statistics.median(ratios):>8.2f}x  {pruned}")
    print("\nCPU time of this process (what other processes' load does not inflate; "
          "waits for the disk not counted):")
    cpu_plain = [r["cpu"] for r in results["plain"]]
    for name, arm in (("(a) plain, in-memory", "plain"), ("(b) plain, SQLite", "plain+sqlite"),
                      ("(c) deepfit, whole tune()", "deepfit")):
        if arm in arms:
            xs = [r["cpu"] for r in results[arm]]
            ratios = [x / p for x, p in zip(xs, cpu_plain)]
            print(f"{name:<28}{spread(xs):>24}{statistics.median(ratios):>8.2f}x")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    search_ratio = statistics.median(
        r["search"] / p for r, p in zip(results["deepfit"], plain))
    print(f"\ndeepfit search / plain (in-memory): {search_ratio:.2f}x (median of per-repeat "
          "ratios; includes the storage's own cost, which a resumable study must pay)")
    if "plain+sqlite" in arms:
        # The target compares like with like: deepfit's study is on disk (resume, workers),
        # so the reference is the plain loop on the same storage.
        same_storage = statistics.median(
            r["search"] / q["search"] for r, q in zip(results["deepfit"],
                                                      results["plain+sqlite"]))
        print(f"{'PASS' if same_storage <= 1.10 else 'FAIL'}  deepfit search / plain (SQLite, "
              f"the same storage) <= 1.10: {same_storage:.2f}x (median of per-repeat ratios)")
    same = all(r["trace"] == results["plain"][0]["trace"] for a in arms for r in results[a])
    print(f"same draws, states and values in every arm and repeat: {'yes' if same else 'NO'}")
    if not same:
        for a in arms:
            for i, (state, params, value) in enumerate(results[a][0]["trace"][:args.trials]):
                print(f"  {a} trial {i}: {state} {value} {params}")


def test_metric(frame: pd.DataFrame, metric: str) -> float:
    """ROC-AUC or R² from a run's predictions.csv (test rows)."""
    if metric == "r2":
        return float(r2_score(frame["true"], frame["predicted"]))
    names = [c[2:] for c in frame.columns if c.startswith("p_")]
    y = frame["true"].map({n: i for i, n in enumerate(names)}).to_numpy()
    probs = frame[[f"p_{n}" for n in names]].to_numpy()
    return validation_score("binary" if len(names) == 2 else "multiclass", y,
                            probs[:, 1] if len(names) == 2 else probs)


def paired_interval(a: pd.DataFrame, b: pd.DataFrame, metric: str,
                    resamples: int = 1000) -> tuple[float, float]:
    """95 % paired bootstrap interval of metric(b) - metric(a) over the same test rows
    (resamples where the metric is undefined, e.g. a class missing, are dropped)."""
    rng = np.random.default_rng(SEED)
    diffs = []
    for _ in range(resamples):
        rows = rng.integers(0, len(a), len(a))
        try:
            diffs.append(test_metric(b.iloc[rows], metric) - test_metric(a.iloc[rows], metric))
        except ValueError:
            continue
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def tuned_vs_defaults(args, folder: Path) -> None:
    print(f"\n== Part 2: test score, deepfit train with defaults vs deepfit tune "
          f"({args.tune_trials} trials, default space, median pruner), data.seed {SEED} ==")
    print(f"{'data':<15}{'metric':<9}{'defaults':>9}{'tuned':>9}{'diff':>8}{'95% CI':>18}"
          f"{'test n':>8}"
          f"{'best val':>10}{'tied':>6}{'pruned':>8}{'train s':>9}{'tune s':>8}  best params")
    for data, metric in PART2.items():
        t0 = time.perf_counter()
        default = train(data=data, out=str(folder), name=f"default-{data}", progress=False,
                        **{"data.seed": SEED})
        t1 = time.perf_counter()
        r = tune(data=data, trials=args.tune_trials, out=str(folder), name=f"tuned-{data}",
                 progress=False, **{"data.seed": SEED})
        t2 = time.perf_counter()
        frames = [pd.read_csv(run.path / "predictions.csv") for run in (default, r.final)]
        rows = [f["id"].tolist() for f in frames]
        assert rows[0] == rows[1], f"{data}: the two runs were tested on different rows"
        a, b = default.metrics["test"][metric], r.final.metrics["test"][metric]
        assert abs(test_metric(frames[0], metric) - a) < 1e-6  # predictions.csv = metrics
        low, high = paired_interval(frames[0], frames[1], metric)
        states = [t.state.name for t in r.study.trials]
        tied = sum(t.state.name == "COMPLETE" and t.value == r.best_value
                   for t in r.study.trials)  # a ceiling (1.0) makes the first one win
        best = ", ".join(f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) else
                         f"{k.split('.')[-1]}={v}" for k, v in r.best_params.items())
        print(f"{data:<15}{metric:<9}{a:>9.4f}{b:>9.4f}{b - a:>+8.4f}"
              f"{f'[{low:+.3f}, {high:+.3f}]':>18}{len(rows[0]):>8}"
              f"{r.best_value:>10.4f}{tied:>6}{states.count('PRUNED'):>8}{t1 - t0:>9.1f}"
              f"{t2 - t1:>8.1f}  {best}", flush=True)
    print("95% CI: paired bootstrap of the difference over the test rows (1,000 resamples); "
          "best val: the best trial's validation score; tied: complete trials with exactly "
          "that score (the first of them wins).")


# (label, file path ending, function name): where a search's time goes, per trial.
PLACES = [
    ("a trial (Optuna's _run_trial)", "optuna/study/_optimize.py", "_run_trial"),
    ("  sampler: draw the values", "optuna/trial/_trial.py", "suggest_float"),
    ("  sampler: draw the values", "optuna/trial/_trial.py", "suggest_categorical"),
    ("  deepfit: which keys apply", "deepfit/tune/search.py", "applies"),
    ("  assemble", "deepfit/assemble.py", "assemble"),
    ("  Trainer.fit", "deepfit/train/trainer.py", "fit"),
    ("    per-epoch callback", "deepfit/tune/trial.py", "on_epoch_end"),
    ("    per-epoch callback", "benchmarks/tuning.py", "on_epoch_end"),
    ("      trial.report", "optuna/trial/_trial.py", "report"),
    ("      trial.should_prune", "optuna/trial/_trial.py", "should_prune"),
    ("  predict the kept model", "deepfit/evaluate/predict.py", "predict"),
    ("  the metric (every epoch, kept model)", "deepfit/tune/trial.py", "score"),
    ("  the metric (every epoch, kept model)", "benchmarks/tuning.py", "validation_score"),
    ("  trial.set_user_attr", "optuna/trial/_trial.py", "set_user_attr"),
    ("  budget: counted + running", "deepfit/tune/study.py", "counted"),
    ("  budget: counted + running", "deepfit/tune/study.py", "running"),
    ("  best-so-far note", "deepfit/tune/search.py", "_best_note"),
    ("  tell (finish the trial)", "optuna/study/_tell.py", "_tell_with_warning"),
    ("after each trial (tune.json, budget)", "deepfit/tune/search.py", "stop_when_spent"),
    ("  parameter importances", "deepfit/tune/record.py", "importances"),
    ("setup: space check", "deepfit/tune/__init__.py", "search_space_check"),
    ("setup: open the study", "deepfit/tune/study.py", "open_study"),
    ("final run (train + evaluate)", "deepfit/tune/__init__.py", "_final"),
    ("tune.json + tune.html (every write)", "deepfit/tune/__init__.py", "write_record"),
]


def profile(args, folder: Path) -> None:
    """cProfile of one whole search per arm (after a warm-up), as seconds per trial in
    the places above, and the top functions by own time."""
    per_arm = {}
    arms = ("plain", "plain+sqlite", "deepfit")
    for arm in arms:
        run_arm(arm, args.data, 1, 2, folder, f"warm-{arm}")
        prof = cProfile.Profile()
        prof.enable()
        run_arm(arm, args.data, args.epochs, args.trials, folder, f"profile-{arm}")
        prof.disable()
        stats = pstats.Stats(prof)
        per_arm[arm] = stats
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.profile_lines)
        print(f"\n== cProfile, arm {arm}: top {args.profile_lines} by own time ==")
        print("\n".join(ln for ln in out.getvalue().splitlines()[6:] if ln.strip()))
    print(f"\n== where the time goes: seconds per trial ({args.trials} trials x "
          f"{args.epochs} epochs; cumulative, under cProfile) ==")
    print(f"{'':<40}{'(a) plain':>11}{'(b) +SQLite':>13}{'(c) deepfit':>13}")
    labels = list(dict.fromkeys(label for label, _, _ in PLACES))
    for label in labels:
        row = []
        for arm in arms:
            total = sum(v[3] for (path, _, func), v in per_arm[arm].stats.items()
                        for lab, end, name in PLACES
                        if lab == label and func == name and path.endswith(end))
            row.append(f"{total / args.trials:.4f}" if total else "-")
        print(f"{label:<40}{row[0]:>11}{row[1]:>13}{row[2]:>13}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits")
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tune-trials", type=int, default=20, help="part 2's trials per data set")
    p.add_argument("--no-sqlite-arm", dest="sqlite_arm", action="store_false",
                   help="leave out arm (b), the plain loop on SQLite")
    p.add_argument("--part", choices=("all", "overhead", "defaults"), default="all")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 6 trials x 3 epochs, 1 repeat, 4 trials in part 2")
    p.add_argument("--profile", action="store_true",
                   help="instead: cProfile one search of each arm, per trial")
    p.add_argument("--profile-lines", type=int, default=40)
    # One thread, as in the other benchmarks: small matmuls gain nothing from two threads
    # on a shared 2-core machine, and one thread makes the timings much steadier.
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.quick:
        args.trials, args.epochs, args.repeats, args.tune_trials = 6, 3, 1, 4
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"date {datetime.date.today()}  {platform.machine()}  {os.cpu_count()} cores  "
          f"python {platform.python_version()}  torch {torch.__version__} "
          f"({args.threads} thread)  optuna {optuna.__version__}  load avg "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deepfit-tune-bench-") as tmp:
        folder = Path(tmp)
        if args.profile:
            profile(args, folder)
            return
        if args.part in ("all", "overhead"):
            overhead(args, folder)
        if args.part in ("all", "defaults"):
            tuned_vs_defaults(args, folder)
    print(f"\nwhole benchmark: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
