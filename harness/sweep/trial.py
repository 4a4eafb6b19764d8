"""One trial, top to bottom: prepare the method -> score dev -> score test -> regression check -> record.

Selection reads dev only. Test is scored for the report and never feeds the objective, the pruner or the
choice of a best trial.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
import torch

from harness.core.config import ExperimentConfig
from harness.core.errors import HarnessError
from harness.data.contract import parse_output, parse_target
from harness.data.suites import Example, Suite
from harness.evaluation.labels import label_report, macro_f1_metric
from harness.evaluation.regression import per_item_scores
from harness.evaluation.scorers import ScoredCase, score_cases
from harness.evaluation.stats import Metric, paired_bootstrap_diff, proportion
from harness.models.device import peak_memory_mb
from harness.models.sources import ModelSource
from harness.store.database import ExampleRow, MetricRow, TrialRecord
from harness.training.generate import generate
from harness.training.methods import Candidate, TrialContext, get_method

CORE_SCORERS = ("format_compliance", "hallucination_rate", "task_accuracy")


@dataclass
class SweepData:
    """What every trial of a sweep shares; prepared once."""

    config: ExperimentConfig
    suite: Suite
    train: tuple[Example, ...]
    dev: tuple[Example, ...]
    test: tuple[Example, ...]
    source: ModelSource
    device: str
    dtype: Any
    max_new_tokens: int
    details: dict[str, Any]
    """Split hashes, subset sizes, budgets: stored with every trial."""
    regression_ids: list[str] = field(default_factory=list)
    base_regression: list[float] = field(default_factory=list)
    """Per-item scores of the untouched base model on `regression_ids`, measured once and cached."""

    @property
    def scorers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(CORE_SCORERS + tuple(self.suite.scorers)))


@dataclass
class Evaluation:
    metrics: dict[str, Metric]
    rows: list[ExampleRow]
    seconds: float
    labels: dict | None = None
    """Per-label precision/recall/F1 and the confusion matrix (label suites only)."""

    def throughput(self, batch_size: int) -> dict[str, float]:
        """Measured serving figures of this split: what the cost model prices."""
        prompt = sum(r.prompt_tokens for r in self.rows)
        completion = sum(r.completion_tokens for r in self.rows)
        return {"examples": len(self.rows), "seconds": self.seconds, "batch_size": batch_size,
                "prompt_tokens": prompt, "completion_tokens": completion,
                "completion_tokens_per_s": completion / self.seconds if self.seconds else 0.0}


def run_trial(data: SweepData, record: TrialRecord, params: dict[str, Any], trial: optuna.Trial | None,
              artifact_dir: Path | None) -> TrialRecord:
    """Run the trial described by `params` and fill `record`; `artifact_dir=None` keeps no weights."""
    method = get_method(params["method"])
    if data.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    probe_curve: list[tuple[int, float]] = []
    ctx = TrialContext(
        config=data.config, suite=data.suite, train_examples=data.train, source=data.source,
        device=data.device, dtype=data.dtype, seed=data.config.seed,
        make_dev_probe=lambda model, tok, prompter: _dev_probe(data, trial, model, tok, prompter, probe_curve),
    )
    candidate = method.prepare(ctx, params)
    report = candidate.train_report
    record.trained = candidate.trained
    record.details = {
        **data.details,
        "shots": [ex.id for ex in candidate.prompter.shots],
        "include_contract": candidate.prompter.include_contract,
        "training": None if report is None else {
            "steps": report.steps, "stopped_by": report.stopped_by, "loss_curve": report.loss_curve,
            "examples": report.train_examples, "dev_curve": probe_curve,
        },
    }
    record.train_seconds = report.seconds if report else 0.0
    dev = evaluate(data, candidate, data.dev, "dev")
    record.eval_seconds = dev.seconds
    record.details["evaluation"] = {"dev": dev.throughput(data.config.generation.batch_size)}
    record.details["labels"] = {"dev": dev.labels}
    record.objective = dev.metrics[data.config.objective.metric].value
    record.metrics = _metric_rows("dev", dev.metrics)
    record.examples = dev.rows
    if report is not None and report.stopped_by == "pruned":
        return _finish(data, record, "pruned")

    test = evaluate(data, candidate, data.test, "test")
    record.eval_seconds += test.seconds
    record.details["evaluation"]["test"] = test.throughput(data.config.generation.batch_size)
    record.details["labels"]["test"] = test.labels
    regression = regression_delta(data, candidate)
    checks = {name: m for name, m in regression.items() if name != "regression_delta"}
    record.metrics += _metric_rows("test", test.metrics) + _metric_rows("regression", checks)
    record.examples += test.rows
    for split in ("dev", "test"):
        record.metrics.append(MetricRow(split, "regression_delta", **regression["regression_delta"].to_dict()))
    constraints = feasibility(data.config, dev.metrics, regression["regression_delta"],
                              measures_hallucination=data.suite.contract.kind != "text")
    record.feasible = all(c <= 0 for c in constraints.values())
    record.details["constraints"] = constraints
    if trial is not None:
        for name, value in constraints.items():
            trial.set_constraint(name, value)
    if candidate.trained and artifact_dir is not None:
        record.artifact_path = str(candidate.save(artifact_dir))
    return _finish(data, record, "complete")


def evaluate(data: SweepData, candidate: Candidate, examples: tuple[Example, ...], split: str) -> Evaluation:
    """Generate an answer for every example and score it with every scorer of the suite."""
    began = time.perf_counter()
    prompts = [candidate.prompter.prompt(ex) for ex in examples]
    generations = generate(candidate.model, candidate.tokenizer, prompts, data.config.generation.batch_size,
                           data.max_new_tokens, desc=f"score {split}")
    contract = data.suite.contract
    cases = [ScoredCase(ex, g.output, parse_output(g.output, contract), parse_target(ex.target, contract))
             for ex, g in zip(examples, generations)]
    per_example, metrics = score_cases(cases, contract, data.scorers)
    labels = label_report(cases, contract) if contract.kind == "label" else None
    if labels is not None:
        metrics["macro_f1"] = macro_f1_metric(cases, contract, seed=data.config.seed, report=labels)
    rows = [
        ExampleRow(split=split, example_id=ex.id, input=ex.input, target=ex.target, output=g.output,
                   prompt_tokens=g.prompt_tokens, completion_tokens=g.completion_tokens, latency_s=g.latency_s,
                   scores={name: values[i] for name, values in per_example.items()})
        for i, (ex, g) in enumerate(zip(examples, generations))
    ]
    return Evaluation(metrics, rows, time.perf_counter() - began, labels)


def regression_delta(data: SweepData, candidate: Candidate) -> dict[str, Metric]:
    """Change in general capability against the base model (lm-eval), paired over the same items.

    Prompting leaves the weights unchanged, so its delta is 0 by construction and marked not measured (n=0).
    """
    if not candidate.trained or not data.regression_ids:
        return {"regression_delta": Metric(0.0, None, None, 0)}
    check = data.config.regression
    ids, scores = per_item_scores(candidate.model, candidate.tokenizer, check.suite, check.limit,
                                  data.config.seed, check.batch_size, check.max_gen_toks)
    if ids != data.regression_ids:
        raise HarnessError(f"the {check.suite} items scored for this trial differ from the base model's; delete "
                           f"{data.config.results_dir}/cache/regression-base-*.json and re-run.")
    return {
        "regression_delta": paired_bootstrap_diff(scores, data.base_regression, seed=data.config.seed),
        f"{check.suite}_accuracy": proportion(scores),
        f"{check.suite}_accuracy_base": proportion(data.base_regression),
    }


def feasibility(config: ExperimentConfig, dev: dict[str, Metric], regression: Metric,
                measures_hallucination: bool = True) -> dict[str, float]:
    """Optuna constraint values (feasible when every one is <= 0), all read from dev and the base check."""
    objective = config.objective
    fmt = dev["format_compliance"].value or 0.0
    hallucination = dev["hallucination_rate"].value
    if not measures_hallucination:
        hallucination_excess = 0.0  # free text: hallucination is not defined, so it cannot be broken
    else:  # no compliant output at all counts as the worst case, never as a pass
        hallucination_excess = (1.0 if hallucination is None else hallucination) - objective.max_hallucination_rate
    return {
        "format_compliance": objective.min_format_compliance - fmt,
        "hallucination_rate": hallucination_excess,
        "regression_delta": -objective.max_regression_drop - (regression.value or 0.0),
    }


def _dev_probe(data: SweepData, trial: optuna.Trial | None, model, tokenizer, prompter,
               curve: list[tuple[int, float]]):
    """Score a dev prefix during training and ask the pruner whether this trial trails the others."""
    if trial is None or not data.config.training.eval_every_steps:
        return None
    probe_set = data.dev[: data.config.training.eval_examples]

    def probe(step: int) -> bool:
        scored = evaluate(data, Candidate(model, tokenizer, prompter, True), probe_set, "dev-probe")
        value = scored.metrics[data.config.objective.metric].value or 0.0
        curve.append((step, value))
        trial.report(value, step)
        return trial.should_prune()

    return probe


def _finish(data: SweepData, record: TrialRecord, status: str) -> TrialRecord:
    record.status = status
    record.finished_at = datetime.now(timezone.utc)
    record.peak_memory_mb = peak_memory_mb(data.device)
    return record


def _metric_rows(split: str, metrics: dict[str, Metric]) -> list[MetricRow]:
    return [MetricRow(split, name, **m.to_dict()) for name, m in metrics.items()]

