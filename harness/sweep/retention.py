"""Retention of saved adapters and models: keep the best k trials of a study (by dev objective), delete the rest."""

from __future__ import annotations

import shutil

from harness.store.database import Store


def apply(store: Store, study: str, keep_best: int) -> list[str]:
    """Delete the artifacts of all but the `keep_best` best trials; returns the trial ids whose files went."""
    kept = [t for t in store.list_trials(study) if t["artifact_path"]]
    ranked = sorted(kept, key=rank_key, reverse=True)
    removed = []
    for trial in ranked[keep_best:]:
        shutil.rmtree(trial["artifact_path"], ignore_errors=True)
        store.set_artifact_path(trial["id"], None)
        removed.append(trial["id"])
    return removed


def rank_key(trial: dict) -> tuple[bool, float]:
    """Feasible trials first, then the higher dev objective. Test scores never enter the ranking."""
    objective = trial.get("objective")
    return (bool(trial.get("feasible")), -1.0 if objective is None else objective)
