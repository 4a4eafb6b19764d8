"""The dashboard's password: with HARNESS_DASHBOARD_PASSWORD set, every page waits behind a password form.

`harness dashboard --address ADDR` on an address other than loopback refuses to start without it (or without
`--behind-proxy`), because results and per-example outputs may be confidential. Streamlit's own `st.login` signs
users in through an OpenID Connect provider (Google, Microsoft, Okta, ...), which needs an identity provider set up,
client secrets and a redirect URL; a shared password needs nothing, so it is the default here. Teams that want
per-user accounts put the dashboard behind a reverse proxy that authenticates.

The password is read from the environment only: never from the command line (which `ps` shows to every user), never
written to disk or logs. Signing in lasts for the browser tab's session (`st.session_state`); a reload asks again.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

PASSWORD_ENV = "HARNESS_DASHBOARD_PASSWORD"
SIGNED_IN = "signed-in"


def password() -> str | None:
    """The password the dashboard asks for, or None when it asks for none (an empty variable counts as unset)."""
    return os.environ.get(PASSWORD_ENV) or None


def signed_in() -> bool:
    return password() is None or bool(st.session_state.get(SIGNED_IN))


def password_form() -> None:
    """The only thing a visitor sees before signing in: no page, no study name, no database path."""
    st.title("finetune-harness")
    with st.form("sign-in"):
        given = st.text_input("Password", type="password",
                              help=f"The dashboard's password: ${PASSWORD_ENV} where `harness dashboard` runs.")
        if st.form_submit_button("Sign in"):
            expected = password()
            # Constant-time comparison, so the response time does not tell how much of a guess was right.
            if expected is not None and hmac.compare_digest(given.encode(), expected.encode()):
                st.session_state[SIGNED_IN] = True
                st.rerun()
            st.error("Wrong password.")
