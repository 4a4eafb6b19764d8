"""Runs after a sweep, on a grid rather than through Optuna: repeated seeds and the learning curve.

- Repeated seeds re-run the top-k configurations (chosen on dev) with other seeds, so a lucky seed cannot win
  unseen. They are stored as study `<study>+seeds`.
- The learning curve re-trains the best configuration on growing subsets of train, and answers "would more
  labeled data pay?". It is stored as study `<study>+curve`.

Both are idempotent: re-running the sweep command skips what is already recorded.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from harness.store.database import Store, TrialRecord
from harness.sweep.retention import rank_key
from harness.sweep.trial import SweepData, run_trial
from harness.training.methods import get_method


def run_followups(data: SweepData, store: Store, study: str, run_id: str, echo: Callable = print) -> None:
    config = data.config
    finished = [t for t in store.list_trials(study) if t["status"] == "complete"]
    ranked = sorted(finished, key=rank_key, reverse=True)
    if config.repeats.top_k and ranked:
        for source in ranked[: config.repeats.top_k]:
            for seed in config.repeats.seeds:
                _run(data, store, f"{study}+seeds", run_id, source, {"seed": seed}, echo,
                     dataclasses.replace(data, config=dataclasses.replace(config, seed=seed)))
    trained = [t for t in ranked if t["trained"]]
    if config.learning_curve.sizes and trained:
        best = trained[0]
        order = random.Random(config.seed).sample(range(len(data.train)), len(data.train))
        for size in curve_sizes(config.learning_curve.sizes, len(data.train)):
            subset = tuple(data.train[i] for i in sorted(order[:size]))  # nested: each size extends the last
            _run(data, store, f"{study}+curve", run_id, best, {"train_examples": size}, echo,
                 dataclasses.replace(data, train=subset))


def curve_sizes(sizes: tuple[float, ...], available: int) -> list[int]:
    """Counts stay counts, fractions (< 1) become counts; capped at what train holds, deduplicated, ascending."""
    counts = {min(available, int(s) if s >= 1 else max(1, round(s * available))) for s in sizes}
    return sorted(counts)


def _run(data: SweepData, store: Store, study: str, run_id: str, source: dict, change: dict[str, Any],
         echo: Callable, variant: SweepData) -> None:
    params = {**source["params"], **change, "source_trial": source["id"]}
    existing = store.list_trials(study)
    if any(t["params"] == params and t["status"] == "complete" for t in existing):
        return
    number = len(existing)
    record = TrialRecord(
        id=f"{study}/{number}", study=study, number=number, run_id=run_id, method=source["method"],
        params=params, status="running", trained=get_method(source["method"]).trains,
        started_at=datetime.now(timezone.utc), device=data.device, details=data.details,
    )
    echo(f"{record.id}: {source['id']} again with {change}")
    store.record_trial_start(record)
    method_params = {k: v for k, v in params.items() if k not in ("source_trial", *change)}
    try:
        run_trial(variant, record, method_params, None, artifact_dir=None)
    except Exception as exc:
        store.mark_trial_failed(record.id, f"{type(exc).__name__}: {exc}")
        echo(f"{record.id}: failed - {type(exc).__name__}: {exc}")
        return
    store.record_trial_result(record)
