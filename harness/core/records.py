"""Typed records of the results store, on both sides of it.

Write side: a sweep fills a `TrialRecord` (with `MetricRow`s and `ExampleRow`s), and `StudyRecord`/`RunRecord`
describe what it ran. Read side: the store returns frozen views (`TrialView`, `StudyView`, `RunView`,
`ExampleView`) whose fields are the columns, so readers (report, compare, cost, payback, predict, the dashboard)
use attributes, never `row["details"]["..."]`. `Throughput`, `TrainingSummary` and `LabelReport` appear on both
sides (`LabelReport` in its own module, `label_report.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.core.label_report import LabelReport
from harness.core.metric import Metric

STATUSES = ("running", "complete", "pruned", "failed")
STUDY_KINDS = ("sweep", "seeds", "curve")
ADAPTER_STATUSES = ("candidate", "staging", "production", "retired")
"""An adapter's life after the sweep. Every trained trial that kept its weights starts as a candidate."""
"""A sweep's own study, and its follow-ups: repeated seeds and the learning curve (each its own study)."""


def trial_id(study: str, number: int) -> str:
    """The one way a trial is named: "<study>/<number>"."""
    return f"{study}/{number}"


def split_trial_id(value: str) -> tuple[str, int]:
    """("<study>", number) from "<study>/<number>"; ValueError when it is not one."""
    study, sep, number = value.rpartition("/")
    if not sep or not study or "/" in study or not number.isdigit():  # a study's name holds no `/`
        raise ValueError(f"{value!r} is not a trial id STUDY/NUMBER")
    return study, int(number)


@dataclass(frozen=True)
class Throughput:
    """What generating one split measured: the cost model prices serving from it."""

    examples: int
    seconds: float
    batch_size: int
    prompt_tokens: int
    completion_tokens: int
    batches: tuple[tuple[int, float], ...] = ()
    """(completion tokens, seconds) of each generate call of a local model, in the order they ran: the spread behind
    an interval on its speed. Empty for a hosted arm (its requests are not batches) and for a trial recorded before
    they were kept."""
    others_cpu_share: float | None = None
    """Share of the machine's CPU time that other processes used while the split was generated (0: the machine was
    this run's alone; 0.5: others took half of it), from the system's CPU counters; None where they could not be
    read, and for a trial recorded before it was kept."""

    @property
    def completion_tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0

    @property
    def prompt_tokens_per_query(self) -> float:
        return self.prompt_tokens / self.examples if self.examples else 0.0

    @property
    def completion_tokens_per_query(self) -> float:
        return self.completion_tokens / self.examples if self.examples else 0.0


@dataclass(frozen=True)
class TrainingSummary:
    steps: int
    stopped_by: str
    """What ended training: `epochs`, `max_steps`, `time budget` or `pruned`."""
    examples: int
    """Training examples available (the train subset)."""
    examples_per_step: int
    """Batch size x gradient accumulation."""
    loss_curve: tuple[tuple[int, float], ...] = ()
    dev_curve: tuple[tuple[int, float], ...] = ()
    """(step, dev-probe objective) pairs scored during training, for the pruner."""
    planned_steps: int | None = None
    """The step budget: `max_steps`, or the steps its `epochs` take; None for trials recorded before it was kept."""
    step_seconds: float | None = None
    """Mean wall seconds of an optimizer step after the first (which pays for allocations, and which the calibration
    does not time either), without the dev probes between steps; None for trials recorded before it was kept, and
    for one that ran a single step."""

    @property
    def under_trained(self) -> bool:
        """Its time cap stopped it before its step budget (or its epochs) was done: it does not stand for the method.
        A trial recorded before budgets were kept counts as under-trained whenever its time cap stopped it."""
        if self.stopped_by != "time budget":
            return False
        return self.planned_steps is None or self.steps < self.planned_steps

    @property
    def completed_share(self) -> float | None:
        """Steps done over the step budget; None when the budget is unknown."""
        return self.steps / self.planned_steps if self.planned_steps else None

    @property
    def passes(self) -> float | None:
        """How many times training went over its train examples (0.3: it saw under a third of them)."""
        return self.steps * self.examples_per_step / self.examples if self.examples else None


