"""Which parameters mattered: Optuna's fANOVA importance within each method, stored with the study.

Computed here, where Optuna lives, and stored in the results database, so that the dashboard needs neither Optuna
nor access to the sweep's storage (a journal file, or a database server).
"""

from __future__ import annotations

import warnings

import optuna
from optuna.trial import TrialState

MIN_TRIALS = 3
"""Completed trials of a method before its importance means anything."""


def parameter_importance(study: optuna.Study) -> dict[str, dict[str, float]]:
    """{method: {parameter: share of variance}} for each method with at least MIN_TRIALS completed trials and two
    parameters that vary. Across methods the parameters are conditional (Optuna names them `<method>.<param>`), and
    with one varying parameter the answer would trivially be 1.0, so those are left out."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    out = {}
    for method in sorted({t.params.get("method") for t in done} - {None}):
        mine = [t for t in done if t.params.get("method") == method]
        varying = sorted(k for k in set().union(*(t.params for t in mine)) - {"method"}
                         if len({repr(t.params.get(k)) for t in mine}) > 1)
        if len(mine) < MIN_TRIALS or len(varying) < 2:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = optuna.importance.get_param_importances(study, params=varying)
        except (ValueError, RuntimeError):  # too little variation for fANOVA: nothing to report
            continue
        out[method] = {name.removeprefix(f"{method}."): float(v) for name, v in values.items()}
    return out
