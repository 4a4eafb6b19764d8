"""`harness recheck SUITE [--data FILE]`: has production drifted? Re-score the suite's production adapter on the
suite's current test data (the same seeded subset it was scored on) or on a new labelled file, compare with the
scores recorded when it was promoted, and say whether the change is beyond noise. The re-check goes into the
adapter's history.

On the same examples the comparison is paired (the tight test); on new examples it is unpaired, each sample
resampled on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.analysis.formatting import fmt_metric, points
from harness.core.config import ExperimentConfig
from harness.core.errors import HarnessError
from harness.core.metric import Metric
from harness.core.records import AdapterEvent
from harness.core.typed import build
from harness.data.suites import load_examples, seeded_subset
from harness.evaluation.scoring import score_split
from harness.evaluation.stats import paired_bootstrap_diff, proportion, unpaired_bootstrap_diff
from harness.lifecycle.promote import check_weights
from harness.store.database import Store
from harness.sweep.predict import load_candidate


@dataclass(frozen=True)
class Recheck:
    trial: str
    suite: str
    data: str
    """`the suite's test subset` or the file re-scored."""
    paired: bool
    before: Metric
    """Test task accuracy as recorded for the trial (when it was scored, before promotion)."""
    now: Metric
    change: Metric
    """now - before, with its 95% interval (paired on the same examples, else unpaired)."""
    beyond_noise: bool
    metrics: dict[str, Metric]
    """Every metric of the re-scored data."""

    def text(self) -> str:
        how = "paired over the same examples" if self.paired else "unpaired: different examples"
        if not self.beyond_noise:
            reading = "no change beyond noise (the interval includes 0)"
        else:
            reading = "a DROP beyond noise" if self.change.value < 0 else "a rise beyond noise"
        return (f"re-check of {self.trial} (production for {self.suite}) on {self.data}: task accuracy now "
                f"{fmt_metric(self.now)}, recorded {fmt_metric(self.before)}; change {points(self.change)} ({how}): "
                f"{reading}.")


def recheck(store: Store, suite: str, actor: str, data: Path | None = None, batch_size: int = 16) -> Recheck:
    production = store.production(suite)
    if production is None:
        raise HarnessError(f"suite {suite} has no production adapter to re-check; promote one with "
                           "`harness promote TRIAL --to production --approver NAME`.")
    trial = store.require_trial(production, complete=True)
    check_weights(store, trial)
    study = store.study(trial.study)
    config = build(ExperimentConfig, dict(study.experiment), f"study {study.name}")
    candidate, loaded_suite, cap = load_candidate(store, trial.id)
    if data is None:
        examples = seeded_subset(loaded_suite.splits["test"], config.data.test_limit, config.seed)
        label = f"the suite's test subset ({len(examples)} examples)"
    else:
        examples, _ = load_examples(Path(data), loaded_suite.contract, "recheck")
        label = f"{data} ({len(examples)} examples)"
    answers = candidate.answer(examples, cap, batch_size, desc="recheck")
    scores = score_split(examples, [a.output for a in answers], loaded_suite, config.seed)
    now = [row["task_accuracy"] or 0.0 for row in scores.per_example]
    recorded = {e.example_id: e for e in store.examples(trial.id, "test")}
    same = [recorded.get(ex.id) for ex in examples]
    paired = all(r is not None and (r.input, r.target) == (ex.input, ex.target) for r, ex in zip(same, examples))
    if paired:
        before = [float(r.scores.get("task_accuracy") or 0.0) for r in same]
        change = paired_bootstrap_diff(now, before, seed=config.seed)
    else:
        before = [float(r.scores.get("task_accuracy") or 0.0) for r in recorded.values()]
        change = unpaired_bootstrap_diff(now, before, seed=config.seed)
    result = Recheck(trial.id, suite, label, paired, proportion(before), proportion(now), change,
                     change.low is not None and not change.low <= 0 <= change.high, dict(scores.metrics))
    store.record_adapter_events([AdapterEvent(
        trial.id, suite, "production", "production", "recheck", actor, result.text(),
        detail={"data": label, "paired": paired, "before": result.before.to_dict(), "now": result.now.to_dict(),
                "change": change.to_dict(), "beyond_noise": result.beyond_noise,
                "metrics": {k: v.to_dict() for k, v in result.metrics.items()}})])
    return result

