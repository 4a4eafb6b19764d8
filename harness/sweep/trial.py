"""One trial, top to bottom: prepare the method -> score dev -> score test -> regression check -> record.

Selection reads dev only. Test is scored for the report and never feeds the objective, the pruner or the
choice of a best trial.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
import torch
from tqdm import tqdm

from harness.core.errors import HarnessError
from harness.core.metric import NOT_MEASURED, Metric
from harness.core.records import (
    EngineInfo,
    ExampleRow,
    MetricRow,
    ServingLoad,
    ShotsFitted,
    Throughput,
    TrainingSummary,
    TrialRecord,
)
from harness.core.selection import constraint_excess, is_feasible
from harness.data.prompting import Prompter
from harness.data.shots import FixedShots
from harness.data.suites import Example
from harness.evaluation.regression import ITEMS_GAINED, ITEMS_LOST, per_item_scores
from harness.evaluation.rules import STATS_RULES
from harness.evaluation.scorers import higher_is_better
from harness.evaluation.scoring import SplitScores, score_split, scorer_names
from harness.evaluation.stats import paired_difference, proportion
from harness.models.device import peak_memory_mb
from harness.models.machine_load import other_load
from harness.store.weights import folder_sha256
from harness.sweep.prepare import SweepData, base_regression
from harness.sweep.space import method_params
from harness.training.generate import timed_batches
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
    if not method.hosted:
        data.engine.ready()  # a vLLM server that died since the last trial: found before this one trains
    candidate = _prepare(data, record, method, params, trial)
    with tempfile.TemporaryDirectory(prefix="harness-serve-") as scratch:
        weights = _save_for_serving(data, record, method, candidate, artifact_dir or Path(scratch))
        served = candidate if method.hosted else data.engine.serve(candidate, weights, record.id)
        record.engine = _engine(data, candidate, method.hosted)
        try:
            dev = _score_dev(data, record, served)
            if candidate.train_report is not None and candidate.train_report.stopped_by == "pruned":
                return _finish(data, record, "pruned", candidate)
            test = _score_test(data, record, served)
            if not method.hosted:
                # train inputs: the server has answered dev and test, and a repeat reads from its prefix cache
                record.serving = (data.engine.load_test(served, data.train, data.max_new_tokens)
                                  or _fallback(test, data.engine.name, data.config.serving.concurrency))
        finally:
            if not method.hosted:
                data.engine.release(served)
    began = time.perf_counter()
    regression = regression_delta(data, candidate)
    record.phase_seconds["regression"] = time.perf_counter() - began
    _record_regression_and_constraints(data, record, trial, dev, regression)
    if candidate.trained and artifact_dir is not None:
        if weights is None:
            began = time.perf_counter()
            weights = method.save(candidate, artifact_dir)
            record.phase_seconds["save"] = time.perf_counter() - began
        record.artifact_path = None if weights is None else str(weights)
        record.weights_sha256 = None if weights is None else folder_sha256(Path(weights))
    return _finish(data, record, "complete", candidate)


def _prepare(data: SweepData, record: TrialRecord, method, params: dict[str, Any], trial: optuna.Trial | None):
    """Build the method's candidate (training it, for trained methods) and record what that took."""
    probe_curve: list[tuple[int, float]] = []

    def make_probe(model, tokenizer, prompter, grammar):
        return _dev_probe(data, trial, model, tokenizer, prompter, grammar, probe_curve)

    began = time.perf_counter()
    candidate = method.prepare(trial_context(data, make_probe), method_params(params, record.id))
    report = candidate.train_report
    phases = record.phase_seconds
    phases["train"] = report.seconds if report else 0.0
    if candidate.search is not None:
        phases["search"] = candidate.search.seconds
    phases["load"] = time.perf_counter() - began - phases["train"] - phases.get("search", 0.0)
    record.trained = candidate.trained
    # the config it ran with, as its study records it: a resume with another file replaces the study's record
    record.provenance = {**data.provenance, "experiment": data.experiment or data.config.to_dict(),
                         **_shots_fitted(data, candidate.prompter)}
    shots = candidate.prompter.shots
    record.shots = tuple(ex.id for ex in shots.examples) if isinstance(shots, FixedShots) else ()
    record.include_contract = candidate.prompter.include_contract
    record.prompt_search = candidate.search
    if report is not None:
        training = data.config.training
        record.training = TrainingSummary(report.steps, report.stopped_by, report.train_examples,
                                          training.batch_size * training.gradient_accumulation,
                                          tuple(report.loss_curve), tuple(probe_curve), report.planned_steps,
                                          report.mean_step_seconds)
    record.train_seconds = report.seconds if report else 0.0
    return candidate


def _shots_fitted(data: SweepData, prompter: Prompter) -> dict[str, Any]:
    """Provenance for dev and test prompts that show fewer shots than the arm chose, to fit the model's window
    (said as the trial starts, kept for `show`); none where every prompt shows them all."""
    if prompter.room is None:
        return {}
    fewer = {split: sum(len(prompter.fitted_shots(ex)) < len(prompter.shots.pick(ex)) for ex in examples)
             for split, examples in (("dev", data.dev), ("test", data.test))}
    if not any(fewer.values()):
        return {}
    fitted = ShotsFitted(prompter.room, fewer)
    tqdm.write(f"note: {fitted.text({'dev': len(data.dev), 'test': len(data.test)})}.")
    return fitted.as_provenance()