@dataclass(frozen=True)
class HostedUsage:
    """What a hosted arm asked of its endpoint, as the endpoint reported it."""

    endpoint: str
    """The experiment's name for it."""
    base_url: str
    model: str
    price: str | None
    """The price-table entry its tokens are priced with."""
    structured: bool
    """Whether structured output (`response_format` with the suite's JSON Schema) was requested."""
    requests: int
    """Requests sent (answers from the cache are not requests)."""
    cache_hits: int
    errors: int
    """Requests the endpoint refused (400, 422): those examples have an error, no answer, and no score."""
    prompt_tokens: int
    """Tokens spent on the requests sent (prompt), as reported."""
    completion_tokens: int
    usd: float | None
    """What the requests sent cost at the price entry; None when unpriced."""
    content_filtered: int = 0
    """Answers the endpoint withheld on its content policy: kept, and scored as the empty answer they are."""
    unreported: int = 0
    """Of `requests`, those answered without token usage: `prompt_tokens` and `completion_tokens` count each at its
    worst case (its prompt's bytes and `max_tokens`, as the budget held it), an upper bound, not tokens billed. 0 in
    records written before it was counted (`cost.worst_case_requests` reads those)."""


@dataclass(frozen=True)
class EngineInfo:
    """What generated a trial's answers, so a score says which engine produced it."""

    name: str
    """`hf` (transformers' generate in the harness's process), `vllm`, or `hosted`."""
    version: str | None
    dtype: str | None
    """The arithmetic the answers were generated in, e.g. `float32`."""
    constrained: bool = False
    """Whether decoding was limited to the output contract."""


