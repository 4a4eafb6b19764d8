"""The sweep: plan (validated) -> prepare data once -> Optuna optimize (sample -> claim -> trial -> record) ->
follow-ups.

Interruption is expected: every finished trial is in the store and the Optuna study the moment it ends. A trial
left `running` by a killed process is found by the next trial of any worker (its process is gone, its lease or
its heartbeat expired), marked failed with the reason, retried once, and the study is topped up to `--trials`.

A sampled configuration that a completed trial already ran is recorded as a pruned duplicate and not run; it takes
no slot of `--trials`. A space with fewer configurations than `--trials` (a few choices) stops the sweep once every
one has run, and a sampler that keeps proposing ones that ran stops it too (`twins.py`), saying why.

Several workers may run one study (`harness worker`, `harness sweep --workers N`). Each samples with its own
seed, and claims each trial under the study's lock (storage.py), so the study's total is exact across workers and
no two workers train the same configuration at once. Each writes its finished trials to the results database in
one short transaction of its own (store/database.py), so readers never see half a trial.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

from harness.analysis.formatting import params_text
from harness.core.config import ExperimentConfig
from harness.core.errors import EngineLost, HarnessError, OutsideFailure, Terminated
from harness.core.paths import results_folder
from harness.core.progress import bar_options
from harness.core.records import (
    RunRecord,
    StudyRecord,
    StudyView,
    TrialRecord,
    duplicate_reason,
    setup_changes,
    study_setup,
    trial_id,
)
from harness.core.redaction import Redactor, redact_rows
from harness.data.suites import differs_from_recorded, show_path
from harness.hosted.ledger import SpendLedger
from harness.models import sources
from harness.models.device import free_memory, is_out_of_memory
from harness.models.environment import environment
from harness.store.database import Store
from harness.sweep import retention
from harness.sweep.engine import engine_for
from harness.sweep.followups import run_followups
from harness.sweep.importance import parameter_importance
from harness.sweep.plan import SweepPlan
from harness.sweep.preflight import check_hosted_arms
from harness.sweep.prepare import SweepData, prepare, with_base_regression
from harness.sweep.resume import (
    DUPLICATE,
    HeldSignals,
    Lease,
    PlacedSampler,
    RetryOnce,
    Stale,
    counted_trials,
    fail_stale_trials,
    finish_recorded_trials,
    mark_interrupted,
    renew,
    retry_note,
    retry_stopped_trials,
    unneeded,
)
from harness.sweep.space import configurations
from harness.sweep.storage import StudyStorage, open_storage, redacted, repair_storage, stored_study
from harness.sweep.trial import run_trial
from harness.sweep.twins import FIXED, exhausted, finished_twin, fixed_attr, outside_space_note
from harness.training.methods import METHODS


@dataclass(frozen=True)
class SweepOutcome:
    study: str
    ran: int
    """Trials this invocation started (duplicates, which run nothing, are not among them)."""
    failed: int
    """Of those, how many failed (an exception, not pruning)."""
    duplicates: int = 0
    """Sampled configurations this invocation did not run because a completed trial had run them."""
    stopped_short: str | None = None
    """Why the study stopped short of its total, in words: its space has no configuration left to run, or
    budget.sweep_minutes ran out."""
    engine_lost: str | None = None
    """Why this run stopped with trials still to run: the engine its local trials answer through stopped answering."""
    run_id: str = ""
    """The run this invocation recorded its trials under."""


with warnings.catch_warnings():
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    RETRY = RetryOnce(max_retry=1)
    """A trial whose worker died runs once more, in whichever worker asks next."""


CLAIM_POLL_SECONDS = 2.0
"""How often a worker waiting for a slot looks again."""

class NotNeeded(Exception):
    """A sampled trial this worker will not run: the study is complete, or another worker runs its twin."""


def run_sweep(plan: SweepPlan, store: Store, echo: Callable[[str], None] = print, worker: int = 0,
              followups: bool = True, prepared: SweepData | None = None) -> SweepOutcome:
    """Run the planned sweep until the study has `plan.trials` trials, then its follow-ups.

    `prepared` is what the trials share, as the machine's plan made it (`machine.plan_for_machine`: the calibrated
    precision, the fitted budget); without it the plan runs as written. `worker` numbers this process among the
    study's workers; it offsets the sampler's seed, so workers explore different configurations. A lone sweep is
    worker 0, and so reproduces the same trials from the same seed."""
    check_store_matches_storage(plan, store)
    results_folder(plan.results_dir)  # owner-only before the first cache or log lands in it
    for method, reason in plan.space.skipped.items():
        echo(f"{method}: skipped - {reason}")
    source = sources.resolve(plan.config.model)
    data = prepared
    if data is None:  # else the machine's plan checked the hosted arms, before it calibrated
        data = prepare(plan, source, echo)
        check_hosted_arms(plan, data, echo)  # before any model loads: an endpoint that rejects the arm's request
    _check_same_model_setup(plan, store, sources.setup_sha256(source.path))  # an embedded model pulled just now
    if _may_train(plan, store, followups):  # the forgetting check's base score: only a trained trial needs it
        data = with_base_regression(data, echo)
    data = dataclasses.replace(data, hosted_ledger=hosted_ledgers(store, plan))
    storage = open_storage(plan.storage, retry=RETRY)  # its journal mended above, where a failed write cut it short
    record = _study_record(plan, source.reference, source.sha256, source.note)
    data = dataclasses.replace(data, experiment=record.experiment)  # each trial keeps it: a resume may replace it
    study = _open_study(plan, storage, worker, record)
    run_id = uuid.uuid4().hex[:12]
    store.record_study(record)
    env = environment(plan.device, {**data.provenance["model"], "provenance": source.provenance},
                      data.provenance["data"])
    store.record_run(RunRecord(run_id, plan.study, os.getpid(), socket.gethostname(), plan.device,
                               env["device_name"], env["cpu_count"], env))
    with storage.claim(plan.study):  # two workers starting together must not enqueue the baselines twice
        finished = finish_recorded_trials(study, _recorded(plan, store))
        stale = fail_stale_trials(study, RETRY)
        retry_stopped_trials(study, resuming=True)  # before the baselines: a stopped baseline's retry stands for it
        for params in plan.enqueued:
            study.enqueue_trial(params, skip_if_exists=True)
    _record_stale(store, plan.study, stale, echo, finished)
    record_storage_failures(store, plan.study, study)  # a trial of this folder's killed worker, failed by another

    remaining = plan.trials - counted_trials(study)
    stored = _stored_params(store, plan.study, study)
    if (outside := outside_space_note(plan.space, study, stored, plan.study)) is not None:
        echo(f"note: {outside}")
    if (budget := _other_budget_note(plan, store)) is not None:
        echo(f"note: {budget}")
    stop = exhausted(plan.space, study, stored, plan.config.sampler)
    outcome = SweepOutcome(plan.study, 0, 0)
    with engine_for(plan, data, echo) as engine:  # a vLLM server, for the whole sweep and its follow-ups
        data = dataclasses.replace(data, engine=engine)
        if remaining <= 0:
            more = "raise --trials to run more" if stop is None else stop
            echo(f"study {plan.study} has its {plan.trials} trials; {more}.")
        elif stop is not None:
            echo(f"study {plan.study} stops at {plan.trials - remaining} of {plan.trials} trials: {stop}.")
            outcome = SweepOutcome(plan.study, 0, 0, stopped_short=stop)
        else:
            size = plan.space.size()
            if size is not None and size < plan.trials:
                echo(f"note: the space holds only {configurations(size)}, fewer than the study's {plan.trials} "
                     "trials: the sweep stops once every one has run.")
            echo(f"study {plan.study}: {remaining} of {plan.trials} trials to go, on {plan.device}"
                 + (f" (worker {worker})" if worker else ""))
            outcome = _optimize(plan, store, data, storage, study, run_id, remaining, echo)
            store.record_importance(plan.study, parameter_importance(study))
        if followups and not outcome.engine_lost:  # they would fail on the same engine
            run_followups(data, plan, store, run_id, echo)
    return dataclasses.replace(outcome, run_id=run_id)


def _stored_params(store: Store, study: str, optuna_study: optuna.Study) -> dict[int, dict]:
    """The study's trials' parameters as the results database holds them (fixed values included), by number, for
    completed trials recorded before they kept their fixed values (`twins.FIXED`); read only where there are such,
    so that a sweep whose results database another process holds still decides without it."""
    complete = optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if all(FIXED in t.user_attrs for t in complete):
        return {}
    return {t.number: dict(t.params) for t in store.trials(study)}


def _other_budget_note(plan: SweepPlan, store: Store) -> str | None:
    """The study's finished trained trials that trained under another step budget than this run gives them: a
    resume with budget.max_steps raised ranked 4-step adapters beside 8-step ones without a word, and the verdict
    then asked to raise the budget just raised."""
    def steps(budget: tuple) -> str:
        return f"max_steps {budget[0]}, epochs {budget[1]}"

    now = (plan.config.budget.max_steps, plan.config.budget.epochs)
    other = [t for t in store.trials(plan.study) if t.trained and t.status in ("complete", "pruned")
             and t.step_budget is not None and t.step_budget != now]
    if not other:
        return None
    listed = ", ".join(f"{t.id} ({steps(t.step_budget)})" for t in other[:3]) + (
        f" and {len(other) - 3} more" if len(other) > 3 else "")
    return (f"{len(other)} of study {plan.study}'s finished trained trials trained under another step budget than "
            f"this run's ({steps(now)}): {listed}. They stay in its ranking and verdict as they trained; to compare "
            "every trial at one budget, run it as a new study (--study NEW_NAME).")


def _may_train(plan: SweepPlan, store: Store, followups: bool) -> bool:
    """Whether this run may train a trial: a method of the space trains, or a follow-up may re-train a trained trial
    the study already has (a space narrowed since, `--set space.lora=null`)."""
    if any(METHODS.get(method).trains for method in plan.space.methods):
        return True
    return followups and any(t.trained and t.complete for t in store.trials(plan.study))


def _optimize(plan: SweepPlan, store: Store, data: SweepData, storage: StudyStorage, study: optuna.Study,
              run_id: str, remaining: int, echo: Callable[[str], None]) -> SweepOutcome:
    """Sample -> claim -> run -> record until the study has its trials (or sweep_minutes), with a progress bar."""
    config = plan.config
    redactor = Redactor.from_config(config.redaction)
    artifacts = plan.results_dir / "artifacts" / plan.study
    failures: list[str] = []
    ran: list[str] = []
    duplicates: list[str] = []
    stopped: list[str] = []
    lost: list[str] = []
    # The bar shows the study's progress, whichever workers ran the trials.
    with tqdm(total=plan.trials, initial=plan.trials - remaining, desc="sweep", unit="trial", **bar_options()) as bar:
        suggested: dict[int, dict] = {}
        started: set[int] = set()
        unrecorded: list[str] = []

        def new_record(trial: optuna.Trial, params: dict) -> TrialRecord:
            method = METHODS.get(params["method"])
            return TrialRecord(
                id=trial_id(plan.study, trial.number), study=plan.study, number=trial.number, run_id=run_id,
                method=params["method"], params=params, trained=method.trains, started_at=datetime.now(timezone.utc),
                provenance=data.provenance, device="hosted" if method.hosted else plan.device,
            )  # fmt: skip

        held = HeldSignals()

        def objective(trial: optuna.Trial) -> float:
            params = suggested[trial.number] = plan.space.suggest(trial)
            trial.set_user_attr(FIXED, fixed_attr(plan.space, params["method"]))  # Optuna's own params leave them out
            _claim(plan, store, storage, study, trial, echo)
            record = new_record(trial, params)
            trial.set_user_attr(RESULTS, results_owner(store))  # whose database must hold it (`_refuse_lost_trials`)
            store.record_trial_start(record)
            started.add(trial.number)
            if (repeated := _repeats(study, trial.number)) is not None:  # an interrupted trial's configuration
                store.note_rerun(trial_id(plan.study, repeated), record.id)
            bar.set_postfix_str(f"#{trial.number} {params['method']} {params_text(params)}")
            twin = finished_twin(study, trial, plan.space, _stored_params(store, plan.study, study))
            if twin is not None:  # same method and parameters, same seed: re-running would only repeat it
                reason = duplicate_reason(trial_id(plan.study, twin))
                trial.set_user_attr(DUPLICATE, twin)  # pruned, but it takes no slot of --trials: it ran nothing
                store.mark_trial_failed(record.id, reason, status="pruned")
                duplicates.append(record.id)
                raise optuna.TrialPruned(reason)
            ran.append(record.id)
            with Lease(trial):
                try:
                    run_trial(data, record, params, trial, artifacts / str(trial.number))
                    held.hold()  # until Optuna has been told too (`advance`): the two records must agree
                except KeyboardInterrupt as stop:
                    how = "stopped by SIGTERM" if isinstance(stop, Terminated) else "interrupted by the user (Ctrl-C)"
                    reason = f"{how} during the trial"
                    mark_interrupted(trial, reason, interrupted=True, by_user=True)
                    store.mark_trial_failed(record.id, reason)  # its retry adds "re-run as ..." when it starts
                    raise
            record.examples = redact_rows(record.examples, redactor)  # scored already; only what is stored changes
            store.record_trial_result(record)
            retention.apply(store, plan.study, config.retention.keep_best)
            if record.status == "pruned":
                raise optuna.TrialPruned(f"dev score {record.objective} trailed the median")
            if record.objective is None:  # nothing to score (e.g. no compliant output): the worst value for Optuna
                return 0.0 if plan.maximize else 1.0
            return record.objective

        def advance(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
            held.release()  # the trial is recorded in both places: a Ctrl-C held meanwhile stops the sweep now
            free_memory(plan.device)  # what the trial held (a trainer's reference cycles, freed heap) goes now
            counted = counted_trials(study)
            done = min(counted, plan.trials)
            if done > bar.n:
                bar.update(done - bar.n)
            # No per-process trial count: the claim stops this worker when the study has its total, whichever
            # workers ran them; this stops it as soon as the last one finishes, or when no configuration is left.
            if counted >= plan.trials:
                study.stop()
            elif (used_up := exhausted(plan.space, study, _stored_params(store, plan.study, study),
                                       plan.config.sampler)) is not None:
                stopped.append(used_up)
                echo(f"study {plan.study} stops at {counted} of {plan.trials} trials: {used_up}.")
                study.stop()

        # Failures are reported above, once each, with their reason; Optuna's own warning adds a traceback.
        optuna.logging.set_verbosity(optuna.logging.ERROR)

        def counted_on_error(trial: optuna.Trial) -> float:
            """`objective`, with an error anywhere in it (training, scoring, or the harness's own steps around
            them) recorded as the trial's failure, so that it counts: a trial failed without that mark is taken for
            a dead worker's and run again, and a fault outside the trial would then repeat for ever."""
            try:
                return objective(trial)
            except (optuna.TrialPruned, NotNeeded):  # a duplicate, or not needed: marked where they are raised
                raise
            except Exception as exc:
                tid, reason = trial_id(plan.study, trial.number), redactor.redact(_failure_reason(exc, plan.device))
                try:  # a failure before the trial's row (in its claim) gets one too: a counted trial is never unseen
                    if trial.number not in started and trial.number in suggested:
                        store.record_trial_start(new_record(trial, suggested[trial.number]))
                    store.mark_trial_failed(tid, reason, hosted=getattr(exc, "usage", None))  # a hosted arm's spend
                except HarnessError as refused:  # the results database refused it: never count what it does not hold
                    mark_interrupted(trial, f"{reason}; not recorded: {refused}", interrupted=True)
                    unrecorded.append(f"trial {tid} failed ({reason}), and the results database could not record "
                                      f"that: {refused}")
                    study.stop()
                    raise exc from refused
                mark_interrupted(trial, reason, interrupted=False,  # errors may quote an input: redacted above
                                 outside=isinstance(exc, OutsideFailure))
                ran.extend([] if tid in ran else [tid])
                failures.append(tid)
                echo(f"trial {tid} failed - {reason}")
                if isinstance(exc, EngineLost):  # every trial after it would fail the same way
                    lost.append(reason)
                    study.stop()
                raise

        timeout = config.budget.sweep_minutes * 60 if config.budget.sweep_minutes else None
        began = time.monotonic()
        try:
            study.optimize(counted_on_error, n_trials=None, catch=(Exception,), callbacks=[advance],
                           timeout=timeout)
        finally:
            held.release(act=False)  # whatever stopped the loop, the handlers are the process's again
        left = plan.trials - counted_trials(study)
        if timeout and time.monotonic() - began >= timeout and left > 0 and not stopped and not lost:
            # Optuna's timeout ends the loop without a word: the trials it left are said, with how to run them
            stopped.append(f"budget.sweep_minutes ({config.budget.sweep_minutes:g}) ran out with {left} of "
                           f"{plan.trials} trials not run; re-run the same command to run them (a finished trial is "
                           "never run again), or raise budget.sweep_minutes")
            echo(f"study {plan.study} stops: {stopped[-1]}.")
        if unrecorded:  # this worker stops; the trial is not counted, so a resumed sweep runs it again
            raise HarnessError(f"{unrecorded[0]}. This run stops; the trial is not counted. Re-run the same command "
                               "to resume once the database is free.")
        return SweepOutcome(plan.study, len(ran), len(failures), len(duplicates), stopped[0] if stopped else None,
                            engine_lost=lost[0] if lost else None)


