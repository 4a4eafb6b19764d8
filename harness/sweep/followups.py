"""Runs after a sweep, on a grid rather than through Optuna: repeated seeds and the learning curve.

- Repeated seeds re-run the top-k configurations (chosen on dev) with other seeds, so a lucky seed cannot win
  unseen. They form the study `<study>+seeds`, of kind `seeds`, whose parent is the sweep's study.
- The learning curve re-trains the best trained configuration on growing subsets of train, and answers "would more
  labeled data pay?". It forms the study `<study>+curve`, of kind `curve`.

Both are idempotent: re-running the sweep command skips what is already recorded. Their trials keep their weights
under the same retention rule as the sweep's, so `harness predict` works on them too.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from harness.core.config import ExperimentConfig, LearningCurveConfig
from harness.core.records import StudyRecord, TrialRecord, TrialView, trial_id
from harness.core.redaction import Redactor, redact_rows
from harness.core.selection import ranked
from harness.data.suites import Example, Suite, seeded_subset
from harness.store.database import Store
from harness.sweep import retention
from harness.sweep.plan import SweepPlan
from harness.sweep.prepare import SweepData
from harness.sweep.trial import run_trial
from harness.training.methods import METHODS


def run_followups(data: SweepData, plan: SweepPlan, store: Store, run_id: str, echo: Callable = print) -> None:
    config = data.config
    finished = [t for t in ranked(store.trials(plan.study)) if t.complete]
    if config.repeats.top_k and finished:
        study = _followup_study(store, plan, "seeds")
        for source in finished[: config.repeats.top_k]:
            for seed in config.repeats.seeds:
                _run(data.with_config(dataclasses.replace(config, seed=seed)), plan, store, study, run_id, source,
                     {"seed": seed}, echo)
    trained = [t for t in finished if t.trained]
    if config.learning_curve.sizes and trained:
        study = _followup_study(store, plan, "curve")
        for size in curve_sizes(config.learning_curve.sizes, len(data.train)):
            _run(dataclasses.replace(data, train=curve_subset(data.train, size, config.seed)), plan, store, study,
                 run_id, trained[0], {"train_examples": size}, echo)


def curve_subset(train: tuple[Example, ...], size: int, seed: int) -> tuple[Example, ...]:
    """The first `size` of one seeded order, in split order: nested, so each size extends the last."""
    order = random.Random(seed).sample(range(len(train)), len(train))
    return tuple(train[i] for i in sorted(order[:size]))


def trained_on(config: ExperimentConfig, suite: Suite, params: dict[str, Any]) -> tuple[Example, ...]:
    """The train examples a trial of this study trained on: the seeded train subset, or its learning-curve slice."""
    train = seeded_subset(suite.splits["train"], config.data.train_limit, config.seed)
    size = params.get("train_examples")
    return train if size is None else curve_subset(train, int(size), config.seed)


def curve_sizes(sizes: tuple[int | float, ...], available: int) -> list[int]:
    """The distinct train-example counts of the curve's points, ascending: an int is a count (capped at the
    `available` train examples), a float a fraction of them (1.0 is all of them)."""
    return list(LearningCurveConfig(tuple(sizes)).counts(available))


def _followup_study(store: Store, plan: SweepPlan, kind: str) -> str:
    parent = store.study(plan.study)
    name = f"{plan.study}+{kind}"
    recorded, gate = parent.suite_gate
    store.record_study(StudyRecord(
        name=name, experiment_name=parent.experiment_name, experiment=dict(parent.experiment), suite=parent.suite,
        suite_version=parent.suite_version, suite_path=parent.suite_path, model_name=parent.model_name,
        model_sha256=parent.model_sha256, model_note=parent.model_note, objective_metric=parent.objective_metric,
        maximize=parent.maximize, kind=kind, parent=plan.study,
        notes={"suite_gate": gate} if recorded else {},  # the parent's gate bar, as its study recorded it
    ))  # fmt: skip
    return name


def _run(variant: SweepData, plan: SweepPlan, store: Store, study: str, run_id: str, source: TrialView,
         change: dict[str, Any], echo: Callable) -> None:
    params = {**source.params, **change, "source_trial": source.id}
    existing = store.trials(study)
    if any(t.params == params and t.complete for t in existing):
        return
    number = len(existing)
    record = TrialRecord(
        id=trial_id(study, number), study=study, number=number, run_id=run_id, method=source.method,
        params=params, trained=METHODS.get(source.method).trains, started_at=datetime.now(timezone.utc),
        device="hosted" if METHODS.get(source.method).hosted else variant.device, provenance=variant.provenance,
    )  # fmt: skip
    echo(f"{record.id}: {source.id} again with {change}")
    store.record_trial_start(record)
    method_params = {k: v for k, v in params.items() if k not in ("source_trial", *change)}
    redactor = Redactor.from_config(plan.config.redaction)
    try:
        run_trial(variant, record, method_params, None, plan.results_dir / "artifacts" / study / str(number))
    except Exception as exc:
        reason = redactor.redact(f"{type(exc).__name__}: {exc}")  # an error may quote an input, as in the sweep
        store.mark_trial_failed(record.id, reason, hosted=getattr(exc, "usage", None))
        echo(f"{record.id}: failed - {reason}")
        return
    record.examples = redact_rows(record.examples, redactor)
    store.record_trial_result(record)
    retention.apply(store, study, plan.config.retention.keep_best)
