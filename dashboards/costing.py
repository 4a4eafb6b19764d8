"""Glue between the pages and harness.analysis.cost / harness.analysis.payback: prices with the user's edits, and
tidy tables.

All cost arithmetic lives in those modules. This file only gathers their inputs (trials, runs, price overrides typed
on the Cost page) and lays their results out as DataFrames. The one projection done here, cumulative cost by month,
is a straight line through the module's own figures (one-time cost, dollars per query, fixed hosting), so that it
crosses exactly at `months_to_payback`.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pandas as pd
import streamlit as st
from harness_dashboards import data, export

from harness.analysis import cost, payback
from harness.analysis.formatting import duration, interval, usd
from harness.analysis.payback import PaybackResult
from harness.core.errors import HarnessError
from harness.core.records import TrialView
from harness.store.database import Store

PRICE_KEY = "keep-price-"
"""Session keys of the device/API prices typed on the Cost page; app.py keeps them across pages."""
OVERSHOOT = 1.25
"""The cumulative chart stretches past the horizon to show a break-even this close to it (x the horizon)."""


def price_key(section: str, name: str, field: str) -> str:
    return f"{PRICE_KEY}{section}|{name}|{field}"


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def experiment_prices(db: str, study: str) -> dict:
    """The experiment file's `prices:` overrides, stored with the study; `harness payback` applies them too."""
    found = Store(db).study(study)
    return found.price_overrides if found else {}


def base_prices(study: str) -> cost.PriceTable:
    """The bundled table with the experiment's overrides: what the Cost page's price inputs start from."""
    return cost.load_prices(overrides=experiment_prices(str(data.db_path()), study) or None)


def overrides(study: str) -> dict:
    """The experiment's overrides plus the prices the user changed, in the price table's layout.

    Only changed values are added, so an untouched price keeps its source ("price table <version>").
    """
    out = copy.deepcopy(experiment_prices(str(data.db_path()), study))
    table = base_prices(study).to_dict()
    for key, value in st.session_state.items():
        if str(key).startswith(PRICE_KEY) and value is not None:
            section, name, field = str(key)[len(PRICE_KEY):].split("|")
            if (table[section].get(name) or {}).get(field) != value:
                out.setdefault(section, {}).setdefault(name, {})[field] = float(value)
    return out


def prices(study: str) -> cost.PriceTable:
    return cost.load_prices(overrides=overrides(study) or None)


def device_keys(rows: list[TrialView], table: cost.PriceTable) -> list[str]:
    """The price-table entries the study's trials are priced at (usually one: CPU, or a GPU)."""
    runs, keys = data.runs_of(rows), []
    for t in rows:
        try:
            key = cost.device_rate(t, runs.get(t.run_id or ""), table)[0]
        except HarnessError:
            continue
        if key not in keys:
            keys.append(key)
    return keys


def trial_costs(rows: list[TrialView], study: str) -> tuple[dict[str, float] | None, str]:
    """Dollars per complete trial for the Pareto x axis; None (plot device seconds) when one cannot be priced."""
    table, runs = prices(study), data.runs_of(rows)
    try:
        dollars = {t.id: cost.trial_cost(t, runs.get(t.run_id or ""), table).usd for t in rows if t.complete}
    except HarnessError:
        return None, "train + eval seconds (a trial's device has no price; see the Cost page)"
    return dollars, f"one-time compute cost of the trial in the sweep, USD (price table {table.version})"


def sweep_cost_text(rows: list[TrialView], study: str) -> str:
    """What the sweep spent, as `harness payback` counts it (`cost.sweep_cost`), with the Cost page's prices."""
    try:
        table = prices(study)
        swept = cost.sweep_cost(rows, data.runs_of(rows), table)
    except HarnessError as exc:
        seconds = sum(t.device_seconds for t in rows if t.device != "hosted")
        return f"{seconds:,.0f} s of device time; not priced: {exc}"
    return (f"{spend_text(rows, swept)}, at price table {table.version} ({table.date}) with the experiment's and the "
            "Cost page's price changes.")