def _save_for_serving(data: SweepData, record: TrialRecord, method, candidate, folder: Path) -> Path | None:
    """A trained candidate's weights, saved before evaluation when the engine serves them from disk (vLLM)."""
    if not (candidate.trained and data.engine.needs_saved_weights):
        return None
    began = time.perf_counter()
    saved = method.save(candidate, folder)
    record.phase_seconds["save"] = time.perf_counter() - began
    return saved


def _engine(data: SweepData, candidate, hosted: bool) -> EngineInfo:
    if hosted:
        usage = candidate.hosted
        return EngineInfo("hosted", usage.model, None, bool(candidate.response_format))
    return data.engine.info(candidate)


def _score_dev(data: SweepData, record: TrialRecord, served) -> Evaluation:
    dev = evaluate(data, served, data.dev, "dev")
    record.eval_seconds = record.phase_seconds["dev"] = dev.throughput.seconds
    record.throughput = {"dev": dev.throughput}
    record.label_reports = {"dev": dev.scores.labels} if dev.scores.labels else {}
    record.objective = dev.scores.metrics[data.config.objective.metric].value
    record.metrics = _metric_rows("dev", dev.scores.metrics)
    record.stats_rules = STATS_RULES  # the interval rules every metric of the record is computed under
    record.examples = dev.rows
    return dev


def _score_test(data: SweepData, record: TrialRecord, served) -> Evaluation:
    test = evaluate(data, served, data.test, "test")
    record.eval_seconds += test.throughput.seconds
    record.phase_seconds["test"] = test.throughput.seconds
    record.throughput["test"] = test.throughput
    if test.scores.labels:
        record.label_reports["test"] = test.scores.labels
    record.metrics += _metric_rows("test", test.scores.metrics)
    record.examples += test.rows
    return test


def _fallback(test: Evaluation, engine: str, concurrency: int) -> ServingLoad:
    """No load test: the test split's own answers price serving, labelled as what produced them. Through vLLM (its
    load test turned off), that is the server's speed on the test split, at the sweep's concurrency; else the
    harness's own generate, the fallback."""
    t = test.throughput
    if engine != "hf":
        return ServingLoad(engine, concurrency, t.completion_tokens_per_s, t.examples,
                           source=f"the test split's answers through {engine} ({t.examples} examples, {concurrency} in "
                                  "flight), no load test "
                                  "(serving.load_test_requests: 0): a figure of the sweep's own requests")
    return ServingLoad("hf", t.batch_size, t.completion_tokens_per_s, t.examples,
                       source=f"fallback: the harness's own generate on the test split ({t.examples} examples, batch "
                              f"{t.batch_size}), not a serving engine; set generation.engine: vllm, or pass "
                              "--serving-throughput, to price what production runs")


def _record_regression_and_constraints(data: SweepData, record: TrialRecord, trial: optuna.Trial | None,
                                       dev: Evaluation, regression: dict[str, Metric]) -> None:
    checks = {name: m for name, m in regression.items() if name != "regression_delta"}
    record.metrics += _metric_rows("regression", checks)
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


def trial_context(data: SweepData, make_dev_probe=lambda *args: None) -> TrialContext:
    """What a method may read in this sweep."""
    return TrialContext(config=data.config, suite=data.suite, train_examples=data.train, source=data.source,
                        device=data.device, dtype=data.dtype, seed=data.config.seed, make_dev_probe=make_dev_probe,
                        endpoints=data.endpoints, max_new_tokens=data.max_new_tokens, hosted_ledger=data.hosted_ledger,
                        shot_pool=data.shot_pool)


def evaluate(data: SweepData, candidate: Candidate, examples: tuple[Example, ...], split: str) -> Evaluation:
    """Generate an answer for every example and score it with every scorer of the suite. An example whose request
    the endpoint refused has no answer: it is stored with its error and no score, and left out of every metric.
    The throughput's seconds are the generation's alone: scoring and statistics are not what serving costs."""
    batch_size = data.config.generation.batch_size
    with other_load() as load:
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
    throughput = Throughput(len(kept), load.seconds, batch_size, sum(g.prompt_tokens or 0 for g in generations),
                            sum(g.completion_tokens or 0 for g in generations), timed_batches(generations),
                            load.share)
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
    changed = {}
    if all(v in (0.0, 1.0) for v in (*scores, *base)):  # the counts McNemar's interval of the delta reads
        changed = {f"{check.suite}{ITEMS_GAINED}": proportion([float(x > y) for x, y in zip(scores, base)]),
                   f"{check.suite}{ITEMS_LOST}": proportion([float(x < y) for x, y in zip(scores, base)])}
    return {
        "regression_delta": paired_difference(scores, base, seed=data.config.seed),
        f"{check.suite}_accuracy": proportion(scores),
        f"{check.suite}_accuracy_base": proportion(base),
        **changed,
    }


def _dev_probe(data: SweepData, trial: optuna.Trial | None, model, tokenizer, prompter, grammar,
               curve: list[tuple[int, float]]):
    """Score a dev prefix during training and ask the pruner whether this trial trails the others."""
    if trial is None or not data.config.training.eval_every_steps:
        return None
    probe_set = data.dev[: data.config.training.eval_examples]

    def probe(step: int) -> bool:
        scored = evaluate(data, LocalCandidate(model, tokenizer, prompter, True, grammar=grammar), probe_set,
                          "dev-probe")
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
