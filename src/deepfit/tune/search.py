"""The search loop of ``deepfit tune``: trials drawn from the space, trained and scored on
the validation split (``tune.trial``), until the budget is spent; then the best config.

Several processes may run this loop on one study (``--storage``); each stops when the
study holds the budget's finished trials, counting the ones other workers are running.
"""

from __future__ import annotations

import dataclasses

import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import pandas as pd

from deepfit.config import RunConfig
from deepfit.config_scope import RunFacts, not_applying
from deepfit.errors import ConfigError, RunError, TrainingInterrupted
from deepfit.tune.space import SearchSpace
from deepfit.tune.study import (ERROR, OUTCOME, counted, counts, fail_stale, mark_worker,
                                optuna_module, recover_dead_trials, retry, running)
from deepfit.tune.trial import TRIAL_FAILURES, run_trial


class TrialFailed(Exception):
    """A configuration that could not be trained (its trial is FAIL, the search goes on)."""


@dataclass
class Search:
    """What every trial of one study shares."""

    study: Any
    space: SearchSpace
    cfg: RunConfig  # the base config (the user's options); trials override the space's keys
    resolved: RunConfig  # the same, resolved (for the scope rules)
    facts: RunFacts
    data: Any
    model: Any
    split: Optional[pd.Series]
    metric: str
    prune: bool
    trials: int
    say: Callable[[str], None]
    bundles: dict
    after_trial: Optional[Callable[[], None]]  # e.g. rewrite tune.json

    def applies(self, values: dict[str, Any], key: str) -> bool:
        """Whether ``key`` applies to a run with ``values`` set (``train.momentum`` does not
        under ``train.optimizer=adamw``)."""
        try:
            cfg = _with_values(self.resolved, values) if values else self.resolved
        except ConfigError:
            return True  # the trial itself will say what is wrong
        return key not in not_applying(cfg, self.facts)

    def objective(self, trial: Any) -> float:
        values = self.space.draw(trial, self.applies)
        # Which process runs it, written once its values are drawn (one database commit per
        # write; a trial killed while drawing is found by the heartbeat instead).
        mark_worker(trial)
        # A trial writes no run folder: no progress bar, no diagnostics nothing would show.
        cfg = self.cfg.override({**values, "train.progress": False, "train.diagnostics": False})
        try:
            outcome = run_trial(trial, cfg, self.data, self.model, self.split, self.metric,
                                self.prune, self.bundles)
        except TRIAL_FAILURES as exc:
            why = str(exc).splitlines()[0]
            trial.set_user_attr(ERROR, why)
            self.say(f"trial {trial.number}: failed ({why})")
            raise TrialFailed(why) from None
        # One write to the study (each is a database commit): how the trial went.
        trial.set_user_attr(OUTCOME, {"epochs": outcome.epochs, "best_epoch": outcome.best_epoch,
                                      "pruned_at": outcome.pruned_at,
                                      "seconds": round(outcome.seconds, 3),
                                      "lrs": outcome.lrs, "tuning": outcome.tuning,
                                      "train": outcome.train})
        if outcome.pruned_at is not None:
            self.say(f"trial {trial.number}: pruned at epoch {outcome.pruned_at} "
                     f"({outcome.seconds:.1f} s)")
            raise optuna_module().TrialPruned()
        if outcome.value is None:
            raise ConfigError(f"{self.metric} is undefined on the validation split (e.g. it "
                              "holds one class only); choose another --metric or a larger "
                              "data.val_size")
        self.say(f"trial {trial.number}: {self.metric} {outcome.value:.4f} after "
                 f"{outcome.epochs} epochs ({outcome.seconds:.1f} s){self._best_note()}")
        return outcome.value

    def _best_note(self) -> str:
        try:
            best = self.study.best_trial
        except ValueError:
            return ""
        return f"; best so far {best.value:.4f} (trial {best.number})"

    def budget_spent(self) -> bool:
        return counted(self.study) >= self.trials


