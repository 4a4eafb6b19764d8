"""What the pages read from the results store, and the tables they build from it.

Reads go through `harness.store.database.Store`, whose short read-only connections let the dashboard poll while a
sweep writes; they return the store's typed views (`TrialView`, `StudyView`, ...). Results are cached for a few
seconds so a page with several widgets does not reopen the file on every rerun, yet a running sweep shows up
without restarting the server. Every number is formatted by `harness.analysis.formatting`. Nothing here writes a
result; the one write is the record of a compare on test, a look at test (`record_compare_look`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import streamlit as st

from harness.analysis.decision_report import build_report, pick_study, to_markdown, to_pdf
from harness.analysis.formatting import (
    fmt_metric,
    marked,
    params_text,
    points,
    regression_text,
    score_cell,
    status_text,
    under_trained_text,
    usd,
)
from harness.analysis.report import AdapterRow, adapters, suite_metrics
from harness.analysis.verdict import Verdict
from harness.analysis.verdict import study_verdict as verdict_of
from harness.core.metric import CORE_METRICS
from harness.core.paths import DASHBOARD_DB_ENV
from harness.core.records import AdapterEvent, ExampleView, RunView, StudyView, TrialView
from harness.core.selection import IMPORTANCE_MIN_TRIALS, IMPORTANCE_MIN_VARYING, best, ranked
from harness.core.text import markdown_literal
from harness.store import seal
from harness.store.database import DEFAULT_DB, Store

TTL_S = 5
FOLLOWUP_WORDS = {"seeds": "repeated seeds", "curve": "learning curve"}
"""When the sweep computes a method's parameter importance (harness.sweep.importance); used here only to say why a
method has none."""


def db_path() -> Path:
    return Path(os.environ.get(DASHBOARD_DB_ENV) or DEFAULT_DB)


def store() -> Store:
    return Store(db_path(), lock_timeout_s=10)


# -- cached reads ---------------------------------------------------------------------------------------------


@st.cache_data(ttl=TTL_S, show_spinner=False)
def studies(db: str) -> list[StudyView]:
    return Store(db).studies()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def seal_warnings(db: str) -> list[str]:
    """Trials whose evidence no longer matches the seal written when they were scored: every page reads them."""
    return seal.seal_warnings(Store(db).seals())


@st.cache_data(ttl=TTL_S, show_spinner=False)
def trials(db: str, study: str | None = None) -> list[TrialView]:
    return Store(db).trials(study)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def trial(db: str, trial_id: str) -> TrialView | None:
    return Store(db).trial(trial_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def examples(db: str, trial_id: str) -> list[ExampleView]:
    return Store(db).examples(trial_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def runs(db: str, run_ids: tuple[str, ...]) -> dict[str, RunView]:
    return Store(db).runs(run_ids)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def followups(db: str, study: str) -> dict[str, StudyView]:
    return Store(db).followups(study)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def importance(db: str, study: str) -> dict[str, dict[str, float]]:
    return Store(db).importance(study)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def study_verdict(db: str, study: str) -> Verdict:
    return verdict_of(Store(db), study)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def decision_report(db: str, study: str) -> tuple[str, bytes]:
    """`harness report` of the study, unpriced (the Cost page prices it): read once, as Markdown and as a PDF."""
    store = Store(db)
    made = build_report(store, pick_study(store, study), None, datetime.now(timezone.utc))
    return to_markdown(made), to_pdf(made)


def record_compare_look(result) -> None:
    """Record a compare on test as a look at test, once per pair in this browser session (a rerun of the page is
    not another look)."""
    if result.split != "test":
        return
    seen = st.session_state.setdefault("recorded-looks", set())
    if (result.a.id, result.b.id) in seen:
        return
    from harness.analysis.compare import comparison_look

    writable = store()
    writable.record_look(comparison_look(writable, result, os.environ.get("USER") or "dashboard"))
    seen.add((result.a.id, result.b.id))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def registry(db: str) -> tuple[list[AdapterRow], list[AdapterEvent]]:
    store = Store(db)
    return adapters(store), store.adapter_events()


def registry_frame(rows: list[AdapterRow]) -> pd.DataFrame:
    """One row per adapter: suite, status, how its trial ended, its test metrics with intervals, its latest
    change."""
    out = []
    for row in rows:
        t, last = row.trial, row.last
        out.append({"suite": row.suite, "status": row.status, "trial": t.id, "method": t.method,
                    "trial result": status_text(t),  # an under-trained or infeasible candidate says so here
                    **{f"TEST {name}": metric_cell(t, "test", name) for name in CORE_METRICS},
                    "since": "-" if last is None else f"{last.at:%Y-%m-%d %H:%M} by {last.actor}",
                    "why": "" if last is None else last.note or ""})
    return pd.DataFrame(out, columns=["suite", "status", "trial", "method", "trial result",
                                      *[f"TEST {name}" for name in CORE_METRICS], "since", "why"])


def history_frame_of(events: list[AdapterEvent]) -> pd.DataFrame:
    """Every registry change, newest first: who, when, why and the gate's result."""
    # `by` names the approver in their own words; the system account that wrote the event is the evidence, as
    # `harness registry --history` shows it
    out = [{"when (UTC)": f"{e.at:%Y-%m-%d %H:%M}", "trial": e.trial_id, "suite": e.suite, "action": e.action,
            "change": e.status if e.action == "recheck" else f"{e.previous} -> {e.status}",
            "by": e.actor if e.os_account is None else f"{e.actor} (run by {e.os_account})",
            "why": e.note or "", "gate": e.gate_outcome or "-"} for e in reversed(events)]
    return pd.DataFrame(out, columns=["when (UTC)", "trial", "suite", "action", "change", "by", "why", "gate"])


