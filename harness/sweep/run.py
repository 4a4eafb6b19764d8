"""The sweep: load config -> build space -> prepare data once -> Optuna optimize (sample -> trial -> record).

Interruption is expected: every finished trial is in the store and the Optuna journal the moment it ends.
A trial left `running` by a killed process is found on the next start (its process is gone or its lease
expired), marked failed with the reason, and the study is topped up to `--trials`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState
from tqdm.auto import tqdm

from harness.analysis.report import params_text
from harness.core.config import ExperimentConfig, load_experiment
from harness.core.errors import ConfigError, HarnessError
from harness.core.text import fold
from harness.data.prompting import max_answer_tokens
from harness.data.suites import Suite, load_suite
from harness.evaluation.regression import REGRESSION_SUITES, item_texts, per_item_scores, task_config
from harness.models import sources as models
from harness.models.device import default_dtype, resolve_device
from harness.models.environment import environment
from harness.store.database import Store, TrialRecord
from harness.sweep import retention
from harness.sweep.followups import run_followups
from harness.sweep.resume import Lease, counted_trials, fail_stale_trials, mark_interrupted
from harness.sweep.space import SearchSpace, build_space, optuna_params
from harness.sweep.trial import SweepData, run_trial
from harness.training.methods import get_method


@dataclass
class SweepPlan:
    config: ExperimentConfig
    config_path: str
    study: str
    storage: str
    trials: int
    device: str
    space: SearchSpace
    suite: Suite
    subsets: dict[str, list]


def plan_sweep(config_path: str, overrides: list[str], study: str | None = None, storage: str | None = None,
               trials: int | None = None) -> SweepPlan:
    """Everything the sweep will do, resolved and validated, before any model is loaded."""
    config = load_experiment(config_path, overrides)
    device = resolve_device(config.device)
    space = build_space(config.space, device, config_path)
    for entry in config.enqueue:
        optuna_params(entry, config_path)
    if config.regression.enabled and config.regression.suite not in REGRESSION_SUITES:
        raise ConfigError(f"{config_path}: `regression.suite: {config.regression.suite}` is not a bundled check; "
                          f"use one of {sorted(REGRESSION_SUITES)}, or set regression.enabled: false.")
    suite = load_suite(config.suite)
    if config.regression.enabled:
        _refuse_regression_overlap(suite, config.regression.suite, config_path)
    subsets = {
        "train": _subset(suite.splits["train"], config.data.train_limit, config.seed),
        "dev": _subset(suite.splits["dev"], config.data.dev_limit, config.seed),
        "test": _subset(suite.splits["test"], config.data.test_limit, config.seed),
    }
    results = Path(config.results_dir)
    default_storage = f"journal:{results / 'optuna-journal.log'}"
    return SweepPlan(config, config_path, study or config.name, storage or default_storage,
                     trials or config.budget.trials, device, space, suite, subsets)


def run_sweep(plan: SweepPlan, store: Store, echo=print) -> str:
    """Run the planned sweep to `plan.trials` trials in total; returns the study name."""
    config = plan.config
    for method, reason in plan.space.skipped.items():
        echo(f"{method}: skipped - {reason}")
    source = models.resolve(config.model)
    data = _prepare(plan, source, echo)
    study = _open_study(plan)
    run_id = uuid.uuid4().hex[:12]
    store.record_study(plan.study, config.name, config.to_dict(), plan.suite.name, plan.suite.version,
                       source.name, source.sha256, source.note,
                       {"skipped_methods": plan.space.skipped, "config_path": plan.config_path})
    store.record_run(run_id, plan.study, os.getpid(), socket.gethostname(),
                     environment(plan.device, {**data.details["model"], "provenance": source.provenance},
                                 data.details["data"]))
    for stale, reason in fail_stale_trials(study):
        store.mark_trial_failed(f"{plan.study}/{stale}", reason)
        echo(f"trial {plan.study}/{stale}: marked failed - {reason}")
    for entry in config.enqueue:
        study.enqueue_trial(optuna_params(entry, plan.config_path), skip_if_exists=True)

    remaining = plan.trials - counted_trials(study)
    if remaining <= 0:
        echo(f"study {plan.study} already has {plan.trials} finished trials; raise --trials to run more.")
    else:
        echo(f"study {plan.study}: running {remaining} of {plan.trials} trials on {plan.device}")
        _optimize(plan, store, data, study, run_id, remaining)
    run_followups(data, store, plan.study, run_id, echo)
    return plan.study


def _optimize(plan: SweepPlan, store: Store, data: SweepData, study: optuna.Study, run_id: str,
              remaining: int) -> None:
    """Sample -> run -> record, `remaining` times (or until sweep_minutes), one progress bar over trials."""
    config = plan.config
    artifacts = Path(config.results_dir) / "artifacts" / plan.study
    with tqdm(total=remaining, desc="sweep", unit="trial") as bar:
        def objective(trial: optuna.Trial) -> float:
            params = plan.space.suggest(trial)
            record = TrialRecord(
                id=f"{plan.study}/{trial.number}", study=plan.study, number=trial.number, run_id=run_id,
                method=params["method"], params=params, status="running", failure_reason=None,
                trained=get_method(params["method"]).trains, started_at=datetime.now(timezone.utc),
                device=plan.device, details=data.details,
            )
            store.record_trial_start(record)
            bar.set_postfix_str(f"#{trial.number} {params['method']} {params_text(params)}")
            twin = _finished_twin(study, trial)
            if twin is not None:  # same method and parameters, same seed: re-running would only repeat it
                reason = f"duplicate of {plan.study}/{twin}: same configuration, not re-run"
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
                    store.mark_trial_failed(record.id, reason)
                    raise
            store.record_trial_result(record)
            retention.apply(store, plan.study, config.retention.keep_best)
            if record.status == "pruned":
                raise optuna.TrialPruned(f"dev score {record.objective} trailed the median")
            return record.objective

        def advance(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
            bar.update(1)

        study.optimize(objective, n_trials=remaining, catch=(Exception,), callbacks=[advance],
                       timeout=config.budget.sweep_minutes * 60 if config.budget.sweep_minutes else None)


def _prepare(plan: SweepPlan, source: models.ModelSource, echo) -> SweepData:
    config, suite = plan.config, plan.suite
    torch.manual_seed(config.seed)
    tokenizer = models.load_tokenizer(source)
    train, dev, test = (tuple(plan.subsets[s]) for s in ("train", "dev", "test"))
    max_new = config.generation.max_new_tokens or max_answer_tokens(
        tokenizer, suite.contract, [ex.target for ex in train])
    details = {
        "data": {
            "suite": suite.name, "suite_version": suite.version, "split_sha256": suite.split_sha256,
            "sizes": {"train": len(train), "dev": len(dev), "test": len(test)},
            "full_sizes": {s: len(suite.splits[s]) for s in ("train", "dev", "test")},
            "subset_sha256": {s: _ids_hash(plan.subsets[s]) for s in ("train", "dev", "test")},
        },
        "budget": config.to_dict()["budget"],
        "experiment_training": config.to_dict()["training"],
        "model": {"name": source.name, "sha256": source.sha256, "note": source.note},
        "max_new_tokens": max_new,
        "device": plan.device,
    }
    data = SweepData(config, suite, train, dev, test, source, plan.device,
                     default_dtype(plan.device), max_new, details)
    if config.regression.enabled:
        data.regression_ids, data.base_regression = _base_regression(plan, data, echo)
        spec = REGRESSION_SUITES[config.regression.suite]
        details["regression"] = {"check": f"lm-eval {spec.task} ({spec.metric})", "yaml": str(spec.yaml),
                                 "n": len(data.regression_ids)}
    return data


def _refuse_regression_overlap(suite: Suite, check: str, where: str) -> None:
    """Training on the items of the forgetting check would hide the forgetting: refuse, and say how to fix it."""
    checked = item_texts(check)
    overlap = [ex.id for split in ("train", "dev", "test") for ex in suite.splits[split]
               if fold(ex.input) in checked]
    if overlap:
        raise ConfigError(
            f"{where}: {len(overlap)} examples of suite {suite.name} (e.g. {', '.join(overlap[:3])}) are also items "
            f"of the `{check}` regression check, so the check would measure memorisation, not forgetting. Use "
            f"another check (`regression.suite: piqa`), or set regression.enabled: false."
        )


def _base_regression(plan: SweepPlan, data: SweepData, echo) -> tuple[list[str], list[float]]:
    """The base model's per-item lm-eval scores, measured once per model, check, subset and device, then cached."""
    import lm_eval

    check = plan.config.regression
    spec = REGRESSION_SUITES[check.suite]
    files = task_config(check.suite)["dataset_kwargs"]["data_files"].values()
    key = hashlib.sha256(json.dumps([
        data.source.sha256, check.suite, spec.metric, check.limit, plan.config.seed, plan.device,
        check.max_gen_toks, lm_eval.__version__, _file_hash(spec.yaml), [_file_hash(Path(f)) for f in files],
    ]).encode()).hexdigest()[:16]
    cache = Path(plan.config.results_dir) / "cache" / f"regression-base-{key}.json"
    if cache.exists():
        cached = json.loads(cache.read_text())
        return cached["ids"], cached["scores"]
    echo(f"measuring the base model on {check.limit} {check.suite} items through lm-eval (once; cached)")
    model = models.load_model(data.source, data.device, data.dtype)
    ids, scores = per_item_scores(model, models.load_tokenizer(data.source), check.suite, check.limit,
                                  plan.config.seed, check.batch_size, check.max_gen_toks)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"ids": ids, "scores": scores}))
    tmp.replace(cache)
    return ids, scores


