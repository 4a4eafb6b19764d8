"""Does fine-tuning pay? Months until a fine-tuned model's per-query savings repay what it cost to make.

    one-time          = sweep compute + the sweep's hosted-API tokens + data-prep hours x rate
                        + engineering hours x rate
    monthly savings   = (baseline $/query - candidate $/query) x queries per month - fixed monthly hosting
    months to payback = one-time / monthly savings            (only when monthly savings > 0)
    break-even volume = (one-time / horizon_months + fixed hosting) / savings per query
                        (the queries per month that pay back within the horizon, 12 months by default)

It pays back when it is cheaper per query, passes the quality bar, and its months to payback lie within the horizon.
The quality bar (`QualityBar`): a cheaper model that is not as good is not a saving, so a candidate that fails the
bar gets no payback figure, and the result says why. The bar is the decision rule
(`harness.analysis.decision`) on the study's objective metric, with a non-inferiority margin: "as good, and
cheaper" means the paired 95% interval of candidate minus baseline, on the same test examples, stays above -margin
(2 points by default). A baseline whose quality is a figure the user typed in is weighed against the candidate's own
exact interval; with `absolute` set, that interval must lie above the fixed value.

A hosted model's accuracy cannot be measured offline: it comes from a measured trial when there is one, else
from a figure the user enters, which is marked "assumed, not measured" wherever it appears.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness.analysis.compare import objective_of, require_same_examples, store_labels, suite_of
from harness.analysis.cost import (
    ASSUMED,
    SERVING_SPLIT,
    USER,
    ApiCost,
    PriceTable,
    ServingCost,
    SweepCost,
    answers_without_usage,
    api_cost,
    assumption,
    hosted_cost,
    load_prices,
    measured,
    serving_cost,
    sweep_cost,
    worst_case_requests,
)
from harness.analysis.decision import (
    Decision,
    Outcome,
    check_margin,
    compare_macro_f1,
    compare_paired,
    compare_to_value,
    scores_of,
)
from harness.analysis.floor import FLOOR_METRIC, FloorCheck, floor_check
from harness.analysis.formatting import (
    counted,
    duration,
    fmt_metric,
    is_score,
    pct,
    points,
    quantity,
    queries,
    scored,
    under_trained_text,
    usd,
)
from harness.analysis.payback_model import (
    FLAGS,
    HORIZON_MONTHS,
    HOURS_PER_MONTH,
    UNITS,
    PaybackInputs,
    TimingSpread,
    TornadoBar,
    baseline_usd_per_query,
    break_even_volume,
    candidate_paid_hours,
    candidate_usd_per_query,
    min_volume_for_savings,
    monthly_savings_usd,
    months_to_payback,
    one_time_usd,
    savings_per_query_usd,
    timing_spread,
    tornado,
)
from harness.analysis.speed import busy, speed_draws, timed_batches, timing_text
from harness.analysis.verdict import arm_kind, untried_prompting
from harness.core.errors import HarnessError
from harness.core.metric import Metric
from harness.core.records import RunView, TrialView
from harness.core.selection import best
from harness.core.text import with_article
from harness.store.database import Store

# -- baselines -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    name: str
    """A trial id ("study/3") or "api:NAME"."""
    kind: str
    """"trial" (served locally, like the candidate) or "api" (a hosted model)."""
    usd_per_query: float
    quality: dict[str, Metric]
    """Test metrics by name; empty when unknown."""
    quality_source: str | None
    """"measured in trial X", or "assumed, not measured" for a figure the user entered."""
    serving: ServingCost | None = None
    api: ApiCost | None = None
    assumptions: dict = field(default_factory=dict)
    scores: Mapping[str, float | None] = field(default_factory=dict)
    """Per test example, the quality bar's metric, when measured in a trial: what the bar pairs the candidate with."""

    def to_dict(self) -> dict:
        return asdict(self)


def _test_metrics(trial: TrialView) -> dict[str, Metric]:
    return dict(trial.metrics.get("test") or {})


def baseline_from_trial(trial: TrialView, run: RunView | None, prices: PriceTable,
                        scores: Mapping[str, float | None] | None = None,
                        throughput: float | None = None, usd_per_hour: float | None = None) -> Baseline:
    """A local trial (usually prompting) as the baseline: served like the candidate, quality measured on test
    (`scores`: its per-example values of the quality bar's metric). `throughput`: its completion tokens per second
    measured elsewhere (`--baseline-serving-throughput`), and `usd_per_hour` what that machine costs
    (`--baseline-serving-usd-per-hour`), as for the candidate."""
    serving = serving_cost(trial, run, prices, throughput=throughput, flag="--baseline-serving-throughput",
                           usd_per_hour=usd_per_hour, rate_flag="--baseline-serving-usd-per-hour")
    tid = trial.id
    notes = {f"baseline.{k}": v for k, v in serving.assumptions.items()}
    return Baseline(tid, "trial", serving.usd_per_query, _test_metrics(trial), measured(tid), serving, None, notes,
                    dict(scores or {}))


def baseline_from_hosted_trial(trial: TrialView, prices: PriceTable,
                               scores: Mapping[str, float | None] | None = None,
                               unreported: int | None = None) -> Baseline:
    """A hosted arm measured in the sweep: its quality on test, its tokens per query as its endpoint reported
    them, and its price entry. Nothing here is assumed; an arm whose endpoint reported no usage (`unreported`, see
    `hosted_cost`) is refused."""
    cost = hosted_cost(trial, prices, unreported=unreported)
    notes = {f"baseline.{k}": v for k, v in cost.assumptions.items()}
    return Baseline(trial.id, "api", cost.usd_per_query, _test_metrics(trial), measured(trial.id), None, cost, notes,
                    dict(scores or {}))


def baseline_from_api(name: str, prompt_trial: TrialView, prices: PriceTable, accuracy: float | None = None,
                      accuracy_trial: TrialView | None = None, token_ratio: float | None = None,
                      accuracy_scores: Mapping[str, float | None] | None = None) -> Baseline:
    """A hosted model answering the prompting trial's prompts.

    Quality: `accuracy_trial`'s test metrics (and its per-example `accuracy_scores`) when given (measured); else
    `accuracy` (a user figure for task_accuracy, marked "assumed, not measured"); else unknown, which a relative
    quality bar refuses (`check_quality`): a missing input, not a worse model.
    """
    cost = api_cost(name, prompt_trial, prices, token_ratio)
    notes = {f"baseline.{k}": v for k, v in cost.assumptions.items()}
    scores: dict = {}
    if accuracy_trial is not None:
        quality, source = _test_metrics(accuracy_trial), measured(accuracy_trial.id)
        scores = dict(accuracy_scores or {})
    elif accuracy is not None:
        if not 0.0 <= accuracy <= 1.0:
            raise HarnessError(f"the hosted model's accuracy must be a fraction in [0, 1], got {accuracy!r}.")
        quality, source = {"task_accuracy": Metric(accuracy, None, None, 0)}, ASSUMED
        notes["baseline.task_accuracy"] = assumption(accuracy, "fraction correct on test", ASSUMED)
    else:
        quality, source = {}, None
    return Baseline(f"api:{name}", "api", cost.usd_per_query, quality, source, None, cost, notes, scores)