def _repeats(study: optuna.Study, number: int) -> int | None:
    """The number of the interrupted trial whose configuration trial `number` runs again, if it is a retry (Optuna
    keeps that on the frozen trial only)."""
    frozen = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    history = frozen.system_attrs.get("retry_history") if frozen is not None else None
    return history[-1] if history else None


def _claim(plan: SweepPlan, store: Store, storage: StudyStorage, study: optuna.Study, trial: optuna.Trial,
           echo: Callable[[str], None]) -> None:
    """Under the study's lock: free the trials of dead workers, then take this trial, or raise NotNeeded.

    While every remaining slot is running elsewhere, wait: if one of those workers dies, this one takes over."""
    waited = False
    while True:
        with storage.claim(plan.study):
            finished = finish_recorded_trials(study, _recorded(plan, store), current=trial.number)
            stale = fail_stale_trials(study, RETRY, current=trial.number)
            retry_stopped_trials(study)  # another worker's Ctrl-C: its trial runs here, as a dead worker's does
            why = unneeded(study, trial, plan.trials) or _queued_first(study, trial)
            trial.set_user_attr("claimed", why is None)
            renew(trial)
        _record_stale(store, plan.study, stale, echo, finished)
        record_storage_failures(store, plan.study, study)
        if why is None:
            return
        kind, reason = why
        if kind != "busy":
            break
        if not waited:
            echo(f"{reason}; this worker stays until they finish, in case one of them stops")
            waited = True
        time.sleep(CLAIM_POLL_SECONDS)
    trial.set_user_attr("not_needed", reason)
    mark_interrupted(trial, reason, interrupted=True)  # never counted
    if kind == "done":
        study.stop()
    else:
        time.sleep(CLAIM_POLL_SECONDS)  # let the twin's worker get on before sampling again
    raise NotNeeded(reason)