def _with_values(cfg: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``cfg`` with the drawn ``values`` set. The space checked every value it can draw, so
    they are set directly: validating the whole config again (``override``, 1.4 ms) for
    each key of each trial was ~8 % of a small search's overhead."""
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in values.items():
        section, _, name = dotted.partition(".")
        if not name or not dataclasses.is_dataclass(getattr(cfg, section, None)):
            return cfg.override(values)
        sections.setdefault(section, {})[name] = tuple(value) if isinstance(value, list) else value
    try:
        return dataclasses.replace(cfg, **{s: dataclasses.replace(getattr(cfg, s), **kv)
                                           for s, kv in sections.items()})
    except TypeError:  # not a field: the full check names it
        return cfg.override(values)


def run_search(search: Search, timeout: Optional[float], wait: bool) -> str:
    """Run trials until the budget is spent or ``timeout`` seconds passed; with ``wait``,
    then wait for the trials other workers are still running. Returns why it stopped."""
    started = time.monotonic()
    for number in recover_dead_trials(search.study):
        search.say(f"trial {number} was running in a process that died; it runs again")
    while True:
        left = None if timeout is None else timeout - (time.monotonic() - started)
        if left is not None and left <= 0:
            return "timeout"
        if not search.budget_spent():
            def stop_when_spent(study: Any, _trial: Any) -> None:
                if search.after_trial is not None:
                    search.after_trial()
                # Trials other workers are running will count too: do not start one more.
                if sum(counts(study)) >= search.trials:
                    study.stop()
            try:
                with _interruptible():
                    search.study.optimize(search.objective, timeout=left,
                                          catch=(TrialFailed,), callbacks=[stop_when_spent],
                                          gc_after_trial=False)
            except (TrainingInterrupted, KeyboardInterrupt):
                _requeue_interrupted(search.study)
                raise TrainingInterrupted(0, "tuning interrupted; the finished trials are "
                                          "saved in the study, and the same command continues "
                                          "it (the interrupted trial runs again)") from None
        if search.budget_spent() or not wait:
            break
        if running(search.study) == 0 and not search.budget_spent():
            continue  # a worker died and its trial was queued again: run it here
        search.say(f"waiting for {running(search.study)} trial(s) other workers are running")
        while running(search.study) > 0:
            time.sleep(2)
            fail_stale(search.study)
            recover_dead_trials(search.study)
    return "budget"


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM stop the search where they find it. Inside a trial's training the
    trainer's own handlers take over (a clean stop at the next step); elsewhere (drawing,
    building the run, writing the study) this one stops at once; the study's database
    commits are atomic, and the trial is queued again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        # KeyboardInterrupt, not an Exception: no `except Exception` on the way (a model
        # check, a file reader) may take it for an error of its own.
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _requeue_interrupted(study: Any) -> None:
    """The trial stopped by Ctrl-C / SIGTERM failed without an error of its own: run its
    values again next time (it does not count in the budget)."""
    states = optuna_module().trial.TrialState
    trials = study.get_trials(deepcopy=False)
    # Optuna's retry records every re-run trial's number in its retry_history.
    queued = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    mine = [t for t in trials if t.state == states.FAIL and ERROR not in t.user_attrs
            and t.number not in queued]
    if mine:
        retry(study, max(mine, key=lambda t: t.number))


def best_trial(study: Any) -> Any:
    """The best complete trial, or one line saying why there is none."""
    states = optuna_module().trial.TrialState
    trials = study.get_trials(deepcopy=False)
    if not any(t.state == states.COMPLETE for t in trials):
        errors = sorted({t.user_attrs[ERROR] for t in trials if ERROR in t.user_attrs})
        pruned = sum(t.state == states.PRUNED for t in trials)
        raise RunError(f"no trial completed ({len(trials)} started, {pruned} pruned"
                       + (f"; failures: {'; '.join(errors[:3])}" if errors else "")
                       + "); nothing to retrain: widen the space or run more trials")
    return study.best_trial


def printer(quiet: bool) -> Callable[[str], None]:
    def say(line: str) -> None:
        if not quiet:
            print(f"deepfit tune: {line}", file=sys.stderr, flush=True)
    return say
