"""The command line's arguments: every command, option and help text, parsed into a
namespace for ``deepfit.cli``; argparse's own mistakes come out as one ``error:`` line."""

from __future__ import annotations

import argparse
from typing import Optional

from deepfit.version import __version__

EXIT_USER_ERROR, EXIT_BUG, EXIT_INTERRUPTED = 2, 1, 130

RUN_HELP = "run directory, or its name under runs/"
DEVICES_HELP = ("train on N processes of this machine together (torchrun, DDP; one GPU each, "
                "or CPUs); see docs/scaling.md")


class _OneLineParser(argparse.ArgumentParser):
    """argparse's mistakes (``--lr abc``) as one ``error:`` line, like deepfit's own."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="deepfit", description="Supervised deep learning on PyTorch: data to report in "
        "one command.", epilog="Example: deepfit train --data breast_cancer")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"deepfit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    tr = sub.add_parser("train", help="train, evaluate and report a model")
    _add_run_args(tr)
    tr.add_argument("--resume", metavar="RUN", help="continue this interrupted run instead "
                    "(the other options come from its config.yaml)")
    tr.add_argument("--devices", type=int, metavar="N", help=DEVICES_HELP)

    cv = sub.add_parser("cv", help="k-fold cross-validation: every fold a full run")
    _add_run_args(cv)
    cv.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    cv.add_argument("--repeats", type=int, default=1, help="repeat with reshuffled folds")
    cv.add_argument("--groups", help="column whose rows stay in one fold (e.g. patient id)")

    tu = sub.add_parser("tune", help="search hyperparameters (Optuna), then retrain the best "
                        "config and evaluate it once on the test split")
    _add_run_args(tu)
    tu.add_argument("--space", metavar="SPACE.yaml", help="search space: config keys mapped to "
                    "{low, high, log} or a list of choices (default: a space for the model)")
    tu.add_argument("--trials", type=int, default=20, help="finished trials the study should "
                    "hold (default 20; running the command again continues the study)")
    tu.add_argument("--timeout", type=_duration, metavar="TIME", help="start no trial after "
                    "this long: 90s, 10m, 2h")
    tu.add_argument("--metric", help="validation metric to optimise (default: roc_auc for "
                    "classes, r2 for regression)")
    tu.add_argument("--sampler", default="tpe", choices=["tpe", "random", "grid"])
    tu.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"],
                    help="stop poor trials early on their per-epoch validation metric")
    tu.add_argument("--storage", metavar="URL", help="SQLAlchemy URL of a study shared by "
                    "several workers, e.g. postgresql://user@host/db (default: study.db in the "
                    "tuning folder)")
    tu.add_argument("--worker", action="store_true", help="run trials only; the process "
                    "without --worker retrains the best config and writes the report")
    tu.add_argument("--nested", type=int, metavar="K", help="nested cross-validation: the "
                    "whole search in each of K outer folds, for an unbiased estimate")
    tu.add_argument("--refit", choices=["train+val", "train"], help="the final model: "
                    "train+val (default) fits the best config on the training and validation "
                    "rows for the best trial's epochs; train repeats the best trial's run "
                    "(training split, validation early stopping)")

    ev = sub.add_parser("evaluate", help="evaluate a finished run (on new labelled data)")
    ev.add_argument("run", metavar="RUN", help=RUN_HELP)
    ev.add_argument("--data", help="labelled data file; default: the run's own test split")

    pr = sub.add_parser("predict", help="predict new rows with a finished run")
    pr.add_argument("run", metavar="RUN", help=RUN_HELP)
    pr.add_argument("input", help="a table (CSV / TSV / Excel / Parquet) with the training "
                    "columns, or for an image run an image file, a folder of images (searched "
                    "recursively) or a CSV of image paths")
    pr.add_argument("-o", "--output", required=True, help="where to write the predictions CSV")
    pr.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    pr.add_argument("--batch-size", type=int, metavar="N", help="rows (default 100000) or "
                    "images (default 256) read, predicted and written at a time")

    sv = sub.add_parser("serve", help="serve a finished run over HTTP: POST /predict, GET "
                        "/health, /schema, docs at /docs (needs: pip install 'deepfit[serve]')")
    sv.add_argument("run", metavar="RUN", help=RUN_HELP)
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                    "127.0.0.1: this machine only; 0.0.0.0 opens it to the network, with no "
                    "authentication)")
    sv.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    sv.add_argument("--max-request-mb", type=float, default=10, metavar="MB", help="larger "
                    "request bodies get 413 (default 10)")
    sv.add_argument("--max-rows", type=int, default=10_000, metavar="N", help="rows or images "
                    "per request; more get 413 (default 10000)")

    pg = sub.add_parser("playground", help="a local page where a network learns 2-D points "
                        "live; saves deepfit runs (needs: pip install 'deepfit[playground]'; "
                        "docs/playground.md)")
    pg.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                    "127.0.0.1: this machine only)")
    pg.add_argument("--port", type=int, default=0, help="TCP port (default 0: a free one)")
    pg.add_argument("--out", default="runs", help="folder the page saves runs in (default runs)")
    pg.add_argument("--no-browser", action="store_true", help="print the address only")
    pg.add_argument("--max-sessions", type=int, default=4, metavar="N", help="browser tabs "
                    "training at once (default 4)")
    pg.add_argument("--idle-minutes", type=float, default=30, metavar="M", help="a paused "
                    "session with no message for M minutes ends (default 30)")
    pg.add_argument("--max-upload-mb", type=float, default=5, metavar="MB", help="largest CSV "
                    "upload (default 5)")

    ex = sub.add_parser("export", help="export a finished run's model with its preprocessing "
                        "(ONNX, TorchScript, ExportedProgram, safetensors), its input schema and "
                        "a model card; see docs/deploy.md")
    ex.add_argument("run", metavar="RUN", help=RUN_HELP)
    ex.add_argument("--format", required=True, metavar="FORMAT", help="onnx, torchscript, "
                    "exported-program or safetensors")
    ex.add_argument("-o", "--output", metavar="FOLDER", help="folder for the model file, "
                    "input_schema.json and model_card.md (default: RUN/export/FORMAT)")
    ex.add_argument("--force", action="store_true", help="overwrite those files if they exist")
    ex.add_argument("--intended-use", metavar="TEXT", help="what the model is for, in the "
                    "model card (default: not stated; not validated for clinical use)")

    rs_ = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    rs_.add_argument("run", metavar="RUN", help=RUN_HELP)
    rs_.add_argument("--devices", type=int, metavar="N", help=DEVICES_HELP)

    rp = sub.add_parser("report", help="rebuild a run's report.html and report.md")
    rp.add_argument("run", metavar="RUN", help=RUN_HELP)
    ip = sub.add_parser("inspect", help="inside the network: layer table (shapes, parameters, "
                        "memory, FLOPs) and the training diagnostics' notes")
    ip.add_argument("run", metavar="RUN", help=RUN_HELP)
    xp = sub.add_parser("explain", help="an image run: Grad-CAM and integrated-gradients maps "
                        "of new images, drawn over them (PNG); see docs/inspect.md")
    xp.add_argument("run", metavar="RUN", help=RUN_HELP)
    xp.add_argument("images", nargs="+", metavar="IMAGES", help="image files, folders (class "
                    "folders: their labels are shown) or any image source deepfit predict reads")
    xp.add_argument("--method", default="gradcam,integrated_gradients", metavar="M[,M]",
                    help="gradcam, integrated_gradients, saliency (comma-separated; default: "
                    "gradcam,integrated_gradients)")
    xp.add_argument("--layer", metavar="NAME", help="the layer Grad-CAM reads (default: the last "
                    "layer with feature maps)")
    xp.add_argument("--class", dest="target", metavar="CLASS", help="explain this class "
                    "(default: each image's predicted class)")
    xp.add_argument("-o", "--output", metavar="FOLDER", help="a new or empty folder for the "
                    "PNGs (default: RUN/explanations/N, the next free N)")
    xp.add_argument("--device", metavar="D", help="cpu, cuda, cuda:1, mps (default: cpu)")

    cp = sub.add_parser("compare", help="compare runs side by side, with paired tests")
    cp.add_argument("runs", nargs="+", metavar="RUN", help=RUN_HELP + "; two or more, the "
                    "first is the reference of the paired tests")
    cp.add_argument("-o", "--output", help="HTML file to write (default: compare.html beside "
                    "the first run, or compare-2.html, ... if it exists)")
    cp.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")

    md = sub.add_parser("models", help="list the model names --model accepts")
    md.add_argument("--torchvision", action="store_true",
                    help="list every torchvision classification model by name")

    rs = sub.add_parser("runs", help="list runs with their main metrics")
    rs.add_argument("--out", default="runs", help="folder that holds the runs (default: runs)")

    sub.add_parser("datasets", help="list the built-in datasets and toy generators")
    sub.add_parser("config", help="print the default config (YAML) with every key explained")
    return parser


def _duration(text: str) -> float:
    """'90s', '10m', '2h' or a number of seconds, as seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration such as 90s, 10m or "
                                         "2h") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be more than 0")
    return seconds


