"""Glue between the pages and harness.analysis.cost / harness.analysis.payback: prices with the user's edits, and tidy tables.

All cost arithmetic lives in those modules. This file only gathers their inputs (trials, run environments,
price overrides typed on the Cost page) and lays their results out as DataFrames. The one projection done here,
cumulative cost by month, is a straight line through the module's own figures (one-time cost, dollars per
query, fixed hosting), so that it crosses exactly at `months_to_payback`.
"""

from __future__ import annotations

import copy

import pandas as pd
import streamlit as st

from harness_dashboards import data, export
from harness.analysis import cost
from harness.core.errors import HarnessError
from harness.store.database import Store

PRICE_KEY = "keep-price-"
"""Session keys of the device/API prices typed on the Cost page; app.py keeps them across pages."""


def price_key(section: str, name: str, field: str) -> str:
    return f"{PRICE_KEY}{section}|{name}|{field}"


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def experiment_prices(db: str, study: str) -> dict:
    """The experiment file's `prices:` overrides, stored with the study; `harness payback` applies them too."""
    found = Store(db).get_study(study.split("+")[0]) or {}
    return (found.get("experiment") or {}).get("prices") or {}


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


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def environments(db: str, run_ids: tuple[str, ...]) -> dict[str, dict]:
    store = Store(db)
    return {r: ((store.get_run(r) or {}).get("environment") or {}) for r in run_ids}


def envs_for(rows: list[dict]) -> dict[str, dict]:
    return environments(str(data.db_path()), tuple(sorted({t["run_id"] for t in rows if t["run_id"]})))


def device_keys(rows: list[dict], table: cost.PriceTable) -> list[str]:
    """The price-table entries the study's trials are priced at (usually one: CPU, or a GPU)."""
    envs, keys = envs_for(rows), []
    for t in rows:
        try:
            key = cost.device_rate(t, envs.get(t["run_id"] or ""), table)[0]
        except HarnessError:
            continue
        if key not in keys:
            keys.append(key)
    return keys


def trial_costs(rows: list[dict], study: str) -> tuple[dict[str, float] | None, str]:
    """Dollars per trial for the Pareto x axis; train + eval seconds when a trial cannot be priced."""
    table, envs = prices(study), envs_for(rows)
    try:
        usd = {t["id"]: cost.trial_cost(t, envs.get(t["run_id"] or ""), table).usd
               for t in rows if t["status"] == "complete"}
    except HarnessError:
        return None, "train + eval seconds (a trial's device has no price; see the Cost page)"
    return usd, f"compute cost of the trial, USD (price table {table.version})"


def sweep_cost_text(rows: list[dict], study: str) -> str:
    train_s, eval_s = data.sweep_seconds(rows)
    seconds = f"{train_s + eval_s:,.0f} s of device time ({train_s:,.0f} s training, {eval_s:,.0f} s evaluation)"
    try:
        table = prices(study)
        swept = cost.sweep_cost(rows, envs_for(rows), table)
    except HarnessError as exc:
        return f"{seconds}; not priced: {exc}"
    skipped = f", {len(swept.skipped)} running trial(s) not counted" if swept.skipped else ""
    return (f"${swept.usd:,.2f} for {len(swept.trials)} trials{skipped}: {seconds}, at price table "
            f"{table.version} ({table.date}) with the experiment's and the Cost page's price changes.")


# -- tables for the Cost page ---------------------------------------------------------------------------------


def cumulative(result, months: int) -> pd.DataFrame:
    """Cumulative cost by month of the fine-tuned candidate (one-time cost first) and of the baseline."""
    x = result.inputs
    tuned = result.candidate_usd_per_query * result.volume + x.fixed_monthly_usd
    base = result.baseline_usd_per_query * result.volume
    rows = []
    for m in range(months + 1):
        rows.append({"month": m, "option": f"fine-tuned {result.candidate}", "usd": result.one_time_usd + tuned * m})
        rows.append({"month": m, "option": f"baseline {result.baseline}", "usd": base * m})
    return pd.DataFrame(rows)


def tornado_frame(result, cap: float) -> pd.DataFrame:
    """One row per assumption and end; `never` (no payback at that end) is drawn at `cap` and labelled."""
    rows = []
    for bar in result.sensitivity.tornado:
        for end, months, value in (("low", bar.months_at_low, bar.low), ("high", bar.months_at_high, bar.high)):
            rows.append({"assumption": bar.assumption, "end": end, "value": f"{export.num(value)} {bar.unit}",
                         "months": cap if months is None else min(months, cap),
                         "label": "never" if months is None else f"{months:.1f}"})
    return pd.DataFrame(rows, columns=["assumption", "end", "value", "months", "label"])


def assumptions_frame(result) -> pd.DataFrame:
    return pd.DataFrame([{"assumption": k, "value": str(v["value"]), "unit": v["unit"], "source": v["source"]}
                         for k, v in sorted(result.assumptions.items())])


def learning_curve(curve: list[dict]) -> pd.DataFrame:
    """Accuracy with its interval by number of training examples (the `<study>+curve` follow-up)."""
    rows = []
    for t in curve:
        if t["status"] != "complete":
            continue
        for split in ("dev", "test"):
            m = t["metrics"].get(split, {}).get("task_accuracy")
            if m and m.get("value") is not None:
                rows.append({"train examples": t["params"]["train_examples"], "split": split,
                             "accuracy": m["value"] * 100, "low": (m.get("low") or m["value"]) * 100,
                             "high": (m.get("high") or m["value"]) * 100, "train s": t["train_seconds"] or 0.0})
    return pd.DataFrame(rows, columns=["train examples", "split", "accuracy", "low", "high", "train s"])