@dataclass(frozen=True)
class PromptSearch:
    """How a searched prompt was chosen (the `dspy` and `api_dspy` arms): DSPy's optimizer built candidate prompts
    from a pool of train examples and scored each on a validation slice of train, never on dev or test; the best one
    answered."""

    optimizer: str
    """The optimizer and its library version, e.g. `BootstrapFewShotWithRandomSearch (dspy 3.4.1)`, `MIPROv2 (dspy
    3.4.1)`."""
    metric: str
    """What each candidate was scored by, per validation example, in [0, 1]."""
    val_examples: int
    pool_examples: int
    scores: tuple[float, ...]
    """Every candidate's mean score on the validation slice, best first; the chosen prompt's is the first. For
    MIPROv2, the prompts it scored on the whole slice (its minibatch scores are not kept)."""
    demos: int
    """Few-shot examples in the chosen prompt."""
    calls: int
    """Model calls the search made (a prompt asked twice is answered once)."""
    seconds: float
    prompt_tokens: int = 0
    """Prompt tokens a hosted arm's search spent on its endpoint, as reported; 0 for a local one."""
    completion_tokens: int = 0
    usd: float | None = None
    """What those tokens cost at the endpoint's price entry; None when unpriced or local."""
    instruction: str | None = None
    """The instruction the optimizer chose in place of the suite's (MIPROv2), which dev and test were asked with and
    a rebuild of the prompt uses; None: the suite's own (the random search, and trials recorded before it was kept)."""
    proposer_calls: int = 0
    """Of `calls`, those of MIPROv2's proposer, which writes the candidate instructions."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", tuple(float(s) for s in self.scores))  # a JSON column gives a list

    def text(self) -> str:
        """`BootstrapFewShotWithRandomSearch (dspy 3.4.1) chose 8 shots from 100 train examples: 24.0% on 50 train
        examples held out (task accuracy), best of 9 candidates (next 22.0%); 1,104 model calls in 4.4 min`, and
        for a hosted arm the tokens and dollars its search spent. MIPROv2 chose "an instruction and" its shots, and
        its candidates are the prompts it scored on the whole slice."""
        best, rest = (self.scores[0], self.scores[1:]) if self.scores else (None, ())
        score = "no candidate scored" if best is None else f"{best:.1%} on {self.val_examples} train examples held out"
        runner_up = f" (next {rest[0]:.1%})" if rest else ""
        chose = "an instruction and " if self.instruction is not None else ""
        proposed = f" ({self.proposer_calls:,} proposing instructions)" if self.proposer_calls else ""
        return (f"{self.optimizer} chose {chose}{self.demos} shot{'s' if self.demos != 1 else ''} from "
                f"{self.pool_examples} train examples: {score} ({self.metric}), best of {len(self.scores)} candidates"
                f"{runner_up}; {self.calls:,} model calls{proposed} in "
                + (f"{self.seconds / 60:.1f} min" if self.seconds >= 60 else f"{self.seconds:.0f} s")
                + (f", {self.prompt_tokens + self.completion_tokens:,} tokens on the endpoint"
                   if self.prompt_tokens + self.completion_tokens else "")
                + (f" (${self.usd:.4f})" if self.usd is not None else ""))


@dataclass(frozen=True)
class ServingLoad:
    """A load test of the serving engine: what payback prices a query at. The HF path's own generation of the test
    split stands in, labelled as such, where no serving engine was measured."""

    engine: str
    concurrency: int
    """Requests in flight (vLLM), or prompts per batch (the HF fallback)."""
    completion_tokens_per_s: float
    requests: int
    p50_latency_s: float | None = None
    p95_latency_s: float | None = None
    requests_per_s: float | None = None
    source: str = ""
    """Where the figure comes from, as payback prints it."""


@dataclass
class MetricRow:
    split: str  # dev | test | regression
    name: str
    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0

    @classmethod
    def of(cls, split: str, name: str, metric: Metric) -> MetricRow:
        return cls(split, name, metric.value, metric.low, metric.high, metric.n)


@dataclass
class ExampleRow:
    split: str
    example_id: str
    input: str
    target: str
    output: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    scores: dict = field(default_factory=dict)
    error: str | None = None
    """Why there is no answer (a hosted endpoint refused the request)."""


PHASES = ("load", "search", "train", "dev", "test", "regression", "save")
"""What a trial's time is spent on: loading (model, adapter), searching a prompt (`dspy`, `api_dspy`), training
(with its dev probes), generating and scoring dev and test, the forgetting check, saving the artifact."""
WORK_PHASES = ("search", "train", "dev", "test", "regression")
"""The phases that are the measurement itself; the others are overhead."""


@dataclass
class TrialRecord:
    """One trial as a sweep builds it up and writes it."""

    id: str
    study: str
    number: int
    run_id: str | None
    method: str
    params: dict = field(default_factory=dict)
    status: str = "running"
    failure_reason: str | None = None
    trained: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    device: str | None = None
    peak_memory_mb: float | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    objective: float | None = None
    feasible: bool | None = None
    artifact_path: str | None = None
    training: TrainingSummary | None = None
    shots: tuple[str, ...] = ()
    """Ids of the train examples shown as few-shot examples (prompting)."""
    include_contract: bool | None = None
    """Whether the prompt stated the label set or schema."""
    constraints: dict[str, float | None] = field(default_factory=dict)
    """How far each dev constraint is exceeded (feasible when every measured one is <= 0); None: not measured."""
    label_reports: dict[str, LabelReport] = field(default_factory=dict)
    """Per split: per-label precision/recall/F1 and the confusion matrix (label suites only)."""
    throughput: dict[str, Throughput] = field(default_factory=dict)
    hosted: HostedUsage | None = None
    """For a hosted arm: its endpoint and what it spent."""
    phase_seconds: dict[str, float] = field(default_factory=dict)
    """Wall seconds of each phase (see `PHASES`); the rest of the trial's time is overhead."""
    engine: EngineInfo | None = None
    """What generated the dev and test answers."""
    serving: ServingLoad | None = None
    """The serving engine's measured throughput, which prices the trial's queries."""
    prompt_search: PromptSearch | None = None
    """How a searched prompt was chosen (`dspy` and `api_dspy` arms)."""
    stats_rules: int | None = None
    """The version of the interval rules its metrics were scored under (`harness.evaluation.rules.STATS_RULES`,
    which the sweep sets where it scores); None: not recorded."""
    weights_sha256: dict[str, str] | None = None
    """{file: sha256} of every file of its saved weights folder, as it was scored (`harness.store.weights`)."""
    provenance: dict = field(default_factory=dict)
    """What the numbers depend on (data hashes and sizes, budgets, model, generation cap); shown, never queried."""
    metrics: list[MetricRow] = field(default_factory=list)
    examples: list[ExampleRow] = field(default_factory=list)


