"""Leaderboard: did fine-tuning beat prompting, which adapter is best within the constraints, what it cost."""

import streamlit as st

from harness_dashboards import charts, costing, data, journal
from harness.analysis import report

db = str(data.db_path())
study = data.current_study(data.require_trials())
rows = data.trials(db, study)
st.title(f"Leaderboard: {study}")

verdict = data.verdict_text(db, study)
(st.success if verdict.startswith("YES") else st.info if verdict.startswith("No verdict") else st.warning)(
    f"**Did fine-tuning beat prompting?** {verdict}")

best = data.best_adapter(rows)
if best:
    st.markdown(f"**Best adapter within the constraints** (ranked on dev): [{best['id']}](trial?trial={best['id']}) "
                f"{best['method']} {report.params_text(best['params'])}, dev accuracy "
                f"{report.fmt_metric(best['metrics'].get('dev', {}).get('task_accuracy'))}, test accuracy "
                f"{report.fmt_metric(best['metrics'].get('test', {}).get('task_accuracy'))}.")
else:
    st.markdown("**Best adapter within the constraints:** none - no complete fine-tuned trial meets every dev "
                "constraint (format, hallucination, regression). See the status column.")
st.markdown(f"**What the sweep cost:** {costing.sweep_cost_text(rows, study)}")

methods = sorted({t["method"] for t in rows})
chosen = st.pills("Methods", methods, selection_mode="multi", default=methods, key=f"methods-{study}") or []
shown = [t for t in rows if t["method"] in chosen]
st.caption(f"Showing {len(shown)} of {len(rows)} trials. Ranked on DEV (feasible first); TEST is reported, never "
           "used to choose. Values in %, [95% interval], n examples (hallucination: n compliant outputs).")
frame = data.leaderboard_frame(shown)
if not frame.empty:
    frame["trial"] = "trial?trial=" + frame["trial"]
st.dataframe(frame, hide_index=True, width="stretch",
             column_config={"trial": st.column_config.LinkColumn("trial", display_text=r"trial=(.*)$")})

st.subheader("Accuracy against cost")
split = st.radio("Accuracy on", ["dev", "test"], horizontal=True, key="pareto-split")
costs, x_title = costing.trial_costs(shown, study)
points = data.accuracy_points(shown, split, costs)
if points.empty:
    st.info("No complete trial with a task accuracy to plot.")
else:
    st.altair_chart(charts.pareto(points, x_title, f"{split} task accuracy (%)"), width="stretch")
    front = ", ".join(points[points["pareto"]].sort_values("cost")["trial"])
    st.caption(f"Dashed line: the Pareto front of trials that meet every dev constraint (no other is both cheaper "
               f"and more accurate): {front or 'none'}. Squares meet the constraints. Bars: 95% intervals.")

st.subheader("Optuna: optimisation history and parameter importance")
found = journal.load(data.journal_path(), study)
if "note" in found:
    st.info(found["note"])
else:
    st.altair_chart(charts.history(found["history"]), width="stretch")
    for scope, values in found["importance"].items():
        st.markdown(f"Parameter importance, {scope}:")
        st.altair_chart(charts.importance(values), width="stretch")
    for note in found["notes"]:
        st.caption(note)