def _queued_first(study: optuna.Study, trial: optuna.Trial) -> tuple[str, str] | None:
    """Why `trial` gives way to a queued retry, if it should, so that a resumed sweep runs the trials an uninterrupted
    one would have, in its order:
    - a fresh sample, to any trial queued (a dead or stopped worker's retry, just queued by this claim, after Optuna
      asked for `trial`), as Optuna runs the queue before it samples. Else the sample took the study's last slot and
      the retry stayed queued for ever: a killed worker's configuration never ran again;
    - an enqueued entry, to the retry of a trial that came before it: Optuna takes the queue in order, and the retry
      joined it last, so a sweep killed in its LoRA trial, resumed, ran the next enqueued entry in the LoRA's place
      (and its plan had said LoRA). The entry is queued again, after the retry.
    A retry itself never gives way."""
    trials = study.get_trials(deepcopy=False)
    this = next((t for t in trials if t.number == trial.number), None)
    if this is None or "failed_trial" in this.system_attrs:
        return None
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    if "fixed_params" not in this.system_attrs:
        return ("yield", f"not needed: queued trial {waiting[0].number} (a stopped trial's retry) runs first, in its "
                         "place") if waiting else None
    earlier = [t for t in waiting if t.system_attrs.get("failed_trial", this.number) < this.number]
    if not earlier:
        return None
    study.enqueue_trial(this.system_attrs["fixed_params"])  # the entry keeps its run, after the retry
    retry, failed = earlier[0], earlier[0].system_attrs["failed_trial"]
    return "yield", (f"not needed yet: queued trial {retry.number}, the retry of trial {failed}, which came before "
                     "this one, runs first, in its place; this one is queued again after it")


