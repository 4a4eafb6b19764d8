"""Whether a trained trial's saved weights are still where the results database says, and if not, why not and what
to do: the one message every command that loads an adapter gives (promote, rollback, export, audit, recheck,
predict)."""

from __future__ import annotations

from harness.core.records import StudyView, TrialView


def missing_weights(trial: TrialView, study: StudyView | None = None) -> str | None:
    """Why a trained trial has no saved weights to load, with the fix that fits, or None when they are there.
    Retention clears the path it deletes (`sweep/retention.py`), so a path still recorded whose folder is gone was
    moved or deleted by hand: that wants the folder put back, and a larger keep_best would not have helped."""
    if not trial.trained:
        return None
    experiment = (study.config_path if study else None) or "EXPERIMENT"
    again = (f"train its configuration again in a new study (a study runs each configuration once): `harness sweep "
             f"{experiment} --study NEW_NAME`, with its parameters (`harness show {trial.id}`) under `enqueue:`")
    if trial.artifact_path is None:
        return (f"trial {trial.id} has no saved weights: retention removed them after its sweep (a study keeps the "
                "weights of its best `retention.keep_best` trials, and of any adapter in staging or production). To "
                f"use it, {again}; raise retention.keep_best in the experiment to keep more next time.")
    if not trial.artifact_path.is_dir():
        return (f"trial {trial.id} has no saved weights: {trial.artifact_path} is missing, and retention did not "
                f"remove it (it was moved or deleted outside the harness). Put the folder back at that path, or "
                f"{again}.")
    return None
