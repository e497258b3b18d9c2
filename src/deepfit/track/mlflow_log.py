"""``track.mlflow=URI``: one MLflow run per deepfit run, through ``MlflowClient`` (no global
active run: runs of one process never mix).

The run is named after the run directory and holds: params (the resolved config, dotted
keys), metrics per epoch (the columns of ``history.csv``, step = epoch), the final test
metrics with their interval bounds (``test_accuracy``, ``test_accuracy_ci_low``, ...), tags
(the run directory, deepfit's version, task, data, model; a tuning trial's number and
study) and the run's files as artifacts. A resumed run logs into the same MLflow run (its id
is in the checkpoint).

URIs: a local folder (MLflow's file store, allowed here although MLflow now prefers a
database), ``sqlite:///path.db`` (artifacts in ``mlartifacts/`` beside the database file,
not in the working directory), an ``http(s)://`` server, or any other URI MLflow takes
(``postgresql://...``). A server that does not answer is given a few seconds, not MLflow's
minutes of retries: deepfit sets ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (2),
``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` (1) and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (20 s) during
its calls unless they are set.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Optional
from urllib.parse import urlsplit

from deepfit.errors import ConfigError
from deepfit.track.guard import Tracker

MAX_PARAM = 6000  # MLflow's longest param value
BATCH = 100  # params or tags per log_batch call (MLflow's limit)
# URI schemes MLflow takes as a tracking store; anything without a scheme is a local folder.
SCHEMES = ("file", "sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


def tracking_uri(value: str) -> str:
    """The URI MLflow is given for ``track.mlflow=value``, or one line saying what is wrong.

    A local folder becomes an absolute ``file://`` URI (relative to the working directory).
    """
    text = value.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.split("+")[0].lower()  # postgresql+psycopg2://
    if len(scheme) > 1 and scheme not in SCHEMES:
        raise ConfigError(f"track.mlflow={value}: '{parts.scheme}' is not a tracking URI MLflow "
                          "knows; use a local folder, sqlite:///path.db or http(s)://host:port")
    if parts.password:
        raise ConfigError(f"track.mlflow holds a password, which config.yaml and the report "
                          f"would show; give {parts.scheme}://{parts.hostname}"
                          f"{f':{parts.port}' if parts.port else ''}{parts.path} and put the "
                          "login in MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    if len(scheme) <= 1:  # no scheme (or a Windows drive letter): a folder
        return Path(text).expanduser().resolve().as_uri()
    return text


def params_of(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as ``{"train.lr": "0.001", "model.hidden": "[128, 64]"}``."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key != "kwargs" and key != "label_map":
            out.update(params_of(value, f"{name}."))
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out[name] = text if len(text) <= MAX_PARAM else text[:MAX_PARAM - 3] + "..."
    return out


class MLflowLog(Tracker):
    """One MLflow run: created when training begins (or reopened on resume), per-epoch
    metrics, then ``finish`` (final metrics, artifacts) or ``end`` (FAILED, KILLED).

    ``parent``: an object with ``run_id`` (a tuning study's run): this run is its child.
    ``reuse``: ``{tag: value}`` of an earlier run to log into again instead of a new one
    (a resumed study's run); ``create=False``: that run must exist (a failure otherwise).
    """

    def __init__(self, uri: str, experiment: str, name: str, params: dict[str, str],
                 tags: dict[str, str], parent: Any = None,
                 reuse: Optional[dict[str, str]] = None, create: bool = True) -> None:
        super().__init__()
        self.uri, self.experiment, self.name = uri, experiment, name
        self.params, self.tags, self.parent, self.reuse = params, tags, parent, reuse
        self.create = create
        self.label = f"MLflow at {uri}"
        self.client: Any = None
        self.run_id: Optional[str] = None

    # -- hooks ----------------------------------------------------------------------------
    def on_train_begin(self, trainer: Any, **kwargs: Any) -> None:
        self.start()

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **kwargs: Any) -> None:
        values = {k: v for k, v in logs.items() if k != "epoch" and isinstance(v, (int, float))}
        self.guarded(f"logging epoch {epoch}", self._metrics, values, epoch)

    def state_dict(self) -> dict:
        return {"run_id": self.run_id} if self.run_id else {}

    def load_state_dict(self, state: dict) -> None:
        self.run_id = state.get("run_id")

    # -- the run ----------------------------------------------------------------------------
    def start(self) -> None:
        """Create the run (or reopen the one this run had before it was interrupted)."""
        if self.client is None:
            self.guarded("starting the run", self._start)

    def guarded(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        with _http_limits(self.uri):
            return super().guarded(what, call, *args, **kwargs)

    def _start(self) -> None:
        from mlflow.tracking import MlflowClient
        if self.uri.startswith("sqlite:///"):  # SQLite makes the file, not its folder
            Path(self.uri[len("sqlite:///"):]).resolve().parent.mkdir(parents=True,
                                                                      exist_ok=True)
        client = MlflowClient(tracking_uri=self.uri)
        if self.run_id is not None:  # resumed: the same run goes on
            client.update_run(self.run_id, status="RUNNING")
            self.client = client
            return
        experiment = _experiment_id(client, self.experiment, self.uri)
        self.run_id = self._reusable(client, experiment)
        if self.run_id is None and not self.create:
            raise LookupError(f"no run of experiment '{self.experiment}' has the tags "
                              f"{self.reuse}")
        if self.run_id is None:
            tags = dict(self.tags)
            parent = getattr(self.parent, "run_id", None)
            if parent:
                tags["mlflow.parentRunId"] = parent
            run = client.create_run(experiment, run_name=self.name, tags=tags)
            self.run_id = run.info.run_id
            _log_params(client, self.run_id, self.params)
        else:
            client.update_run(self.run_id, status="RUNNING")
        self.client = client

    def _reusable(self, client: Any, experiment: str) -> Optional[str]:
        if not self.reuse or any("'" in v or "`" in k for k, v in self.reuse.items()):
            return None
        where = " and ".join(f"tags.`{k}` = '{v}'" for k, v in self.reuse.items())
        found = client.search_runs([experiment], where, max_results=1,
                                   order_by=["attributes.start_time DESC"])
        return found[0].info.run_id if found else None

    def _metrics(self, values: dict[str, float], step: int) -> None:
        if self.client is None:
            return
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step)
                                                    for k, v in values.items()])

    def finish(self, metrics: dict[str, float], files: list,
               tags: Optional[dict[str, str]] = None) -> None:
        """Final metrics, tags and files (``(path, folder in the run or None)``), then the
        run is FINISHED."""
        def write() -> None:
            if self.client is None:
                return
            self._metrics(metrics, 0)
            for key, value in (tags or {}).items():
                self.client.set_tag(self.run_id, key, value)
            for path, folder in files:
                self.client.log_artifact(self.run_id, str(path), artifact_path=folder)
        self.guarded("logging the results", write)
        self.end("FINISHED")

    def close(self, status: str) -> None:
        if self.client is not None and self.run_id is not None:
            client, self.client = self.client, None
            client.set_terminated(self.run_id, status=status)


def _experiment_id(client: Any, name: str, uri: str) -> str:
    """The experiment named ``name``, made if it does not exist (artifacts of a SQLite store
    beside its database file)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # another process made it a moment ago
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _log_params(client: Any, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param
    items = [Param(k, v) for k, v in params.items()]
    for start in range(0, len(items), BATCH):
        client.log_batch(run_id, params=items[start:start + BATCH])


@contextlib.contextmanager
def _http_limits(uri: str) -> Iterator[None]:
    """MLflow's HTTP retries bounded (unless the user set them), a local folder allowed as a
    store, for the duration of one call."""
    wanted = dict(HTTP_LIMITS) if uri.startswith(("http://", "https://")) else {}
    if uri.startswith("file:"):
        wanted["MLFLOW_ALLOW_FILE_STORE"] = "true"
    added = [k for k in wanted if k not in os.environ]
    os.environ.update({k: wanted[k] for k in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)