def runs_of(rows: Iterable[TrialView]) -> dict[str, RunView]:
    """The run environments (device name, cores) of these trials, by run_id."""
    return runs(str(db_path()), tuple(sorted({t.run_id for t in rows if t.run_id})))


# -- studies --------------------------------------------------------------------------------------------------


def study_names(views: Sequence[StudyView], rows: Iterable[TrialView] = ()) -> list[str]:
    """Sweep studies first, then the follow-ups (repeated seeds, learning curve), so the default is a real sweep.

    A study that has trials but no study row (written by hand, or half-recorded) is listed as a sweep."""
    by_name = {s.name: s for s in views}
    names = set(by_name) | {t.study for t in rows}

    def key(name: str) -> tuple[bool, str, str]:
        view = by_name.get(name)
        followup = view is not None and view.kind != "sweep"
        return followup, (view.parent or "") if followup else name, name

    return sorted(names, key=key)


def study_label(views: Sequence[StudyView], name: str) -> str:
    """`demo+curve (learning curve of demo)` for a follow-up, the name alone for a sweep."""
    view = next((s for s in views if s.name == name), None)
    if view is None or view.kind == "sweep":
        return name
    return f"{name} ({FOLLOWUP_WORDS.get(view.kind, view.kind)} of {view.parent})"


def current_study(rows: list[TrialView]) -> str:
    """The study picked in the sidebar (app.py), else the first sweep study."""
    names = study_names(studies(str(db_path())), rows)
    chosen = st.session_state.get("study")
    return chosen if chosen in names else names[0]


def study_view(name: str) -> StudyView | None:
    return next((s for s in studies(str(db_path())) if s.name == name), None)


def main_study(name: str) -> str:
    """The sweep a study belongs to: its parent for a follow-up, itself otherwise."""
    view = study_view(name)
    return view.parent if view is not None and view.kind != "sweep" and view.parent else name


def require_trials() -> list[TrialView]:
    """All trials, or a note on how to make some and a stop: every page needs at least one."""
    rows = trials(str(db_path()))
    if not rows:
        st.info(f"No trials in `{db_path()}` yet. Run a sweep first, e.g. `harness sweep experiments/demo.yaml`, "
                "or point the dashboard at another database with `harness dashboard --db PATH`.")
        st.stop()
    return rows


# -- tables ---------------------------------------------------------------------------------------------------


def metric_cell(t: TrialView, split: str, name: str) -> str:
    """A metric as `value% [95% CI] n`; the forgetting check says `not trained` or `not measured` instead of 0."""
    metric = t.metric(split, name)
    if name != "regression_delta":
        return fmt_metric(metric, name=name)
    if not (t.trained and metric and metric.measured):
        return regression_text(t, split)
    return f"{points(metric)} n={metric.n}"  # a difference, in points, as `harness show` gives it


