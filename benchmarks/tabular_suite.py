"""Tabular suite: deepfit's defaults beside scikit-learn's linear model and
HistGradientBoosting on offline tables, the same seeded splits for every arm (issue #13).
Tables (offline: bundled with scikit-learn, statsmodels, palmerpenguins, vega_datasets; one
synthetic): classification and regression, 150 to 50,000 rows, with missing values and
categorical columns. ``pip install 'deepfit[bench]'`` installs the packages that ship them.

Each table is split 5 times (seeds 0-4) by deepfit's own ``random_split`` (65 / 15 / 20 %
train / validation / test, stratified by class), and every arm sees the same rows:

  deepfit  ``deepfit.train(data=frame, split=labels, ...)`` with every default except the
           output-only switches (no progress bar, plots, report, bootstrap); its validation
           rows are used for early stopping (and the plateau schedule) only.
  linear   LogisticRegression / Ridge (scikit-learn defaults: C=1, alpha=1) after median
           imputation with missing-value indicators, standardisation and one-hot categories.
  hgb      HistGradientBoostingClassifier / Regressor (defaults, native categories; its
           early stopping is on above 10,000 rows and then carves its own 10 %).
  The baselines are fitted on train + validation together (the rows deepfit trains or stops
  on), and every arm is scored on the same test rows with the same scikit-learn functions.

Metrics: accuracy, log-loss, ROC-AUC (one-vs-rest macro for several classes) for classes;
R², RMSE for regression. The ranking metric is log-loss (classes) and R² (regression), the
mean over seeds; an arm's rank on a table is 1 (best) to 3, ties share the mean rank.
"Below linear by more than noise": the seed-paired difference of the ranking metric is
worse than 2 standard errors of that difference.

Run: ``nice -n 10 .venv/bin/python benchmarks/tabular_suite.py --out suite.json`` (``--tables
iris,wine`` or ``dev`` / ``holdout`` (``GROUPS``), ``--seeds 2``, ``--set KEY=VALUE --label L``
for other deepfit settings, ``--arms deepfit`` to skip the baselines, ``--merge A.json B.json``
for one table from several files, with ``--compare LABEL_A LABEL_B`` two deepfit arms).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import warnings
from typing import Callable

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn import datasets as skd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, r2_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import deepfit
from deepfit.data.split import random_split

SEEDS = 5
BASELINES = ("linear", "hgb")  # the other arms are deepfit under their --label
RANK_METRIC = {"classification": ("log_loss", False), "regression": ("r2", True)}  # higher?


# -- the tables ---------------------------------------------------------------------------
def _sk(loader: Callable, names: bool = True) -> tuple[pd.DataFrame, str]:
    b = loader(as_frame=True)
    frame = b.frame.copy()
    if names and hasattr(b, "target_names") and len(getattr(b, "target_names", [])):
        frame["target"] = np.asarray(b.target_names)[b.target.to_numpy()]
    return frame, "target"


def _statsmodels(name: str) -> pd.DataFrame:
    import importlib
    return importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data.copy()


def t_penguins():
    from palmerpenguins import load_penguins
    frame = load_penguins().dropna(subset=["body_mass_g"])  # 2 rows without the target
    return frame, "body_mass_g"


def t_fair():
    frame = _statsmodels("fair")
    frame["affair"] = np.where(frame.pop("affairs") > 0, "yes", "no")
    for col in ("occupation", "occupation_husb", "religious"):
        frame[col] = frame[col].astype(int).astype(str)  # codes: categories, not amounts
    return frame, "affair"


def t_star98():
    frame = _statsmodels("star98")
    above, below = frame.pop("NABOVE"), frame.pop("NBELOW")
    frame["share_above"] = above / (above + below)
    return frame, "share_above"


def t_anes96():
    frame = _statsmodels("anes96").drop(columns=["logpopul"])  # log of popul, a duplicate
    frame["vote"] = np.where(frame["vote"] > 0, "Dole", "Clinton")
    return frame, "vote"


def t_modechoice():
    frame = _statsmodels("modechoice").drop(columns=["individual"])
    frame["mode"] = frame["mode"].map({1: "air", 2: "train", 3: "bus", 4: "car"})
    frame["choice"] = np.where(frame["choice"] > 0, "chosen", "not")
    return frame, "choice"


def t_randhie():
    return _statsmodels("randhie"), "mdvis"


def t_cars():
    from vega_datasets import local_data
    frame = local_data.cars().drop(columns=["Name"]).dropna(subset=["Miles_per_Gallon"])
    frame["Year"] = pd.to_datetime(frame["Year"]).dt.year
    return frame, "Miles_per_Gallon"


def t_weather():
    from vega_datasets import local_data
    frame = local_data.seattle_weather()
    frame["month"] = pd.to_datetime(frame.pop("date")).dt.month
    return frame, "weather"


def t_synthetic():
    """50,000 rows, 20 features (10 informative), 3 classes, 10 % missing in 4 columns, two
    categorical columns, two heavy-tailed (lognormal) columns."""
    X, y = skd.make_classification(50_000, 20, n_informative=10, n_redundant=4, n_classes=3,
                                   flip_y=0.05, random_state=0)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)])
    frame["x2"], frame["x3"] = np.exp(1.5 * frame["x2"]), np.exp(2 * frame["x3"])
    for col in ("x4", "x5", "x6", "x7"):
        frame.loc[rng.random(len(frame)) < 0.1, col] = np.nan
    frame["cat_a"] = pd.cut(frame.pop("x8"), 6, labels=list("abcdef")).astype(str)
    frame["cat_b"] = np.asarray(list("pqrs"))[(frame.pop("x9") > 0) * 2
                                              + (rng.random(len(frame)) < 0.3)]
    frame["target"] = np.asarray(["c0", "c1", "c2"])[y]
    return frame, "target"


TABLES: dict[str, tuple[str, Callable]] = {
    "iris": ("classification", lambda: _sk(skd.load_iris)),
    "wine": ("classification", lambda: _sk(skd.load_wine)),
    "breast_cancer": ("classification", lambda: _sk(skd.load_breast_cancer)),
    "digits": ("classification", lambda: _sk(skd.load_digits, names=False)),
    "anes96": ("classification", t_anes96),
    "modechoice": ("classification", t_modechoice),
    "seattle_weather": ("classification", t_weather),
    "fair": ("classification", t_fair),
    "synthetic50k": ("classification", t_synthetic),
    "diabetes": ("regression", lambda: _sk(skd.load_diabetes, names=False)),
    "star98": ("regression", t_star98),
    "penguins": ("regression", t_penguins),
    "cars": ("regression", t_cars),
    "randhie": ("regression", t_randhie),
}


# Fixed before issue #13's arms ran: per task kind, by rows, odd places dev, even holdout.
GROUPS = {"dev": "iris,breast_cancer,anes96,digits,synthetic50k,star98,cars,randhie", "all":
          ",".join(TABLES), "holdout": "wine,modechoice,seattle_weather,fair,penguins,diabetes"}


def load_table(name: str) -> tuple[pd.DataFrame, str, str]:
    kind, loader = TABLES[name]
    frame, target = loader()
    frame = frame.reset_index(drop=True)
    if kind == "classification":
        frame[target] = frame[target].astype(str)
    return frame, target, kind


def describe(frame: pd.DataFrame, target: str) -> dict:
    X = frame.drop(columns=[target])
    cats = [c for c in X if not pd.api.types.is_numeric_dtype(X[c])]
    return {"rows": len(frame), "features": X.shape[1], "categorical": len(cats),
            "missing_cells": int(X.isna().sum().sum())}


# -- the arms -----------------------------------------------------------------------------
def _columns(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    cats = [c for c in X if not pd.api.types.is_numeric_dtype(X[c])]
    return [c for c in X if c not in cats], cats


def fit_linear(X, y, kind):
    num, cats = _columns(X)
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                              StandardScaler()), num),
        ("cat", OneHotEncoder(handle_unknown="ignore"), cats)])
    model = LogisticRegression(max_iter=2000) if kind == "classification" else Ridge()
    return make_pipeline(prep, model).fit(X, y)


def _hgb_frame(X):
    X = X.copy()
    for c in _columns(X)[1]:
        X[c] = X[c].astype("category")
    return X


def fit_hgb(X, y, kind, seed):
    cls = HistGradientBoostingClassifier if kind == "classification" else HistGradientBoostingRegressor
    return cls(categorical_features="from_dtype", random_state=seed).fit(_hgb_frame(X), y)


def score(kind, y_true, pred, classes=None) -> dict:
    if kind == "regression":
        return {"r2": float(r2_score(y_true, pred)),
                "rmse": float(np.sqrt(np.mean((np.asarray(y_true) - pred) ** 2)))}
    proba = np.clip(pred, 1e-7, 1)
    proba = proba / proba.sum(1, keepdims=True)
    labels = list(classes)
    out = {"accuracy": float(accuracy_score(y_true, np.asarray(labels)[proba.argmax(1)])),
           "log_loss": float(log_loss(y_true, proba, labels=labels))}
    present = set(np.unique(y_true))
    if len(present) < 2:
        out["roc_auc"] = None  # undefined, not 0
    elif len(labels) == 2:
        out["roc_auc"] = float(roc_auc_score(np.asarray(y_true) == labels[1], proba[:, 1]))
    else:
        keep = [i for i, c in enumerate(labels) if c in present]
        sub = proba[:, keep] / proba[:, keep].sum(1, keepdims=True)
        out["roc_auc"] = float(roc_auc_score(y_true, sub, multi_class="ovr",
                                             labels=[labels[i] for i in keep]))
    return out


def run_arm(arm, frame, target, kind, parts, seed, overrides, out_dir) -> dict:
    X, y = frame.drop(columns=[target]), frame[target]
    fit_rows = np.concatenate([parts["train"], parts["val"]])
    test = parts["test"]
    start = time.perf_counter()
    extra = {}
    if arm == "deepfit":
        labels = np.empty(len(frame), dtype=object)
        for name, rows in parts.items():
            labels[rows] = name
        task = "regression" if kind == "regression" else (
            "binary" if y.nunique() == 2 else "multiclass")
        run = deepfit.train(data=frame, target=target, split=pd.Series(labels, index=frame.index),
                            out=out_dir, **{"data.task": task, "train.seed": seed,
                                            "train.progress": False, "eval.plots": False,
                                            "eval.report": False, "eval.bootstrap": 0},
                            **overrides)
        pred = run.predict(X.iloc[test]) if kind == "regression" else run.predict_proba(X.iloc[test])
        classes = None if kind == "regression" else list(run.schema.class_names)
        t = run.config.train
        extra = {"epochs_run": len(run.history),
                 "batch_size": t.batch_size, "epochs": t.epochs, "patience": t.patience}
    elif arm == "linear":
        model = fit_linear(X.iloc[fit_rows], y.iloc[fit_rows], kind)
        pred = model.predict(X.iloc[test]) if kind == "regression" else model.predict_proba(X.iloc[test])
        classes = None if kind == "regression" else list(model.classes_)
    else:
        model = fit_hgb(X.iloc[fit_rows], y.iloc[fit_rows], kind, seed)
        Xt = _hgb_frame(X.iloc[test])
        pred = model.predict(Xt) if kind == "regression" else model.predict_proba(Xt)
        classes = None if kind == "regression" else list(model.classes_)
    seconds = time.perf_counter() - start
    return {**score(kind, y.iloc[test].to_numpy(), np.asarray(pred, dtype=float), classes),
            "seconds": seconds, **extra}


# -- the summary --------------------------------------------------------------------------
def summarise(results: list[dict]) -> str:
    """Markdown: per table and arm the mean (sd) over seeds of each metric, the seconds, the
    rank; then the average rank per arm and the tables where deepfit is below linear."""
    df = pd.DataFrame(results)
    arms = list(dict.fromkeys(df["arm"]))
    lines = ["| table | rows | arm | accuracy | log-loss | ROC-AUC | R² | RMSE | s / fit | rank |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    ranks = {a: [] for a in arms}
    below = []
    for table in dict.fromkeys(df["table"]):
        sub = df[df["table"] == table]
        kind = sub["kind"].iloc[0]
        metric, higher = RANK_METRIC[kind]
        means = sub.groupby("arm")[metric].mean()
        order = means.rank(ascending=not higher, method="average")
        for arm in arms:
            if arm not in means:
                continue
            ranks[arm].append(order[arm])
            s = sub[sub["arm"] == arm]

            def cell(m):
                if m not in s or s[m].isna().all():
                    return "–"
                return f"{s[m].mean():.4f} ({s[m].std(ddof=1) if len(s) > 1 else 0:.4f})"
            lines.append(f"| {table} | {sub['rows'].iloc[0]} | {arm} | "
                         + " | ".join(cell(m) for m in ("accuracy", "log_loss", "roc_auc", "r2", "rmse"))
                         + f" | {s['seconds'].mean():.1f} | {order[arm]:g} |")
        for arm in arms:
            if arm in BASELINES or "linear" not in means:  # every deepfit arm, any label
                continue
            d = (sub[sub["arm"] == arm].set_index("seed")[metric]
                 - sub[sub["arm"] == "linear"].set_index("seed")[metric]).dropna()
            d = d if higher else -d
            if len(d) < 2:  # one seed: no noise estimate, no verdict
                continue
            se = d.std(ddof=1) / np.sqrt(len(d))
            if d.mean() < -2 * se:
                below.append(f"{table} ({arm}: {metric} {d.mean():+.4f}, 2 SE {2 * se:.4f})")
    lines.append("")
    lines.append("Average rank (1 = best; " + ", ".join(
        f"{a} {np.mean(r):.2f} over {len(r)} tables" for a, r in ranks.items()) + ")")
    lines.append("deepfit below linear by more than noise (paired, 2 SE): "
                 + ("; ".join(below) if below else "none"))
    return "\n".join(lines)


def compare(results: list[dict], before: str, after: str) -> str:
    """Markdown: two deepfit arms on the same splits, per table: the ranking metric (mean
    over seeds), the seed-paired difference after - before with 2 standard errors, seconds
    per fit, epochs run and the batch size."""
    df = pd.DataFrame(results)
    lines = [f"| table | train rows | metric | {before} | {after} | difference (2 SE) | "
             "s / fit | epochs run | batch |", "|---|---|---|---|---|---|---|---|---|"]
    for table in dict.fromkeys(df["table"]):
        sub = df[df["table"] == table]
        metric = RANK_METRIC[sub["kind"].iloc[0]][0]
        a, b = (sub[sub["arm"] == arm].set_index("seed") for arm in (before, after))
        if a.empty or b.empty:
            continue
        d = (b[metric] - a[metric]).dropna()
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        lines.append(
            f"| {table} | {int(round(sub['rows'].iloc[0] * 0.65))} | {metric} | "
            f"{a[metric].mean():.4f} | {b[metric].mean():.4f} | {d.mean():+.4f} ({2 * se:.4f}) | "
            f"{a['seconds'].mean():.1f} → {b['seconds'].mean():.1f} | "
            f"{a['epochs_run'].mean():.0f} → {b['epochs_run'].mean():.0f} | "
            f"{int(a['batch_size'].iloc[0])} → {int(b['batch_size'].iloc[0])} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", default="all", help="names, or a group: dev, holdout, all")
    p.add_argument("--seeds", type=int, default=SEEDS)
    p.add_argument("--arms", default="deepfit,linear,hgb",
                   help="arms to run; with --merge, the arm labels to show")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a deepfit config override for the deepfit arm")
    p.add_argument("--label", default="deepfit", help="the deepfit arm's name in the output")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="JSON file for the results")
    p.add_argument("--merge", nargs="+", default=None, help="print one table from these JSONs")
    p.add_argument("--compare", nargs=2, default=None, metavar=("BEFORE", "AFTER"),
                   help="with --merge: compare these two deepfit labels instead")
    args = p.parse_args(argv)
    if args.merge:
        results = [r for f in args.merge for r in json.load(open(f))["results"]]
        keep = [r for r in results if args.compare or r["arm"] in args.arms.split(",")]
        return print(compare(results, *args.compare) if args.compare else summarise(keep))
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    results = []
    begin = time.perf_counter()
    tables = {}
    for table in GROUPS.get(args.tables, args.tables).split(","):  # all loaded before any fit
        if table not in TABLES:
            raise SystemExit(f"unknown table '{table}'; tables: {', '.join(TABLES)}; groups: "
                             f"{', '.join(GROUPS)}")
        try:
            tables[table] = load_table(table)
        except ImportError as exc:  # found now, not after an hour of the tables before it
            raise SystemExit(f"table '{table}' needs the package '{exc.name}': pip install -e "
                             "'.[bench]' (with the torch pins)") from None
    with tempfile.TemporaryDirectory() as out_dir:
        for table, (frame, target, kind) in tables.items():
            info = describe(frame, target)
            strat = frame[target].astype("category").cat.codes.to_numpy() \
                if kind == "classification" else None
            for seed in range(args.seeds):
                parts = random_split(len(frame), strat, 0.15, 0.2, seed)
                for arm in args.arms.split(","):
                    r = run_arm(arm, frame, target, kind, parts, seed, overrides, out_dir)
                    results.append({"table": table, "kind": kind, **info, "seed": seed,
                                    "arm": args.label if arm == "deepfit" else arm, **r})
                    main_metric = RANK_METRIC[kind][0]
                    print(f"{table:16s} seed {seed} {results[-1]['arm']:18s} "
                          f"{main_metric} {r[main_metric]:.4f}  {r['seconds']:.1f} s", flush=True)
            if args.out:  # after every table: a long run keeps what it has
                _write(args, results, begin)
    if args.out:
        _write(args, results, begin)
    print(summarise(results))


def _write(args, results, begin) -> None:
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
                       f"torch thread(s)", "torch": torch.__version__,
            "deepfit": deepfit.__version__, "overrides": args.set, "label": args.label,
            "seconds_total": time.perf_counter() - begin}
    with open(args.out, "w") as fh:
        json.dump({"meta": meta, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