# -- the quality bar ------------------------------------------------------------------------------------------


LabelPairs = tuple[Mapping[str, tuple[str, str]], Mapping[str, tuple[str, str]]]
"""The candidate's and the baseline's test answers as {example id: (true label, predicted)}: what macro-F1 is
weighed on."""


FLOOR_CLAUSE = "; on a label suite, also better than always answering its commonest test label"
"""What the bar adds on task accuracy, as the verdict and the gate require (`analysis/floor.py`)."""


@dataclass(frozen=True)
class QualityBar:
    """"As good, and cheaper": by the decision rule on the test `metric` (the study's objective when None), the
    candidate is better than the baseline or not worse by more than `margin`; with `absolute`, the candidate's own
    exact interval lies above that fixed figure instead."""

    metric: str | None = None
    margin: float = 0.02
    absolute: float | None = None

    def describe(self, paired: bool = True) -> str:
        """The rule in words; `paired`: the baseline was scored on the same test examples, else it is a figure
        (a hosted model's given accuracy), against which the candidate's own exact interval is read."""
        metric = self.metric or "the objective metric"
        if self.absolute is not None:
            return (f"candidate's test {metric} above {scored(self.absolute, self.metric)} (absolute), its 95% "
                    "interval wholly so"
                    f"{FLOOR_CLAUSE if metric in ('the objective metric', FLOOR_METRIC) else ''}")
        interval = ("paired 95% interval above -margin" if paired else
                    "the candidate's exact 95% interval, less the baseline's figure, above -margin")
        return (f"candidate not worse than the baseline on test {metric} by more than {pct(self.margin)} points "
                f"({interval}){FLOOR_CLAUSE if metric in ('the objective metric', FLOOR_METRIC) else ''}")


@dataclass(frozen=True)
class QualityCheck:
    passes: bool
    metric: str
    decision: Decision
    rule: str
    reason: str
    """In full: the rule, what the candidate was weighed against, the evidence and the reading (or the fix)."""
    summary: str = ""
    """One clause for the payback's own reason, which is shown beside `reason`: the difference and the reading."""
    floor: FloorCheck | None = None
    """On task accuracy of a label suite: the candidate against always answering the commonest test label, which
    it must beat as the verdict and the gate require."""

    def to_dict(self) -> dict:
        return asdict(self)


def check_quality(candidate: TrialView, candidate_scores: Mapping[str, float | None], baseline: Baseline,
                  bar: QualityBar, higher_is_better: bool | None = None, labels: LabelPairs | None = None
                  ) -> QualityCheck:
    """Apply the bar to the candidate's per-example test scores of the bar's metric (see QualityBar). A macro_f1 bar
    against a trial is weighed on both sides' test labels (`labels`: {example id: (true, predicted)} of each), as the
    verdict, the gate and compare weigh it: macro-F1 has no per-example score to pair."""
    metric = bar.metric or "task_accuracy"
    check_margin(bar.margin, "the quality bar's margin")
    cid, rule = candidate.id, replace(bar, metric=metric).describe()
    values = list(candidate_scores.values())
    if bar.absolute is not None:
        decision = compare_to_value(values, bar.absolute, metric, higher_is_better=higher_is_better)
        ok = decision.outcome is Outcome.BETTER
        versus = f"{scored(decision.a, metric)} vs the absolute bar {scored(bar.absolute, metric)}"
        basis = f"against the absolute bar {scored(bar.absolute, metric)}"
    elif metric == "macro_f1" and labels is not None:
        decision = compare_macro_f1(*labels, margin=bar.margin)
        ok, basis = decision.passes, f"against {baseline.name} on the same test examples ({baseline.quality_source})"
        versus = f"vs {baseline.name}"
    elif baseline.scores:
        decision = compare_paired(candidate_scores, baseline.scores, metric, higher_is_better=higher_is_better,
                                  margin=bar.margin)
        ok, basis = decision.passes, f"against {baseline.name} on the same test examples ({baseline.quality_source})"
        versus = f"vs {baseline.name}"
    else:
        figure = (baseline.quality.get(metric) or Metric(None)).value
        if figure is None:
            raise _no_baseline_quality(baseline, metric, cid)
        decision = compare_to_value(values, figure, metric, higher_is_better=higher_is_better, margin=bar.margin)
        ok, basis = decision.passes, f"against {baseline.name}'s {scored(figure, metric)}, {baseline.quality_source}"
        versus = f"{scored(decision.a, metric)} vs {baseline.name}'s {scored(figure, metric)}"
        rule = replace(bar, metric=metric).describe(paired=False)
    if decision.test == "none":
        return QualityCheck(False, metric, decision, rule, f"{cid} cannot be weighed on {metric}: {decision.why}",
                            f"{metric} cannot be weighed")
    own = _test_metrics(candidate).get(metric)  # the candidate's figure as measured: with its 95% interval and n
    shown = fmt_metric(own, name=metric) if own is not None and own.measured and own.low is not None else \
        scored(decision.a, metric)
    floor = floor_check(candidate, metric)
    if floor is not None and not floor.beaten:  # as good as a baseline no better than a constant answer is no use
        return QualityCheck(False, metric, decision, rule,
                            f"{cid} fails the bar ({rule}): it is not shown to beat {floor.constant}, "
                            f"{floor.decision.evidence()}. A model no "
                            "better than giving one label to every input is not worth serving at any price, however "
                            f"it compares with {baseline.name} ({metric} {shown}, difference {decision.evidence()}).",
                            f"{metric}: not shown to beat always answering `{floor.floor.label}`", floor)
    verdict = "passes" if ok else "fails"
    return QualityCheck(ok, metric, decision, rule,
                        f"{cid} {verdict} the bar ({rule}): {metric} {shown} {basis}, difference "
                        f"{decision.evidence()}: {decision.reading()}",
                        f"{metric} {versus}: {_difference(decision)}; {decision.reading()}", floor)