def leaderboard_frame(rows: list[TrialView]) -> pd.DataFrame:
    """One row per trial in rank order (dev, feasible first), every core metric as value [95% CI] n, per split; an
    interval older rules may have computed is marked (`formatting.OLDER_RULES_CAPTION`)."""
    out = []
    shown = (*CORE_METRICS, *suite_metrics(rows))  # a free-text suite's ROUGE-L, an extraction's field F1
    for rank, t in enumerate(ranked(rows), start=1):
        row = {"rank": rank, "trial": t.id, "method": t.method, "params": params_text(t.params),
               "status": status_text(t)}
        for split in ("dev", "test"):
            row.update({f"{split.upper()} {name}": marked(metric_cell(t, split, name), t, name) for name in shown})
        row["train s"] = round(t.train_seconds or 0.0, 1)
        row["eval s"] = round(t.eval_seconds or 0.0, 1)
        out.append(row)
    return pd.DataFrame(out)


def best_adapter(rows: list[TrialView]) -> TrialView | None:
    """The best trained trial that meets every dev constraint, ranked on dev."""
    return best(rows, trained=True, feasible_only=True)


def default_trial(study_rows: list[TrialView], ids: Sequence[str]) -> str:
    """The Trial page's first trial: the study's best adapter, else its best-ranked trial (a prompting-only study, or
    one whose adapters all broke a constraint), so the page never opens on another study's trial."""
    chosen = best_adapter(study_rows) or next(iter(ranked(study_rows)), None)
    return chosen.id if chosen is not None and chosen.id in ids else ids[0]


def compare_pair(study_rows: list[TrialView], everything: list[TrialView]) -> tuple[str, str | None]:
    """The Compare page's default A and B: the study's best adapter against its best prompting arm, else its two
    best complete trials; B is None when the study has only one complete trial (a trial of another study may be
    scored on other examples, so none is picked for the user)."""
    finished = [t for t in ranked(study_rows) if t.complete]
    if not finished:
        finished = [t for t in everything if t.complete]
    first = next((t for t in finished if t.trained), finished[0])
    second = next((t for t in finished if not t.trained and t is not first),
                  next((t for t in finished if t is not first), None))
    return first.id, None if second is None else second.id


def trial_notice(t: TrialView) -> str | None:
    """Why a trial's numbers are missing or do not stand for its method, for the top of its page; None if they do."""
    if t.status in ("failed", "pruned"):
        scores = ("Its scores below are from a run stopped early" if t.metrics else "It has no scores")
        why = markdown_literal(t.failure_reason or "no reason recorded")
        return f"This trial {t.status}: {why}. {scores}; the verdict and the gate leave it out."
    if t.status == "running":
        return "This trial is still running (or its sweep stopped): its scores appear here when it finishes."
    if t.under_trained:
        return (f"{under_trained_text(t).capitalize()}: its time cap (budget.trial_train_seconds) stopped it, so its "
                "scores describe a cut-short run, not the method; the verdict and the gate do not use it.")
    return None


def accuracy_points(rows: list[TrialView], split: str, cost: dict[str, float] | None = None) -> pd.DataFrame:
    """Complete trials as points for the Pareto plot: cost (dollars if given, else device seconds) and accuracy
    in %."""
    out = []
    for t in rows:
        metric = t.metric(split, "task_accuracy")
        if not t.complete or metric is None or not metric.measured:
            continue
        low, high = (metric.value if end is None else end for end in (metric.low, metric.high))
        spent = cost[t.id] if cost else t.device_seconds
        out.append({"trial": t.id, "method": t.method, "params": params_text(t.params), "cost": spent,
                    "cost shown": usd(spent) if cost else f"{spent:,.0f} s", "accuracy": metric.value * 100,
                    "low": low * 100, "high": high * 100, "feasible": bool(t.feasible)})
    frame = pd.DataFrame(out, columns=["trial", "method", "params", "cost", "cost shown", "accuracy", "low", "high",
                                       "feasible"])
    frame["pareto"] = pareto_mask(frame)
    return frame


def pareto_mask(frame: pd.DataFrame) -> list[bool]:
    """True for a feasible trial that no other feasible trial beats on cost and accuracy at once.

    Infeasible trials (breaking a dev constraint) never win, so they are neither on the front nor push others off.
    """
    points = [(c, a) for c, a, ok in zip(frame["cost"], frame["accuracy"], frame["feasible"]) if ok]
    return [bool(ok) and not any(c2 <= c and a2 >= a and (c2, a2) != (c, a) for c2, a2 in points)
            for c, a, ok in zip(frame["cost"], frame["accuracy"], frame["feasible"])]


