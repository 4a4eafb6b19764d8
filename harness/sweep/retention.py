"""Retention of saved adapters and models: keep the best k trials of a study (ranked on dev), delete the rest.

An adapter in staging or production is never deleted, whatever its rank: serving and rollback need its weights."""

from __future__ import annotations

import shutil

from harness.core.selection import rank_key
from harness.store.database import Store


def apply(store: Store, study: str, keep_best: int) -> list[str]:
    """Delete the artifacts of all but the `keep_best` best trials; returns the trial ids whose files went."""
    serving = {trial for trial, status in store.adapter_statuses().items() if status in ("staging", "production")}
    kept = sorted((t for t in store.trials(study) if t.artifact_path and t.id not in serving), key=rank_key,
                  reverse=True)
    removed = []
    for trial in kept[keep_best:]:
        shutil.rmtree(trial.artifact_path, ignore_errors=True)
        store.set_artifact_path(trial.id, None)
        removed.append(trial.id)
    return removed