def _difference(decision: Decision) -> str:
    """`+4.0 points, 95% CI [-1.2, +9.5], n=100 pairs`: the difference the bar read, with the n behind it."""
    unit = "pair" if decision.test in ("mcnemar-exact", "paired-bootstrap") else "example"
    return f"{points(decision.difference)}, n={counted(decision.difference.n, unit)}"


def _no_baseline_quality(baseline: Baseline, metric: str, cid: str) -> HarnessError:
    """The relative bar needs the baseline's figure: without it nothing says the candidate is worse; an input is
    missing."""
    head = f"payback: the quality bar weighs {cid} against {baseline.name}'s test {metric}, which is unknown"
    if baseline.kind != "api" or baseline.quality_source is not None:
        return HarnessError(f"{head}. Name a baseline scored on the same test examples (`harness trials` lists them).")
    arm = "run it as a hosted arm of the study (then it is measured) and name that trial with --baseline STUDY/NUMBER"
    if metric != "task_accuracy":
        return HarnessError(f"{head}. --baseline-accuracy gives a hosted model's task_accuracy only, and this study's "
                            f"bar is on {metric}: {arm}.")
    return HarnessError(f"{head}, and a hosted model's accuracy cannot be measured offline. Give it with "
                        "--baseline-accuracy, its fraction correct on this suite's test split (e.g. 0.85; marked "
                        f"'assumed, not measured'), or {arm}.")


# -- the result -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sensitivity:
    tornado: list[TornadoBar]
    note: str

    def to_dict(self) -> dict:
        return {"tornado": [b._asdict() for b in self.tornado], "note": self.note}


@dataclass(frozen=True)
class PaybackResult:
    candidate: str
    baseline: str
    volume: float
    pays_back: bool
    reason: str
    quality: QualityCheck
    candidate_usd_per_query: float
    baseline_usd_per_query: float
    savings_per_query_usd: float
    monthly_savings_usd: float
    one_time_usd: float
    one_time_breakdown: dict[str, float]
    months_to_payback: float | None
    """None when it never pays back (see `reason`); beyond `horizon_months` it is kept, and `pays_back` is False."""
    horizon_months: float
    break_even_volume: float | None
    """Queries per month that pay back within horizon_months; None if not cheaper or below the quality bar."""
    min_volume_for_savings: float | None
    """Queries per month at which savings first cover the fixed monthly hosting (0 without hosting)."""
    sensitivity: Sensitivity
    inputs: PaybackInputs
    assumptions: dict
    serving_engine: str = "hf"
    """What the candidate's throughput was measured on: `vllm`, `hf` (the fallback) or `user`."""
    serving_source: str = ""
    """Where its completion tokens per second come from, with the concurrency."""
    not_ready: str = ""
    """Why the candidate is not ready to serve whatever it saves (it breaks a dev constraint, or its time cap cut its
    training short), in a few words; "" when nothing stands in the way."""
    timing: TimingSpread | None = None
    """The saving and the months over the spread of the speeds the harness's own generate timed; None where no speed
    behind the payback has timed batches (a load test, a user figure, an older trial), or it fails the quality bar."""
    people_cost_given: bool = True
    """Whether any engineering or data-preparation cost is in the one-time cost: without, it is the sweep's compute
    alone, and the headline says so."""
    machine_caution: str = ""
    """The caution on a serving machine mostly idle (`_idle_machine_caution`), where one is said; "" otherwise."""
    busy_share: float | None = None
    """The share of the month the candidate's serving machine is paid for, where it saves on a machine mostly idle
    (below IDLE_SHARE: `_idle_machine_caution`), which machines paid all month can turn into no payback; None
    otherwise."""

    def headline(self) -> str:
        """The answer in capitals, as `pays_back` decided it: `PAYS BACK in 1.8 hours.`, `DOES NOT PAY BACK within the
        12-month horizon (it would take 485.9 months).`, or `NO PAYBACK FIGURE.`; a payback of a candidate not ready
        to serve says so in the same line, where a hurried reader looks."""
        spread = self.months_spread()
        caveats = ("" if self.busy_share is None else f", with its serving machine paid only while busy "
                   f"({self.busy_share:.1%} of the month; see the caution)")
        caveats += "" if self.people_cost_given else ", counting the sweep's compute alone (no people cost in it)"
        if self.pays_back:
            return f"PAYS BACK in {duration(self.months_to_payback)}{spread}{caveats}" + (
                f", if it could be served: {self.not_ready}." if self.not_ready else ".")
        if self.months_to_payback is not None:
            return (f"DOES NOT PAY BACK within the {self.horizon_months:g}-month horizon (it would take "
                    f"{duration(self.months_to_payback)}{spread}).")
        return "NO PAYBACK FIGURE."

    def months_spread(self) -> str:
        """' [5.1 hours, 9.8 hours] over the timed speeds' spread', or "" without one."""
        if self.timing is None or self.months_to_payback is None:
            return ""
        low, high = (duration(m) if m is not None else "never" for m in self.timing.months_to_payback)
        return f" [{low}, {high}] over the timed speeds' spread"

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out.update(quality=self.quality.to_dict(), sensitivity=self.sensitivity.to_dict(), inputs=asdict(self.inputs),
                   timing=None if self.timing is None else asdict(self.timing))
        return out


VOLUME_RANGE = (1e-3, 1e12)
"""Queries per month payback computes with: above a trillion no one service runs (a unit slipped: per second, per
year), and below one in a thousand months the figures are dust whose rounding would read as contradictions."""


def volume_problem(volume: float) -> str | None:
    """Why `volume` (queries per month) is outside VOLUME_RANGE, or None."""
    low, high = VOLUME_RANGE
    if not math.isfinite(volume) or volume <= 0:
        return "is not a number above 0; give queries per month"
    if volume > high:
        return (f"is over {high:,.0f} queries a month, more than any one service serves; give queries per month "
                "(not per year or per second)")
    if volume < low:
        return f"is under {low:g} queries a month, too few to price; give queries per month"
    return None


