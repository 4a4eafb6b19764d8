"""Which rules computed a stored interval: every trial records the version of the interval rules it was scored under.

A results database outlives the code that scored it, and the way the harness computes a metric's 95% interval has
changed more than once. A stored trial keeps the intervals it was scored with, so each one records `STATS_RULES` as
it stood then (`TrialView.stats_rules`), and `harness show`, `harness trials`, the verdict and the dashboard say when
a trial's intervals come from older rules than this release's, and which of its numbers that touches. Trials scored
before the version was recorded read None: their rules may be any older version. The upgrade that added the record
(migration m015) recomputed the intervals that what was stored determines exactly; the others are kept as scored.

The versions, each dated by the commit that made the change:

1. 2026-11-22 (6fe1590). Rates (task accuracy, format compliance, hallucination rate, the forgetting check's
   accuracies) get a Wilson interval; field precision, recall and F1, ROUGE-L and the forgetting delta a seeded
   percentile bootstrap of 2,000 draws; macro-F1 none.
2. 2026-11-22 (343a311). Macro-F1 gets a seeded percentile bootstrap interval (1,000 draws, labels re-counted in
   each draw).
3. 2026-12-05 (aad5ae9). A share on which every example sits at 0 or at 1 (field scores, macro-F1, ROUGE-L: 26
   perfect extractions) gets the Wilson interval of n of n, where every bootstrap draw was the same and read
   [100, 100].
4. 2026-12-05 (3eead20). Each label's F1 gets an interval, from the macro-F1 bootstrap (before: none); one value of
   a graded score has no interval, where the bootstrap read [v, v].
5. 2026-12-05 (627fe23). The forgetting delta of 0/1 items (PIQA, GSM8K) takes McNemar's exact interval instead of
   a paired percentile bootstrap, which covered the true change about 87% of the time with 2 of 200 items changed,
   and read [0, 0] when none did.
6. 2026-12-05 (2b80a78). Expanded percentile bootstrap for non-0/1 means at small n (Hesterberg): ROUGE-L and field
   precision, recall and F1 take the percentiles that correct a plain percentile interval for being too narrow on few
   examples (`inference.expanded_alpha`; a mean of 10 ROUGE-like scores was covered 90% of the time, now 94.5%); from
   a few hundred examples on they read nearly as before. Macro-F1's interval is centred on the estimate (moved by
   what separates its draws' median from it), where with few examples a label it sat low.
7. 2026-12-07 (624245b). Macro-F1's bootstrap, and each label's F1 interval from it, resample within each true
   label, so every draw holds each label as often as the test set does. Drawn over all examples, a draw that missed a
   label's only test example averaged macro-F1 over the other labels: a model wrong on the one `legal` ticket of 60
   read 0.664 [0.655, 1.000].
8. 2026-12-07 (c6a4aa0). Macro-F1's bootstrap, and each label's F1 interval, draw how many examples of each label a
   draw holds as the plain bootstrap does (multinomial on the test set's label shares, at least one of each), then
   resample within each label. With each label's count fixed, a model that gave one label for every input scored the
   same in every draw and read 21.6 [21.6, 21.6] on 100 examples. Macro-F1 gets no interval (and no paired test)
   where the median test label has fewer than 4 examples or over a quarter of the labels have 1 or 2: a label of one
   example never varies in the draws, and such intervals held the truth in 0 to 30 of 40 simulated test sets.

A change to how any stored interval is computed bumps `STATS_RULES` and adds its entry to `VERSIONS` (and here).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from harness.core.records import TrialView

STATS_RULES = 8
"""The version of the interval rules this release scores with (see the module docstring)."""

LABEL_F1 = "per-label F1"
"""Not a metric row: the per-label F1 intervals of a trial's label reports, as a `Change` names them."""

_FIELDS = frozenset({"field_precision", "field_recall", "field_f1"})


@dataclass(frozen=True)
class Change:
    """One change to how stored intervals are computed."""

    words: str
    """What changed, as `harness show` and the dashboard say it."""
    metrics: frozenset[str]
    """The metrics whose stored intervals it changes (`LABEL_F1`: each label's F1)."""
    kept: tuple[str, ...]
    """Why a trial scored before it keeps its old interval (empty where the upgrade recomputed it)."""
    added: bool = False
    """It gave these metrics an interval they lacked: a trial scored before shows none, not a different one."""
    upgraded: bool = False
    """Migration m015 recomputed it exactly in every trial scored before versions were recorded."""


