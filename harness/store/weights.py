"""Whether a trained trial's saved weights are still where the results database says, and still the ones it was
scored with; if not, why not and what to do: the one message every command that loads an adapter gives (promote,
rollback, export, audit, recheck, predict)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.core.records import StudyView, TrialView

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
"""Files a folder added since its trial was saved are named when they hold weights: a loader may pick them up."""


def folder_sha256(folder: Path) -> dict[str, str]:
    """{path relative to `folder`: sha256} of every regular file in it, as the trial's record keeps them."""
    hashes = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        hashes[path.relative_to(folder).as_posix()] = digest.hexdigest()
    return hashes


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
    return _changed(trial, again)


def _changed(trial: TrialView, again: str) -> str | None:
    """Why the weights in the trial's folder are not the ones it was saved and scored with, or None when they are
    (or the trial was saved before releases kept their sha256). Files swapped in the folder were predicted with,
    promoted, exported and audited under the trial's scores, and `audit --verify` passed the pack."""
    if not trial.weights_sha256:
        return None
    now = folder_sha256(trial.artifact_path)
    gone = [name for name in trial.weights_sha256 if name not in now]
    edited = [name for name, digest in trial.weights_sha256.items() if name in now and now[name] != digest]
    added = [name for name in now if name not in trial.weights_sha256 and name.endswith(WEIGHT_SUFFIXES)]
    if not (gone or edited or added):
        return None
    what = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in (("changed", edited), ("missing", gone),
                                                                      ("added", added)) if names)
    return (f"trial {trial.id}'s weights in {trial.artifact_path} are not the ones it was trained and scored with "
            f"({what}; the sha256 of each file was recorded when it was saved). Its scores do not describe them, so "
            f"nothing is loaded, promoted or exported from them. Put the saved files back (from a backup), or {again}.")