def payback(candidate: TrialView, candidate_serving: ServingCost, baseline: Baseline, sweep: SweepCost,
            volume: float, *, candidate_scores: Mapping[str, float | None], data_prep_hours: float | None = None,
            data_prep_usd_per_hour: float | None = None, engineering_hours: float | None = None,
            engineering_usd_per_hour: float | None = None, fixed_monthly_usd: float | None = None,
            utilisation: float | None = None, quality_bar: QualityBar = QualityBar(),
            higher_is_better: bool | None = None, horizon_months: float | None = None,
            ranges: Mapping[str, tuple[float, float]] | None = None,
            labels: LabelPairs | None = None) -> PaybackResult:
    """Months until `candidate` (a fine-tuned trial) repays its one-time costs against `baseline` at `volume` queries
    per month; it pays back when that is within `horizon_months`. `candidate_scores` are its per-example test values
    of the bar's metric. The user's figures (hours, rates, hosting, utilisation) are None where not given: they
    count as 0 (utilisation as 1, the horizon as HORIZON_MONTHS), recorded as not given, so that a 0 the user typed
    reads as theirs."""
    horizon_given = horizon_months is not None
    horizon_months = horizon_months if horizon_given else HORIZON_MONTHS
    figures = {"data_prep_hours": data_prep_hours, "data_prep_usd_per_hour": data_prep_usd_per_hour,
               "engineering_hours": engineering_hours, "engineering_usd_per_hour": engineering_usd_per_hour,
               "fixed_monthly_usd": fixed_monthly_usd}
    not_given = {name for name, value in figures.items() if value is None} | ({"utilisation"} if utilisation is None
                                                                                else set())
    data_prep_hours, data_prep_usd_per_hour, engineering_hours, engineering_usd_per_hour, fixed_monthly_usd = (
        0.0 if value is None else value for value in figures.values())
    utilisation = 1.0 if utilisation is None else utilisation
    user = {"volume": volume, "data_prep_hours": data_prep_hours, "data_prep_usd_per_hour": data_prep_usd_per_hour,
            "engineering_hours": engineering_hours, "engineering_usd_per_hour": engineering_usd_per_hour,
            "fixed_monthly_usd": fixed_monthly_usd, "horizon_months": horizon_months}
    if not 0 < utilisation <= 1:
        raise HarnessError(f"payback: `utilisation` (--utilisation) must be in (0, 1], got {utilisation!r}: the share "
                           "of paid device time spent answering, e.g. 0.5 for a machine busy half the day.")
    check_margin(quality_bar.margin, "the quality bar's margin")
    for name, value in user.items():
        flag = f" ({FLAGS[name]})" if name in FLAGS else ""
        if not math.isfinite(value):
            raise HarnessError(f"payback: `{name}`{flag} must be a finite number, got {value!r}.")
        if value < 0 or (name in ("volume", "horizon_months") and value <= 0):
            raise HarnessError(f"payback: `{name}`{flag} must be "
                               f"{'> 0' if name in ('volume', 'horizon_months') else '>= 0'}, got {value!r}.")
    if problem := volume_problem(volume):
        raise HarnessError(f"volume {volume:g} {problem}.")
    x = PaybackInputs(
        volume=volume, sweep_compute_usd=sweep.compute_usd, sweep_hosted_usd=sweep.hosted_usd,
        candidate_usd_per_hour=candidate_serving.usd_per_hour,
        candidate_tokens_per_s=candidate_serving.completion_tokens_per_s,
        candidate_completion_tokens=candidate_serving.completion_tokens_per_query, baseline_kind=baseline.kind,
        data_prep_hours=data_prep_hours, data_prep_usd_per_hour=data_prep_usd_per_hour,
        engineering_hours=engineering_hours, engineering_usd_per_hour=engineering_usd_per_hour,
        fixed_monthly_usd=fixed_monthly_usd, utilisation=utilisation, **_baseline_fields(baseline),
    )  # fmt: skip
    cid = candidate.id
    quality = check_quality(candidate, candidate_scores, baseline, quality_bar, higher_is_better, labels)
    c, b = candidate_usd_per_query(x), baseline_usd_per_query(x)
    monthly, months = monthly_savings_usd(x), months_to_payback(x)
    _require_finite({"one-time cost": one_time_usd(x), "candidate cost per query": c, "baseline cost per query": b,
                     "monthly savings": monthly, "months to payback": 0.0 if months is None else months})
    per_query = b - c
    timing = _timing(x, candidate_serving, baseline) if quality.passes else None
    pays, reason = _decide(cid, baseline.name, quality, x, horizon_months)
    broken = list(candidate.broken_constraints)
    obstacles = []
    if broken:
        obstacles.append(f"it breaks the dev constraint(s) {', '.join(broken)}")
    if candidate.under_trained:
        obstacles.append("it is under-trained")
    not_ready = "; ".join(obstacles)
    if broken:
        reason += (f" Caution: {cid} breaks the dev constraint(s) {', '.join(broken)}, so it is not ready to serve "
                   "whatever it saves.")
    served = baseline.serving
    if served is not None and served.engine != candidate_serving.engine:
        reason += (f" Caution: {cid} is priced on {_engine(candidate_serving.engine)} and {baseline.name} on "
                   f"{_engine(served.engine)}, which is not like for like: price both on the same engine "
                   "(--serving-throughput and --baseline-serving-throughput, or generation.engine: vllm for both).")
    share = candidate_paid_hours(x) / HOURS_PER_MONTH
    # only where the user gave neither: --hosting or --utilisation, even 0 or 1, already says how the machine is paid
    defaults = {"fixed_monthly_usd", "utilisation"} <= not_given
    idle = defaults and quality.passes and per_query > 0 and share < IDLE_SHARE and x.candidate_usd_per_hour > 0
    machine = _idle_machine_caution(cid, baseline, x, horizon_months) if idle else ""
    reason += machine
    reason += _speed_caution(cid, candidate_serving, baseline, x, timing)
    if sweep.skipped:
        left_out = "; ".join(f"{tid}: {why}" for tid, why in sweep.skipped.items())
        reason += f" Caution: the sweep's one-time cost leaves out {len(sweep.skipped)} trial(s) ({left_out})."
    if candidate.under_trained:
        training = candidate.training
        done = f"{training.steps} of {training.planned_steps} steps" if training.planned_steps else "part of its budget"
        reason += (f" Caution: {cid} is under-trained (its time cap stopped it at {done}), so its quality and cost "
                   "describe a cut-short run, not the method.")
    sensitivity = Sensitivity(
        tornado(x, ranges) if quality.passes else [],
        "tornado: payback months with each assumption at its low and high end, widest swing first; None = never"
        if quality.passes else "no tornado: the candidate fails the quality bar, so no assumption gives a payback",
    )
    breakdown = {"sweep_compute": x.sweep_compute_usd, "sweep_hosted_tokens": x.sweep_hosted_usd,
                 "data_prep": data_prep_hours * data_prep_usd_per_hour,
                 "engineering": engineering_hours * engineering_usd_per_hour}
    return PaybackResult(cid, baseline.name, volume, pays, reason, quality, c, b, per_query, monthly,
                         one_time_usd(x), breakdown, months if quality.passes else None, horizon_months,
                         break_even_volume(x, horizon_months) if quality.passes else None,
                         min_volume_for_savings(x) if quality.passes else None, sensitivity, x,
                         _assumptions(x, candidate_serving, baseline, sweep, quality_bar, user,
                                      not_given | ({"horizon_months"} if not horizon_given else set())),
                         candidate_serving.engine, candidate_serving.throughput_source, not_ready, timing,
                         data_prep_hours * data_prep_usd_per_hour + engineering_hours * engineering_usd_per_hour > 0,
                         machine.strip().removeprefix("Caution: "),
                         share if idle else None)


