"""Surviving interruptions: leases on running trials, failing the ones a dead process left behind, and deciding
under the study's lock whether a new trial is still needed.

Optuna's journal storage has no heartbeat, so a trial whose process was killed stays RUNNING forever. Each
running trial records its pid and host and renews a lease; every worker, before each trial, fails the trials
whose process is gone (same host) or whose lease expired (any host) through Optuna's public `Study.tell`, hands
them to Optuna's retry callback (so the configuration runs again, once), and the caller records the reason in the
results store. Such trials do not count toward the total. A trial's own process marks it `interrupted` (True
for Ctrl-C, False for an error) before it fails; a trial failed from outside has no such mark, which is what
keeps it out of the count. On PostgreSQL, Optuna's own heartbeat does the same for workers on other machines.
A duplicate (a configuration a completed trial already ran) is pruned without running and is not counted either.

A resumed sweep should run the trials the uninterrupted one would have. Optuna's samplers draw from one random
stream per process, so a restart began it again and the trials after an interruption took other parameters;
`PlacedSampler` instead draws each trial from a seed fixed by its place in the study.
"""

from __future__ import annotations

import copy
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import optuna
from optuna.trial import TrialState

from harness.core.errors import Terminated
from harness.core.records import RunView, TrialView

LEASE_SECONDS = 120.0
"""A running trial renews its lease every LEASE_SECONDS / 4; one not renewed for this long is stale."""

DUPLICATE = "duplicate_of"
"""User attribute of a trial not run because a completed trial of the study had its configuration: that trial's
number. Such a trial is pruned (Optuna's TPE then ranks it with the worst, and steers away) but takes no slot of
the study's total: it ran nothing."""

def counted_trials(study: optuna.Study) -> int:
    """Trials that count toward the total: finished ones, and failures their own process reported (an error in
    the trial) that are not queued to run again; not those an interruption cut short (Ctrl-C, or a process that
    died), nor duplicates."""
    trials = study.get_trials(deepcopy=False)
    again = _queued_again(trials)
    return sum(1 for t in trials if _counted(t) and t.number not in again)