@dataclass(frozen=True)
class ShotsFitted:
    """A prompting arm's prompts that showed fewer shots than it chose, the first ones left out, so that each fit the
    local model's context window less the answer's cap (`Prompter.room`)."""

    room: int
    """The tokens a prompt could take."""
    fewer: Mapping[str, int]
    """Split -> its prompts that showed fewer shots."""

    def as_provenance(self) -> dict[str, Any]:
        return {"shots_fitted": {"room": self.room, "fewer": dict(self.fewer)}}

    def text(self, sizes: Mapping[str, int]) -> str:
        counts = " and ".join(f"{n:,}{f' of {sizes[split]:,}' if sizes.get(split) else ''} {split}"
                              for split, n in self.fewer.items() if n)
        return (f"{counts} prompt(s) showed fewer shots than the arm chose, the first ones (for similar shots the "
                f"least similar) left out so that each fit the model's context window ({self.room:,} tokens for the "
                "prompt, the rest kept for the answer)")


@dataclass(frozen=True)
class StudyRecord:
    name: str
    experiment_name: str
    experiment: dict
    """The resolved experiment config."""
    suite: str
    suite_version: str
    suite_path: str
    model_name: str
    model_sha256: str
    objective_metric: str
    maximize: bool
    model_note: str | None = None
    kind: str = "sweep"
    parent: str | None = None
    """For follow-ups: the sweep study they follow."""
    notes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    study: str
    pid: int
    host: str
    device: str
    device_name: str
    cpu_count: int | None
    environment: dict
    """Library versions, git commit, platform, model and data hashes."""


GATE_SEALS = "seals"
"""Key of a promotion's detail: the seal of each trial its gate read, which the registry's chain covers."""


@dataclass(frozen=True)
class AdapterEvent:
    """One change in an adapter's life (or a re-check of it), kept forever: the registry is its history."""

    trial_id: str
    suite: str
    status: str
    """The adapter's status after the event."""
    previous: str
    action: str
    """`promote`, `retire` (replaced in production), `withdraw` (retired by hand: `promote --to retired`),
    `rollback`, or `recheck` (status unchanged)."""
    actor: str
    """Who made the change (the approver)."""
    note: str | None = None
    """Why, in the approver's words."""
    forced: bool = False
    """The gate failed and the approver overrode it (`note` holds the reason)."""
    gate: dict | None = None
    """The gate's result: every rule with its numbers, intervals and p-values."""
    detail: dict | None = None
    """What a re-check measured; the seals of the trials a promotion's gate read (`GATE_SEALS`); and
    `os_account`, set by the store."""
    at: datetime | None = None
    """When (UTC); set by the store."""

    @property
    def gate_seals(self) -> Mapping[str, str]:
        """Trial id -> the seal of its evidence when this promotion's gate read it (`store/seal.py`); empty for other
        events, and for promotions recorded before seals (2026-12-07)."""
        seals = (self.detail or {}).get(GATE_SEALS)
        return {t: s for t, s in seals.items() if isinstance(s, str)} if isinstance(seals, dict) else {}

    @property
    def os_account(self) -> str | None:
        """The system account that wrote the event (`harness.core.identity`), beside the actor it names; None for
        events recorded before releases kept it (2026-12-07)."""
        return (self.detail or {}).get("os_account")

    @property
    def gate_outcome(self) -> str | None:
        """`passed`, `failed`, or `failed, overridden` (the approver forced it); None where no gate ran."""
        if not self.gate:
            return None
        return "passed" if self.gate.get("passed") else "failed, overridden" if self.forced else "failed"

    @property
    def gate_rules(self) -> list[dict]:
        """The gate's rules as recorded, each with `name`, `passed` and `detail`; empty where no gate ran."""
        return list((self.gate or {}).get("rules") or [])