def _decide(cid: str, base: str, quality: QualityCheck, x: PaybackInputs, horizon_months: float) -> tuple[bool, str]:
    """Whether it pays back, and why, in the order the rule decides: a saving per query, the quality bar, a saving
    per month, the horizon. The reason is shown beside quality.reason (CLI, dashboard): it carries the summary only."""
    c, b, one_time = candidate_usd_per_query(x), baseline_usd_per_query(x), one_time_usd(x)
    per_query, monthly, months = b - c, monthly_savings_usd(x), months_to_payback(x)
    bar = f"the quality bar ({quality.summary})"
    if per_query <= 0:
        dearer = "the same as" if per_query == 0 else f"{usd(-per_query)} more than"
        return False, (f"no payback: {cid} costs {usd(c)} per query, {dearer} {base}'s {usd(b)}, so there is no "
                       f"saving to pay back the one-time cost of {usd(one_time)}. It "
                       f"{'passes' if quality.passes else 'also fails'} {bar}.")
    if not quality.passes:
        shown = "worse" if quality.decision.outcome is Outcome.WORSE else "not shown to be as good"
        return False, f"no payback: {cid} fails {bar}. A cheaper model that is {shown} is not a saving."
    volume = quantity(x.volume)
    if months is None:
        return False, (f"no payback at {volume} queries/month: savings of {usd(per_query * x.volume)}/month do not "
                       f"cover fixed hosting of {usd(x.fixed_monthly_usd)}/month; savings start above "
                       f"{min_volume_for_savings(x):,.0f} queries/month.")
    saving = f"saves {usd(per_query)} per query against {base} ({usd(monthly)}/month)"
    if months > horizon_months:
        return False, (f"no payback within the {horizon_months:g}-month horizon at {volume} queries/month: {cid} "
                       f"{saving}, so the {usd(one_time)} it cost once takes {duration(months)} to repay; from "
                       f"{queries(break_even_volume(x, horizon_months))} a month it pays back within the horizon. "
                       f"It passes {bar}.")
    return True, (f"{cid} pays back in {duration(months)} at {volume} queries/month: it {saving} and cost "
                  f"{usd(one_time)} once. It passes {bar}.")


def _require_finite(totals: dict[str, float]) -> None:
    """Refuse inputs whose products overflow: "pays back in inf months" or "$inf" is no answer."""
    if broken := [name for name, value in totals.items() if not math.isfinite(value)]:
        raise HarnessError(f"payback: the {', '.join(broken)} came out infinite from these inputs. Give figures in a "
                           "realistic range: --volume, --data-prep-hours x --data-prep-rate, --eng-hours x --eng-rate, "
                           "--hosting, and a --serving-throughput that is not near 0.")


def _timing(x: PaybackInputs, candidate: ServingCost, baseline: Baseline) -> TimingSpread | None:
    """The payback over the spread of the speeds the harness's own generate timed (the candidate's, and a local
    baseline's), each bootstrapped over its batches with a seed of its own; None where neither has batches."""
    served = baseline.serving
    timed = [candidate.timed, served.timed if served is not None else None]
    draws = [speed_draws(t, seed) if t is not None else None for seed, t in enumerate(timed)]
    counts = [timed_batches(t) for t, d in zip(timed, draws) if d is not None]  # n, without drawing again
    return timing_spread(x, draws[0], draws[1], min(counts)) if counts else None


def _speed_caution(cid: str, candidate: ServingCost, baseline: Baseline, x: PaybackInputs,
                   timing: TimingSpread | None) -> str:
    """Cautions on the speeds behind the saving, where the harness's own generate timed them (two adapters of one
    shape timed 1527 and 925 tokens/s on one busy CPU, 2026-12-06):
    - the saving per query rests only on the two speeds (at one speed it is gone), so the timings decide it;
    - the saving's interval over the timed batches reaches 0 or below;
    - other processes took a good share of the machine while a speed was timed.
    "" when none holds, or the speeds were measured otherwise (a load test, a user figure)."""
    served = baseline.serving
    timed = [(cid, candidate.timed)] + ([(baseline.name, served.timed)] if served is not None else [])
    timed = [(name, t) for name, t in timed if t is not None]
    if not timed:
        return ""
    saving = savings_per_query_usd(x)
    out = ""
    if len(timed) == 2 and saving > 0 and savings_per_query_usd(at_one := replace(
            x, candidate_tokens_per_s=x.baseline_tokens_per_s)) <= 0:
        alike, base = candidate_usd_per_query(at_one), baseline_usd_per_query(x)
        dearer = "the same as" if math.isclose(alike, base, rel_tol=1e-9) else "more than"
        timings = "; ".join(f"{name}: {t.examples} {SERVING_SPLIT} examples in {t.seconds:.2f} s, {timing_text(t)}"
                            for name, t in timed)
        out += (f" Caution: the saving per query rests only on the measured speeds, {x.candidate_tokens_per_s:.0f} "
                f"against {x.baseline_tokens_per_s:.0f} completion tokens/s; at one speed {cid} would cost "
                f"{usd(alike)} a query, {dearer} {baseline.name}'s {usd(base)}. Each speed is one pass of the "
                f"harness's own generate ({timings}); an interval covers the batches of its pass, not a machine "
                "busier during one pass than the other.")
    if timing is not None and saving > 0 and timing.savings_per_query_usd[0] <= 0:
        low, high = timing.savings_per_query_usd
        out += (f" Caution: the saving of {usd(saving)} a query is within the timed speeds' spread: {usd(low)} to "
                f"{usd(high)} (95%, n={timing.n} timed batches), so the timings cannot tell which costs less.")
    for name, t in timed:
        if busy(t):
            out += (f" Caution: other processes used {t.others_cpu_share:.0%} of the machine's CPU while {name} was "
                    "timed, so its speed is the busy machine's; time it again on a quiet one.")
    if out:
        flags = " and ".join(flag for flag, t in (("--serving-throughput", candidate.timed),
                                                  ("--baseline-serving-throughput", served and served.timed)) if t)
        out += f" Price {'both' if len(timed) == 2 else 'it'} at speeds measured on your serving stack: {flags}."
    return out


NOT_GIVEN = "0: not given"
"""The source of a people cost or hosting figure left out, which counts as 0 (one typed as 0 is the user's)."""
IDLE_SHARE = 0.5
"""A serving machine busy less than this share of the month is mostly paid to wait, if it is paid all month."""