def _queued_again(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """The numbers of trials whose configuration was queued to run again (a retry names them in its history)."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", ())}


def duplicates_in_a_row(study: optuna.Study) -> int:
    """How many of the study's last finished trials were duplicates, one after another. Trials still running, and
    those an interruption cut short (retried, or never needed), are passed over, so a resumed sweep and several
    workers count as one uninterrupted sweep would."""
    count = 0
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number, reverse=True):
        if t.state == TrialState.PRUNED and DUPLICATE in t.user_attrs:
            count += 1
        elif _counted(t):
            break
    return count


def _counted(t: optuna.trial.FrozenTrial) -> bool:
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return DUPLICATE not in t.user_attrs
    return t.state == TrialState.FAIL and t.user_attrs.get("interrupted") is False


class Stale(NamedTuple):
    """A trial `fail_stale_trials` failed: why, and when its worker was last heard of (the epoch second of its last
    lease renewal, at most LEASE_SECONDS / 4 before it stopped; None where it renewed none), which ends its time
    rather than the moment a resume found it: a trial killed after 20 s read 112 s, up to the next sweep."""

    number: int
    reason: str
    last_seen: float | None


def fail_stale_trials(study: optuna.Study, retry=None, current: int | None = None) -> list[Stale]:
    """Fail RUNNING trials (but `current`, the caller's own) whose process died (same host) or whose lease
    expired, and pass each to `retry` (Optuna's RetryHeartbeatStaleTrialCallback); returns each, for the caller to
    record."""
    stale = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.number == current or (reason := _stale(t)) is None:
            continue
        study.tell(t.number, state=TrialState.FAIL)
        if retry is not None:
            retry(study, next(f for f in study.get_trials(deepcopy=False) if f.number == t.number))
        lease = t.user_attrs.get("lease_until")
        stale.append(Stale(t.number, f"{reason}; {retry_note(t)}", None if lease is None else lease - LEASE_SECONDS))
    return stale


def _stale(t: optuna.trial.FrozenTrial) -> str | None:
    """Why a RUNNING trial's run is over (its process died on this host, or its lease expired), or None."""
    # A trial another worker has just asked for has no lease yet: its start opens one.
    opened = t.datetime_start.timestamp() + LEASE_SECONDS if t.datetime_start else 0
    pid, owner, lease = t.user_attrs.get("pid"), t.user_attrs.get("host"), t.user_attrs.get("lease_until", opened)
    if owner == socket.gethostname() and pid is not None and not _alive(pid):
        return f"interrupted: process {pid} on {owner} ended while the trial was running"
    if lease < time.time():
        return f"interrupted: lease of process {pid} on {owner} expired (no heartbeat for {LEASE_SECONDS:.0f} s)"
    return None


def finish_recorded_trials(study: optuna.Study, recorded: Mapping[int, float | None],
                           current: int | None = None) -> list[int]:
    """Tell the storage the outcome of each stale RUNNING trial (as `fail_stale_trials` finds them) that the results
    database already holds as finished, `recorded` as {number: objective, None where pruned}: its process ended
    after the trial was recorded and before Optuna was told (a kill in that window, or a journal cut short by a full
    disk). Failed instead, the trial read "ended while the trial was running", kept its scores and adapter on a failed
    row, and its configuration trained a second time. Returns their numbers; call before `fail_stale_trials`."""
    finished = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.number == current or t.number not in recorded or _stale(t) is None:
            continue
        value = recorded[t.number]
        if value is None:
            study.tell(t.number, state=TrialState.PRUNED)
        else:
            study.tell(t.number, value)
        finished.append(t.number)
    return finished


STOPPED_BY_USER = "stopped_by_user"
"""User attribute of a trial that Ctrl-C stopped: not its configuration's fault, so it runs again (see
`retry_stopped_trials`), however often it was stopped before."""
STOPPED_OUTSIDE = "stopped_outside"
"""User attribute of a trial that something outside it stopped (`OutsideFailure`: an endpoint down, a spending cap
reached). It counts as failed in its run, which would otherwise try the same endpoint again and again, and runs
again when the same command is run again (`retry_stopped_trials(resuming=True)`)."""


CONSTRAINTS = "constraints:"
"""How Optuna names a trial's constraint values among its system attributes (`Trial.set_constraint`)."""


def carried(system_attrs: dict) -> dict:
    """What a retry takes over from the trial it retries: not its constraint values, which Optuna would then keep
    over the ones the retry measures (it ignores a second `set_constraint`, with a warning), so that TPE would read
    the failed run's."""
    return {k: v for k, v in system_attrs.items() if not k.startswith(CONSTRAINTS)}


class RetryOnce(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a trial whose worker died, without the dead run's constraint values (`carried`)."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        retried = copy.copy(trial)
        retried.system_attrs = carried(trial.system_attrs)
        super().__call__(study, retried)


def retry_stopped_trials(study: optuna.Study, resuming: bool = False) -> list[int]:
    """Queue again each trial that Ctrl-C stopped (and, `resuming` a sweep, each that something outside it stopped)
    and nothing has retried yet, with its parameters and its place (Optuna's retry attributes, which `trial_place`
    passes over), so a resumed sweep, or another worker, runs the trials an uninterrupted sweep would have: an
    enqueued baseline as much as a sampled trial. Returns their numbers. Call it under the study's claim lock, so
    two workers cannot both queue one."""
    trials = study.get_trials(deepcopy=False)
    retried = _queued_again(trials)
    marks = (STOPPED_BY_USER, STOPPED_OUTSIDE) if resuming else (STOPPED_BY_USER,)
    queued = []
    for t in trials:
        if t.state != TrialState.FAIL or not any(t.user_attrs.get(m) for m in marks) or t.number in retried:
            continue
        history = [*t.system_attrs.get("retry_history", ()), t.number]
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=t.params, distributions=t.distributions,
            system_attrs={**carried(t.system_attrs), "failed_trial": t.system_attrs.get("failed_trial", t.number),
                          "retry_history": history},
        ))  # fmt: skip
        queued.append(t.number)
    return queued


def retry_note(trial: optuna.trial.FrozenTrial) -> str:
    """What the retry callback (max_retry=1) does with a failed trial: a first failure runs again, a retry's not."""
    if "failed_trial" in trial.system_attrs:
        return f"not retried again (it was the retry of trial {trial.system_attrs['failed_trial']})"
    return "retried once"


def unneeded(study: optuna.Study, trial: optuna.Trial, total: int) -> tuple[str, str] | None:
    """Why `trial` should not run now, if it should not: (kind, reason). Kinds: `done` (the study has its total),
    `busy` (the remaining slots are all running in other workers: wait, one may die) and `twin` (another worker
    runs this configuration). Call it holding the study's claim lock, then mark the trial claimed, so no two
    workers can both take the last slot or start the same configuration."""
    running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
               if t.number != trial.number and t.user_attrs.get("claimed")]
    counted = counted_trials(study)
    if counted >= total:
        return "done", f"not needed: the study has its {total} trials"
    if counted + len(running) >= total:
        return "busy", f"waiting: the study's last {len(running)} trial(s) are running in other workers"
    twin = next((t.number for t in running if t.params == trial.params), None)
    if twin is not None:
        return "twin", f"not run: trial {twin} is running the same configuration in another worker"
    return None


def renew(trial: optuna.Trial) -> None:
    """Keep a trial that waits for a slot from looking stale to other workers."""
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("lease_until", time.time() + LEASE_SECONDS)


class Lease:
    """Records pid and host on the trial and renews a lease in the background while it runs."""

    def __init__(self, trial: optuna.Trial):
        self.trial, self.stop = trial, threading.Event()
        self.thread = threading.Thread(target=self._renew, daemon=True)

    def __enter__(self):
        renew(self.trial)
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


class HeldSignals:
    """Ctrl-C (SIGINT) and SIGTERM held while a finished trial is recorded and told to Optuna, then acted on.

    A trial's row and Optuna's record of it must agree. A Ctrl-C that landed between the two (a prompting trial's
    scoring ends in milliseconds, so a Ctrl-C at "score test" often did) left the trial complete in one and failed in
    the other, or running in both, and a resume then called it a dead worker's, "found stale by another worker".
    Holding works in the main thread only, where Python runs signal handlers; elsewhere nothing is held."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.pending: int | None = None
        self.previous: dict[int, object] = {}

    def hold(self) -> None:
        if self.previous or threading.current_thread() is not threading.main_thread():
            return
        for signum in self.SIGNALS:
            self.previous[signum] = signal.signal(signum, self._note)

    def _note(self, signum: int, frame: object) -> None:
        self.pending = self.pending or signum

    def release(self, act: bool = True) -> None:
        """Put the handlers back; with `act`, raise what a held signal would have (KeyboardInterrupt, or Terminated
        for SIGTERM)."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}
        pending, self.pending = self.pending, None
        if act and pending is not None:
            raise Terminated() if pending == signal.SIGTERM else KeyboardInterrupt()


def mark_interrupted(trial: optuna.Trial, reason: str, interrupted: bool, by_user: bool = False,
                     outside: bool = False) -> None:
    """Record on the Optuna trial why it is about to fail; `interrupted` keeps it out of the count, `by_user` (Ctrl-C)
    has it run again when the sweep resumes, `outside` (an `OutsideFailure`) when the same command runs again."""
    trial.set_user_attr("failure_reason", reason)
    trial.set_user_attr("interrupted", interrupted)
    if by_user:
        trial.set_user_attr(STOPPED_BY_USER, True)
    if outside:
        trial.set_user_attr(STOPPED_OUTSIDE, True)


def ended_runs_note(trials: Sequence[TrialView], runs: Mapping[str, RunView]) -> str | None:
    """Trials recorded as running whose process, on this machine, has ended (`runs`: their runs by id): a reader of
    `harness trials` after a kill -9 saw them running until someone resumed. None where there are none."""
    host = socket.gethostname()
    ended = [(t, run.pid) for t in trials if t.status == "running" and (run := runs.get(t.run_id or "")) is not None
             and run.host == host and run.pid is not None and not _alive(run.pid)]
    if not ended:
        return None
    shown = ", ".join(f"{t.id} (process {pid})" for t, pid in ended[:5]) + (", ..." if len(ended) > 5 else "")
    return (f"{shown} {'shows' if len(ended) == 1 else 'show'} as running, but the process that ran "
            f"{'it' if len(ended) == 1 else 'them'} on this machine has ended without recording an end (killed, or "
            "the machine restarted). Re-run the sweep to resume: it records such a trial as failed, with the time it "
            "was last seen, and runs its configuration again.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


class PlacedSampler(optuna.samplers.BaseSampler):
    """Optuna's sampler, made anew for each trial with a seed from the sweep's seed and the trial's place: how many
    trials came before it, not counting retries (each stands in for the trial it repeats). A trial killed and
    retried keeps its place, so the trials after it draw what they would have drawn in a sweep that was never
    interrupted. Model-based samplers (TPE after its start-up trials) read the study's finished trials, which the
    retry reproduces, so they follow too. `make(seed)` builds the sampler the sweep would use."""

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int):
        self._make, self._seed = make, seed
        self._inner = make(seed)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._inner = self._make(placed_seed(self._seed, trial_place(study, trial.number)))
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


def trial_place(study: optuna.Study, number: int) -> int:
    """The trial's place in the sweep as if nothing had been interrupted (see PlacedSampler): retries do not count.
    A trial sampled and not needed does: a worker whose draw another worker is already running must draw something
    else next, not the same configuration again at the same place (one worker alone meets this only at the end)."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.number < number and "failed_trial" not in t.system_attrs)


def placed_seed(seed: int, place: int) -> int:
    """A 32-bit seed per (sweep seed, place); SeedSequence keeps nearby pairs' streams independent."""
    return int(np.random.SeedSequence([seed, place]).generate_state(1)[0])
