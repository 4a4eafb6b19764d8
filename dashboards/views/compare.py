"""Compare two trials side by side: paired tests when harness.analysis.compare is available, point differences else."""

import pandas as pd
import streamlit as st

from harness_dashboards import data
from harness.analysis import report
from harness.core.errors import HarnessError

try:
    from harness.analysis import compare
except ImportError:  # the paired comparison ships separately; the point differences below work without it
    compare = None


def pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def paired_frame(result) -> pd.DataFrame:
    """harness.analysis.compare's per-score result: A, B, A - B with its 95% interval, p-value and the test used."""
    return pd.DataFrame([{
        "score": s.name, "A (%)": pct(s.a), "B (%)": pct(s.b), "A - B (points)": pct(s.difference.value),
        "95% CI (points)": "-" if s.difference.low is None else f"[{pct(s.difference.low):+.1f}, "
                                                                 f"{pct(s.difference.high):+.1f}]",
        "p": s.p_value, "test": s.test, "pairs": s.difference.n,
    } for s in result.scores])


def cell(t: dict, name: str, metric: dict) -> str:
    if name == "regression_delta" and not t["trained"]:
        return "not trained"
    return report.fmt_metric(metric or None, signed=name == "regression_delta")


def side_by_side(ta: dict, tb: dict) -> pd.DataFrame:
    """Every stored metric of both trials with the point difference (no test: see the paired table for that)."""
    out = []
    for split in ("dev", "test"):
        names = sorted(set(ta["metrics"].get(split, {})) | set(tb["metrics"].get(split, {})))
        for name in names:
            ma, mb = (t["metrics"].get(split, {}).get(name) or {} for t in (ta, tb))
            va, vb = ma.get("value"), mb.get("value")
            out.append({"split": split.upper(), "metric": name, "A": cell(ta, name, ma), "B": cell(tb, name, mb),
                        "A - B (points)": None if va is None or vb is None else round((va - vb) * 100, 2)})
    return pd.DataFrame(out)


db = str(data.db_path())
everything = data.require_trials()
done = [t["id"] for t in everything if t["status"] == "complete"]
if len(done) < 2:
    st.info("Comparing needs two complete trials.")
    st.stop()

st.title("Compare two trials")
ranked = [t for t in report.ranked(data.trials(db, data.current_study(everything))) if t["status"] == "complete"]
first = next((t["id"] for t in ranked if t["trained"]), done[0])  # default: best adapter vs best prompt
second = next((t["id"] for t in ranked if not t["trained"] and t["id"] != first), next(i for i in done if i != first))
left, right, split_col = st.columns([2, 2, 1])
a = left.selectbox("Trial A", done, index=done.index(first), key="compare-a")
b = right.selectbox("Trial B", done, index=done.index(second), key="compare-b")
split = split_col.radio("Paired on", ["test", "dev"], key="compare-split")
if a == b:
    st.warning("A and B are the same trial; pick two different ones.")
    st.stop()
ta, tb = data.trial(db, a), data.trial(db, b)

for col, label, t in zip(st.columns(2), "AB", (ta, tb)):
    col.markdown(f"**{label}: [{t['id']}](trial?trial={t['id']})** {t['method']} {report.params_text(t['params'])}, "
                 f"{data.status_text(t)}, train {t['train_seconds'] or 0:,.0f} s, eval {t['eval_seconds'] or 0:,.0f} s")

st.subheader("Paired test")
if compare is None:
    st.info("Paired tests need harness.analysis.compare, which is not installed here; below are point differences only.")
else:
    try:
        result = compare.compare_trials(data.store(), a, b, split=split)
    except HarnessError as exc:
        st.error(str(exc))
    else:
        st.markdown(compare.comparison_text(result))
        st.dataframe(paired_frame(result), hide_index=True, width="stretch")
        if result.disagreements:
            st.caption(f"First {len(result.disagreements)} of {result.n_disagreements} {split} examples where exactly "
                       "one of them is right:")
            st.dataframe(pd.DataFrame([vars(d) for d in result.disagreements]), hide_index=True, width="stretch")

st.subheader("Side by side (point differences)")
st.dataframe(side_by_side(ta, tb), hide_index=True, width="stretch")
