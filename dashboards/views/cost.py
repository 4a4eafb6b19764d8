"""Cost & payback: how many months until fine-tuning pays for itself at your volume, under which assumptions.

Every figure comes from harness.analysis.payback (on harness.analysis.cost and the dated price table); this page
collects the user's assumptions, shows the answer, the cumulative cost, the sensitivity and the learning curve, and
exports the estimate for finance.
"""

import streamlit as st
from harness_dashboards import charts, costing, data, export

from harness.analysis import payback
from harness.analysis.formatting import duration, queries, saving_text, usd
from harness.core.errors import HarnessError
from harness.core.text import markdown_literal

# The page's starting figures; those left as they are read so in the assumptions and the exports. A comment, not a
# docstring: Streamlit's magic writes a page script's bare strings onto the page.
# The horizon is `harness payback`'s (12 months). The data preparation is an example figure, labelled as such in
# the assumptions and the exports ("the Cost page's starting figure, not entered"); the CLI assumes none.
# people cost starts at 0, as `harness payback` and `harness report` count it when not given: the page and the CLI
# read the same answer for the same study before anything is typed (20 hours at $50 here said 1,703.9 months where
# they said 19.4 hours), and the headline says when no people cost is in it
PRESETS = {"volume": 100_000.0, "horizon_months": 12.0, "data_prep_hours": 0.0, "data_prep_usd_per_hour": 0.0}


def keep(key: str, default):
    """Seed a widget's value once; app.py keeps `keep-` keys when the user visits another page."""
    st.session_state.setdefault(key, default)
    return key


db = str(data.db_path())
study = data.current_study(data.require_trials())
main_study = data.main_study(study)  # a follow-up (seeds, curve) is priced with the sweep it follows
rows = data.trials(db, main_study)
base_table = costing.base_prices(main_study)
st.title(f"Cost & payback: {main_study}")

complete = [t for t in rows if t.complete]
tuned = [t.id for t in complete if t.trained]
prompts = [t.id for t in complete if not t.trained]
best = data.best_adapter(rows)
default = payback.default_baseline(rows)  # the best measured hosted arm, else the best local prompting arm
if not tuned:  # before the inputs: nothing typed below could give an estimate
    st.info(f"No payback estimate for {main_study}: it has no complete fine-tuned trial, only "
            f"{len(prompts)} complete prompting trial(s). Pick a study with a LoRA, QLoRA or full fine-tuning trial in "
            "the sidebar, or add a fine-tuning method to the experiment's `space:` and run the sweep again.")
    st.stop()

st.subheader("Assumptions")
left, mid, right = st.columns(3)
with left:
    candidate = st.selectbox("Fine-tuned candidate", tuned, index=tuned.index(best.id) if best else 0,
                             help="Defaults to the best adapter that meets every dev constraint.", key="cost-candidate")
    options = prompts + [f"api:{name}" for name in base_table.apis]
    baseline = st.selectbox(
        "Baseline (prompting)", options, index=options.index(default.id) if default else 0,
        key="cost-baseline", help="A prompting arm measured in this study: hosted (its endpoint's tokens at its "
                                  "price) or local (measured throughput); or, unmeasured, a hosted model from the "
                                  "price table with an accuracy you enter. Defaults to the best hosted arm.",
    ) if options else None
    volume = st.number_input("Queries per month", min_value=1.0, max_value=payback.VOLUME_RANGE[1], step=10_000.0,
                             format="%.0f",
                             key=keep("keep-volume", PRESETS["volume"]))
    horizon = st.number_input("Horizon (months)", min_value=1, max_value=120, step=6,
                              key=keep("keep-horizon", int(PRESETS["horizon_months"])))