def _idle_machine_caution(cid: str, baseline: Baseline, x: PaybackInputs, horizon_months: float) -> str:
    """A query is priced by the machine seconds it takes: a machine paid only while it answers (shared with other
    work, billed per second). At a volume that keeps a machine busy a few hours a month, a machine of its own, paid
    all month, costs many times that: against a pay-per-token API that can turn the answer (a demo adapter at
    100,000 queries a month paid back against gpt-4o-mini "in under an hour" on 6 busy hours of a CPU, and would not
    on a $73-a-month machine of its own). Said where the machine is busy less than IDLE_SHARE of the month, and the
    user gave neither --hosting nor --utilisation."""
    paid = candidate_paid_hours(x)
    rate = x.candidate_usd_per_hour * x.device_price_scale
    out = (f" Caution: at {quantity(x.volume)} queries/month {cid} keeps its serving machine busy {paid:,.1f} of the "
           f"month's {HOURS_PER_MONTH:.0f} hours ({paid / HOURS_PER_MONTH:.1%}), and each query is priced by the "
           "machine seconds it takes, as if the machine were paid only while it answers (shared with other work, or "
           "billed per second).")
    if baseline.kind == "api":
        idle = rate * (HOURS_PER_MONTH - paid)
        months = months_to_payback(replace(x, fixed_monthly_usd=x.fixed_monthly_usd + idle))
        outcome = ("it would not pay back: the saving does not cover those hours" if months is None else
                   f"it would take {duration(months)} to pay back" + (
                       f", beyond the {horizon_months:g}-month horizon" if months > horizon_months else ""))
        return out + (f" A machine of its own, paid all month at {usd(rate)}/hour, adds {usd(idle)} a month for its "
                      f"idle hours (--hosting {idle:.2f}); with that, {outcome}, against {baseline.name}, which is "
                      "paid per token.")
    mine, theirs = rate * HOURS_PER_MONTH, x.baseline_usd_per_hour * x.device_price_scale * HOURS_PER_MONTH
    saved = ("nothing would be saved, and it would never pay back" if theirs <= mine
             else f"{cid} would save {usd(theirs - mine)} a month")
    return out + (f" {baseline.name} is priced the same way. On machines of their own, paid all month, they would cost "
                  f"{usd(mine)} and {usd(theirs)} a month whatever they answer, until the volume fills a machine: "
                  f"{saved}.")


def _engine(engine: str) -> str:
    return {"hf": "the harness's own generate (the fallback)", "user": "a throughput you measured elsewhere"}.get(
        engine, engine)


def _baseline_fields(baseline: Baseline) -> dict[str, Any]:
    if baseline.kind == "api":
        a = baseline.api
        return {"api_input_usd_per_1m": a.input_usd_per_1m, "api_output_usd_per_1m": a.output_usd_per_1m,
                "token_ratio": a.token_ratio, "baseline_tokens_measured": a.measured,
                "baseline_prompt_tokens": a.prompt_tokens_per_query,
                "baseline_completion_tokens": a.completion_tokens_per_query}
    s = baseline.serving
    return {"baseline_usd_per_hour": s.usd_per_hour, "baseline_tokens_per_s": s.completion_tokens_per_s,
            "baseline_prompt_tokens": s.prompt_tokens_per_query,
            "baseline_completion_tokens": s.completion_tokens_per_query}


def _assumptions(x: PaybackInputs, serving: ServingCost, baseline: Baseline, sweep: SweepCost, bar: QualityBar,
                 user: dict, not_given: set[str]) -> dict:
    notes = {f"candidate.{k}": v for k, v in serving.assumptions.items()}
    notes.update(baseline.assumptions)
    notes.update({f"sweep.{k}": v for k, v in sweep.assumptions.items()})
    for name, value in user.items():
        unit = "months" if name == "horizon_months" else UNITS[name]
        flag = f" ({FLAGS[name]})" if name in FLAGS else ""
        notes[name] = assumption(value, unit, f"{NOT_GIVEN}{flag}" if name in not_given else USER)
    if "horizon_months" in not_given:
        notes["horizon_months"] = assumption(user["horizon_months"], "months",
                                             "default: the horizon the break-even volume pays back within")
    notes["device_price_scale"] = assumption(x.device_price_scale, UNITS["device_price_scale"], "price table as is")
    notes["utilisation"] = assumption(x.utilisation, UNITS["utilisation"], USER if "utilisation" not in not_given
                                      else "default: full batches all the time (--utilisation)")
    bar = replace(bar, metric=bar.metric or "task_accuracy")  # as `check_quality` reads it
    for name in ("metric", "margin"):
        source = "default (--margin)" if name == "margin" and bar.margin == QualityBar.margin else "quality bar setting"
        notes[f"quality_bar.{name}"] = assumption(getattr(bar, name), "rule parameter", source)
    notes["quality_bar.absolute"] = (assumption(bar.absolute, "rule parameter", "quality bar setting")
                                     if bar.absolute is not None else
                                     assumption("not set", "rule parameter", "the bar is relative to the baseline"))
    if baseline.quality_source:
        quality = baseline.quality.get(bar.metric) or Metric(None)
        source = baseline.quality_source  # a measured figure carries its 95% interval and n, as everywhere else
        source += f" (test: {fmt_metric(quality, name=bar.metric)})" if quality.measured and quality.low is not None \
            else ""
        unit = "score on test, in [0, 1]" if is_score(bar.metric) else "fraction on test"
        notes[f"baseline.{bar.metric}"] = assumption(quality.value, unit, source)
    return notes


# -- reading a Store -------------------------------------------------------------------------------------------


def best_prompting_trial(trials: list[TrialView]) -> TrialView | None:
    """The complete local prompting trial with measured test throughput that ranks best on dev."""
    return best([t for t in trials if t.device != "hosted" and "test" in t.throughput], trained=False)


def best_hosted_trial(trials: list[TrialView]) -> TrialView | None:
    """The complete hosted arm with measured test tokens that ranks best on dev: the real opponent."""
    return best([t for t in trials if t.device == "hosted" and t.hosted and "test" in t.throughput], trained=False)


def priced_after_the_fact(trial: TrialView, price: str | None) -> TrialView:
    """`trial` with its hosted usage priced at the `apis:` entry `price` when it ran without one; as it is otherwise
    (a local trial, a hosted one whose price was recorded: a recorded price is never replaced)."""
    if price is None or trial.hosted is None or trial.hosted.price is not None:
        return trial
    return replace(trial, hosted=replace(trial.hosted, price=price))