def _record_stale(store: Store, study: str, stale: list[Stale], echo: Callable[[str], None],
                  finished: Sequence[int] = ()) -> None:
    for number in finished:
        echo(f"trial {trial_id(study, number)}: recorded as finished before its process ended; the study storage "
             "now says so too, and it does not run again")
    for number, reason, last_seen in stale:
        ended = None if last_seen is None else datetime.fromtimestamp(last_seen, timezone.utc)
        store.mark_trial_failed(trial_id(study, number), reason, ended_at=ended)
        echo(f"trial {trial_id(study, number)}: marked failed - {reason}")


def _recorded(plan: SweepPlan, store: Store) -> dict[int, float | None]:
    """The study's finished trials in the results database, as `finish_recorded_trials` reads them: the objective
    Optuna was given (the worst value where the trial scored nothing, as `objective` returns it), None where
    pruned."""
    worst = 0.0 if plan.maximize else 1.0
    return {t.number: None if t.status == "pruned" else worst if t.objective is None else t.objective
            for t in store.trials(plan.study) if t.status in ("complete", "pruned")}


def record_storage_failures(store: Store, name: str, study: optuna.Study) -> None:
    """Trials this results database holds as running that the study storage has failed (their worker died, and
    another worker found them stale, or Optuna's heartbeat ran out): say so here. Run at every claim, and when a
    worker starts, so a results folder whose worker was killed stops showing its trial as running for ever."""
    failed = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    for view in store.trials(name):
        if view.status == "running" and view.number in failed:
            store.mark_trial_failed(view.id, "interrupted: its worker stopped (another worker of the study found it "
                                             "stale); " + retry_note(failed[view.number]))


