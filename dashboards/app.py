"""Entry point of `harness dashboard`: the sidebar (database, study) and navigation between the pages.

Run with `harness dashboard [--db PATH]`, which starts `streamlit run` on this file with the database path in
HARNESS_DASHBOARD_DB. The dashboard only reads: a sweep may write to the same database meanwhile. With
HARNESS_DASHBOARD_PASSWORD set, every page waits behind a password form (`auth.py`).
"""

from pathlib import Path

import streamlit as st
from harness_dashboards import auth, data

from harness.core.errors import HarnessError
from harness.core.text import markdown_literal

VIEWS = Path(__file__).resolve().parent / "views"
PAGES = [
    st.Page(VIEWS / "leaderboard.py", title="Leaderboard", default=True),  # the default page lives at /
    st.Page(VIEWS / "trial.py", title="Trial detail", url_path="trial"),
    st.Page(VIEWS / "compare.py", title="Compare", url_path="compare"),
    st.Page(VIEWS / "cost.py", title="Cost & payback", url_path="cost"),
    st.Page(VIEWS / "registry.py", title="Registry", url_path="registry"),
]

st.set_page_config(page_title="finetune-harness", layout="wide")
if not auth.signed_in():  # before anything reads the database: the form is all a visitor sees
    st.navigation(PAGES, position="hidden")  # keeps a deep link (/trial?trial=...) to open after signing in
    auth.password_form()
    st.stop()
# Streamlit forgets a widget's value when its page is not shown; re-assigning keeps the Cost page's inputs.
for key in [k for k in st.session_state if str(k).startswith("keep-")]:
    st.session_state[key] = st.session_state[key]
page = st.navigation(PAGES)
with st.sidebar:
    st.caption(f"Database: `{data.db_path()}` (results are read, never changed; a comparison on test is recorded "
               "as a look at test, as `harness compare` records one)")
    db = str(data.db_path())
    try:
        views = data.studies(db)
    except HarnessError as exc:  # damaged or replaced since `harness dashboard` checked it: say so, no traceback
        st.error(markdown_literal(exc))
        st.stop()
    names = data.study_names(views, data.trials(db))
    if names:
        st.selectbox("Study", names, key="study", format_func=lambda name: data.study_label(views, name),
                     help="Sweep studies first, then their follow-ups (repeated seeds, learning curve).")
    if st.button("Refresh", help=f"Results are re-read every {data.TTL_S} s; this re-reads now."):
        st.cache_data.clear()
for warning in data.seal_warnings(db):  # above every page: each reads these trials' numbers
    st.error(f"**Edited evidence:** {markdown_literal(warning)}")
page.run()