LOOK_KINDS = ("gate", "compare", "recheck")


@dataclass(frozen=True)
class LookAtTest:
    """One look at test scores that could change what gets shipped: a gate evaluation (passed or refused), a
    `compare` on test, a re-check. Kept forever, so gating candidates on test until one passes leaves a trace."""

    kind: str
    """`gate`, `compare` or `recheck`."""
    suite: str | None
    subset: str | None
    """sha256 of the test subset's example ids: what "the same test subset" means."""
    candidate: str
    reference: str | None
    metric: str
    rule: dict
    """What decided: the margin, alpha, the gate's thresholds."""
    outcome: str
    """The decision's outcome (`better`, `not worse`, `worse`, `not shown`), or `passed` / `refused` for a gate."""
    actor: str | None = None
    detail: dict | None = None
    """The decision (difference, interval, p-value, test) and, for a gate, every rule."""
    at: datetime | None = None
    """When (UTC); set by the store."""

    @property
    def earlier_candidates(self) -> int | None:
        """For a gate: how many other candidates had been gated against the same reference on the same test subset
        before it (what `promote.gate_look` records); None for other looks and gates recorded before it was."""
        return (self.detail or {}).get("earlier_candidates")

    @property
    def target(self) -> str | None:
        """For a gate: the status the candidate was gated for (`staging`, `production`); None for other looks."""
        return (self.rule or {}).get("target")

    @property
    def failed_rules(self) -> list[tuple[str, str]]:
        """For a gate: (name, detail) of every rule it failed, as `promote.gate_look` records them; [] otherwise."""
        rules = (self.detail or {}).get("rules") or []
        return [(rule.get("name"), rule.get("detail")) for rule in rules if not rule.get("passed")]


# -- read side -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataProvenance:
    """What a trial was scored on, as its provenance records it: the suite, its version, the subset sizes, the
    sha256 of each seeded subset's example ids and of each split file."""

    suite: str | None
    suite_version: str | None
    sizes: Mapping[str, int]
    subset_sha256: Mapping[str, str]
    split_sha256: Mapping[str, str] = field(default_factory=dict)
    train_inputs_cut: tuple[str, ...] = ()
    """Train examples whose inputs `training.over_length: truncate` cut to fit `training.max_length`."""
    suite_setup_sha256: str | None = None
    """sha256 of the suite's instruction, output contract and scorers when scored (`Suite.setup_sha256`); None for
    trials recorded before it was kept."""

    @classmethod
    def of(cls, provenance: Mapping[str, Any]) -> DataProvenance:
        data = provenance.get("data") or {}
        return cls(data.get("suite"), data.get("suite_version"), data.get("sizes") or {},
                   data.get("subset_sha256") or {}, data.get("split_sha256") or {},
                   tuple(data.get("train_inputs_cut") or ()), data.get("suite_setup_sha256"))


