"""The sweep: plan (validated) -> prepare data once -> Optuna optimize (sample -> trial -> record) -> follow-ups.

Interruption is expected: every finished trial is in the store and the Optuna journal the moment it ends.
A trial left `running` by a killed process is found on the next start (its process is gone or its lease
expired), marked failed with the reason, and the study is topped up to `--trials`.
"""

from __future__ import annotations

import os
import socket
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

from harness.analysis.formatting import params_text
from harness.core.config import ExperimentConfig
from harness.core.errors import HarnessError
from harness.core.records import RunRecord, StudyRecord, TrialRecord, trial_id
from harness.models import sources
from harness.models.environment import environment
from harness.store.database import Store
from harness.sweep import retention
from harness.sweep.followups import run_followups
from harness.sweep.importance import parameter_importance
from harness.sweep.plan import SweepPlan
from harness.sweep.prepare import SweepData, prepare
from harness.sweep.resume import Lease, counted_trials, fail_stale_trials, mark_interrupted
from harness.sweep.trial import run_trial
from harness.training.methods import METHODS


@dataclass(frozen=True)
class SweepOutcome:
    study: str
    ran: int
    """Trials this invocation started."""
    failed: int
    """Of those, how many failed (an exception, not pruning)."""


def run_sweep(plan: SweepPlan, store: Store, echo: Callable[[str], None] = print) -> SweepOutcome:
    """Run the planned sweep to `plan.trials` trials in total, then its follow-ups."""
    for method, reason in plan.space.skipped.items():
        echo(f"{method}: skipped - {reason}")
    source = sources.resolve(plan.config.model)
    data = prepare(plan, source, echo)
    study = _open_study(plan)
    run_id = uuid.uuid4().hex[:12]
    store.record_study(_study_record(plan, source))
    env = environment(plan.device, {**data.provenance["model"], "provenance": source.provenance},
                      data.provenance["data"])
    store.record_run(RunRecord(run_id, plan.study, os.getpid(), socket.gethostname(), plan.device,
                               env["device_name"], env["cpu_count"], env))
    for stale, reason in fail_stale_trials(study):
        store.mark_trial_failed(trial_id(plan.study, stale), reason)
        echo(f"trial {trial_id(plan.study, stale)}: marked failed - {reason}")
    for params in plan.enqueued:
        study.enqueue_trial(params, skip_if_exists=True)

    remaining = plan.trials - counted_trials(study)
    outcome = SweepOutcome(plan.study, 0, 0)
    if remaining <= 0:
        echo(f"study {plan.study} already has {plan.trials} finished trials; raise --trials to run more.")
    else:
        echo(f"study {plan.study}: running {remaining} of {plan.trials} trials on {plan.device}")
        outcome = _optimize(plan, store, data, study, run_id, remaining, echo)
        store.record_importance(plan.study, parameter_importance(study))
    run_followups(data, plan, store, run_id, echo)
    return outcome


def _optimize(plan: SweepPlan, store: Store, data: SweepData, study: optuna.Study, run_id: str, remaining: int,
              echo: Callable[[str], None]) -> SweepOutcome:
    """Sample -> run -> record, `remaining` times (or until sweep_minutes), one progress bar over trials."""
    config = plan.config
    artifacts = plan.results_dir / "artifacts" / plan.study
    failures: list[str] = []
    with tqdm(total=remaining, desc="sweep", unit="trial") as bar:
        def objective(trial: optuna.Trial) -> float:
            params = plan.space.suggest(trial)
            record = TrialRecord(
                id=trial_id(plan.study, trial.number), study=plan.study, number=trial.number, run_id=run_id,
                method=params["method"], params=params, trained=METHODS.get(params["method"]).trains,
                started_at=datetime.now(timezone.utc), provenance=data.provenance,
                device="hosted" if METHODS.get(params["method"]).hosted else plan.device,
            )  # fmt: skip
            store.record_trial_start(record)
            bar.set_postfix_str(f"#{trial.number} {params['method']} {params_text(params)}")
            twin = _finished_twin(study, trial)
            if twin is not None:  # same method and parameters, same seed: re-running would only repeat it
                reason = f"duplicate of {trial_id(plan.study, twin)}: same configuration, not re-run"
                store.mark_trial_failed(record.id, reason, status="pruned")
                raise optuna.TrialPruned(reason)
            with Lease(trial):
                try:
                    run_trial(data, record, params, trial, artifacts / str(trial.number))
                except KeyboardInterrupt:
                    reason = "interrupted by the user (Ctrl-C) during the trial"
                    mark_interrupted(trial, reason, interrupted=True)
                    store.mark_trial_failed(record.id, reason)
                    raise
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    mark_interrupted(trial, reason, interrupted=False)
                    store.mark_trial_failed(record.id, reason, hosted=getattr(exc, "usage", None))
                    failures.append(record.id)
                    echo(f"trial {record.id} failed - {reason}")
                    raise
            store.record_trial_result(record)
            retention.apply(store, plan.study, config.retention.keep_best)
            if record.status == "pruned":
                raise optuna.TrialPruned(f"dev score {record.objective} trailed the median")
            if record.objective is None:  # nothing to score (e.g. no compliant output): the worst value for Optuna
                return 0.0 if plan.maximize else 1.0
            return record.objective

        def advance(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
            bar.update(1)

        # Failures are reported above, once each, with their reason; Optuna's own warning adds a traceback.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study.optimize(objective, n_trials=remaining, catch=(Exception,), callbacks=[advance],
                       timeout=config.budget.sweep_minutes * 60 if config.budget.sweep_minutes else None)
        return SweepOutcome(plan.study, bar.n, len(failures))


def _study_record(plan: SweepPlan, source: sources.ModelSource) -> StudyRecord:
    config = plan.config
    return StudyRecord(
        name=plan.study, experiment_name=config.name, experiment=config.to_dict(), suite=plan.suite.name,
        suite_version=plan.suite.version, suite_path=str(plan.suite.path.resolve()), model_name=source.name,
        model_sha256=source.sha256, model_note=source.note, objective_metric=config.objective.metric,
        maximize=plan.maximize, notes={"skipped_methods": plan.space.skipped, "config_path": str(plan.config_path)},
    )  # fmt: skip


def _open_study(plan: SweepPlan) -> optuna.Study:
    storage: Any = plan.storage
    if storage.startswith("journal:"):
        path = Path(storage.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if plan.maximize else "minimize"
    study = optuna.create_study(study_name=plan.study, storage=storage, sampler=_sampler(plan.config),
                                direction=direction, pruner=_pruner(plan.config), load_if_exists=True)
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
    return study


def _sampler(config: ExperimentConfig) -> optuna.samplers.BaseSampler:
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=config.seed)
    # Constraints reach TPE through trial.set_constraint (see trial.py); infeasible trials never win.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=config.seed, multivariate=True, group=True, n_startup_trials=5)


def _pruner(config: ExperimentConfig) -> optuna.pruners.BasePruner:
    pruning = config.pruning
    if not pruning.enabled:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=pruning.startup_trials, n_warmup_steps=pruning.warmup_steps)


def _finished_twin(study: optuna.Study, trial: optuna.Trial) -> int | None:
    """The number of a completed trial with exactly this trial's sampled parameters, if any."""
    for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if other.number != trial.number and other.params == trial.params:
            return other.number
    return None