def _open_study(plan: SweepPlan) -> optuna.Study:
    storage: Any = plan.storage
    if storage.startswith("journal:"):
        path = Path(storage.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        storage = optuna.storages.JournalStorage(backend)
    sampler: optuna.samplers.BaseSampler
    if plan.config.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=plan.config.seed)
    elif plan.config.sampler == "tpe":
        # Constraints reach TPE through trial.set_constraint (see trial.py); infeasible trials never win.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(seed=plan.config.seed, multivariate=True, group=True,
                                                 n_startup_trials=5)
    else:
        raise HarnessError(f"{plan.config_path}: `sampler: {plan.config.sampler}` is unknown; use tpe or random.")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=plan.study, storage=storage, sampler=sampler, direction="maximize",
                                pruner=_pruner(plan.config),
                                load_if_exists=True)
    previous = study.user_attrs.get("methods")
    if previous is not None and previous != list(plan.space.methods):
        raise HarnessError(
            f"study {plan.study} was created with methods {previous}, but on this machine the space has "
            f"{list(plan.space.methods)} (see the skipped methods above). Optuna cannot change a study's "
            "choices: pass --study NEW_NAME to start a separate study here."
        )
    study.set_user_attr("methods", list(plan.space.methods))
    return study


def _finished_twin(study: optuna.Study, trial: optuna.Trial) -> int | None:
    """The number of a completed trial with exactly this trial's sampled parameters, if any."""
    for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if other.number != trial.number and other.params == trial.params:
            return other.number
    return None


def _pruner(config: ExperimentConfig) -> optuna.pruners.BasePruner:
    pruning = config.pruning
    if not pruning.enabled:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=pruning.startup_trials, n_warmup_steps=pruning.warmup_steps)


def _subset(examples, limit: int | None, seed: int) -> list:
    """A seeded subset that keeps the split's order, so the same limit always picks the same examples."""
    if limit is None or limit >= len(examples):
        return list(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def _ids_hash(examples) -> str:
    return hashlib.sha256("\n".join(ex.id for ex in examples).encode()).hexdigest()


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