def hosted_ledgers(store: Store, plan: SweepPlan) -> Callable[[str], SpendLedger]:
    """Endpoint name -> the study's spend ledger for it in the results folder, which every trial, retry, follow-up
    and worker of the study shares; a new ledger starts from what the results database counted before."""
    spent = hosted_spent(store, plan.study)
    folder = plan.results_dir / "cache" / "hosted-spend"
    return lambda endpoint: SpendLedger(folder / f"{quote(plan.study, safe='')}--{quote(endpoint, safe='')}.jsonl",
                                        carried=lambda: spent(endpoint))


def hosted_spent(store: Store, study: str) -> Callable[[str], tuple[int, int]]:
    """Endpoint name -> (prompt, completion) tokens that the study and its follow-ups have spent on it, by the
    trials the results database holds: their dev and test, and their prompt searches (`api_dspy`)."""
    def spent(endpoint: str) -> tuple[int, int]:
        names = {study, *(view.name for view in store.followups(study).values())}
        used = [t for name in names for t in store.trials(name)
                if t.hosted is not None and t.hosted.endpoint == endpoint]
        searched = [t.prompt_search for t in used if t.prompt_search is not None]
        return (sum(t.hosted.prompt_tokens for t in used) + sum(s.prompt_tokens for s in searched),
                sum(t.hosted.completion_tokens for t in used) + sum(s.completion_tokens for s in searched))

    return spent


def _failure_reason(exc: Exception, device: str) -> str:
    if is_out_of_memory(exc):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return (f"out of memory on {device} ({first}); the memory was freed and the sweep went on. Lower "
                "training.batch_size (raise gradient_accumulation to keep the effective batch), "
                "training.max_length or generation.batch_size, or use qlora.")
    return f"{type(exc).__name__}: {exc}"


def _study_record(plan: SweepPlan, model_name: str, model_sha256: str, model_note: str | None) -> StudyRecord:
    config, gate = plan.config, plan.suite.gate
    return StudyRecord(
        name=plan.study, experiment_name=config.name, experiment=config.to_dict(), suite=plan.suite.name,
        suite_version=plan.suite.version, suite_path=str(plan.suite.path.resolve()), model_name=model_name,
        model_sha256=model_sha256, model_note=model_note, objective_metric=config.objective.metric,
        maximize=plan.maximize, notes={"skipped_methods": plan.space.unavailable, "config_path": str(plan.config_path),
                                       # the gate reads these, not the file as it may read later (StudyView)
                                       "suite_gate": None if gate is None else dataclasses.asdict(gate)},
    )  # fmt: skip