@dataclass(frozen=True)
class RulesVersion:
    version: int
    date: str
    """The day of the commit that made it (UTC)."""
    commit: str
    changes: tuple[Change, ...]


_REDRAW = "no command re-draws a stored trial's bootstrap"
VERSIONS: tuple[RulesVersion, ...] = (
    RulesVersion(1, "2026-11-22", "6fe1590", ()),
    RulesVersion(2, "2026-11-22", "343a311", (
        Change("macro-F1 got an interval", frozenset({"macro_f1"}), (_REDRAW,), added=True),)),
    RulesVersion(3, "2026-12-05", "aad5ae9", (
        Change("a share at 0 or 100% takes the Wilson interval of n of n, not [100, 100]",
               frozenset({"macro_f1", "rouge_l", *_FIELDS}), (), upgraded=True),)),
    RulesVersion(4, "2026-12-05", "3eead20", (
        Change("each label's F1 got an interval", frozenset({LABEL_F1}), (_REDRAW,), added=True),
        Change("one value of a graded score has no interval, not [v, v]", frozenset({"rouge_l"}), (),
               upgraded=True))),
    RulesVersion(5, "2026-12-05", "627fe23", (
        Change("the forgetting delta takes McNemar's exact interval, not a paired bootstrap",
               frozenset({"regression_delta"}), ("the forgetting check's per-item answers were not stored",)),)),
    RulesVersion(6, "2026-12-05", "2b80a78", (
        Change("ROUGE-L and field scores take the expanded percentile bootstrap, wider on few examples (Hesterberg)",
               frozenset({"rouge_l", *_FIELDS}), (_REDRAW, "field scores' per-example counts were not stored")),
        Change("macro-F1's interval is centred on the estimate (it sat low with few examples a label)",
               frozenset({"macro_f1"}), (_REDRAW,)))),
    RulesVersion(7, "2026-12-07", "624245b", (
        Change("macro-F1 and each label's F1 are resampled within each true label, so a label with one test example "
               "is in every draw (a model wrong on it read [0.655, 1.000])",
               frozenset({"macro_f1", LABEL_F1}), (_REDRAW,)),)),
    RulesVersion(8, "2026-12-07", "c6a4aa0", (
        Change("macro-F1 and each label's F1 draw each label's count as the plain bootstrap does (at least one of "
               "each), so a model giving one label everywhere no longer reads [v, v]; macro-F1 gets no interval with "
               "too few test examples a label (too narrow: it held the truth about half the time)",
               frozenset({"macro_f1", LABEL_F1}), (_REDRAW,)),)),
)


def rules_version(number: int) -> RulesVersion:
    """The entry of version `number`; ValueError for one this release does not know (a newer release's)."""
    for entry in VERSIONS:
        if entry.version == number:
            return entry
    raise ValueError(f"interval rules version {number} is not one this release knows (1 to {STATS_RULES})")


def changes_behind(trial: TrialView, names: Collection[str] | None = None) -> list[Change]:
    """The changes made since `trial` was scored that touch an interval it shows (of `names` only, when given): an
    interval it has, for a change of how one is computed; a missing one, for a change that added it. Empty for a
    trial scored under this release's rules (or a newer one's). A trial scored before versions were recorded may
    have been scored under any older rules, so every later change counts, except those its upgrade recomputed."""
    recorded = trial.stats_rules
    if recorded is not None and recorded >= STATS_RULES:
        return []
    shown = intervals_shown(trial)
    behind = []
    for entry in VERSIONS:
        if recorded is not None and entry.version <= recorded:
            continue
        for change in entry.changes:
            if change.upgraded and recorded is None:
                continue
            if _touches(change, shown, names):
                behind.append(change)
    return behind


def _touches(change: Change, shown: dict[str, bool], names: Collection[str] | None) -> bool:
    """A metric the change is about is shown with an interval (a change of rule), or without one (an added one)."""
    return any(name in shown and shown[name] != change.added for name in change.metrics
               if names is None or name in names)


def intervals_shown(trial: TrialView) -> dict[str, bool]:
    """Each measured metric of the trial (any split), and whether it has an interval; `LABEL_F1` where it has label
    reports, with whether they give each label's F1 an interval."""
    shown: dict[str, bool] = {}
    for metrics in trial.metrics.values():
        for name, metric in metrics.items():
            if metric.value is not None:
                shown[name] = shown.get(name, False) or metric.low is not None
    labels = [row for report in trial.label_reports.values() for row in report.labels.values() if row.f1 is not None]
    if labels:
        shown[LABEL_F1] = any(row.f1_low is not None for row in labels)
    return shown
