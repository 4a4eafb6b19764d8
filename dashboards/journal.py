"""Optuna's view of a sweep: optimisation history and parameter importance, read from the journal file.

The sweep's journal (`<results_dir>/optuna-journal.log`) is opened only when it exists: Optuna's file backend
creates a missing file, and the dashboard must not write. Loading a study replays the log without appending.
Results are cached by the file's size and mtime, so a growing journal is re-read and an idle one is not.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import streamlit as st


def load(path: Path, study: str) -> dict:
    """{"note": why there is nothing to show} or {"history": [...], "importance": {...}, "notes": [...]}."""
    if not path.is_file():
        return {"note": f"No Optuna journal at {path}: parameter importance and history need the sweep's journal "
                        "(a sweep with --storage elsewhere keeps it there)."}
    stat = path.stat()
    return _load(str(path), study, stat.st_size, stat.st_mtime_ns)


@st.cache_data(ttl=30, show_spinner=False)
def _load(path: str, study: str, _size: int, _mtime: int) -> dict:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if study not in names:
        return {"note": f"Study {study!r} is not in the Optuna journal {path} (it has: {', '.join(names) or 'none'})."}
    loaded = optuna.load_study(study_name=study, storage=storage)
    done = [t for t in loaded.trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    history, best = [], None
    for t in sorted(done, key=lambda t: t.number):
        feasible = all(c <= 0 for c in t.system_attrs.get("constraints", []) or [])
        if feasible and (best is None or t.value > best):
            best = t.value
        history.append({"trial": t.number, "value": t.value * 100, "method": t.params.get("method", "?"),
                        "feasible": feasible, "best feasible so far": None if best is None else best * 100})
    importance, notes = {}, []
    if len(done) < 3:
        notes.append(f"Parameter importance needs at least 3 completed trials; study {study!r} has {len(done)}.")
    else:
        importance = _importances(loaded, done, notes)
    return {"history": history, "importance": importance, "notes": notes, "n_complete": len(done)}


def _importances(study: optuna.Study, done: list, notes: list[str]) -> dict[str, dict[str, float]]:
    """fANOVA importance within each method, over its own parameters (Optuna names them `<method>.<param>`).

    Across methods the parameters are conditional, and with one varying parameter the answer is trivially 1.0,
    so a method needs at least 3 completed trials and 2 parameters that vary.
    """
    out = {}
    for method in sorted({t.params.get("method") for t in done} - {None}):
        mine = [t for t in done if t.params.get("method") == method]
        varying = sorted(k for k in set().union(*(t.params for t in mine)) - {"method"}
                         if len({repr(t.params.get(k)) for t in mine}) > 1)
        if len(mine) < 3 or len(varying) < 2:
            notes.append(f"{method}: no parameter importance ({len(mine)} completed trial(s), {len(varying)} varying "
                         "parameter(s); it needs at least 3 trials and 2 parameters that vary).")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[method] = optuna.importance.get_param_importances(study, params=varying)
        except (ValueError, RuntimeError) as exc:
            notes.append(f"{method}: importance not computable ({exc}).")
    return out