def _open_study(plan: SweepPlan, storage: StudyStorage, worker: int, record: StudyRecord) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if plan.maximize else "minimize"
    with storage.claim(plan.study):  # workers starting together: one creates the study, the others load it
        study = optuna.create_study(study_name=plan.study, storage=storage.storage, direction=direction,
                                    sampler=_sampler(plan.config, worker), pruner=_pruner(plan.config),
                                    load_if_exists=True)
    if study.direction.name.lower() != direction:
        raise HarnessError(f"study {plan.study} was created to {study.direction.name.lower()} its objective, but "
                           f"`objective.metric: {plan.config.objective.metric}` is to {direction}. Pass --study "
                           "NEW_NAME to start a separate study.")
    previous = study.user_attrs.get("methods")
    if previous is not None and previous != list(plan.space.methods):
        raise HarnessError(
            f"study {plan.study} was created with methods {previous}, but on this machine the space has "
            f"{list(plan.space.methods)} (see the skipped methods above). Optuna cannot change a study's "
            "choices: pass --study NEW_NAME to start a separate study here."
        )
    study.set_user_attr("methods", list(plan.space.methods))
    _check_setup(plan, study, record)
    return study


def _check_choices(plan: SweepPlan, trials: list[optuna.trial.FrozenTrial]) -> None:
    """Refuse a space whose parameters the study's trials were drawn from otherwise in a way Optuna cannot mix
    (other choices, log scale, integer or float): each new trial would fail on it and take a slot."""
    wanted = plan.space.distributions()
    for trial in trials:
        for name, had in trial.distributions.items():
            if name not in wanted:
                continue
            try:
                optuna.distributions.check_distribution_compatibility(had, wanted[name])
            except ValueError:
                keep = "the space's methods as they were (a method left out with `--set space.METHOD=null` counts)" \
                    if name == "method" else f"`space.{name}` as it was"
                raise HarnessError(
                    f"study {plan.study}'s trials drew `{name}` from {_drawn(had)}, but the space now gives "
                    f"{_drawn(wanted[name])}; Optuna cannot change that within a study. Keep {keep} to add trials "
                    "to this study, or pass --study NEW_NAME to start a separate study.") from None


def _drawn(distribution: optuna.distributions.BaseDistribution) -> str:
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return f"the choices {list(distribution.choices)}"
    scale = " on a log scale" if getattr(distribution, "log", False) else ""
    kind = "integers" if isinstance(distribution, optuna.distributions.IntDistribution) else "numbers"
    return f"{kind} in [{distribution.low}, {distribution.high}]{scale}"


def _check_setup(plan: SweepPlan, study: optuna.Study, record: StudyRecord) -> None:
    """Refuse to add trials to a shared study that a sweep of another suite, model, data, seed or objective created.
    Each results database checks the studies it holds (`Store.study_conflict`), but a worker on another machine
    writes to its own database, and only the study storage they share can tell them apart."""
    stored = study.user_attrs.get("setup")
    if stored is None:
        study.set_user_attr("setup", _stored_setup(record))
        return
    _refuse_other_setup(plan, stored, record)


def _stored_setup(record: StudyRecord) -> dict:
    """The study's set-up as the storage keeps it: JSON, so tuples are lists."""
    return json.loads(json.dumps(study_setup(record)))


def _refuse_other_setup(plan: SweepPlan, stored: dict, record: StudyRecord) -> None:
    setup = _stored_setup(record)
    changed = [f"{fact}: created with {old!r}, now {new!r}" for fact, old, new in setup_changes(stored, setup)]
    if changed:
        raise HarnessError(f"study {plan.study} in the study storage {redacted(plan.storage)} was created by a sweep "
                           f"with another setup, so their trials cannot be ranked together: {'; '.join(changed)}. "
                           "Pass --study NEW_NAME to start a separate study, or run the experiment that created it.")


def check_store_matches_storage(plan: SweepPlan, store: Store, repair: bool = True) -> list[str]:
    """Refuse, before anything runs, when the results database holds trials of this study that its Optuna storage
    does not know. Optuna would number new trials from 0 again, and each would take the id, the stored scores and
    the adapter folder of an old one: a promoted adapter among them would change under its registry entry. Returns
    notes for the user (`_check_same_setup`). `repair`: mend the study's journal if a failed write cut it short (a
    command that writes nothing passes False)."""
    model, notes = _check_same_setup(plan, store)
    if repair and (mended := repair_storage(plan.storage)):
        notes.append(mended)
    loaded = stored_study(plan.storage, plan.study)
    drawn = [] if loaded is None else loaded.get_trials(deepcopy=False)
    if loaded is not None and (setup := loaded.user_attrs.get("setup")) is not None:
        # a worker with its own results folder: only the storage knows the study, and it knows before calibration
        _refuse_other_setup(plan, setup, _study_record(plan, *model, None))
    _check_choices(plan, drawn)
    known = {t.number for t in drawn}
    unknown = [t.id for t in store.trials(plan.study) if t.number not in known]
    _refuse_lost_trials(plan, store, drawn)
    if not unknown:
        return notes
    shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    raise HarnessError(
        f"{store.path} already holds trials of study {plan.study} ({shown}) that the study storage "
        f"{redacted(plan.storage)} does not know: the sweep was pointed at another --storage, or the study's journal "
        f"was deleted or moved. New trials would reuse their ids and overwrite their results and adapters. Run with "
        f"the storage those trials came from, pass --study NEW_NAME to start a separate study, or use another "
        f"results folder (--set results_dir=...)."
    )


RESULTS = "results"
"""User attribute of a trial: the results database it is recorded in (`results_owner`), so that one whose finished
trials it no longer holds is refused (`_refuse_lost_trials`) while workers with databases of their own are not."""


