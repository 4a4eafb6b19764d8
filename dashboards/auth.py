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
import time
from collections import deque

import streamlit as st

PASSWORD_ENV = "HARNESS_DASHBOARD_PASSWORD"
SIGNED_IN = "signed-in"
MIN_LENGTH = 12
"""Shortest password `harness dashboard` accepts on an address other machines reach: 12 random characters take
years to guess at the rate below."""
MAX_FAILURES = 5
FAILURE_WINDOW_S = 60.0
"""At most MAX_FAILURES wrong passwords per window, from all visitors together: a new browser session per guess
must not reset the count. While the limit holds, a right password waits too (else guessing just goes on)."""


@st.cache_resource
def _failures() -> deque[float]:
    """When each recent wrong password came, shared by every session of this server."""
    return deque()


def locked_out(now: float) -> bool:
    failures = _failures()
    while failures and failures[0] <= now - FAILURE_WINDOW_S:
        failures.popleft()
    return len(failures) >= MAX_FAILURES


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
            now = time.monotonic()
            if locked_out(now):
                st.error(f"More than {MAX_FAILURES} wrong passwords within {FAILURE_WINDOW_S:.0f} s; wait a minute, "
                         "then try again.")
                return
            expected = password()
            # Constant-time comparison, so the response time does not tell how much of a guess was right.
            if expected is not None and hmac.compare_digest(given.encode(), expected.encode()):
                st.session_state[SIGNED_IN] = True
                st.rerun()
            _failures().append(now)
            st.error("Wrong password.")