def metrics_frame(t: TrialView) -> pd.DataFrame:
    """Every stored metric of one trial: rows by name, one column per split; an interval that older rules than this
    release's may have computed is marked (`formatting.rules_note` says how)."""
    names = sorted({name for split in t.metrics.values() for name in split})
    return pd.DataFrame([{"metric": name, **{split: marked(metric_cell(t, split, name), t, name)
                                             for split in t.metrics}} for name in names])


def throughput_text(t: TrialView) -> str:
    """What generating each split measured, as the cost model reads it."""
    return "; ".join(f"{split}: {tp.examples} examples in {tp.seconds:,.3g} s at batch {tp.batch_size}, "
                     f"{tp.completion_tokens_per_s:,.1f} completion tokens/s, {tp.prompt_tokens_per_query:,.0f} "
                     "prompt tokens per query" for split, tp in t.throughput.items())


def examples_frame(rows: list[ExampleView], split: str | None, query: str, failing_only: bool) -> pd.DataFrame:
    """Per-example outputs with pass/fail per scorer, filtered by split, a search string and failures."""
    needle = query.strip().casefold()
    names = sorted({n for e in rows for n in e.scores}, key=lambda n: (n != "task_accuracy", n))
    out = []
    for e in rows:
        if split and e.split != split:
            continue
        if failing_only and e.scores.get("task_accuracy"):
            continue
        if needle and needle not in " ".join((e.example_id, e.input, e.target, e.output)).casefold():
            continue
        out.append({"split": e.split, "example_id": e.example_id, "input": e.input, "target": e.target,
                    "output": e.output if e.error is None else f"(no answer: {e.error})",
                    **{n: score_cell(n, e.scores.get(n)) for n in names},
                    "tokens": f"{e.prompt_tokens or 0} + {e.completion_tokens or 0}",
                    "latency s": None if e.latency_s is None else round(e.latency_s, 3)})
    return pd.DataFrame(out, columns=["split", "example_id", "input", "target", "output", *names, "tokens",
                                      "latency s"])


# -- the sweep's search: history and parameter importance --------------------------------------------------------


def history_frame(rows: list[TrialView]) -> pd.DataFrame:
    """Each complete trial's dev objective in %, by trial number, with the best feasible value so far in the
    study's direction (`maximize`)."""
    out, best_so_far = [], None
    for t in sorted((t for t in rows if t.complete and t.objective is not None), key=lambda t: t.number):
        if t.feasible and (best_so_far is None or (t.objective > best_so_far if t.maximize
                                                   else t.objective < best_so_far)):
            best_so_far = t.objective
        out.append({"trial": t.number, "value": t.objective * 100, "method": t.method, "feasible": bool(t.feasible),
                    "best feasible so far": None if best_so_far is None else best_so_far * 100})
    return pd.DataFrame(out, columns=["trial", "value", "method", "feasible", "best feasible so far"])


def varying_parameters(rows: list[TrialView]) -> list[str]:
    """Parameters (other than the method) that take more than one value across these trials."""
    names = set().union(*(t.params for t in rows)) - {"method"} if rows else set()
    return sorted(n for n in names if len({repr(t.params.get(n)) for t in rows}) > 1)


def importance_notes(rows: list[TrialView], found: dict[str, dict[str, float]]) -> list[str]:
    """Why each method of the study that ran has no parameter importance stored."""
    notes = []
    for method in sorted({t.method for t in rows} - set(found)):
        mine = [t for t in rows if t.method == method and t.complete]
        varying = varying_parameters(mine)
        if len(mine) < IMPORTANCE_MIN_TRIALS or len(varying) < IMPORTANCE_MIN_VARYING:
            why = (f"{len(mine)} completed trial(s), {len(varying)} varying parameter(s); it needs at least "
                   f"{IMPORTANCE_MIN_TRIALS} trials and {IMPORTANCE_MIN_VARYING} parameters that vary")
        else:
            why = ("the sweep stored none: fANOVA found too little variation, or the study was run by a release "
                   "that did not store it (run the sweep command again to compute it)")
        notes.append(f"{method}: no parameter importance ({why}).")
    return notes


def objective_title(study: str) -> str:
    view = study_view(study)
    name = view.objective_metric if view else "objective"
    direction = "" if view is None else " (higher is better)" if view.maximize else " (lower is better)"
    return f"dev {name} (%){direction}"

