"""Which configurations a study has run: a sampled trial whose configuration a completed one ran is its twin, and a
finite space whose every configuration has run is exhausted.

A configuration is what the trial searched (Optuna's parameters, `SearchSpace.configuration`) and what the space
fixed for its method (`SearchSpace.fixed`), which Optuna never sees. The fixed values count: a file that fixes full
fine-tuning's learning rate at 1e-3 where the study ran it at 5e-5 asks for another configuration, which was taken
for a twin of the old one, never run, and the space called exhausted ("widen `space:`"). Each trial keeps its fixed
values in a user attribute (`FIXED`); trials recorded before it are read from the results database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from harness.sweep.resume import duplicates_in_a_row
from harness.sweep.space import SearchSpace, configurations

FIXED = "fixed"
"""A trial's user attribute: its method's fixed parameters with the values it ran with, as JSON keeps them."""
DUPLICATES_IN_A_ROW = 50
"""The fewest duplicates in a row that stop a sweep (see `duplicate_limit`)."""
MOST_DUPLICATES_IN_A_ROW = 500
"""The most duplicates in a row a sweep draws before it stops (see `duplicate_limit`)."""

Stored = Mapping[int, Mapping[str, Any]]
"""The study's trials' parameters as the results database recorded them, by trial number: every parameter, fixed
ones included, for the trials that predate `FIXED`."""


def fixed_attr(space: SearchSpace, method: str) -> dict[str, Any]:
    """What a new trial of `method` records under `FIXED`."""
    return _plain(space.fixed(method))


def finished_twin(study: optuna.Study, trial: optuna.Trial, space: SearchSpace, stored: Stored) -> int | None:
    """The number of a completed trial with this trial's configuration (searched and fixed values), if any."""
    mine = space.configuration(trial.params, fixed_attr(space, trial.params["method"]))
    for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if other.number != trial.number and mine is not None and _configuration(space, other, stored) == mine:
            return other.number
    return None


def in_space(space: SearchSpace, trial: FrozenTrial, stored: Stored) -> bool:
    """Whether the trial ran a configuration of the space as it is now."""
    return _configuration(space, trial, stored) is not None


def exhausted(space: SearchSpace, study: optuna.Study, stored: Stored, sampler: str) -> str | None:
    """Why sampling more cannot add a configuration to the study, in words, or None while it can: every
    configuration of a finite space has completed, or the sampler's last `duplicate_limit` draws all had."""
    size = space.size()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ran = {_configuration(space, t, stored) for t in complete} - {None}
    if size is not None and len(ran) >= size:
        return (f"its space holds {configurations(size)} and every one has run, so raising --trials cannot add "
                "more; widen `space:` (more choices, or a range) to try others, or run the same ones with other "
                "settings (budget, training) as a new study (--study NEW_NAME)")
    in_a_row = duplicates_in_a_row(study)
    if in_a_row < duplicate_limit(size):
        return None
    of = "" if size is None else f", of the {size} its space holds"
    advice = "widen `space:`"
    if sampler != "random":  # TPE settled on what it has seen; random draws reach every configuration
        advice += ", or start a new study (--study NEW_NAME) with --set sampler=random"
    return (f"the sampler proposed {in_a_row} configurations in a row that had already run (found "
            f"{configurations(len(ran))}{of}), so raising --trials cannot add more; {advice}")


def outside_space_note(space: SearchSpace, study: optuna.Study, stored: Stored, name: str) -> str | None:
    """A note naming the study's finished trials whose configuration the space no longer holds (a range narrowed,
    a value fixed otherwise, a method left out): they stay in its ranking and verdict, which a user who narrowed
    the space may not expect."""
    outside = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
               if not in_space(space, t, stored)]
    if not outside:
        return None
    listed = ", ".join(f"{name}/{t.number}" for t in outside[:5]) + (f" and {len(outside) - 5} more"
                                                                      if len(outside) > 5 else "")
    return (f"{len(outside)} of study {name}'s finished trials ({listed}) ran configurations the space no longer "
            "holds (a range narrowed, a value fixed otherwise, a method left out); they stay in its ranking and "
            "verdict. To rank the space as it is now alone, run it as a new study (--study NEW_NAME).")


def duplicate_limit(size: int | None) -> int:
    """How many duplicates in a row stop the sweep, for a space of `size` configurations (None: not finite).

    A duplicate costs a draw and two small writes, never a model, so the bound is generous. A finite space whose
    every configuration has run stops at once (`exhausted`), so the bound only stops a sampler that keeps missing
    the ones left. The random sampler, with u of k left, misses L draws in a row with probability (1 - u/k)^L, under
    e^-10 for L = 10k (filling a space of 50 took it at most 174 in a row, over 8 seeds); TPE ranks pruned
    duplicates with its worst trials and steers away from them (at most 31 in a row for 50). Past 500 in a row (a
    space above 50 configurations) new ones come too rarely to wait for. A space with a continuous range repeats
    only its finite methods' configurations, so 50 in a row there means the sampler has settled on those."""
    if size is None:
        return DUPLICATES_IN_A_ROW
    return min(max(DUPLICATES_IN_A_ROW, 10 * size), MOST_DUPLICATES_IN_A_ROW)


def _fixed_of(trial: FrozenTrial, stored: Stored) -> Mapping[str, Any] | None:
    """The fixed values a trial ran with: its `FIXED` attribute, else its recorded parameters less the searched
    ones; None where neither is known (a trial of another machine's results database, recorded before `FIXED`)."""
    if FIXED in trial.user_attrs:
        return trial.user_attrs[FIXED]
    params = stored.get(trial.number)
    if params is None:
        return None
    method = params.get("method")
    return _plain({k: v for k, v in params.items() if k != "method" and f"{method}.{k}" not in trial.params})


def _configuration(space: SearchSpace, trial: FrozenTrial, stored: Stored) -> tuple | None:
    return space.configuration(trial.params, _fixed_of(trial, stored))


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """As JSON keeps them (tuples as lists), so that a value read back compares equal to the one written."""
    return json.loads(json.dumps(dict(values), default=str))
