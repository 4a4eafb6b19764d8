"""Compare two trials side by side: the paired tests of harness.analysis.compare, then every stored metric."""

from dataclasses import asdict

import pandas as pd
import streamlit as st
from harness_dashboards import data

from harness.analysis import compare
from harness.analysis.formatting import interval, params_text, pct, status_text
from harness.core.errors import HarnessError
from harness.core.records import TrialView
from harness.core.text import markdown_literal


def paired_frame(result: compare.Comparison) -> pd.DataFrame:
    """Per score: A, B, A - B with its 95% interval, the p-value (Holm-adjusted for the secondary scores), the test
    used and the reading of the decision rule."""
    return pd.DataFrame([{
        "score": s.metric + (" (primary)" if s.metric == result.primary else ""), "A (%)": pct(s.a),
        "B (%)": pct(s.b), "A - B (points) [95% CI]": interval(s.difference, signed=True),
        # as `harness compare` prints them (`< 0.0024` where the draws bound p); no test ran: a p of 1 would read as one
        "p": "-" if s.test == "none" else s.p_text().removeprefix("= "),
        "Holm p": "-" if s.adjusted_p is None else s.p_text(adjusted=True).removeprefix("= "),
        "test": s.test, "pairs": s.difference.n,
        "reading": s.reading() if s.test != "none" else s.why,
    } for s in result.scores])


def side_by_side(ta: TrialView, tb: TrialView) -> pd.DataFrame:
    """Every stored metric of both trials with the point difference (no test: see the paired table for that)."""
    out = []
    for split in ("dev", "test"):
        for name in sorted(set(ta.metrics.get(split, {})) | set(tb.metrics.get(split, {}))):
            ma, mb = ta.metric(split, name), tb.metric(split, name)
            both = ma is not None and mb is not None and ma.measured and mb.measured
            out.append({"split": split.upper(), "metric": name, "A": data.metric_cell(ta, split, name),
                        "B": data.metric_cell(tb, split, name),
                        "A - B (points)": pct(ma.value - mb.value, signed=True) if both else "-"})
    return pd.DataFrame(out)


db = str(data.db_path())
everything = data.require_trials()
done = [t.id for t in everything if t.complete]
if len(done) < 2:
    st.info("Comparing needs two complete trials.")
    st.stop()

st.title("Compare two trials")
study = data.current_study(everything)
first, second = data.compare_pair(data.trials(db, study), everything)
if second is None:
    st.info(f"Study {study} has only one complete trial ({first}): pick trial B yourself, from a study scored on "
            "the same suite and examples, or run more trials.")
left, right, split_col = st.columns([2, 2, 1])
a = left.selectbox("Trial A", done, index=done.index(first), key="compare-a")
b = right.selectbox("Trial B", done, index=done.index(second or first), key="compare-b")
# dev first: opening the page is no look at test; choosing test is one, and is recorded (the gate counts them)
split = split_col.radio("Paired on", ["dev", "test"], key="compare-split",
                        help="A comparison on test is recorded as a look at test: each look that could change what "
                             "ships is counted, and the gate and the audit pack say how many there were.")
if a == b:
    st.warning("A and B are the same trial; pick two different ones.")
    st.stop()
ta, tb = data.trial(db, a), data.trial(db, b)

for col, label, t in zip(st.columns(2), "AB", (ta, tb)):
    col.markdown(f"**{label}: [{t.id}](trial?trial={t.id})** {t.method} {params_text(t.params)}, {status_text(t)}, "
                 f"train {t.train_seconds or 0:,.0f} s, eval {t.eval_seconds or 0:,.0f} s")

st.subheader("Paired test")
try:
    result = compare.compare_trials(data.store(), a, b, split=split)
except HarnessError as exc:
    st.error(markdown_literal(exc))
else:
    data.record_compare_look(result)
    st.markdown(compare.comparison_text(result))
    st.dataframe(paired_frame(result), hide_index=True, width="stretch")
    if result.disagreements:
        st.caption(f"First {len(result.disagreements)} of {result.n_disagreements} {split} examples where exactly "
                   "one of them is right:")
        st.dataframe(pd.DataFrame([asdict(d) for d in result.disagreements]), hide_index=True, width="stretch")

st.subheader("Side by side (point differences)")
st.dataframe(side_by_side(ta, tb), hide_index=True, width="stretch")
