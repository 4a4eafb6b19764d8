"""Plan for the machine at hand, before any trial runs: calibrate (or read the cache), let the budget fit these
timings when the experiment asks (`budget.fit_minutes`), estimate every trial, and refuse a plan whose trained
trials cannot finish their step budgets inside their time caps, since a cut-short trial never decides.

`harness sweep` (the dry run too) and `harness worker` start here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.core.errors import HarnessError, ModelError
from harness.models import sources
from harness.store.database import Store
from harness.sweep.calibrate import Calibration, apply, calibrate, keep_study_precision
from harness.sweep.estimate import Estimate, estimate, fit, planned_steps
from harness.sweep.plan import SweepPlan, check_adapters
from harness.sweep.preflight import check_hosted_arms
from harness.sweep.prepare import SweepData, base_regression_cached, prepare


@dataclass(frozen=True)
class MachinePlan:
    plan: SweepPlan
    """The plan as it will run here: with a fitted step budget when `budget.fit_minutes` asked for one."""
    data: SweepData | None
    """What the trials share, in the calibrated precision (the base model's forgetting score is measured later)."""
    calibration: Calibration | None
    """None only for a dry run whose model is not pulled yet (nothing to time)."""
    estimate: Estimate | None
    fitted: str | None
    """What `budget.fit_minutes` chose and why; None when the experiment does not ask."""
    lowered: tuple[int, int] | None = None
    """(steps each trained trial gets, steps the experiment wrote) when `budget.fit_minutes` lowered them here."""
    refusal: str | None = None
    """Why the sweep would not start here (a trial its cap would cut short), kept for a dry run to give after its
    plan and estimate, which show what to change; a sweep raises it instead."""

    def lowered_note(self) -> str | None:
        """What a reader of the verdict must know when this machine's speed, not the experiment, set the training."""
        if self.lowered is None:
            return None
        steps, written = self.lowered
        return (f"note: on this machine budget.fit_minutes gave each trained trial {steps} of the {written} steps the "
                "experiment names. More training can change the answer: on a faster machine, or with --set "
                "budget.fit_minutes=null (which takes longer here), every trained trial gets all of them.")

    def decided(self) -> list[str]:
        """What this plan decided, as `--set` overrides: other workers of the study run the same trials."""
        budget = self.plan.config.budget
        precision = self.calibration.precision if self.calibration else self.plan.config.training.precision
        return [f"training.precision={precision}", "budget.fit_minutes=null",
                f"budget.max_steps={'null' if budget.max_steps is None else budget.max_steps}"]


def study_precision(store: Store, study: str) -> str | None:
    """The precision the study's first finished trained trial trained in; None for a new study, or one whose trials
    recorded none."""
    if not store.path.exists():
        return None
    return next((t.precision for t in store.trials(study)
                 if t.trained and t.status in ("complete", "pruned") and t.precision), None)


def finished_trials(store: Store, study: str) -> list[dict]:
    """The parameters, with `method`, of the trials a resumed study has finished (complete or pruned), which the
    estimate leaves out (`plan_for_machine`'s `finished`); a failed trial may run again, and stays in it."""
    return [{"method": t.method, **t.params} for t in store.trials(study) if t.status in ("complete", "pruned")] \
        if store.path.exists() else []


def plan_for_machine(plan: SweepPlan, echo: Callable[[str], None], allow_under_trained: bool = False,
                     pull_missing: bool = True, recalibrate: bool = False, finished: Sequence[Mapping[str, Any]] = (),
                     refuse: bool = True, trained_in: str | None = None) -> MachinePlan:
    """`pull_missing=False` (a dry run): an embedded model not pulled yet is not fetched; the plan is then shown
    without this machine's timings, and says how to get them. `recalibrate`: measure again, whatever is cached.
    `finished`: the parameters (with `method`) of the trials a resumed study has run, left out of the estimate.
    `refuse=False` (a dry run) keeps a refusal in `MachinePlan.refusal` instead of raising it. `trained_in`: the
    precision a resumed study's trials trained in (`study_precision`), which `auto` keeps."""
    try:
        source = sources.resolve(plan.config.model, pull_missing=pull_missing)
    except ModelError as exc:
        if pull_missing:
            raise
        echo(f"not calibrated: {exc} The estimate needs a few timed steps of the model on this machine.")
        if not plan.adapters_checked:
            echo("not checked yet: the adapters' `target_modules` and `r` against the model's layers, which need its "
                 f"config; the sweep checks them once it has pulled {plan.config.model}, before any weight loads.")
        return MachinePlan(plan, None, None, None, None)
    if not plan.adapters_checked:  # the model's config is here now (pulled), and still no weight has loaded
        check_adapters(plan.config, plan.space, str(plan.config_path))
    data = prepare(plan, source, echo)
    check_hosted_arms(plan, data, echo)  # one request each, before minutes of calibration (and in a dry run)
    calibration = keep_study_precision(calibrate(plan, data, echo, fresh=recalibrate), plan.config.training.precision,
                                       trained_in, plan.device)
    when = calibration.measured_at or "at an unknown time"
    source = (f"cached, measured {when}; --recalibrate measures it again" if calibration.cached
              else f"measured now, {when}")
    if not calibration.timings:  # every arm is hosted: nothing of this machine's to time
        source = "nothing to time: every arm of the plan is hosted"
    echo(f"machine: {calibration.machine} (calibration {source})")
    for line in calibration.lines():
        echo(f"  {line}")
    base_checked = base_regression_cached(data)
    written = planned_steps(plan.config, len(plan.subsets["train"]))
    plan, fitted = fit(plan, calibration, base_checked)
    steps = planned_steps(plan.config, len(plan.subsets["train"]))
    if fitted:
        echo(fitted)
    expected = estimate(plan, calibration, base_checked, finished)
    refusal = None
    if expected.cut_short:
        problems = "\n".join(f"  {c.text(calibration.precision, calibration.machine)}" for c in expected.cut_short)
        message = (f"a fine-tuned trial cannot finish its step budget inside its time cap on this machine:\n{problems}"
                   "\nA trial its cap stops short is under-trained: it is scored and shown as such, but never stands "
                   "for its method in the verdict or the gate.")
        if allow_under_trained:
            echo(f"warning: {message} Running anyway (--allow-under-trained).")
        elif refuse:
            raise HarnessError(message + " Change the budget as above, or pass --allow-under-trained to run it "
                                         "anyway.")
        else:
            refusal = message + " Change the budget as above, or pass --allow-under-trained to run it anyway."
    # The step budget fit_minutes chose depends on this machine's speed: keep what the experiment wrote beside it,
    # so a record read elsewhere says its steps were set by the machine, not by the experiment.
    budget = {**dataclasses.asdict(plan.config.budget), "steps_written": written, "steps_here": steps}
    budgeted = dataclasses.replace(data, config=plan.config, provenance={**data.provenance, "budget": budget})
    return MachinePlan(plan, apply(budgeted, calibration), calibration, expected, fitted,
                       (steps, written) if steps < written else None, refusal)
