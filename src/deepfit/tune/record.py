"""tune.json: the study's description and every trial as plain values (the tune report is
rendered from it alone), and the parameter importances."""

from __future__ import annotations

import math
import warnings
from typing import Any, Optional

from deepfit.tune.space import SearchSpace
from deepfit.tune.study import ERROR, optuna_module, outcome


def trial_records(study: Any, space: SearchSpace) -> list[dict[str, Any]]:
    out = []
    for t in study.get_trials(deepcopy=False):
        a, o = t.user_attrs, outcome(t)
        out.append({
            "number": t.number, "state": t.state.name.lower(),
            "value": _finite(t.value) if t.state.name == "COMPLETE" else None,
            "params": space.decode(t.params), "epochs": o.get("epochs"),
            "best_epoch": o.get("best_epoch"), "pruned_at": o.get("pruned_at"),
            "seconds": o.get("seconds"),
            "intermediate": {str(k): _finite(v) for k, v in sorted(t.intermediate_values.items())},
            "error": a.get(ERROR) if t.state.name == "FAIL" else None,
            "retry_of": t.system_attrs.get("failed_trial"),
        })
    return out


def best_record(study: Any, space: SearchSpace) -> Optional[dict[str, Any]]:
    try:
        best = study.best_trial
    except ValueError:  # no complete trial
        return None
    complete = study.get_trials(deepcopy=False,
                                states=(optuna_module().trial.TrialState.COMPLETE,))
    return {"number": best.number, "value": _finite(best.value),
            "params": space.decode(best.params), "epochs": outcome(best).get("epochs"),
            "best_epoch": outcome(best).get("best_epoch"),
            # trials as good as the best (the first of them is the best): a search that hits
            # the metric's ceiling on a small validation split cannot tell them apart
            "ties": sum(1 for t in complete if t.value == best.value)}


def importances(study: Any) -> tuple[Optional[dict[str, float]], Optional[str]]:
    """Optuna's parameter importances, or None and why not."""
    optuna = optuna_module()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    varied = {k for t in complete for k in t.params
              if len({repr(u.params.get(k)) for u in complete}) > 1}
    if len(complete) < 2 or not varied:
        return None, "needs at least 2 complete trials with varying parameters"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as exc:
        return None, f"could not be estimated: {str(exc).splitlines()[0]}"
    return {k: float(v) for k, v in found.items()}, None


def _finite(value: Any) -> Optional[float]:
    return float(value) if value is not None and math.isfinite(value) else None