def default_baseline(trials: list[TrialView]) -> TrialView | None:
    """What a candidate is weighed against when the user names nothing: the best measured hosted arm, else the best
    local prompting arm."""
    return best_hosted_trial(trials) or best_prompting_trial(trials)


def payback_from_store(store: Store, candidate_id: str, baseline: str | None, volume: float, *,
                       prices: PriceTable | None = None, prompt_trial_id: str | None = None,
                       baseline_accuracy: float | None = None, baseline_accuracy_trial_id: str | None = None,
                       token_ratio: float | None = None, serving_throughput: float | None = None,
                       baseline_serving_throughput: float | None = None, serving_usd_per_hour: float | None = None,
                       baseline_serving_usd_per_hour: float | None = None, hosted_price: str | None = None,
                       **kwargs: Any) -> PaybackResult:
    """`harness payback TRIAL [--baseline TRIAL|api:NAME] --volume N`: read the trials, then `payback(...)`.

    The sweep cost is every trial of the candidate's study. Without a baseline, the study's best hosted arm is the
    baseline (every figure measured), else its best local prompting arm. For an "api:NAME" baseline the tokens per
    query come from `prompt_trial_id`, else the study's best prompting trial on dev. The candidate's serving
    throughput is `serving_throughput` (completion tokens per second measured elsewhere) when given, else its
    serving engine's load test, else the labelled fallback (`cost.serving_cost`); a local baseline's likewise, with
    `baseline_serving_throughput`. `serving_usd_per_hour` (`baseline_serving_usd_per_hour`) prices an hour of the
    machine such a figure was measured on, in place of the trial's device from the price table. `hosted_price` (an
    `apis:` entry) prices the hosted arms that ran without a `price` (a server of the team's own, priced after the
    fact): their recorded tokens at that entry, said so among the assumptions. `kwargs` go to `payback`.
    """
    prices = prices or load_prices()
    if hosted_price is not None:
        prices.api(hosted_price)  # an unknown entry is refused here, with the known ones
    candidate = store.require_trial(candidate_id, complete=True)
    trials = [priced_after_the_fact(t, hosted_price) for t in store.trials(candidate.study)]
    if hosted_price is not None and not any(t.hosted is not None and t.hosted.price is None
                                            for t in store.trials(candidate.study)):
        raise HarnessError(f"--hosted-price {hosted_price}: study {candidate.study} has no hosted arm that ran without "
                           "a price, so it prices nothing (a recorded price is never replaced). Drop the flag; to "
                           f"weigh {candidate.id} against {hosted_price} unmeasured, name --baseline "
                           f"api:{hosted_price} with --baseline-accuracy.")
    if not candidate.trained:
        raise _not_fine_tuned(candidate, trials)
    objective, study = objective_of(store, candidate), store.study(candidate.study)
    bar = kwargs.pop("quality_bar", None) or QualityBar()
    bar = replace(bar, metric=bar.metric or objective)  # the study's objective unless the user names another

    def bar_scores(trial: TrialView) -> dict[str, float | None]:
        return scores_of(store.examples(trial.id, "test"), bar.metric)

    if baseline is None:
        chosen = default_baseline(trials)
        if chosen is None:
            raise HarnessError(f"study {candidate.study} has no complete prompting arm, hosted or local, to weigh "
                               f"{candidate.id} against; run one, or name a baseline with --baseline.")
        baseline = chosen.id
    if baseline.startswith("api:") and not baseline[4:].strip():
        known = ", ".join(prices.apis) or "none"
        raise HarnessError(f"--baseline {baseline!r} names no hosted model: give api:NAME, NAME an entry under `apis:` "
                           f"of the price table (known: {known}).")
    recorded = None if baseline.startswith("api:") else store.require_trial(baseline, complete=True)
    other = None if recorded is None else priced_after_the_fact(recorded, hosted_price)
    if other is not None and other.id == candidate.id:
        raise _against_itself(candidate, baseline, trials)
    local_only = {"--baseline-serving-throughput": baseline_serving_throughput,
                  "--baseline-serving-usd-per-hour": baseline_serving_usd_per_hour}
    if (given := [f for f, v in local_only.items() if v is not None]) and (other is None or other.device == "hosted"):
        raise HarnessError(f"{' and '.join(given)} price a local baseline served on your own stack; {baseline} is a "
                           "hosted model, priced by its tokens. Drop the flag.")
    rates = {"--serving-usd-per-hour": (serving_usd_per_hour, serving_throughput, "--serving-throughput"),
             "--baseline-serving-usd-per-hour": (baseline_serving_usd_per_hour, baseline_serving_throughput,
                                                 "--baseline-serving-throughput")}
    for flag, (rate, speed, speed_flag) in rates.items():
        if rate is not None and speed is None:
            raise HarnessError(f"{flag} prices an hour of the machine the {speed_flag} figure was measured on; without "
                               f"that figure the speed is the trial's own, on its own device, and pricing it at "
                               f"another machine's hour prices one arm on a machine it never ran on. Give {speed_flag} "
                               "too, or drop the flag (a price table's device entry, `--prices FILE`, reprices every "
                               "arm alike).")
    api_only = {"--prompt-trial": prompt_trial_id, "--baseline-accuracy": baseline_accuracy,
                "--token-ratio": token_ratio}
    if other is not None and (ignored := [flag for flag, value in api_only.items() if value is not None]):
        raise HarnessError(f"{', '.join(ignored)} {'applies' if len(ignored) == 1 else 'apply'} only to an api:NAME "
                           f"baseline; {baseline} is a trial, whose tokens and quality are measured. Drop the flag, or "
                           "name --baseline api:NAME.")
    if other is not None:  # quality is weighed on the same test examples, or not at all
        require_same_examples(store, candidate, other, split="test")
    runs = store.runs(t.run_id for t in trials if t.run_id)
    sweep = sweep_cost(trials, runs, prices)
    serving = serving_cost(candidate, runs.get(candidate.run_id or ""), prices, throughput=serving_throughput,
                           usd_per_hour=serving_usd_per_hour)
    if other is None:
        prompt = (store.require_trial(prompt_trial_id, complete=True) if prompt_trial_id
                  else best_prompting_trial(trials))
        if prompt is not None and (prompt.trained or prompt.device == "hosted"):
            raise _not_a_prompt_trial(prompt, baseline, candidate.study, trials)
        if prompt is None:
            raise HarnessError(f"study {candidate.study} has no complete prompting trial to measure tokens per query "
                               f"for {baseline}; run one, or name one with --prompt-trial STUDY/N.")
        if (theirs := suite_of(store, prompt)) != (ours := suite_of(store, candidate)):
            raise HarnessError(f"--prompt-trial {prompt.id} was scored on suite {theirs} and {candidate.id} on suite "
                               f"{ours}: its tokens per query are another task's prompts. Name a prompting trial of "
                               f"suite {ours} (`harness trials` lists them).")
        accuracy_trial = (store.require_trial(baseline_accuracy_trial_id, complete=True)
                          if baseline_accuracy_trial_id else None)
        base = baseline_from_api(baseline[4:], prompt, prices, baseline_accuracy, accuracy_trial, token_ratio,
                                 accuracy_scores=accuracy_trial and bar_scores(accuracy_trial))
    elif other.device == "hosted":
        missing = answers_without_usage(store.examples(other.id, SERVING_SPLIT))
        if missing:
            raise _no_usage(other, missing, trials)
        base = baseline_from_hosted_trial(other, prices, bar_scores(other), missing)
        if other is not recorded:  # priced now, at the user's word
            base = replace(base, assumptions={**base.assumptions, "baseline.api_price_entry": assumption(
                hosted_price, "apis: entry", f"user input: --hosted-price ({other.id} ran without a price)")})
    else:
        base = baseline_from_trial(other, store.run(other.run_id) if other.run_id else None, prices,
                                   bar_scores(other), baseline_serving_throughput, baseline_serving_usd_per_hour)
    direction = study.maximize if study is not None and bar.metric == objective else None
    read = store_labels(store, study) if bar.metric == "macro_f1" and other is not None and study else None
    result = payback(candidate, serving, base, sweep, volume, quality_bar=bar, candidate_scores=bar_scores(candidate),
                     higher_is_better=direction, labels=None if read is None else (read(candidate.id), read(other.id)),
                     **kwargs)
    weak = untried_prompting(trials, {arm_kind(other): other}) if other is not None and not other.trained else []
    if other is not None and other.trained and other.under_trained:  # a cut-short baseline is no measure of its method
        weak.append(f"the baseline {other.id} is {under_trained_text(other)}: its time cap stopped it, so it stands "
                    f"for no method, and a saving against it says little of {other.method}.")
    # the verdict's caution, where finance reads the saving: a saving against weak prompting is easy to make
    return replace(result, reason=result.reason + "".join(f" Caution: {line}" for line in weak)) if weak else result


