"""Which parameters mattered: Optuna's fANOVA importance within each method, stored with the study.

Computed here, where Optuna lives, and stored in the results database, so that the dashboard needs neither Optuna
nor access to the sweep's storage (a journal file, or a database server).
"""

from __future__ import annotations

import warnings

import optuna
from optuna.trial import TrialState

from harness.core.selection import IMPORTANCE_MIN_TRIALS, IMPORTANCE_MIN_VARYING


def parameter_importance(study: optuna.Study) -> dict[str, dict[str, float]]:
    """{method: {parameter: share of variance}} for each method with enough completed trials and varying parameters
    (`core.selection.IMPORTANCE_MIN_*`). Optuna names the parameters `<method>.<param>`; the prefix is dropped."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    out = {}
    for method in sorted({t.params.get("method") for t in done} - {None}):
        mine = [t for t in done if t.params.get("method") == method]
        varying = sorted(k for k in set().union(*(t.params for t in mine)) - {"method"}
                         if len({repr(t.params.get(k)) for t in mine}) > 1)
        if len(mine) < IMPORTANCE_MIN_TRIALS or len(varying) < IMPORTANCE_MIN_VARYING:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = optuna.importance.get_param_importances(study, params=varying)
        except (ValueError, RuntimeError):  # too little variation for fANOVA: nothing to report
            continue
        out[method] = {name.removeprefix(f"{method}."): float(v) for name, v in values.items()}
    return out
