"""Registry: which adapter is in production for each suite, what waits in staging, what was retired, and every
change with who made it, when, why and what the gate said. Changes are made with `harness promote` and
`harness rollback`; this page only reads."""

import streamlit as st
from harness_dashboards import data

from harness.core.text import markdown_literal

db = str(data.db_path())
rows, events = data.registry(db)
st.title("Adapter registry")
if not rows:
    st.info("No adapters yet: a trained trial that kept its weights is a candidate. Promote one with "
            "`harness promote STUDY/N --to staging|production --approver NAME`.")
    st.stop()
for suite in sorted({r.suite for r in rows}):
    live = next((r for r in rows if r.suite == suite and r.status == "production"), None)
    if live:
        st.success(f"**{suite}**: {live.trial.id} ({live.trial.method}) is in production since "
                   f"{live.last.at:%Y-%m-%d %H:%M}, approved by {markdown_literal(live.last.actor)}.")
    else:
        st.info(f"**{suite}**: no adapter in production.")
st.caption("Test metrics in %, [95% interval], n. Production first, then staging, candidates, retired.")
st.dataframe(data.registry_frame(rows), hide_index=True, width="stretch")
st.subheader("History")
if events:
    st.dataframe(data.history_frame_of(events), hide_index=True, width="stretch")
    with st.expander("The gate behind each promotion"):
        for e in reversed(events):
            if e.gate_outcome:
                by = markdown_literal(e.actor)
                st.markdown(f"**{e.trial_id}** -> {e.status} ({e.at:%Y-%m-%d %H:%M}, {by}): gate {e.gate_outcome}")
                for rule in e.gate_rules:
                    verdict = "pass" if rule["passed"] else "FAIL"
                    st.caption(f"{verdict} - {markdown_literal(rule['name'])}: {markdown_literal(rule['detail'])}")
else:
    st.caption("No change recorded yet.")
