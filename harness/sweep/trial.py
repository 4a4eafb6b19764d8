"""One trial, top to bottom: prepare the method -> score dev -> score test -> regression check -> record.

Selection reads dev only. Test is scored for the report and never feeds the objective, the pruner or the
choice of a best trial.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
import torch

from harness.core.errors import HarnessError
from harness.core.metric import NOT_MEASURED, Metric
from harness.core.records import ExampleRow, MetricRow, Throughput, TrainingSummary, TrialRecord
from harness.core.selection import constraint_excess, is_feasible
from harness.data.shots import FixedShots
from harness.data.suites import Example
from harness.evaluation.regression import per_item_scores
from harness.evaluation.scorers import higher_is_better
from harness.evaluation.scoring import SplitScores, score_split, scorer_names
from harness.evaluation.stats import paired_bootstrap_diff, proportion
from harness.models.device import peak_memory_mb
from harness.sweep.prepare import SweepData, base_regression
from harness.sweep.space import method_params
from harness.training.methods import METHODS
from harness.training.methods.base import Candidate, LocalCandidate, TrialContext


@dataclass(frozen=True)
class Evaluation:
    scores: SplitScores
    rows: list[ExampleRow]
    throughput: Throughput


def run_trial(data: SweepData, record: TrialRecord, params: dict[str, Any], trial: optuna.Trial | None,
              artifact_dir: Path | None) -> TrialRecord:
    """Run the trial described by `params` and fill `record`; `artifact_dir=None` keeps no weights."""
    method = METHODS.get(params["method"])
    if data.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    probe_curve: list[tuple[int, float]] = []
    ctx = trial_context(data, lambda model, tok, prompter: _dev_probe(data, trial, model, tok, prompter, probe_curve))
    began = time.perf_counter()
    candidate = method.prepare(ctx, method_params(params, record.id))
    report = candidate.train_report
    phases = record.phase_seconds
    phases["train"] = report.seconds if report else 0.0
    phases["load"] = time.perf_counter() - began - phases["train"]
    record.trained = candidate.trained
    record.provenance = data.provenance
    shots = candidate.prompter.shots
    record.shots = tuple(ex.id for ex in shots.examples) if isinstance(shots, FixedShots) else ()
    record.include_contract = candidate.prompter.include_contract
    if report is not None:
        training = data.config.training
        record.training = TrainingSummary(report.steps, report.stopped_by, report.train_examples,
                                          training.batch_size * training.gradient_accumulation,
                                          tuple(report.loss_curve), tuple(probe_curve), report.planned_steps)
    record.train_seconds = report.seconds if report else 0.0

    dev = evaluate(data, candidate, data.dev, "dev")
    record.eval_seconds = phases["dev"] = dev.throughput.seconds
    record.throughput = {"dev": dev.throughput}
    record.label_reports = {"dev": dev.scores.labels} if dev.scores.labels else {}
    record.objective = dev.scores.metrics[data.config.objective.metric].value
    record.metrics = _metric_rows("dev", dev.scores.metrics)
    record.examples = dev.rows
    if report is not None and report.stopped_by == "pruned":
        return _finish(data, record, "pruned", candidate)

    test = evaluate(data, candidate, data.test, "test")
    record.eval_seconds += test.throughput.seconds
    phases["test"] = test.throughput.seconds
    record.throughput["test"] = test.throughput
    if test.scores.labels:
        record.label_reports["test"] = test.scores.labels
    began = time.perf_counter()
    regression = regression_delta(data, candidate)
    phases["regression"] = time.perf_counter() - began
    checks = {name: m for name, m in regression.items() if name != "regression_delta"}
    record.metrics += _metric_rows("test", test.scores.metrics) + _metric_rows("regression", checks)
    record.examples += test.rows
    for split in ("dev", "test"):
        record.metrics.append(MetricRow.of(split, "regression_delta", regression["regression_delta"]))
    objective = data.config.objective
    record.constraints = constraint_excess(
        dev.scores.metrics, regression["regression_delta"], min_format_compliance=objective.min_format_compliance,
        max_hallucination_rate=objective.max_hallucination_rate, max_regression_drop=objective.max_regression_drop,
        measures_hallucination=data.suite.contract.kind != "text")
    record.feasible = is_feasible(record.constraints)
    if trial is not None:  # Optuna needs a number for each: a constraint that was not measured is not broken
        for name, value in record.constraints.items():
            trial.set_constraint(name, 0.0 if value is None else value)
    if candidate.trained and artifact_dir is not None:
        began = time.perf_counter()
        saved = method.save(candidate, artifact_dir)
        phases["save"] = time.perf_counter() - began
        record.artifact_path = None if saved is None else str(saved)
    return _finish(data, record, "complete", candidate)


def trial_context(data: SweepData, make_dev_probe=lambda *args: None) -> TrialContext:
    """What a method may read in this sweep."""
    return TrialContext(config=data.config, suite=data.suite, train_examples=data.train, source=data.source,
                        device=data.device, dtype=data.dtype, seed=data.config.seed, make_dev_probe=make_dev_probe,
                        endpoints=data.endpoints, max_new_tokens=data.max_new_tokens, hosted_spent=data.hosted_spent)


def evaluate(data: SweepData, candidate: Candidate, examples: tuple[Example, ...], split: str) -> Evaluation:
    """Generate an answer for every example and score it with every scorer of the suite. An example whose request
    the endpoint refused has no answer: it is stored with its error and no score, and left out of every metric."""
    began = time.perf_counter()
    batch_size = data.config.generation.batch_size
    generations = candidate.answer(examples, data.max_new_tokens, batch_size, desc=f"score {split}")
    kept = [i for i, g in enumerate(generations) if not g.excluded]
    scores = score_split([examples[i] for i in kept], [generations[i].output for i in kept], data.suite,
                         data.config.seed)
    unscored = dict.fromkeys(scorer_names(data.suite))
    per_example = [unscored] * len(examples)
    for i, values in zip(kept, scores.per_example):
        per_example[i] = values
    rows = [
        ExampleRow(split=split, example_id=ex.id, input=ex.input, target=ex.target, output=g.output,
                   prompt_tokens=g.prompt_tokens, completion_tokens=g.completion_tokens, latency_s=g.latency_s,
                   scores=values, error=g.error)
        for ex, g, values in zip(examples, generations, per_example)
    ]
    seconds = time.perf_counter() - began
    throughput = Throughput(len(kept), seconds, batch_size, sum(g.prompt_tokens or 0 for g in generations),
                            sum(g.completion_tokens or 0 for g in generations))
    return Evaluation(scores, rows, throughput)


def regression_delta(data: SweepData, candidate: Candidate) -> dict[str, Metric]:
    """Change in general capability against the base model (lm-eval), paired over the same items.

    Not measured (None, n=0) when the weights did not change (prompting) or the check is off.
    """
    if not candidate.trained or not data.regression_ids:
        return {"regression_delta": NOT_MEASURED}
    check = data.config.regression
    ids, scores = per_item_scores(candidate.model, candidate.tokenizer, check.suite, check.limit,
                                  data.config.seed, check.batch_size, check.max_gen_toks)
    base_ids, base = data.regression_ids, data.base_regression
    if getattr(candidate, "quantized", False):  # QLoRA: against the same 4-bit base it trained on
        found_ids, found = base_regression(data, lambda text: None, quantized=True)
        base_ids, base = tuple(found_ids), tuple(found)
    if tuple(ids) != base_ids:
        raise HarnessError(f"the {check.suite} items scored for this trial differ from the base model's; delete "
                           f"{data.config.results_dir}/cache/regression-base-*.json and re-run.")
    return {
        "regression_delta": paired_bootstrap_diff(scores, base, seed=data.config.seed),
        f"{check.suite}_accuracy": proportion(scores),
        f"{check.suite}_accuracy_base": proportion(base),
    }


def _dev_probe(data: SweepData, trial: optuna.Trial | None, model, tokenizer, prompter,
               curve: list[tuple[int, float]]):
    """Score a dev prefix during training and ask the pruner whether this trial trails the others."""
    if trial is None or not data.config.training.eval_every_steps:
        return None
    probe_set = data.dev[: data.config.training.eval_examples]

    def probe(step: int) -> bool:
        scored = evaluate(data, LocalCandidate(model, tokenizer, prompter, True), probe_set, "dev-probe")
        value = scored.scores.metrics[data.config.objective.metric].value
        if value is None:  # e.g. no compliant output yet: the worst value in the objective's direction
            value = 0.0 if higher_is_better(data.config.objective.metric) else 1.0
        curve.append((step, value))
        trial.report(value, step)
        return trial.should_prune()

    return probe


def _finish(data: SweepData, record: TrialRecord, status: str, candidate: Candidate) -> TrialRecord:
    record.status = status
    record.finished_at = datetime.now(timezone.utc)
    record.hosted = candidate.hosted
    if record.hosted is None:  # a hosted arm ran on the endpoint's hardware; its cost is the tokens it was billed
        record.peak_memory_mb = peak_memory_mb(data.device)
    return record


def _metric_rows(split: str, metrics: dict[str, Metric]) -> list[MetricRow]:
    return [MetricRow.of(split, name, m) for name, m in metrics.items()]