def results_owner(store: Store) -> str:
    """`HOST:PATH` of a results database: workers on two machines, each with `--results /local/results` (as `harness
    worker --help` shows), write databases of the same path that are not one."""
    return f"{socket.gethostname()}:{store.origin.resolve()}"  # an upgraded copy checked for --check: its file's


def _refuse_lost_trials(plan: SweepPlan, store: Store, drawn: list) -> None:
    """Refuse when the study storage holds finished trials that this results database should hold and does not: it
    was deleted, moved aside (as a damaged one's error suggests) or replaced. The sweep had said "study toy has its 3
    trials" and "No verdict yet", exit 0: two scored adapters were gone from every report, their folders orphaned.
    A trial is this database's where it says so (`RESULTS`); one recorded before it said so, where the storage is
    the journal in this database's own folder."""
    here, held = results_owner(store), {t.number for t in store.trials(plan.study)}
    journal = plan.storage.removeprefix("journal:") if plan.storage.startswith("journal:") else None
    beside = journal is not None and Path(journal).resolve() == store.origin.parent.resolve() / "optuna-journal.log"
    lost = [t.number for t in drawn
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.number not in held
            and t.user_attrs.get(RESULTS, here if beside else None) == here]
    if not lost:
        return
    shown = ", ".join(trial_id(plan.study, n) for n in lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5
                                                                    else "")
    raise HarnessError(
        f"the study storage {redacted(plan.storage)} holds {len(lost)} finished trial(s) of study {plan.study} "
        f"({shown}) that {store.origin} should hold and does not: the results database was deleted, moved aside or "
        "replaced. Their scores and verdict would be left out of every report. Put the database back (a backup, or "
        f"the copy you moved aside, repaired), or start afresh: --study NEW_NAME for a new study here, or another "
        "results folder (--set results_dir=...) with its own journal.")


def _check_same_setup(plan: SweepPlan, store: Store) -> tuple[tuple[str, str], list[str]]:
    """Refuse, before calibration and in the dry run, to add trials to a stored study of this name that another
    suite, data subset, seed, objective or model made (`Store.study_conflict`), or whose model folder's set-up or
    suite's split files changed since. The model is the one on this machine now; an embedded model not pulled yet is
    compared when the sweep records the study, after it pulls it. Returns the model as a study records it (its
    reference and sha256, "" where not known yet), for the storage's own check, and the notes to print."""
    notes = _check_one_suite_per_name(plan, store)
    try:
        source = sources.resolve(plan.config.model, pull_missing=False)  # a folder's weights hashed (cached)
    except HarnessError:
        source = None  # the sweep says what is wrong with it, or pulls it
    stored = store.study(plan.study)
    model = (source.reference, source.sha256) if source else \
        (stored.model_name, stored.model_sha256) if stored else (plan.config.model, "")
    if stored is None:
        return model, notes
    conflict = store.study_conflict(_study_record(plan, *model, stored.model_note))
    if conflict is not None:
        raise HarnessError(conflict)
    notes += _check_same_split_files(plan, store, stored)
    if source is not None:
        _check_same_model_setup(plan, store, sources.setup_sha256(source.path))
    return model, notes


def _check_one_suite_per_name(plan: SweepPlan, store: Store) -> list[str]:
    """Refuse a suite whose name and version this database already knows, scored on other examples or another
    instruction, contract or scorers (what its trials recorded, wherever the folder is now). The registry knows a
    suite by its name: two teams' suites, both `triage` 1.0.0, shared one production adapter, and one team's
    promote and rollback retired the other's. Another version from another folder is a note, not a refusal: a
    suite's new version shares its production adapter, as it should. Returns the notes."""
    here, notes = plan.suite, []
    for study in store.studies():
        if study.suite != here.name or study.name == plan.study:
            continue  # the study's own trials are `_check_same_split_files`'
        if study.suite_version != here.version:
            there = Path(study.suite_path) if study.suite_path else None
            if there is not None and there.resolve() != here.path.resolve():
                notes.append(f"suite {here.name} is also in this database as version {study.suite_version} from "
                             f"{show_path(there)} (study {study.name}): the registry keeps one production adapter "
                             f"for both. If {show_path(here.path)} is another suite, give it its own `name:`.")
            continue
        for trial in store.trials(study.name):
            other = differs_from_recorded(here, trial.data.split_sha256, trial.data.suite_setup_sha256)
            if other is not None:
                raise HarnessError(
                    f"suite {here.name} {here.version} ({show_path(here.path)}) is not the suite {here.name} "
                    f"{here.version} that study {study.name} in {store.path} was scored on "
                    f"({show_path(Path(study.suite_path)) if study.suite_path else 'its folder is not recorded'}): "
                    f"{other} differ, under one name and version. The registry knows a suite by its name, so the "
                    f"two would share one production adapter, and a promote or rollback of one would retire the "
                    f"other's. If it is another suite (another team's, other labels), give it its own `name:` in "
                    f"{show_path(here.path / 'suite.yaml')}; only if it is a new version of that same suite, give it "
                    "a new `version:`.")
    return notes