with mid:
    prep_h = st.number_input("Data preparation (hours)", min_value=0.0, step=5.0,
                             key=keep("keep-prep-h", PRESETS["data_prep_hours"]))
    prep_rate = st.number_input("Data preparation rate (USD/hour)", min_value=0.0, step=5.0,
                                key=keep("keep-prep-rate", PRESETS["data_prep_usd_per_hour"]))
    eng_h = st.number_input("Engineering (hours)", min_value=0.0, step=5.0, key=keep("keep-eng-h", 0.0))
    eng_rate = st.number_input("Engineering rate (USD/hour)", min_value=0.0, step=10.0, key=keep("keep-eng-rate", 0.0))
    # empty is "not given", as --hosting left out is: a 0 typed here is the user's, and turns off the idle-machine
    # caution that payback gives where the machine is paid only while busy
    hosting = st.number_input("Fixed monthly hosting of the fine-tuned model (USD)", min_value=0.0, step=10.0,
                              value=None, placeholder="not given: paid only while busy",
                              key=keep("keep-hosting", None))
with right:
    margin = st.number_input("Quality margin (points below the baseline allowed)", min_value=0.0, max_value=99.0,
                             step=1.0, key=keep("keep-margin", 2.0),
                             help="The candidate must not be worse than the baseline by more than this, by the "
                                  "paired 95% interval on the same test examples.") / 100
    for key in costing.device_keys(rows, base_table):
        device = base_table.devices[key]
        st.number_input(f"{key} price (USD per {device.per}-hour)", min_value=0.0, step=0.01, format="%.3f",
                        key=keep(costing.price_key("devices", key, "usd_per_hour"), device.usd_per_hour))
    api_accuracy = token_ratio = None
    if baseline and baseline.startswith("api:"):
        api = base_table.apis[baseline[4:]]
        for field, label in (("input_usd_per_1m", "input"), ("output_usd_per_1m", "output")):
            st.number_input(f"{api.name} {label} price (USD per 1M tokens)", min_value=0.0, step=0.05,
                            key=keep(costing.price_key("apis", api.name, field), getattr(api, field)))
        api_accuracy = st.number_input("Hosted model's test accuracy (%), assumed", min_value=0.0, max_value=100.0,
                                       value=None, key="cost-api-accuracy",
                                       help="Not measurable offline; marked 'assumed, not measured'.")
        table_ratio = api.token_ratio if api.token_ratio is not None else base_table.token_ratio
        token_ratio = st.number_input("Hosted tokens per local token", min_value=0.1, value=table_ratio)
        token_ratio = None if token_ratio == table_ratio else token_ratio  # untouched: the table's, with its source
table = costing.prices(main_study)
st.caption(f"Prices: table {table.version} dated {table.date} ({table.origin}), with the experiment file's "
           "`prices:` applied; changed values are recorded as 'user input'. Training and serving are priced at the "
           "device each trial ran on.")

result = None
if not tuned or not baseline:
    st.info("A payback estimate needs a complete fine-tuned trial and a prompting baseline in this study.")
elif baseline.startswith("api:") and api_accuracy is None:  # payback refuses to guess it: ask first
    st.info(f"Enter {baseline[4:]}'s test accuracy above: the quality bar weighs the fine-tuned trial against it, "
            "and a hosted model's accuracy cannot be measured offline.")
else:
    try:
        result = payback.payback_from_store(
            data.store(), candidate, baseline, volume, prices=table,
            baseline_accuracy=None if api_accuracy is None else api_accuracy / 100, token_ratio=token_ratio,
            data_prep_hours=prep_h, data_prep_usd_per_hour=prep_rate, engineering_hours=eng_h,
            engineering_usd_per_hour=eng_rate, fixed_monthly_usd=hosting,
            quality_bar=payback.QualityBar(margin=margin), horizon_months=float(horizon))
        result = costing.label_presets(result, PRESETS)
    except HarnessError as exc:
        st.error(f"No estimate: {markdown_literal(exc)}")

for hours, rate, what in ((prep_h, prep_rate, "data-preparation"), (eng_h, eng_rate, "engineering")):
    if hours > 0 and rate == 0:  # the CLI refuses hours without a rate; here the page says what it counts
        st.warning(f"{hours:g} {what} hours at $0 an hour add nothing to the one-time cost: enter their rate.")
