"""Command line: parse, call the library, render. No logic of its own.

    deepfit train [CONFIG.yaml] [--data X] [--target COL] [--model M] [--epochs N]
                  [--out DIR] [--name NAME] [--seed S] [--device D] [--devices N] [key=value ...]
    deepfit cv [same options as train] [--folds K] [--repeats R] [--groups COL]
    deepfit tune [same options as train] [--space S.yaml] [--trials N] [--timeout 10m]
                 [--metric M] [--sampler S] [--pruner P] [--storage URL] [--worker] [--nested K]
    deepfit resume RUN [--devices N]   (or: deepfit train --resume RUN)
    deepfit evaluate RUN [--data FILE] | predict RUN INPUT -o OUT.csv | report RUN | inspect RUN
    deepfit explain RUN IMAGES... [--method M[,M]] [--layer NAME] [--class C] [-o FOLDER]
    deepfit compare RUN_A RUN_B [...] [-o compare.html] [--force]
    deepfit runs [--out DIR] | models [--torchvision] | datasets | config
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Optional

from deepfit.cli_args import EXIT_BUG, EXIT_INTERRUPTED, EXIT_USER_ERROR, parse

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a program whose reader left
from deepfit.errors import DeepfitError, TrainingInterrupted


def _config(args: argparse.Namespace) -> Any:
    """Defaults < config file < key=value overrides and flags (one key given twice with two
    values, as a flag and as key=value or under two names, is refused)."""
    from deepfit.config import RunConfig
    from deepfit.config_rules import merge_once, split_assignment
    from deepfit.pipeline import resolve_config

    configs = [a for a in args.args if "=" not in a]
    assignments = [a for a in args.args if "=" in a]
    if len(configs) > 1:
        raise DeepfitError(f"give at most one config file, got {configs}")
    flags = {"data.source": args.data, "data.root": args.root, "data.target": args.target,
             "data.task": args.task, "model.name": args.model, "train.epochs": args.epochs,
             "train.lr": args.lr, "train.batch_size": args.batch_size,
             "train.seed": args.seed, "train.device": args.device, "out": args.out,
             "name": args.name, "train.progress": False if args.quiet else None}
    items = [split_assignment(a) + (a,) for a in assignments]  # (key, value, as typed)
    items += [(k, v, {"data.source": "--data", "model.name": "--model", "train.progress":
                      "--quiet"}.get(k, "--" + k.split(".")[-1].replace("_", "-")) + f" {v}")
              for k, v in flags.items() if v is not None]
    overrides = merge_once(items, RunConfig)  # a key given twice: refused, not overridden
    cfg = resolve_config(configs[0] if configs else None)
    return cfg.override(overrides) if overrides else cfg


def main(argv: Optional[list[str]] = None) -> int:
    shown = warnings.formatwarning
    try:
        return _main(argv)
    finally:  # main() may run inside another program (tests, notebooks): leave it as it was
        warnings.formatwarning = shown


def _main(argv: Optional[list[str]] = None) -> int:
    args = parse(argv)
    if getattr(args, "devices", None) is not None:  # N processes: torchrun runs this again
        from deepfit.launch import relaunch
        code = relaunch(sys.argv[1:] if argv is None else argv, args.devices)
        if code is not None:
            return code
    # deepfit's warnings (new data with unseen categories, ...) as one line each, not
    # Python's "file:line: Category:" format with the source line under it.
    warnings.formatwarning = lambda message, *_: f"warning: {message}\n"
    try:
        return {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
                "report": cmd_report, "inspect": cmd_inspect, "explain": cmd_explain, "runs": cmd_runs, "datasets": cmd_datasets,
                "config": cmd_config, "compare": cmd_compare, "cv": cmd_cv,
                "tune": cmd_tune, "resume": cmd_resume, "models": cmd_models,
                "serve": cmd_serve, "export": cmd_export,
                "playground": cmd_playground}[args.command](args)
    except TrainingInterrupted as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INTERRUPTED
    except DeepfitError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader left (deepfit models | head): stop quietly
        # Python would complain again when it flushes stdout at exit; send that nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # a bug in deepfit: say so in one line, details with --debug
        if args.debug:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (this is a deepfit bug; rerun "
              "with --debug for the traceback)", file=sys.stderr)
        return EXIT_BUG


def cmd_train(args: argparse.Namespace) -> int:
    from deepfit.pipeline import resume, train

    if args.resume and (args.args or any(getattr(args, k) is not None for k in (
            "data", "root", "target", "task", "model", "epochs", "lr", "batch_size", "seed",
            "device",
            "out", "name"))):
        raise DeepfitError("--resume continues a run with its own config.yaml; give no other "
                           "options (or start a new run without --resume)")
    return _show_run(resume(args.resume) if args.resume else train(_config(args)))


def cmd_resume(args: argparse.Namespace) -> int:
    from deepfit.pipeline import resume

    return _show_run(resume(args.run))


def _show_run(run: Any) -> int:
    from deepfit.launch import is_main_process

    if not is_main_process():  # one of several torchrun processes: rank 0 speaks for all
        return 0
    if run.task == "detection":  # mAPs, not a classification table
        print(run.describe())
    else:
        _print_metrics(run.metrics, run.task)
        _print_warnings(run.path)
    print(f"\nrun:    {run.path}\nreport: {run.report_path or 'none (eval.report=false)'}")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from deepfit.cv import cross_validate
    from deepfit.report.format import LABELS, collapsed_folds_line, mean_sd_cell

    cv = cross_validate(_config(args), folds=args.folds, repeats=args.repeats,
                        groups=args.groups)
    total = len(cv.per_fold)
    table = Table("metric", f"mean ± sd over {total} folds", title="Cross-validation (test folds)")
    for key, s in cv.summary.items():
        table.add_row(LABELS.get(key, key), mean_sd_cell(s, total))
    Console(width=100).print(table)
    if collapsed_folds_line(cv.to_dict()):
        print(f"warning: {collapsed_folds_line(cv.to_dict())}", file=sys.stderr)
    print(f"\nfolds:  {cv.path}\nreport: {cv.report_path}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from deepfit.tune import tune

    result = tune(_config(args), space=args.space, trials=args.trials, timeout=args.timeout,
                  metric=args.metric, sampler=args.sampler, pruner=args.pruner,
                  storage=args.storage, worker=args.worker, nested=args.nested,
                  refit=args.refit)
    if result.nested is not None:
        n = result.nested
        sd = "undefined" if n["sd"] is None else f"{n['sd']:.4f}"
        mean = "undefined" if n["mean"] is None else f"{n['mean']:.4f}"
        print(f"nested cross-validation ({n['folds']} outer folds): test {n['metric']} "
              f"{mean} ± {sd} (mean ± sd): the estimate of the whole tuning procedure")
    elif result.best_value is not None:
        print(f"best trial: validation {result.metric} {result.best_value:.4f} with "
              + ", ".join(f"{k}={v}" for k, v in result.best_params.items()))
        ties = sum(t.value == result.best_value for t in result.study.trials
                   if t.state.name == "COMPLETE")
        if ties > 1:
            print(f"warning: {ties} trials tie at the best validation {result.metric}; the "
                  "first is taken (a larger validation split or --metric log_loss separates "
                  "them)", file=sys.stderr)
    if result.final is not None:
        _print_metrics(result.final.metrics, result.final.task)
        print(f"\nfinal run (evaluated once on the test split): {result.final.path}")
    if args.worker:
        print(f"worker done: the study holds the trials; the process without --worker "
              f"makes the final run in {result.path}")
        return 0
    print(f"tuning: {result.path}\nreport: {result.report_path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from deepfit.result import load

    run = load(args.run)
    if not args.data:
        print(f"metrics of {run.path} (validation and its own test split)")
        _print_metrics(run.metrics, run.task)
        _print_warnings(run.path)
        return 0
    from rich.console import Console
    from rich.table import Table

    from deepfit.report.format import value_rows

    values = run.evaluate(args.data)
    table = Table("metric", f"new data ({values.get('n', '?')} rows)",
                  title=f"Results on {Path(args.data).name}")
    print(f"evaluated {run.path} on {args.data}")
    for row in value_rows(run.task, values):
        table.add_row(*row)
    Console(width=110).print(table)
    if run.task == "binary":
        print(f"decision threshold {run.threshold:.4g} (the run's)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from deepfit.predict_files import predict_file
    from deepfit.result import load

    out = Path(args.output)
    if out.exists() and not args.force:
        raise DeepfitError(f"'{out}' already exists; choose another -o or pass --force")
    if args.batch_size is not None and args.batch_size < 1:
        raise DeepfitError(f"--batch-size is {args.batch_size}; give a positive number")
    from deepfit.detection.predict import predict_if_detection
    if predict_if_detection(args.run, args.input, out, args.batch_size):  # submission CSV
        return 0
    # Read, predicted and written in parts; a crash never leaves half a file.
    done = predict_file(load(args.run), args.input, out, args.batch_size)
    print(f"wrote {done.rows} predictions to {out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from deepfit.serve import serve  # FastAPI only inside: one line if the extra is missing

    return serve(args.run, host=args.host, port=args.port, max_request_mb=args.max_request_mb,
                 max_rows=args.max_rows)


def cmd_playground(args: argparse.Namespace) -> int:
    from deepfit.playground import playground  # FastAPI only inside, as for serve

    return playground(args.host, args.port, args.out, not args.no_browser, args.max_sessions,
                      args.idle_minutes, args.max_upload_mb)


def cmd_export(args: argparse.Namespace) -> int:
    from deepfit.result import load

    run = load(args.run)
    done = run.export(args.format, args.output, force=args.force,
                      intended_use=args.intended_use)
    print(f"exported {args.format} to {done.model}\nschema: {done.schema}\ncard:   {done.card}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from deepfit.report import write_report
    from deepfit.run import require_finished, resolve_run

    print(f"report: {write_report(require_finished(resolve_run(args.run)).path)}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from deepfit.inspection import inspect_run

    tables, notes = inspect_run(args.run)
    console = Console(width=160)
    for title, header, rows in tables:
        table = Table(*header, title=title, title_justify="left")
        for row in rows:
            table.add_row(*map(str, row))
        console.print(table)
    print("\n".join(f"- {n}" for n in notes))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from deepfit.explanations import explain_images

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    explain_images(args.run, args.images, args.output, methods, args.layer, args.target,
                   args.device)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from deepfit.report.listing import RUNS_COLUMNS, runs_rows

    rows = runs_rows(Path(args.out))
    if not rows:
        print(f"no runs yet in '{args.out}'")
        return 0
    table = Table(*RUNS_COLUMNS)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from deepfit.models.catalog import describe_models, torchvision_names

    print("\n".join(torchvision_names()) if args.torchvision else describe_models())
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from deepfit.data.sources import list_datasets

    table = Table("name", "task", "description", title="Built-in datasets (use --data NAME)")
    for name, task, description in list_datasets():
        table.add_row(name, task, description)
    Console(width=120).print(table)
    print("Also: any CSV / TSV / Excel (.xlsx) / Parquet / .npz / .npy file path (--target COL).")
    print("Images: an image folder (one sub-folder per class, or train/ val/ test/), a CSV of "
          "image paths and labels, mnist, fashion-mnist, kmnist, cifar10, cifar100, svhn "
          "(--root DIR), a MedMNIST .npz or medmnist:NAME, a Hugging Face Parquet / Arrow / "
          "save_to_disk folder or hf:OWNER/NAME. See docs/images.md.")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from deepfit.compare import compare_runs, default_output, write_comparison
    from deepfit.evaluate.paired import format_p
    from deepfit.report.compare import metric_cell
    from deepfit.report.format import LABELS
    from deepfit.evaluate.metrics import HEADLINE

    if args.force and not args.output:
        raise DeepfitError("--force needs -o OUTPUT: without -o compare writes a new "
                           "compare-N.html and overwrites nothing")
    result = compare_runs(args.runs)
    out = Path(args.output) if args.output else default_output(result)
    if out.exists() and not args.force:  # before the tables: nothing printed for nothing
        raise DeepfitError(f"'{out}' already exists; choose another -o or pass --force")
    table = Table("test metric", *(r["name"] for r in result["runs"]))
    for key in HEADLINE[result["task"]]:
        table.add_row(LABELS.get(key, key), *(metric_cell(r["metrics"], key) for r in result["runs"]))
    Console(width=160).print(table)
    for pair in result["pairs"]:
        if not pair["paired"]:
            print(f"{pair['a']} vs {pair['b']}: not paired ({pair['reason']})")
            continue
        boot = pair["bootstrap"]
        line = (f"{pair['a']} vs {pair['b']}: {pair['metric']} difference "
                f"{boot['difference']:+.4f} [{boot['low']:+.4f}, {boot['high']:+.4f}], "
                f"paired bootstrap p {'' if boot.get('p_below') else '= '}{format_p(boot)}")
        if "mcnemar" in pair:
            line += f", McNemar p = {pair['mcnemar']['p_value']:.3g}"
        print(line)
    print(f"comparison: {write_comparison(result, out, force=args.force)}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from deepfit.config import describe_config

    print(describe_config(), end="")
    return 0


def _print_warnings(run_path: Any) -> None:
    from deepfit.report.notes import console_warnings

    for line in console_warnings(run_path):  # e.g. a model that predicts one class
        print(f"warning: {line}", file=sys.stderr)


def _print_metrics(metrics: dict[str, Any], task: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from deepfit.report.format import metric_table, threshold_sentence

    header, rows = metric_table(task, metrics)
    table = Table(*header, title="Results" if len(header) == 2 else "Results (best epoch)")
    for row in rows:
        table.add_row(*row)
    Console(width=110).print(table)
    sentence = threshold_sentence(metrics)
    if sentence:
        print(sentence)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
