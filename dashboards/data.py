"""What the pages read from the results store, and the tables they build from it.

Reads go through `harness.store.database.Store`, whose short read-only connections let the dashboard poll while a sweep
writes. Results are cached for a few seconds so a page with several widgets does not reopen the file on every
rerun, yet a running sweep shows up without restarting the server. Nothing here writes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from harness.analysis import report
from harness.core.paths import DASHBOARD_DB_ENV
from harness.evaluation.scorers import get_scorer, scorer_names
from harness.store.database import DEFAULT_DB, Store

TTL_S = 5
JOURNAL = "optuna-journal.log"


def db_path() -> Path:
    return Path(os.environ.get(DASHBOARD_DB_ENV) or DEFAULT_DB)


def journal_path() -> Path:
    """The sweep writes its Optuna journal next to the database (`<results_dir>/optuna-journal.log`)."""
    return db_path().parent / JOURNAL


def store() -> Store:
    return Store(db_path(), lock_timeout_s=10)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def trials(db: str, study: str | None = None) -> list[dict]:
    return Store(db).list_trials(study)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def trial(db: str, trial_id: str) -> dict | None:
    return Store(db).get_trial(trial_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def verdict_text(db: str, study: str) -> str:
    return report.verdict(Store(db), Store(db).list_trials(study)).text


def study_names(all_trials: list[dict]) -> list[str]:
    """Main studies first; `+seeds` and `+curve` follow-ups after, so the default is a real sweep."""
    names = sorted({t["study"] for t in all_trials})
    return sorted(names, key=lambda s: ("+" in s, s))


# -- tables ---------------------------------------------------------------------------------------------------


def leaderboard_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per trial in rank order (dev, feasible first), every core metric as value [95% CI] n, per split."""
    out = []
    for rank, t in enumerate(report.ranked(rows), start=1):
        row = {"rank": rank, "trial": t["id"], "method": t["method"], "params": report.params_text(t["params"]),
               "status": status_text(t)}
        for split in ("dev", "test"):
            for name in report.CORE:
                metric = t["metrics"].get(split, {}).get(name)
                row[f"{split.upper()} {name}"] = (
                    "not trained" if name == "regression_delta" and not t["trained"]
                    else report.fmt_metric(metric, signed=name == "regression_delta")
                )
        row["train s"] = round(t["train_seconds"] or 0.0, 1)
        row["eval s"] = round(t["eval_seconds"] or 0.0, 1)
        out.append(row)
    return pd.DataFrame(out)


def status_text(t: dict) -> str:
    if t["status"] != "complete":
        return t["status"] + (f": {t['failure_reason']}" if t["failure_reason"] else "")
    return "ok" if t["feasible"] else "infeasible"


def best_adapter(rows: list[dict]) -> dict | None:
    """The best trained trial that meets every dev constraint, ranked on dev."""
    return next((t for t in report.ranked(rows) if t["trained"] and t["status"] == "complete" and t["feasible"]),
                None)


def sweep_seconds(rows: list[dict]) -> tuple[float, float]:
    return sum(t["train_seconds"] or 0.0 for t in rows), sum(t["eval_seconds"] or 0.0 for t in rows)


def accuracy_points(rows: list[dict], split: str, cost: dict[str, float] | None = None) -> pd.DataFrame:
    """Complete trials as points for the Pareto plot: cost (dollars if given, else seconds) and accuracy."""
    out = []
    for t in rows:
        metric = t["metrics"].get(split, {}).get("task_accuracy")
        if t["status"] != "complete" or not metric or metric.get("value") is None:
            continue
        seconds = (t["train_seconds"] or 0.0) + (t["eval_seconds"] or 0.0)
        out.append({"trial": t["id"], "method": t["method"], "params": report.params_text(t["params"]),
                    "cost": cost[t["id"]] if cost else seconds, "accuracy": metric["value"] * 100,
                    "low": _pct(metric.get("low")), "high": _pct(metric.get("high")),
                    "feasible": bool(t["feasible"])})
    frame = pd.DataFrame(out, columns=["trial", "method", "params", "cost", "accuracy", "low", "high", "feasible"])
    frame["pareto"] = pareto_mask(frame)
    return frame


def pareto_mask(frame: pd.DataFrame) -> list[bool]:
    """True for a feasible trial that no other feasible trial beats on cost and accuracy at once.

    Infeasible trials (breaking a dev constraint) never win, so they are neither on the front nor push others off.
    """
    points = [(c, a) for c, a, ok in zip(frame["cost"], frame["accuracy"], frame["feasible"]) if ok]
    return [bool(ok) and not any(c2 <= c and a2 >= a and (c2, a2) != (c, a) for c2, a2 in points)
            for c, a, ok in zip(frame["cost"], frame["accuracy"], frame["feasible"])]


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100


def metrics_frame(t: dict) -> pd.DataFrame:
    """Every stored metric of one trial: rows by name, one column per split."""
    names = sorted({n for split in t["metrics"].values() for n in split})
    return pd.DataFrame(
        [{"metric": n, **{split: report.fmt_metric(m.get(n), signed=n == "regression_delta")
                          for split, m in t["metrics"].items()}} for n in names]
    )


def label_reports(details: dict) -> dict[str, dict]:
    """`details["labels"]` as {split: label_report} (the trial stores {"dev": ..., "test": ...}, None for a
    non-label suite); a bare report is read as test."""
    labels = details.get("labels")
    if not isinstance(labels, dict):
        return {}
    if "confusion" in labels or "labels" in labels:
        return {"test": labels}
    return {k: v for k, v in labels.items() if isinstance(v, dict) and ("confusion" in v or "labels" in v)}


def examples_frame(examples: list[dict], split: str | None, query: str, failing_only: bool) -> pd.DataFrame:
    """Per-example outputs with pass/fail per scorer, filtered by split, a search string and failures."""
    needle = query.strip().casefold()
    names = sorted({n for e in examples for n in (e["scores"] or {})}, key=lambda n: (n != "task_accuracy", n))
    out = []
    for e in examples:
        if split and e["split"] != split:
            continue
        if failing_only and e["scores"].get("task_accuracy"):
            continue
        text = " ".join(str(e[k]) for k in ("example_id", "input", "target", "output")).casefold()
        if needle and needle not in text:
            continue
        row = {k: e[k] for k in ("split", "example_id", "input", "target", "output")}
        row.update({n: verdict_cell(n, e["scores"].get(n), n in scorer_names()) for n in names})
        out.append(row)
    return pd.DataFrame(out, columns=["split", "example_id", "input", "target", "output", *names])


def verdict_cell(name: str, value: float | None, known: bool) -> str:
    """`pass` / `fail` for 0-1 scores read in the scorer's direction, the number otherwise, `-` for n/a."""
    if value is None:
        return "-"
    if known and value in (0.0, 1.0):
        good = value == 1.0 if get_scorer(name).higher_is_better else value == 0.0
        return "pass" if good else "fail"
    return f"{value:.3g}"


def current_study(rows: list[dict]) -> str:
    """The study picked in the sidebar (app.py), else the first main study."""
    names = study_names(rows)
    chosen = st.session_state.get("study")
    return chosen if chosen in names else names[0]


def require_trials() -> list[dict]:
    """All trials, or a note on how to make some and a stop: every page needs at least one."""
    rows = trials(str(db_path()))
    if not rows:
        st.info(f"No trials in `{db_path()}` yet. Run a sweep first, e.g. `harness sweep experiments/demo.yaml`, "
                "or point the dashboard at another database with `harness dashboard --db PATH`.")
        st.stop()
    return rows