def _add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("args", nargs="*", metavar="CONFIG.yaml | key=value",
                        help="a config file (e.g. runs/NAME/config.yaml) and/or overrides such "
                             "as train.lr=0.01 model.hidden=[128,64]")
    parser.add_argument("--data", help="built-in name (see 'deepfit datasets'), a data file, "
                        "an image folder, fashion-mnist, cifar10, medmnist:NAME or hf:OWNER/NAME")
    parser.add_argument("--root", help="folder of named image datasets (data.root)")
    parser.add_argument("--target", help="target column (default: the last column)")
    parser.add_argument("--task", choices=["auto", "binary", "multiclass", "regression",
                                           "multilabel"])
    parser.add_argument("--model", help="auto, mlp, cnn, lenet, resnet9, resnet18, a torchvision "
                        "name, or 'package.module:ClassName' (see 'deepfit models')")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--out", help="folder for run directories (default: runs)")
    parser.add_argument("--name", help="run name (default: <data>-<model>-<time>)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def parse(argv: Optional[list[str]] = None) -> argparse.Namespace:
    """The command line, with ``key=value`` overrides allowed anywhere among the options:
    argparse alone takes one run of positionals, so ``--epochs 5 train.lr=0.01 --quiet
    eval.plots=false`` would refuse the second override."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "args") or any(token.startswith("-") for token in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args = list(args.args) + extra
    return args