DUPLICATE_PREFIX = "duplicate of "
"""How the stored reason of a trial not run as a duplicate begins (`duplicate_reason`)."""


def duplicate_reason(twin: str) -> str:
    """The reason stored with a duplicate (status pruned), `twin` being the id of the trial it repeats."""
    return f"{DUPLICATE_PREFIX}{twin}: same configuration, not re-run"


def is_duplicate(reason: str | None) -> bool:
    """Whether a stored trial's reason says it was a duplicate (see `duplicate_reason`)."""
    return reason is not None and reason.startswith(DUPLICATE_PREFIX)


def duplicate_of(reason: str | None) -> str | None:
    """The id of the trial a duplicate repeats, read from its stored reason (`duplicate_reason`); None otherwise."""
    return reason.removeprefix(DUPLICATE_PREFIX).split(":", 1)[0] if is_duplicate(reason) else None


@dataclass(frozen=True)
class TrialView:
    id: str
    study: str
    number: int
    run_id: str | None
    method: str
    params: Mapping[str, Any]
    status: str
    failure_reason: str | None
    trained: bool
    started_at: datetime | None
    finished_at: datetime | None
    device: str | None
    peak_memory_mb: float | None
    train_seconds: float | None
    eval_seconds: float | None
    objective: float | None
    feasible: bool | None
    maximize: bool
    """The study's objective direction, from its metric's `higher_is_better`."""
    artifact_path: Path | None
    """Absolute; None when the trial kept no weights (prompting, or removed by retention)."""
    training: TrainingSummary | None
    shots: tuple[str, ...]
    include_contract: bool | None
    constraints: Mapping[str, float | None]
    label_reports: Mapping[str, LabelReport]
    """Per split, as `TrialRecord.label_reports` (label suites only)."""
    throughput: Mapping[str, Throughput]
    hosted: HostedUsage | None
    phase_seconds: Mapping[str, float]
    """Wall seconds of each phase (see `PHASES`); empty for trials recorded before they were timed."""
    metrics: Mapping[str, Mapping[str, Metric]]
    """{split: {name: Metric}}; split is dev, test or regression."""
    provenance: Mapping[str, Any]
    """Free-form, for display; what readers decide on is typed (`data`)."""
    engine: EngineInfo | None = None
    """What generated the dev and test answers; None for trials recorded before it was kept."""
    serving: ServingLoad | None = None
    prompt_search: PromptSearch | None = None
    """How a searched prompt was chosen (`dspy` and `api_dspy` arms); None for every other arm."""
    stats_rules: int | None = None
    """The version of the interval rules its intervals were computed under (`harness.evaluation.rules`); None for
    trials recorded before releases kept it (2026-12-05), whose rules may be any older version."""
    weights_sha256: Mapping[str, str] | None = None
    """{file: sha256} of its weights folder when it was saved and scored; None for trials saved before releases kept
    it (2026-12-07), or with no weights."""

    @property
    def data(self) -> DataProvenance:
        return DataProvenance.of(self.provenance)

    @property
    def model_setup_sha256(self) -> str | None:
        """The digest of the model folder's config, tokenizer and chat template as the trial ran (`sources.
        setup_sha256`); None for a hub model, and for a trial recorded before it was kept."""
        return (self.provenance.get("model") or {}).get("setup_sha256")

    @property
    def step_budget(self) -> tuple[Any, Any] | None:
        """(budget.max_steps, budget.epochs) the trial trained under, as its provenance records them (after the
        machine's fit); None for a trial recorded without them."""
        budget = self.provenance.get("budget")
        return (budget.get("max_steps"), budget.get("epochs")) if isinstance(budget, Mapping) else None

    @property
    def max_new_tokens(self) -> int | None:
        """The most tokens the trial let an answer take (`generation.max_new_tokens`, or the cap derived from the
        longest train answer), as its provenance records it; None for a trial recorded without it."""
        cap = self.provenance.get("max_new_tokens")
        return cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else None

    @property
    def shots_fitted(self) -> ShotsFitted | None:
        """Dev and test prompts that showed fewer shots than the arm chose, to fit the model's window; None where
        none did (or the trial was recorded before releases fitted them, 2026-12-07)."""
        fitted = self.provenance.get("shots_fitted")
        return ShotsFitted(int(fitted["room"]), {k: int(v) for k, v in fitted["fewer"].items()}) \
            if isinstance(fitted, dict) and "room" in fitted and "fewer" in fitted else None

    @property
    def max_length(self) -> int | None:
        """`training.max_length` as the trial trained with it (the most tokens of a training row); None where its
        provenance does not record it."""
        limit = (self.provenance.get("training") or {}).get("max_length")
        return limit if isinstance(limit, int) and not isinstance(limit, bool) else None

    @property
    def precision(self) -> str | None:
        """The precision the trial trained and answered in (the calibration's choice); None where it recorded
        none (releases before the calibration)."""
        return (self.provenance.get("training") or {}).get("precision")

    def metric(self, split: str, name: str) -> Metric | None:
        return self.metrics.get(split, {}).get(name)

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def broken_constraints(self) -> dict[str, float]:
        """The dev constraints this trial breaks, with how far each is exceeded (`constraints` > 0), in order."""
        return {name: excess for name, excess in self.constraints.items() if excess is not None and excess > 0}

    @property
    def wall_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def overhead_seconds(self) -> float | None:
        """Wall time outside the measured work (training, generation, the regression check): loading, saving,
        recording. None when the phases were not timed."""
        if not self.phase_seconds or self.wall_seconds is None:
            return None
        return self.wall_seconds - sum(self.phase_seconds.get(p, 0.0) for p in WORK_PHASES)

    @property
    def device_seconds(self) -> float:
        """Training, a local prompt search and evaluation: the device time the trial spent (a hosted arm's search
        ran on its endpoint and is billed in tokens instead)."""
        return (self.train_seconds or 0.0) + self.local_search_seconds + (self.eval_seconds or 0.0)

    @property
    def local_search_seconds(self) -> float:
        search = self.prompt_search
        return search.seconds if search is not None and self.device != "hosted" else 0.0

    @property
    def under_trained(self) -> bool:
        """A trained trial whose time cap cut its training short (see `TrainingSummary.under_trained`)."""
        return self.training is not None and self.training.under_trained


