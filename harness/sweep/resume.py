"""Surviving interruptions: leases on running trials, and failing the ones a dead process left behind.

Optuna's journal storage has no heartbeat, so a trial whose process was killed stays RUNNING forever. Each
running trial records its pid and host and renews a lease; the next sweep fails the trials whose process is
gone (same host) or whose lease expired (any host) through Optuna's public `Study.tell`, records the reason in the
results store, and does not count them toward the total. Only the public API is used: a trial's own process marks
it `interrupted` (True for Ctrl-C, False for an error) before it fails, and a trial failed from outside has no such
mark, which is what keeps it out of the count.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import optuna
from optuna.trial import TrialState

LEASE_SECONDS = 120.0
"""A running trial renews its lease every LEASE_SECONDS / 4; one not renewed for this long is stale."""


def counted_trials(study: optuna.Study) -> int:
    """Trials that count toward the total: finished ones, and failures their own process reported (an error in
    the trial); not those an interruption cut short (Ctrl-C, or a process that died)."""
    return sum(
        1 for t in study.get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and t.user_attrs.get("interrupted") is False)
    )


def fail_stale_trials(study: optuna.Study) -> list[tuple[int, str]]:
    """Fail RUNNING trials whose process died (same host) or whose lease expired; returns (number, why) for
    each, for the caller to record."""
    stale = []
    host, now = socket.gethostname(), time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid, owner, lease = t.user_attrs.get("pid"), t.user_attrs.get("host"), t.user_attrs.get("lease_until", 0)
        if owner == host and pid is not None and not _alive(pid):
            reason = f"interrupted: process {pid} on {host} ended while the trial was running"
        elif lease < now:
            reason = f"interrupted: lease of process {pid} on {owner} expired (no heartbeat for {LEASE_SECONDS:.0f} s)"
        else:
            continue
        study.tell(t.number, state=TrialState.FAIL)
        stale.append((t.number, reason))
    return stale


class Lease:
    """Records pid and host on the trial and renews a lease in the background while it runs."""

    def __init__(self, trial: optuna.Trial):
        self.trial, self.stop = trial, threading.Event()
        self.thread = threading.Thread(target=self._renew, daemon=True)

    def __enter__(self):
        self.trial.set_user_attr("pid", os.getpid())
        self.trial.set_user_attr("host", socket.gethostname())
        self.trial.set_user_attr("lease_until", time.time() + LEASE_SECONDS)
        self.thread.start()
        return self

    def _renew(self):
        while not self.stop.wait(LEASE_SECONDS / 4):
            try:
                self.trial.set_user_attr("lease_until", time.time() + LEASE_SECONDS)
            except Exception:  # the trial finished between the wait and the write
                return

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def mark_interrupted(trial: optuna.Trial, reason: str, interrupted: bool) -> None:
    """Record on the Optuna trial why it is about to fail; `interrupted` keeps it out of the count."""
    trial.set_user_attr("failure_reason", reason)
    trial.set_user_attr("interrupted", interrupted)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()
