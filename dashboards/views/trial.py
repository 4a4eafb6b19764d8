"""Trial detail: what one trial was (config), how it trained, and every answer it gave, searchable."""

import streamlit as st
from harness_dashboards import charts, data, labels

from harness.analysis.formatting import (
    OLDER_RULES_MARK,
    fmt_metric,
    params_text,
    regression_text,
    rules_note,
    status_text,
)
from harness.analysis.report import capped_counts, capped_text, hosted_text
from harness.core.metric import CORE_METRICS, Metric
from harness.core.text import markdown_literal

db = str(data.db_path())
everything = data.require_trials()
study = data.current_study(everything)
# the selected study's trials first: with many studies, the list would otherwise start with another one's
ids = sorted((t.id for t in everything), key=lambda trial: not trial.startswith(f"{study}/"))
if st.session_state.get("trial_id") not in ids:  # first visit: the URL (?trial=ID), else the best of the study
    wanted = st.query_params.get("trial")
    st.session_state["trial_id"] = wanted if wanted in ids else data.default_trial(data.trials(db, study), ids)
st.title("Trial detail")
trial_id = st.selectbox("Trial", ids, key="trial_id")
st.query_params["trial"] = trial_id
t = data.trial(db, trial_id)

status = markdown_literal(status_text(t))  # a failure reason is the data's or an exception's words
st.markdown(f"**{t.method}** {markdown_literal(params_text(t.params))} · status **{status}** · device {t.device} · "
            f"train {t.train_seconds or 0:,.1f} s · eval {t.eval_seconds or 0:,.1f} s"
            + ("" if t.hosted else f" · peak memory {t.peak_memory_mb or 0:,.0f} MiB"))
if t.hosted:
    st.info(hosted_text(t))
if (notice := data.trial_notice(t)) is not None:
    st.warning(notice)
for col, name in zip(st.columns(4), CORE_METRICS):
    test = t.metric("test", name)
    signed = name == "regression_delta"
    if signed and (not t.trained or test is None or not test.measured):
        col.metric(f"TEST {name}", regression_text(t))
        continue
    value, _, interval = fmt_metric(test, signed=signed).partition(" ")
    col.metric(f"TEST {name}", value)
    col.caption((f"95% CI {interval}  \n" if interval else "") + f"DEV {data.metric_cell(t, 'dev', name)}")

st.subheader("Metrics (value [95% interval] n)")
st.dataframe(data.metrics_frame(t), hide_index=True, width="stretch")
if (note := rules_note(t)) is not None:
    st.info(f"{OLDER_RULES_MARK} {note}")
if t.throughput:
    st.caption(f"Throughput: {data.throughput_text(t)}.")
if t.prompt_search is not None:
    st.caption(f"Prompt searched: {t.prompt_search.text()}; the chosen shots are under Configuration.")

with st.expander("Configuration"):
    st.json({"params": dict(t.params), "artifact_path": None if t.artifact_path is None else str(t.artifact_path),
             "run_id": t.run_id, "shots": list(t.shots), "include_contract": t.include_contract,
             "constraints (excess over the limit; <= 0 is met, null not measured)": dict(t.constraints),
             **t.provenance}, expanded=2)

st.subheader("Training")
training = t.training
if training is None:
    st.caption("Not trained (prompting): no training curve." if not t.trained else "No training summary recorded.")
else:
    pace = f", {training.step_seconds:.2f} s a step" if training.step_seconds else ""
    st.caption(f"{training.steps} steps on {training.examples} examples ({training.examples_per_step} per step"
               f"{pace}), stopped by {training.stopped_by}.")
    left, right = st.columns(2)
    if training.loss_curve:
        left.altair_chart(charts.curve(training.loss_curve, "training loss"), width="stretch")
    else:
        left.caption("No loss logged.")
    if training.dev_curve:
        right.altair_chart(charts.curve(training.dev_curve, "dev-probe objective (%)", percent=True),
                           width="stretch")
    else:
        right.caption("No dev probe during training (training.eval_every_steps is off).")

reports = t.label_reports
if reports:
    st.subheader("Per label")
    names = list(reports)
    split = st.radio("Split", names, index=names.index("test") if "test" in names else 0, horizontal=True,
                     key="label-split")
    rep = reports[split]
    macro = t.metric(split, "macro_f1") or Metric(rep.macro_f1, None, None, rep.n)
    st.caption(f"macro-F1 {fmt_metric(macro)} over {rep.macro_labels} labels with "
               f"support; {rep.invalid} of {rep.n} outputs named no label. Values in %; F1 low and "
               "high bound its 95% bootstrap interval, support is the label's n (a label with a few examples has a "
               "wide interval). Commonest labels first; None where a label was never predicted or never seen.")
    st.dataframe(labels.per_label_frame(rep), hide_index=True, width="stretch",
                 column_config=labels.per_label_columns())
    confusion = rep.confusion
    if confusion and labels.label_count(confusion) <= labels.CHART_MAX_LABELS:
        st.caption("Confusion matrix: rows are the true label, columns what the model said; off the diagonal is wrong.")
        st.altair_chart(charts.confusion(confusion), width="content")  # square cells, not stretched
    elif confusion:
        pairs, wrong = labels.wrong_pairs(confusion)
        top = labels.confusion_pairs_frame(confusion)
        st.caption(f"Commonest confusions: {len(top)} of {pairs} distinct wrong (true, predicted) pairs, covering "
                   f"{top['count'].sum()} of {wrong} wrong answers in {split}. {labels.label_count(confusion)} labels "
                   f"are too many for a readable matrix (it is drawn up to {labels.CHART_MAX_LABELS}); `(invalid)` "
                   "means the output named no label.")
        st.dataframe(top, hide_index=True, width="stretch",
                     column_config={"share %": st.column_config.NumberColumn(format="%.1f")})

st.subheader("Examples")
outputs = data.examples(db, trial_id)
left, mid, right = st.columns([1, 3, 1])
splits = sorted({e.split for e in outputs})
split = left.selectbox("Split", ["all", *splits], index=1 + splits.index("test") if "test" in splits else 0)
query = mid.text_input("Search input, target, output or id", key="example-search")
failing = right.checkbox("Only wrong answers", key="only-failing")
frame = data.examples_frame(outputs, None if split == "all" else split, query, failing)
st.caption(f"{len(frame)} of {len(outputs)} examples. Per scorer: pass / fail, a number for graded scores, "
           "- where it does not apply (hallucination counts compliant outputs only).")
if capped := capped_counts(t, outputs):  # as `harness show` says it: such an answer was cut off, not just wrong
    st.caption("Cut at the token cap: " + "; ".join(f"{name} {capped_text(*counts, t.max_new_tokens)}"
                                                     for name, counts in capped.items())
               + ". Their completion tokens (the second figure under `tokens`) equal the cap.")
st.dataframe(frame, hide_index=True, width="stretch")