@dataclass(frozen=True)
class ExampleView:
    split: str
    example_id: str
    input: str
    target: str
    output: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float | None
    scores: Mapping[str, float | None]
    error: str | None = None


@dataclass(frozen=True)
class StudyView:
    name: str
    experiment_name: str
    experiment: Mapping[str, Any]
    suite: str
    suite_version: str
    suite_path: str | None
    model_name: str
    model_sha256: str
    model_note: str | None
    objective_metric: str
    maximize: bool
    kind: str
    parent: str | None
    created_at: datetime | None
    notes: Mapping[str, Any]

    @property
    def price_overrides(self) -> dict[str, Any]:
        """The experiment file's `prices:` overrides of the price table, as stored with the study; empty if none."""
        return dict(self.experiment.get("prices") or {})

    @property
    def config_path(self) -> str | None:
        """The experiment file the study was swept from, as its notes record it; None for a study run without one."""
        return self.notes.get("config_path")

    @property
    def suite_gate(self) -> tuple[bool, Mapping[str, Any] | None]:
        """(recorded, the suite's `gate:` block as the study was scored under it, None where it had none). Studies
        swept before 2026-12-07 recorded none: (False, None), and the gate then reads the suite folder as it is."""
        return "suite_gate" in self.notes, self.notes.get("suite_gate")

    @property
    def skipped_methods(self) -> Mapping[str, str]:
        """{method: why} for the methods of the space its latest run skipped on its machine (QLoRA without CUDA). Runs
        before 2026-12-07 recorded a method set to null among them, which is left out here."""
        skipped = self.notes.get("skipped_methods") or {}
        return {method: why for method, why in skipped.items() if not str(why).startswith(f"`space.{method}` is null")}

    @property
    def forgetting_off(self) -> bool:
        """The experiment turned the forgetting check off (`regression.enabled: false`)."""
        return (self.experiment.get("regression") or {}).get("enabled") is False

    @property
    def redaction(self) -> Mapping[str, Any]:
        """The experiment's `redaction:` block as the study ran it (empty: the defaults, redaction off)."""
        return self.experiment.get("redaction") or {}

    @property
    def forgetting_check(self) -> tuple[int, str, float] | None:
        """(items, check suite, objective.max_regression_drop) of the study's forgetting check as it ran; None when it
        was off, or a study stored without them."""
        check, objective = self.experiment.get("regression") or {}, self.experiment.get("objective") or {}
        items, drop = check.get("limit"), objective.get("max_regression_drop")
        if not check.get("enabled") or items is None or drop is None:
            return None
        return int(items), str(check.get("suite")), float(drop)


