"""What a sweep says before and after its trials, whoever runs it: `harness sweep` prints these as flagged lines,
`harness.api.sweep` passes them to its `echo`, so the two say the same.

Each notice is (word, text): `note`, `warning` or `error` (the run has no answer: every trial it started failed, or
its engine went away)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.core.paths import shared_results_warning
from harness.core.records import TrialView
from harness.store.database import Store
from harness.sweep.drift import check_calibration
from harness.sweep.machine import MachinePlan
from harness.sweep.plan import SweepPlan
from harness.sweep.run import SweepOutcome
from harness.sweep.storage import origin_note, password_warning

Notice = tuple[str, str]


def before_trials(plan: SweepPlan, storage_given: str | None) -> list[Notice]:
    """Where the storage came from (a variable left set would move the study without a word), what would be left
    where others can read it (a password on the command line, a results folder others may enter), and what loads but
    is likely a mistake (`SweepPlan.warnings`)."""
    notices: list[Notice] = [("note", note)] if (note := origin_note(plan.storage)) is not None else []
    exposed = (password_warning(storage_given), shared_results_warning(plan.results_dir))
    notices += [("warning", text) for text in exposed if text is not None]
    return notices + [("warning", text) for text in plan.warnings()]


def estimate_warning(here: MachinePlan, store: Store) -> str | None:
    """What the estimate warns of (a trial the sweep's minutes would not reach, ...), unless the study resumes past a
    trained trial already, which the warning is no longer about."""
    warning = here.estimate.warning() if here.estimate is not None else None
    if warning and not any(t.trained and t.complete for t in store.trials(here.plan.study)):
        return warning
    return None


def calibration_note(here: MachinePlan, store: Store, outcome: SweepOutcome) -> str | None:
    """After the trials: whether this run's trials ran at the calibrated speed (`sweep.drift`); a cached calibration
    that read slow is dropped, so that it does not plan later runs."""
    ran = [t for t in store.trials(outcome.study) if t.run_id == outcome.run_id]
    return check_calibration(here.calibration, ran, here.lowered)


def run_failed(outcome: SweepOutcome, trials: Sequence[TrialView], who: str = "run") -> str | None:
    """Why this run has no answer, or None: its engine went away before its last trial, every trial it started
    failed, or every fine-tuned one did (whatever prompting did). `who`: `run`, or `worker` for one worker's."""
    if outcome.engine_lost:
        return f"the sweep stopped before its last trial: {outcome.engine_lost}"
    if outcome.ran and outcome.failed == outcome.ran:
        return (f"every trial this {who} started failed ({outcome.failed}); the reasons are above and in "
                "`harness trials`.")
    tuned = [t for t in trials if t.trained and t.run_id == outcome.run_id]
    if who == "run" and tuned and all(t.status == "failed" for t in tuned):
        return (f"every fine-tuned trial this run started failed ({len(tuned)}), so the study has no answer; the "
                "reasons are above and in `harness trials`.")
    return None