def _no_usage(hosted: TrialView, missing: int, trials: list[TrialView]) -> HarnessError:
    """A hosted arm whose endpoint reported no token usage has no measured cost per query: pricing its answers at 0
    tokens would make it look free. Say so, and name what prices it instead; nothing stands in unasked."""
    usage, found = hosted.hosted, hosted.throughput.get(SERVING_SPLIT)
    tested = found.examples if found is not None else missing
    answers = f"{missing} of its {tested} test answers" if missing < tested else f"its {tested} test answers"
    spent = ""
    if worst := worst_case_requests(hosted):
        spent = (f" The {usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion tokens its record "
                 f"shows count {worst} such request(s) at the worst case its budget held (prompt bytes + max_tokens): "
                 "an upper bound, not tokens billed.")
    local, api = best_prompting_trial(trials), f"api:{usage.price or 'NAME'}"
    accuracy = hosted.metric("test", "task_accuracy")
    known = accuracy is not None and accuracy.measured
    measured_as = f"; {hosted.id} measured {fmt_metric(accuracy)} on test" if known else ""
    if local is not None:
        ways = (f"--baseline {api} --prompt-trial {local.id} --baseline-accuracy FRACTION prices the hosted model on "
                f"{local.id}'s prompts as the local tokenizer counts them (with the price table's token ratio; a like "
                f"for like count needs the same shots as {hosted.id}) and an accuracy you give (marked assumed"
                f"{measured_as}), or --baseline {local.id} weighs it against that local prompting arm")
    else:
        ways = (f"study {hosted.study} has no local prompting trial whose prompts the local tokenizer could count: run "
                f"one (method prompt) to price {api} with --prompt-trial and --baseline-accuracy")
    return HarnessError(f"payback: endpoint {usage.endpoint} reported no token usage for {answers} of {hosted.id}, so "
                        f"what a query costs on it is not measured, and those answers at 0 tokens would make it look "
                        f"free.{spent} Instead: {ways}. Against an endpoint that returns `usage` with each answer, a "
                        f"re-run of {hosted.id} measures it.")


def _not_fine_tuned(candidate: TrialView, trials: list[TrialView]) -> HarnessError:
    """Payback prices what fine-tuning cost against what it saves: a prompting trial made no fine-tuned model."""
    cid, study = candidate.id, candidate.study
    tuned = best(trials, trained=True)
    example = f", e.g. {tuned.id}" if tuned is not None else ""
    return HarnessError(
        f"{cid} is {_kind(candidate)}, not a fine-tuned trial, and payback weighs what a fine-tuned model saves "
        f"against what fine-tuning cost. Give a fine-tuned trial of study {study} as TRIAL{example} "
        f"(`harness trials --study {study}` lists them); {cid} can be its baseline: --baseline {cid}.")


def _not_a_prompt_trial(prompt: TrialView, baseline: str, study: str, trials: list[TrialView]) -> HarnessError:
    """--prompt-trial supplies the prompts a hosted model would be sent, counted by the local tokenizer."""
    what = _kind(prompt) + (" (fine-tuned)" if prompt.trained else "")
    other = best_prompting_trial(trials)
    example = f" (e.g. {other.id}, the default when --prompt-trial is left out)" if other is not None else ""
    return HarnessError(
        f"--prompt-trial {prompt.id} is {what}, not a local prompting trial: its tokens per query are not the prompts "
        f"{baseline} would be sent. Name a prompting trial of study {study}{example}"
        + (f", or weigh against the hosted arm itself with --baseline {prompt.id}." if prompt.device == "hosted"
           else "."))


def _kind(trial: TrialView) -> str:
    """`a hosted arm`, `a prompting trial`, `a lora trial`."""
    if trial.device == "hosted":
        return "a hosted arm"
    return f"{with_article(trial.method)} trial" if trial.trained else "a prompting trial"


def _against_itself(candidate: TrialView, given: str, trials: list[TrialView]) -> HarnessError:
    """A trial weighed against itself saves nothing and passes no bar: say what to pass instead."""
    other = default_baseline([t for t in trials if t.id != candidate.id])
    example = (f" (e.g. {other.id}, the study's best prompting arm and the default when --baseline is left out)"
               if other is not None else " scored on the same test examples")
    return HarnessError(f"--baseline {given} is the candidate itself, and a trial weighed against itself says "
                        f"nothing. Name another trial{example}, or api:NAME from the price table.")