def _check_same_model_setup(plan: SweepPlan, store: Store, now: str | None) -> None:
    """Refuse to add trials to a study whose model folder's config, tokenizer or chat template changed since its
    trials ran (the weights, whose sha256 names the model, may be the same): a chat template added to a folder turns
    plain-text prompts into chat turns, and new trials would be weighed against old ones prompted otherwise."""
    for trial in store.trials(plan.study):
        then = trial.model_setup_sha256
        if now and then and now != then:
            raise HarnessError(
                f"model {plan.config.model} is not set up as study {plan.study}'s trials ran: its config, tokenizer "
                f"or chat template changed since {trial.id} (sha256 {then[:12]}, now {now[:12]}), though its weights "
                "may not have. New trials would be prompted otherwise than its trials. Run it as a new study "
                "(--study NEW_NAME), or put the files back as they were.")


def _check_same_split_files(plan: SweepPlan, store: Store, stored: StudyView) -> list[str]:
    """Refuse to add trials to a study whose suite's split files, instruction, output contract or scorers changed
    since its trials were scored: the new trials would be ranked, and the verdict weighed, against old ones on other
    examples, or prompted and scored otherwise. A study scored on another folder's suite is another project's study
    of the same name, and is named so: the edit message had blamed the user for an edit they never made. Returns a
    note where its trials recorded no set-up (scored before 2026-12-07): an edit since cannot be told, and "unknown"
    must not read as "the same"."""
    suite = plan.suite
    trials = store.trials(plan.study)
    there = Path(stored.suite_path) if stored.suite_path else None
    if there is not None and there.resolve() != suite.path.resolve():
        for trial in trials:
            other = differs_from_recorded(suite, trial.data.split_sha256, trial.data.suite_setup_sha256)
            if other is not None:
                raise HarnessError(
                    f"study {plan.study} in {store.path} was scored on the suite at {show_path(there)}, not on "
                    f"{show_path(suite.path)}, and {other} differ: it is another project's study of the same name. "
                    "Run yours under a name of its own (--study NAME, or `name:` in the experiment).")
    unrecorded = [t.id for t in trials if t.complete and t.data.suite_setup_sha256 is None]
    for trial in trials:
        then = trial.data.suite_version
        same = then is None or then == suite.version
        when = ", under the same version" if same else f" (on version {then})"
        fix = ("Give the changed suite a new `version:` in its suite.yaml and run it as a new study (--study "
               "NEW_NAME), or put {what} back as it was." if same else
               f"Run version {suite.version} as a new study (--study NEW_NAME); this one stays as version {then} "
               "scored it.")
        setup = trial.data.suite_setup_sha256
        if setup not in (None, suite.setup_sha256):
            raise HarnessError(
                f"suite {suite.name} {suite.version} ({show_path(suite.path / 'suite.yaml')}) is not set up as study "
                f"{plan.study}'s trials were: its instruction, `output:` or `scorers:` changed since {trial.id} was "
                f"scored (sha256 {setup[:12]}, now {suite.setup_sha256[:12]}){when}. New trials would be prompted or "
                f"scored otherwise than its trials, and ranked against them. {fix.format(what='suite.yaml')}"
                + (f" ({_listed(unrecorded)}, scored before set-ups were recorded, may have been scored under either "
                   "one.)" if unrecorded else ""))
        recorded = trial.data.split_sha256
        changed = [split for split, sha in suite.split_sha256.items() if recorded.get(split) not in (None, sha)]
        if changed:
            files = ", ".join(f"{split}.jsonl" for split in changed)
            raise HarnessError(
                f"suite {suite.name} {suite.version} ({show_path(suite.path)}) is not what study {plan.study} was "
                f"scored on: {files} changed since {trial.id} was scored (sha256 {recorded[changed[0]][:12]}, now "
                f"{suite.split_sha256[changed[0]][:12]}){when}. New trials would be ranked and weighed against its "
                f"trials on other examples. {fix.format(what='the files')}")
    if not unrecorded:
        return []
    return [f"study {plan.study}'s trials {_listed(unrecorded)} were scored before the suite's instruction, `output:` "
            "and `scorers:` were recorded, so an edit to suite.yaml since cannot be told: new trials are prompted and "
            f"scored as {show_path(suite.path / 'suite.yaml')} reads now. If it was edited, run them as a new study "
            "(--study NEW_NAME)."]


def _listed(ids: list[str]) -> str:
    return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")


def _sampler(config: ExperimentConfig, worker: int) -> optuna.samplers.BaseSampler:
    """The study's sampler, made anew for each trial from the seed and the trial's place (`PlacedSampler`), so that
    a resumed sweep draws the trials an uninterrupted one would have drawn."""
    return PlacedSampler(functools.partial(make_sampler, config.sampler), config.seed + worker)


def make_sampler(kind: str, seed: int) -> optuna.samplers.BaseSampler:
    """Optuna's sampler of `kind` (`tpe` or `random`), seeded."""
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Constraints reach TPE through trial.set_constraint (see trial.py); infeasible trials never win.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=5)


def _pruner(config: ExperimentConfig) -> optuna.pruners.BasePruner:
    pruning = config.pruning
    if not pruning.enabled:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=pruning.startup_trials, n_warmup_steps=pruning.warmup_steps)


