"""Numbers as people read them, in one place: percentages with their interval and n, differences in points,
p-values, dollars, parameters. Every table, text and dashboard page formats through these."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any, NamedTuple

from harness.core.metric import Metric
from harness.core.records import TrialView
from harness.evaluation.regression import ITEMS_GAINED, ITEMS_LOST
from harness.evaluation.rules import STATS_RULES, changes_behind, rules_version
from harness.evaluation.scorers import SCORERS, higher_is_better

SHORT_NAMES = {"learning_rate": "lr", "lora_alpha": "alpha", "lora_dropout": "dropout", "target_modules": "targets"}


def pct(value: float | None, signed: bool = False) -> str:
    """A fraction in percent with one decimal (`62.0`, `+1.5` when signed), or `-` when not measured."""
    return "-" if value is None else f"{value * 100:{'+' if signed else ''}.1f}"


MEAN_SCORES = frozenset({"rouge_l"})
"""Metrics that are the mean of a graded score in [0, 1] per example (ROUGE-L's F-measure), not a share of examples
or fields: printed as the score, `0.295 [0.227, 0.367]`, since `29.5%` reads as a rate of something."""


def is_score(name: str | None) -> bool:
    """Whether metric `name` prints as a score in [0, 1] (`MEAN_SCORES`) rather than in percent."""
    return name in MEAN_SCORES


def number(value: float | None, signed: bool = False, name: str | None = None) -> str:
    """A metric's value as it prints: in percent (`62.0`), or as a score with three decimals (`0.295`) for metric
    `name` when it is a mean score; `-` when not measured."""
    if not is_score(name) or value is None:
        return pct(value, signed)
    return f"{value:{'+' if signed else ''}.3f}"


def interval(metric: Metric | None, signed: bool = False, name: str | None = None) -> str:
    """`62.0 [52.2, 70.9]` in percent (tables say so in their title), `0.295 [0.227, 0.367]` for a mean score
    (`is_score(name)`), or `-` when not measured."""
    if metric is None or metric.value is None:
        return "-"
    text = number(metric.value, signed, name)
    if metric.low is not None and metric.high is not None:
        text += f" [{number(metric.low, signed, name)}, {number(metric.high, signed, name)}]"
    return text


def fmt_metric(metric: Metric | None, signed: bool = False, name: str | None = None) -> str:
    """`62.0% [52.2, 70.9] n=100`; `0.295 [0.227, 0.367] n=10` for metric `name` when it is a mean score (ROUGE-L),
    which is no rate; or `-` when not measured. Callers that know the metric's name pass it."""
    if metric is None or metric.value is None:
        return "-"
    value, _, rest = interval(metric, signed, name).partition(" ")
    unit = "" if is_score(name) else "%"
    return f"{value}{unit}{' ' + rest if rest else ''} n={metric.n}"


def points(metric: Metric, name: str | None = None) -> str:
    """A difference in percentage points with its interval: `+28.1 points, 95% CI [+20.6, +35.6]`; for metric `name`
    when it is a mean score (ROUGE-L), in its own units: `-0.041, 95% CI [-0.064, -0.012]`."""
    if metric.value is None:
        return "-"
    text = number(metric.value, True, name) + ("" if is_score(name) else " points")
    if metric.low is not None and metric.high is not None:
        text += f", 95% CI [{number(metric.low, True, name)}, {number(metric.high, True, name)}]"
    return text


def scored(value: float | None, name: str | None = None) -> str:
    """A bare value of metric `name` with its unit: `62.0%`, or `0.295` for a mean score."""
    return number(value, name=name) + ("" if is_score(name) or value is None else "%")


def regression_text(trial: TrialView, split: str = "test") -> str:
    """The forgetting check for one trial: its delta with interval, or why there is none."""
    if not trial.trained:
        return "not trained"
    metric = regression_metric(trial, split)
    if metric is None or metric.value is None:
        return "not measured"
    return interval(metric, signed=True)


def regression_counted(trial: TrialView, split: str = "test") -> str:
    """The forgetting check with its n, where no column header carries it: `+0.0 points, 95% CI [-36.9, +36.9],
    n=8` (the general check's items, not the test subset's), or why there is none."""
    metric = regression_metric(trial, split)
    if not trial.trained or metric is None or metric.value is None:
        return regression_text(trial, split)
    return f"{points(metric)}, n={metric.n}{changed_text(trial)}"


def changed_text(trial: TrialView) -> str:
    """` (1 gained, 5 lost)`: the forgetting check's items that changed against the base model, where stored."""
    changed = items_changed(trial)
    return f" ({changed[0]} gained, {changed[1]} lost)" if changed else ""


def items_changed(trial: TrialView) -> tuple[int, int] | None:
    """(items the trial answered right where the base model did not, and the reverse) on the forgetting check: the
    counts its McNemar interval reads. None for trials scored before 2026-12-07, which did not store them."""
    checks = trial.metrics.get("regression", {})
    gained = next((m for name, m in checks.items() if name.endswith(ITEMS_GAINED)), None)
    lost = next((m for name, m in checks.items() if name.endswith(ITEMS_LOST)), None)
    if gained is None or lost is None or gained.value is None or lost.value is None:
        return None
    return round(gained.value * gained.n), round(lost.value * lost.n)


def regression_metric(trial: TrialView, split: str = "test") -> Metric | None:
    """The forgetting check's delta: measured once per trial, stored on `split` or else on dev."""
    return trial.metric(split, "regression_delta") or trial.metric("dev", "regression_delta")


def sentence(text: str) -> str:
    """`text` ending in one full stop: a reason quoted from elsewhere (an exception's, a user's note) may bring its
    own, and a second one reads as a typo."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def counted(n: int, noun: str) -> str:
    """`1 pair`, `2 pairs`: a count with its noun in the number it takes."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


EXACT_UP_TO = 2.0**53
"""Whole numbers a float holds exactly; past this a count is shown in scientific notation."""


def quantity(value: float) -> str:
    """A figure the user gave, as given: `100,000`, or `1.5` (never rounded to `2`); `1e+30` past what a float holds
    exactly (written out, its last digits would be noise)."""
    if abs(value) >= EXACT_UP_TO:
        return f"{value:.10g}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.10g}"


def flag_value(value: float) -> str:
    """A number as a command's flag takes it back unchanged: `1234567.5`, `2000000`, never `1.23457e+06`."""
    value = float(value)
    return f"{value:.0f}" if value.is_integer() and abs(value) < EXACT_UP_TO else repr(value)  # repr: shortest exact


def queries(volume: float) -> str:
    """A break-even volume in whole queries, rounded up (the fewest that pay back): `1 query`, `1,235 queries`. A
    volume below one rounded to `0 queries`, as if nothing needed to be served."""
    if volume >= EXACT_UP_TO:  # a float this large has no exact whole count: digits past its precision are noise
        return f"{volume:.3g} queries"
    whole = max(1, math.ceil(volume - 1e-9))
    return f"{whole:,} {'query' if whole == 1 else 'queries'}"


def p_value(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def usd(amount: float | None) -> str:
    """Dollars at a precision finance reads: `$1,234`, `$12.35`, `$0.123`, `$0.0000537`; never 5.4e-05."""
    if amount is None:
        return "-"
    size, sign = abs(amount), "-" if amount < 0 else ""
    if size >= 100:
        return f"{sign}${size:,.0f}"
    if size >= 1:
        return f"{sign}${size:,.2f}"
    if size == 0:
        return "$0"
    decimals = min(12, 2 - math.floor(math.log10(size)))  # three significant digits
    return f"{sign}${size:.{decimals}f}"


def saving_text(amount: float) -> str:
    """What the candidate saves against the baseline, in words: `saves $1.89`, or `costs $0.671 more` (never
    `saves -$0.671`)."""
    return f"costs {usd(-amount)} more" if amount < 0 else f"saves {usd(amount)}"


def duration(months: float | None) -> str:
    """A payback time as finance reads it: `14.2 months`, `3.5 days`, `under an hour`, or `never`."""
    if months is None:
        return "never"
    days = months * 30.44
    if months >= 1:
        return f"{months:,.1f} months"
    if days >= 1:
        return f"{days:.1f} days"
    return f"{days * 24:.1f} hours" if days * 24 >= 1 else "under an hour"


def params_text(params: Mapping[str, Any]) -> str:
    return " ".join(f"{SHORT_NAMES.get(k, k)}={v:.2g}" if isinstance(v, float) else f"{SHORT_NAMES.get(k, k)}={v}"
                    for k, v in params.items() if k != "method")


def status_text(trial: TrialView) -> str:
    """`ok`, `infeasible`, `under-trained (13 of 250 steps)`, or the status with its reason."""
    if trial.status != "complete":
        return trial.status + (f": {trial.failure_reason}" if trial.failure_reason else "")
    state = "ok" if trial.feasible else "infeasible"
    return f"{under_trained_text(trial)}, {state}" if trial.under_trained else state


def under_trained_text(trial: TrialView) -> str:
    """`under-trained (13 of 250 steps, 5%)`: its time cap stopped it before its step budget."""
    training = trial.training
    if training is None or not training.planned_steps:
        return "under-trained (stopped by its time cap)"
    return f"under-trained ({training.steps} of {training.planned_steps} steps, {training.completed_share:.0%})"


def score_cell(name: str, value: float | None) -> str:
    """A per-example score: `pass` / `fail` for 0/1 scores read in the scorer's direction, the number otherwise,
    `-` where the score does not apply."""
    if value is None:
        return "-"
    if name in SCORERS and value in (0.0, 1.0):
        return "pass" if (value == 1.0) == bool(higher_is_better(name)) else "fail"
    return f"{value:.3g}"


OLDER_RULES_MARK = "*"
"""Beside an interval computed by older rules than this release's, where a table has no room to say more."""

OLDER_RULES_CAPTION = (f"{OLDER_RULES_MARK} interval possibly computed by older rules than this release's; "
                       "`harness show TRIAL` (or the Trial page) says which and what changed.")
"""Under a table with `OLDER_RULES_MARK` in it."""

def shows_older_rules(cells: Iterable[object]) -> bool:
    """Whether any table cell carries `OLDER_RULES_MARK` after its interval (then `OLDER_RULES_CAPTION` goes under)."""
    return any(f"]{OLDER_RULES_MARK}" in str(cell) for cell in cells)


RESCORE = ("A new study of the experiment (`harness sweep EXPERIMENT --study NEW_NAME`) is scored by this release's "
           "rules.")


def rules_note(trial: TrialView, names: Collection[str] | None = None) -> str | None:
    """When intervals the trial shows (of `names`, or any) were computed by older rules than this release's: which
    rules, what changed since, and why the stored numbers stay as scored. None when they are this release's."""
    changes = changes_behind(trial, names)
    if not changes:
        return None
    now = rules_version(STATS_RULES)
    if trial.stats_rules is None or trial.stats_rules < 1:
        when = (f"Intervals scored before rule versions were recorded, possibly by older rules than this release's "
                f"(v{now.version}, {now.date}), which changed:")
    else:
        then = rules_version(trial.stats_rules)
        when = f"Intervals by the rules of {then.date} (v{then.version}); this release's (v{now.version}) changed:"
    kept = "; ".join(dict.fromkeys(reason for change in changes for reason in change.kept))
    return f"{when} {'; '.join(c.words for c in changes)}. Kept as scored" + (f": {kept}. " if kept else ". ") + RESCORE


def older_rules(trial: TrialView, name: str) -> bool:
    """Whether the trial's interval of metric `name` may have been computed by older rules than this release's."""
    return bool(changes_behind(trial, (name,)))


def marked(text: str, trial: TrialView, name: str) -> str:
    """A table cell with `OLDER_RULES_MARK` after its interval when older rules may have computed it (`rules_note`
    says which): `41.0 [35.0, 47.0]* n=40`."""
    if text == "-" or not older_rules(trial, name):
        return text
    end = text.rfind("]") + 1 or len(text)
    return f"{text[:end]}{OLDER_RULES_MARK}{text[end:]}"


def older_rules_remark(shown: Iterable[tuple[TrialView, Collection[str]]]) -> str:
    """For a text that prints stored intervals (trial, the metrics it prints): ` The stored intervals of demo/2
    (regression_delta) may come from older rules than this release's; `harness show demo/2` says what changed.`,
    or "" when every one printed is this release's."""
    behind = [(trial, [name for name in names if older_rules(trial, name)]) for trial, names in shown]
    behind = [(trial, names) for trial, names in behind if names]
    if not behind:
        return ""
    which = "; ".join(f"{trial.id} ({', '.join(dict.fromkeys(names))})" for trial, names in behind)
    show = " / ".join(f"`harness show {trial.id}`" for trial, _ in behind)
    return (f" The stored intervals of {which} may come from older rules than this release's; {show} says what "
            "changed.")


class ConstraintReading(NamedTuple):
    what: str
    """The constraint with its limit: `format compliance on dev at least 90.0%`."""
    shown: str
    """Its measured value with interval and n."""
    reading: str
    """`met, with its whole interval`, `met at its estimate, but ...: not shown`, `broken at its estimate, but ...`,
    or `broken, with its whole interval`."""
    doubtful: bool
    """Met by its estimate while its interval reaches past the limit (a trial is feasible by its estimates:
    `selection.is_feasible`)."""
    unsettled: bool = False
    """Broken by its estimate while its interval reaches back within the limit: the veto stands (a trial is judged by
    its estimates), but more dev or check items could lift it."""

    @property
    def text(self) -> str:
        """`format compliance on dev at least 90.0%: 100.0% [92.9, 100.0] n=50: met, with its whole interval`."""
        return f"{self.what}: {self.shown}: {self.reading}" if self.shown else f"{self.what}: {self.reading}"


class _Judged(NamedTuple):
    what: str
    """The constraint with the limit it was judged by."""
    shown: str
    crosses: bool
    """The interval reaches to the other side of the limit from the estimate."""


def _judged(trial: TrialView, name: str, excess: float) -> _Judged | None:
    """Constraint `name` of `trial` with its limit (recovered from how far the trial is from it, so it is the limit it
    was judged by), its value as shown, and whether its interval reaches across the limit; None when not measured."""
    metric = trial.metric("dev", name)  # the forgetting check's delta is stored beside dev's scores
    if metric is None or metric.value is None:
        return None
    if name == "hallucination_rate":  # the only one where lower is better
        limit, shown = metric.value - excess, fmt_metric(metric)
        what, worst, best = f"hallucination rate on dev at most {pct(limit)}%", -(metric.high or 0), -(metric.low or 0)
        signed = -limit
    else:
        limit = metric.value + excess
        shown = fmt_metric(metric) if name == "format_compliance" else f"{points(metric)}, n={metric.n}"
        what = (f"format compliance on dev at least {pct(limit)}%" if name == "format_compliance" else
                f"forgetting on the general check no worse than {pct(limit, True)} points")
        worst, best, signed = metric.low, metric.high, limit
    if worst is None or best is None:
        return _Judged(what, shown, False)
    # met: does the interval's worse end fall past the limit? broken: does its better end reach back within it?
    return _Judged(what, shown, best > signed if excess > 0 else worst < signed)


def constraint_readings(trial: TrialView) -> list[ConstraintReading]:
    """Each dev constraint of `trial` with its limit, its measured value and interval, and how it reads: met or broken
    with its whole interval, or only at its estimate."""
    out = []
    for name, excess in trial.constraints.items():
        if excess is None:
            continue
        judged = _judged(trial, name, excess)
        if judged is None:  # hallucination with no compliant output: counted as broken
            out.append(ConstraintReading(broken_constraint(trial, name), "", "broken", False))
        elif excess > 0 and judged.crosses:
            out.append(ConstraintReading(judged.what, judged.shown, "broken at its estimate, which decides; its 95% "
                                         "interval reaches back within the limit, so more items could lift it",
                                         False, True))
        elif excess > 0:
            out.append(ConstraintReading(judged.what, judged.shown, "broken, with its whole interval", False))
        elif judged.crosses:
            out.append(ConstraintReading(judged.what, judged.shown, "met at its estimate, but its 95% interval "
                                         "reaches past the limit: not shown", True))
        else:
            out.append(ConstraintReading(judged.what, judged.shown, "met, with its whole interval", False))
    return out


def broken_constraint(trial: TrialView, constraint: str) -> str:
    """A broken constraint with where it was measured and its value there: `hallucination_rate on dev (12.0% [6.1,
    22.0] n=50)`, or `regression_delta on the general check (-6.0 points, 95% CI [-12.0, +0.0], n=100)` (the forgetting
    check runs on its own general-knowledge items, not on dev); it adds `, broken at its estimate only: ...` where the
    interval reaches back within the limit, since the veto then rests on the estimate alone."""
    where = "the general check" if constraint == "regression_delta" else "dev"
    metric = trial.metric("dev", constraint)
    if constraint == "hallucination_rate" and metric is not None and metric.n == 0:
        # counted over compliant outputs only; with none, the constraint counts as broken (selection.constraint_excess)
        return f"{constraint} on dev (no compliant output to check, counted as broken)"
    if metric is None or metric.value is None:
        return f"{constraint} on {where}"
    shown = f"{points(metric)}, n={metric.n}" if constraint == "regression_delta" else fmt_metric(metric)
    only = f", {BROKEN_AT_ESTIMATE_ONLY}" if broken_at_estimate_only(trial, constraint) else ""
    return f"{constraint} on {where} ({shown}{only})"


BROKEN_AT_ESTIMATE_ONLY = "broken at its estimate only: its 95% interval reaches back within the limit"


def broken_at_estimate_only(trial: TrialView, constraint: str) -> bool:
    """`trial` breaks `constraint` by its estimate while the interval reaches back within the limit: the veto
    stands (trials are judged by their estimates), but it rests on the estimate alone."""
    excess = trial.constraints.get(constraint)
    judged = _judged(trial, constraint, excess) if excess is not None and excess > 0 else None
    return judged is not None and judged.crosses