if result is not None:
    st.subheader("Payback")
    # the headline with its caveats (paid only while busy, no people cost), as `harness payback` prints it first
    (st.success if result.pays_back else st.warning)(markdown_literal(result.headline()))
    st.markdown(markdown_literal(result.reason))
    months = result.months_to_payback
    cols = st.columns(4)
    # 1.8 hours, not "0.0" months; a candidate that fails the quality bar has no payback figure, not "never"
    cols[0].metric("Time to payback", duration(months) if result.quality.passes else "no figure: fails the bar",
                   help=result.reason + (f" 95% over the timed speeds' spread: {result.months_spread().strip()}"
                                         if result.months_spread() else ""))
    cols[1].metric("Per month", saving_text(result.monthly_savings_usd))
    cols[2].metric("One-time cost", usd(result.one_time_usd),
                   help=", ".join(f"{k} {usd(v)}" for k, v in result.one_time_breakdown.items()))
    cols[3].metric(f"Break-even volume ({result.horizon_months:g} months)",
                   "-" if result.break_even_volume is None else f"{queries(result.break_even_volume)}/month")
    frame = costing.cumulative(result, costing.chart_months(int(horizon), months))
    st.altair_chart(charts.cumulative(frame, months), width="stretch")
    # under a month, in the words the metric above uses ("19.4 hours"), not "0.0 months" beside it
    after = ("" if months is None else f"{months:.1f} months" if months >= 1
             else f"{duration(months)} ({months:.2g} months)")
    st.caption(f"Break-even after {after} at {volume:,.0f} queries/month." if months is not None else
               f"No break-even at {volume:,.0f} queries/month: {result.reason}")
    st.caption(f"Per query: fine-tuned {usd(result.candidate_usd_per_query)}, baseline "
               f"{usd(result.baseline_usd_per_query)}. Lines: one-time cost, then monthly cost x months, over the "
               f"{int(horizon)}-month horizon.")
    if result.months_spread():
        st.caption(f"Time to payback{result.months_spread()} (95%, n={result.timing.n} timed batches; every other "
                   "input held): the speeds the harness's own generate measured, each bootstrapped over its batches.")

    st.subheader("Sensitivity")
    if result.sensitivity.tornado:
        cap = max(2 * (months or horizon), 1.0)
        st.altair_chart(charts.tornado(costing.tornado_frame(result, cap), months), width="stretch")
    st.caption(f"{result.sensitivity.note}. Quality: {result.quality.reason}.")
    with st.expander("Every assumption, its unit and its source"):
        st.dataframe(costing.assumptions_frame(result), hide_index=True, width="stretch")

curve_study = data.followups(db, main_study).get("curve")
st.subheader("Learning curve: would more labelled data pay?")
learning = costing.learning_curve(data.trials(db, curve_study.name) if curve_study else [])
if curve_study is None:
    st.info(f"No learning curve: {main_study} has no learning-curve follow-up (set `learning_curve.sizes` in the "
            "experiment file to run one after the sweep).")
elif learning.empty:
    st.info(f"No learning curve yet: its study `{curve_study.name}` has no complete trial.")
else:
    st.caption(f"Study `{curve_study.name}`: the best adapter's configuration retrained on nested subsets of train.")
    st.altair_chart(charts.learning_curve(learning), width="stretch")
    st.dataframe(learning[["train examples", "split", "shown", "train s"]].rename(
        columns={"shown": "task accuracy % [95% CI]"}), hide_index=True, width="stretch")

if result is not None:
    st.subheader("Export")
    name = f"payback-{result.candidate.replace('/', '-')}"
    left, right = st.columns(2)
    left.download_button("Download estimate (CSV)", export.estimate_csv(result, frame), f"{name}.csv", "text/csv")
    right.download_button("Download report for finance (HTML, printable)",
                          export.estimate_html(result, frame, learning, str(data.db_path())), f"{name}.html",
                          "text/html")