def ran_with(trial: TrialView, study: StudyView) -> dict[str, Any]:
    """The experiment config `trial` ran with: its own record (trials from 2026-12-07 keep one), else what its study
    held when it was resumed with another file (`Store.record_study` writes that into its earlier trials), else the
    study's own. A study's record is its latest run's: a resume with a changed file replaced it, and an audit pack,
    `predict` or `recheck` of an earlier trial rebuilt that trial from settings it never ran with."""
    own = trial.provenance.get("experiment")
    return dict(own) if isinstance(own, Mapping) else dict(study.experiment)


def study_setup(study: StudyRecord | StudyView) -> dict[str, Any]:
    """What a study's trials share, so that they can be ranked and compared together: suite, objective, kind, model
    and the data subsets (`data` and `seed` draw them), as JSON keeps it (lists, not tuples). A new suite version is
    not among them: each trial records the version it was scored on, and a patched suite is re-run under its study."""
    return {"suite": study.suite, "objective": [study.objective_metric, study.maximize],
            "kind": [study.kind, study.parent], "model_sha256": study.model_sha256, "model_name": study.model_name,
            "data": study.experiment.get("data"), "seed": study.experiment.get("seed")}


def setup_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(fact, before, now) for each fact of two `study_setup`s that differs. The model is its sha256 where both know
    it (the same weights moved to another folder are the same model), else its name; a fact one side did not record
    (an older database, an older storage) is not compared."""
    both_hashed = bool(before.get("model_sha256")) and bool(now.get("model_sha256"))
    skip = "model_name" if both_hashed else "model_sha256"
    return [(key, before[key], now[key]) for key in now
            if key != skip and before.get(key) is not None and now[key] is not None and before[key] != now[key]]


@dataclass(frozen=True)
class RunEnvironment:
    """What a run recorded of its machine and libraries (`harness.models.environment.environment`), typed; a field
    an older release did not record reads None."""

    python: str | None = None
    platform: str | None = None
    versions: Mapping[str, str | None] | None = None
    """Each tracked package's version (None: not installed)."""
    git_commit: str | None = None
    """The harness's commit when it ran from a checkout, `+dirty` with local changes."""
    device: str | None = None
    device_name: str | None = None
    cpu_count: int | None = None
    torch_threads: int | None = None
    determinism: Mapping[str, Any] | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunEnvironment:
        return cls(**{f.name: raw.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class RunView:
    run_id: str
    study: str
    started_at: datetime | None
    pid: int | None
    host: str | None
    device: str | None
    device_name: str | None
    cpu_count: int | None
    environment: Mapping[str, Any]

    @property
    def env(self) -> RunEnvironment:
        """The recorded environment, typed."""
        return RunEnvironment.from_dict(self.environment)