def spend_text(rows: list[TrialView], swept: cost.SweepCost) -> str:
    """`$0.0747 for 4 trials: $0.0361 of device time (1,301 s: 431 s training, 870 s evaluation) and $0.0385 of
    hosted-API tokens (2 hosted arms; ...)`: the device seconds `harness payback` prices (its sweep_seconds), and the
    dollars split, since the hosted arms' time waiting on their endpoint is no device time and their tokens no
    device price."""
    priced = {c.trial_id: c for c in swept.trials}
    local = [t for t in rows if t.id in priced and not priced[t.id].hosted]
    hosted = [t for t in rows if t.id in priced and priced[t.id].hosted]
    train, search = sum(t.train_seconds or 0.0 for t in local), sum(t.local_search_seconds for t in local)
    evaluation = sum(t.eval_seconds or 0.0 for t in local)
    wall = swept.seconds - train - search - evaluation  # trials without timings are priced on their wall time
    parts = [f"{train:,.0f} s training", *([f"{search:,.0f} s prompt search"] if search else []),
             f"{evaluation:,.0f} s evaluation", *([f"{wall:,.0f} s wall time of trials without timings"]
                                                  if wall >= 0.5 else [])]
    text = f"{usd(swept.compute_usd)} of device time ({swept.seconds:,.0f} s: {', '.join(parts)})"
    if hosted:
        waited = sum(t.eval_seconds or 0.0 for t in hosted)
        arms = f"{len(hosted)} hosted arms; their" if len(hosted) > 1 else "1 hosted arm; its"
        text += (f" and {usd(swept.hosted_usd)} of hosted-API tokens ({arms} {waited:,.0f} s waiting on the endpoint "
                 "is not device time)")
    why = "; ".join(sorted(set(swept.skipped.values())))
    skipped = f", {len(swept.skipped)} trial(s) not counted ({why})" if swept.skipped else ""
    return f"{usd(swept.usd)} for {len(swept.trials)} trials{skipped}: {text}"


# -- tables for the Cost page ---------------------------------------------------------------------------------


def chart_months(horizon: int, months: float | None) -> int:
    """Months the cumulative chart spans: the horizon, stretched to a break-even just beyond it."""
    if months is not None and horizon < months <= OVERSHOOT * horizon:
        return math.ceil(months)
    return horizon


def cumulative(result: PaybackResult, months: int) -> pd.DataFrame:
    """Cumulative cost by month of the fine-tuned candidate (one-time cost first) and of the baseline."""
    tuned = result.candidate_usd_per_query * result.volume + result.inputs.fixed_monthly_usd
    base = result.baseline_usd_per_query * result.volume
    rows = []
    for m in range(months + 1):
        for option, spent in ((f"fine-tuned {result.candidate}", result.one_time_usd + tuned * m),
                              (f"baseline {result.baseline}", base * m)):
            rows.append({"month": m, "option": option, "usd": spent, "cost": usd(spent)})
    return pd.DataFrame(rows, columns=["month", "option", "usd", "cost"])


def tornado_frame(result: PaybackResult, cap: float) -> pd.DataFrame:
    """One row per assumption and end; `never` (no payback at that end) is drawn at `cap` and labelled."""
    rows = []
    for bar in result.sensitivity.tornado:
        for end, months, value in (("low", bar.months_at_low, bar.low), ("high", bar.months_at_high, bar.high)):
            rows.append({"assumption": bar.assumption, "end": end, "value": export.quantity(value, bar.unit),
                         "months": cap if months is None else min(months, cap),
                         "label": "never" if months is None else duration(months)})  # 2.1 hours, not "0.0"
    return pd.DataFrame(rows, columns=["assumption", "end", "value", "months", "label"])


def label_presets(result: PaybackResult, presets: dict[str, float]) -> PaybackResult:
    """The page's starting figures (`presets`, by assumption name) that the user left as they were, labelled so: to
    payback every figure the page passes is input, but finance must not read 100,000 queries nobody typed as the
    user's."""
    notes = {name: (dict(item, source="the Cost page's starting figure, not entered: change it above")
                    if name in presets and item["value"] == presets[name]
                    and (item["source"] == cost.USER or item["source"].startswith(payback.NOT_GIVEN)) else item)
             for name, item in result.assumptions.items()}
    return dataclasses.replace(result, assumptions=notes)


def assumptions_frame(result: PaybackResult) -> pd.DataFrame:
    return pd.DataFrame([{"assumption": k, "value": export.shown(v["value"], v["unit"]), "unit": v["unit"],
                          "source": v["source"]} for k, v in sorted(result.assumptions.items())])


def learning_curve(curve: list[TrialView]) -> pd.DataFrame:
    """Accuracy with its interval by number of training examples (the learning-curve follow-up's trials)."""
    rows = []
    for t in curve:
        if not t.complete:
            continue
        for split in ("dev", "test"):
            m = t.metric(split, "task_accuracy")
            if m is None or not m.measured:
                continue
            low, high = (m.value if end is None else end for end in (m.low, m.high))
            rows.append({"train examples": t.params["train_examples"], "split": split, "accuracy": m.value * 100,
                         "low": low * 100, "high": high * 100, "shown": interval(m),
                         "train s": t.train_seconds or 0.0})
    return pd.DataFrame(rows, columns=["train examples", "split", "accuracy", "low", "high", "shown", "train s"])
