"""Leaderboard: did fine-tuning beat prompting, which adapter is best within the constraints, what it cost."""

import streamlit as st
from harness_dashboards import charts, costing, data

from harness.analysis.formatting import (
    OLDER_RULES_CAPTION,
    constraint_readings,
    fmt_metric,
    params_text,
    shows_older_rules,
)
from harness.core.text import markdown_literal

db = str(data.db_path())
study = data.current_study(data.require_trials())
rows = data.trials(db, study)
st.title(f"Leaderboard: {study}")

parent = data.main_study(study)
if parent != study:  # a follow-up (repeated seeds, a learning curve) retrains the sweep's winner: the answer is there
    st.info(f"**{study}** is a follow-up of the sweep **{parent}**: it retrains {parent}'s chosen adapter (other "
            "seeds, or fewer training examples) to show how stable it is. Whether fine-tuning beat prompting is "
            f"answered on {parent}, below for it.")
verdict = data.study_verdict(db, parent)
box = st.success if verdict.ready else st.info if verdict.decision is None else st.warning
box(f"**Did fine-tuning beat prompting?** {verdict.text}")
swept = rows if parent == study else data.trials(db, parent)
tuned = next((t for t in swept if t.id == verdict.finetuned), None)
unsure = [r for r in constraint_readings(tuned) if r.doubtful or r.unsettled] if tuned is not None else []
if unsure:  # how sure: a constraint judged by its estimate while its interval reaches across the limit (the report's)
    st.warning(f"**How sure:** {tuned.id} is judged on its dev constraints by their estimates, and "
               + "; ".join(markdown_literal(r.text) for r in unsure) + ". More dev examples narrow the interval.")
REPORT_HELP = ("The answer, the rule behind it, the comparison, every trial, the cautions and the machines, as "
               "`harness report` writes it; `harness report --volume N` adds the payback.")
markdown_column, pdf_column, _ = st.columns([1, 1, 2])
report_markdown, report_pdf = data.decision_report(db, study)
markdown_column.download_button("Download the decision report (Markdown)", report_markdown,
                                file_name=f"report-{study}.md", mime="text/markdown", help=REPORT_HELP)
pdf_column.download_button("Download it as a PDF", report_pdf, file_name=f"report-{study}.pdf",
                           mime="application/pdf", help=REPORT_HELP)

best = data.best_adapter(swept)
if best:
    st.markdown(f"**Best adapter within the constraints** (ranked on dev): [{best.id}](trial?trial={best.id}) "
                f"{best.method} {params_text(best.params)}, dev accuracy "
                f"{fmt_metric(best.metric('dev', 'task_accuracy'))}, test accuracy "
                f"{fmt_metric(best.metric('test', 'task_accuracy'))}.")
else:
    st.markdown("**Best adapter within the constraints:** none - no complete fine-tuned trial meets every dev "
                "constraint (format, hallucination, regression). See the status column.")
st.markdown(f"**What the sweep cost:** {costing.sweep_cost_text(rows, data.main_study(study))}")

methods = sorted({t.method for t in rows})
chosen = st.pills("Methods", methods, selection_mode="multi", default=methods, key=f"methods-{study}") or []
shown = [t for t in rows if t.method in chosen]
st.caption(f"Showing {len(shown)} of {len(rows)} trials. Ranked on DEV (feasible first); TEST is reported, never "
           "used to choose. Values in %, [95% interval], n examples (hallucination: n compliant outputs).")
frame = data.leaderboard_frame(shown)
if not frame.empty:
    frame["trial"] = "trial?trial=" + frame["trial"]
st.dataframe(frame, hide_index=True, width="stretch",
             column_config={"trial": st.column_config.LinkColumn("trial", display_text=r"trial=(.*)$")})
if shows_older_rules(frame.to_numpy().ravel()):
    st.caption(OLDER_RULES_CAPTION)

st.subheader("Accuracy against what each trial cost to run")
split = st.radio("Accuracy on", ["dev", "test"], horizontal=True, key="pareto-split")
costs, x_title = costing.trial_costs(shown, data.main_study(study))
points = data.accuracy_points(shown, split, costs)
if points.empty:
    st.info("No complete trial with a task accuracy to plot.")
else:
    st.altair_chart(charts.pareto(points, x_title, f"{split} task accuracy (%)"), width="stretch")
    front = ", ".join(points[points["pareto"]].sort_values("cost")["trial"])
    st.caption(f"Dashed line: the Pareto front of trials that meet every dev constraint (no other is both cheaper "
               f"and more accurate): {front or 'none'}. Squares meet the constraints. Bars: 95% intervals. The cost "
               "is the sweep's, once, for training and scoring the trial, not what a query costs to serve: the Cost "
               "page prices serving.")

st.subheader("The search: optimisation history and parameter importance")
view = data.study_view(study)
if view is not None and view.kind != "sweep":
    st.info(f"{study} is a follow-up of {view.parent} ({data.FOLLOWUP_WORDS.get(view.kind, view.kind)}): its trials "
            f"are a grid run after the sweep, not sampled by Optuna, so it has no optimisation history or parameter "
            f"importance. Pick {view.parent} in the sidebar for those.")
else:
    history = data.history_frame(rows)
    if history.empty:
        st.info("No complete trial with a dev objective yet: nothing to draw.")
    else:
        st.altair_chart(charts.history(history, data.objective_title(study)), width="stretch")
        st.caption("Each complete trial's dev objective by its Optuna trial number; the line is the best value so "
                   "far among trials that meet every dev constraint, in the objective's direction.")
    importance = data.importance(db, study)
    for method, values in importance.items():
        st.markdown(f"Parameter importance, {method}:")
        st.altair_chart(charts.importance(values), width="stretch")
    for note in data.importance_notes(rows, importance):
        st.caption(note)
