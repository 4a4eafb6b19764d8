"""Typed, frozen experiment configuration: load YAML, apply `--set key=value` overrides, validate.

Unknown keys fail loudly with the dotted path and a suggestion, so a typo never silently falls back to a
default that changes what a number means.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import yaml

from harness.core.errors import ConfigError, HarnessError
from harness.core.paths import find_experiment
from harness.core.redaction import DEFAULT_REPLACEMENT, PATTERNS, regex_problem
from harness.core.typed import ConfigProblems, at_least, between, build, greater_than, one_of
from harness.core.yamlfile import DuplicateKeyError, parse_yaml, read_yaml

MAX_SEED = 2**31 - 1
"""NumPy (under Optuna's samplers and transformers' set_seed) takes seeds in [0, 2**32); workers add their index to
the sampler's seed, so a seed stays well inside that."""


@dataclass(frozen=True)
class DataConfig:
    train_limit: int | None = field(default=None, metadata=at_least(1))
    """Train on at most this many examples (a seeded subset); None uses the whole train split."""
    dev_limit: int | None = field(default=None, metadata=at_least(1))
    """Select on at most this many dev examples; None uses all. Smaller is faster but noisier."""
    test_limit: int | None = field(default=None, metadata=at_least(1))
    """Report on at most this many test examples; None uses all. The interval widens as this shrinks."""


@dataclass(frozen=True)
class BudgetConfig:
    trials: int = field(default=20, metadata=at_least(1))
    """Total trials in the study. Re-running the same command tops the study up to this number."""
    sweep_minutes: float | None = field(default=None, metadata=greater_than(0))
    """Stop starting new trials after this many minutes of this invocation; None means no limit."""
    trial_train_seconds: float | None = field(default=600.0, metadata=greater_than(0))
    """A safety cap: stop a trial's training after this many seconds. A trial it stops before its step budget is
    under-trained: it is scored and shown as such, and never stands for its method in the verdict or the gate.
    The sweep refuses to start when the calibration says a trial cannot finish inside it (see
    --allow-under-trained)."""
    max_steps: int | None = field(default=None, metadata=at_least(1))
    """Stop a trial's training after this many optimizer steps; None trains for `epochs`."""
    fit_minutes: float | None = field(default=None, metadata=greater_than(0))
    """Size the sweep to this machine: from the calibration (a few timed steps, cached), lower the step budget, never
    below `min_steps`, until the planned trials take about this many minutes, and say what was chosen. The learning
    rate still decays to zero at the last step. None runs the budget as written, on any machine."""
    min_steps: int = field(default=50, metadata=at_least(1))
    """The floor `fit_minutes` never goes below: fewer steps than this would not stand for the method."""
    epochs: float = field(default=1.0, metadata=greater_than(0))
    """Passes over the training subset, unless a step or time budget ends training first."""


@dataclass(frozen=True)
class TrainingConfig:
    batch_size: int = field(default=8, metadata=at_least(1))
    """Examples per optimizer step (per device). Larger is faster on a GPU, slower per step on a CPU."""
    gradient_accumulation: int = field(default=1, metadata=at_least(1))
    """Micro-batches accumulated into one optimizer step."""
    max_length: int = field(default=512, metadata=at_least(8))
    """Token limit per training sequence (prompt plus answer); a longer train example is refused or cut, as
    `over_length` says."""
    over_length: str = field(default="refuse", metadata=one_of("refuse", "truncate"))
    """A train example longer than `max_length`: `refuse` stops the sweep before any model loads and names the
    examples; `truncate` cuts the end of the example's input (never the answer, which the loss is on) until it fits,
    and says how many were cut and which (prompting arms in the same sweep draw their shots from the same, cut,
    train subset). A cut that would drop a value a grounded answer copies from the input is refused."""
    warmup_steps: int = field(default=0, metadata=at_least(0))
    """Optimizer steps spent warming the learning rate up linearly from 0."""
    weight_decay: float = field(default=0.0, metadata=at_least(0))
    """AdamW weight decay."""
    include_contract: bool = False
    """Also state the label set or schema in the prompt of trained methods. Prompting always states it."""
    include_instruction: bool = True
    """Give trained methods the suite's instruction as their system prompt. Off, they see only the input (an
    example's own instruction still shows). On ticket-triage that is 38 tokens per example instead of 69, and 1.6x
    the steps in the same time, at the same accuracy per step (bench/RESULTS.md); they learn the task from the
    answers."""
    precision: str = field(default="auto", metadata=one_of("auto", "bf16", "fp32"))
    """Training arithmetic. `auto` times a few real steps here (the calibration, cached per machine) and takes the
    fastest sound one: bf16 autocast (weights and optimizer stay fp32) is timed only where it is native (AVX512-BF16
    or AMX CPUs, GPUs), fp32 always. Without native bf16, autocast ran a LoRA step 16x slower than fp32. Name one to
    make results independent of the machine."""
    padding_free: bool = True
    """Join each batch into one row, attention kept within each example, so no step computes padding. The model is
    checked first (three short forward passes); one whose attention would let joined examples see each other trains
    on padded batches, and says so. Random batches of 8 tickets are 28% padding: a LoRA step took 2.78 s instead
    of 3.50 on a CPU (bench/RESULTS.md), the same losses."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass instead of keeping them: much less memory, about a third more
    compute. Off, because small models are limited by speed, not memory; turn it on for large models (a 7B QLoRA
    at 1024 tokens)."""
    eval_every_steps: int = field(default=50, metadata=at_least(0))
    """Score a dev subset every this many steps; the pruner stops trials that trail the median."""
    eval_examples: int = field(default=50, metadata=at_least(1))
    """Dev examples scored at each intermediate evaluation (a prefix of the dev subset)."""

    def steps_per_pass(self, train_size: int) -> int:
        """Optimizer steps one pass over `train_size` examples takes (at least one)."""
        return max(1, math.ceil(math.ceil(train_size / self.batch_size) / self.gradient_accumulation))


@dataclass(frozen=True)
class PruningConfig:
    enabled: bool = True
    """Stop training trials whose intermediate dev score trails the median of earlier trials at that step."""
    startup_trials: int = field(default=3, metadata=at_least(0))
    """Finished trials before any pruning: the first trials of each method are seen to the end."""
    warmup_steps: int = field(default=0, metadata=at_least(0))
    """Never prune a trial before this many optimizer steps."""


@dataclass(frozen=True)
class GenerationConfig:
    batch_size: int = field(default=16, metadata=at_least(1))
    """Prompts generated together. The latency stored per example is the time of its batch."""
    max_new_tokens: int | None = field(default=None, metadata=at_least(1))
    """Cap on generated tokens; None derives it from the output contract and the train answers."""
    engine: str = field(default="hf", metadata=one_of("hf", "vllm"))
    """What answers the dev and test examples: `hf` (transformers' generate, in this process) or `vllm` (one vLLM
    server for the study's base model, started from `serving.vllm_python` or found at `serving.vllm_url`; every LoRA
    adapter is loaded into it at run time, so a sweep of many adapters never reloads the base model). Training, the
    dev probes and the forgetting check run in this process either way. vLLM serves prompting and LoRA arms."""


VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The `--max-lora-rank` values vLLM accepts (its `MaxLoRARanks`); any other stops the server as it starts."""


@dataclass(frozen=True)
class ServingConfig:
    """The vLLM server that `generation.engine: vllm` evaluates through, and the load test that prices serving."""

    vllm_python: str | None = None
    """The python of vLLM's own environment (`bash scripts/vllm_env.sh` builds one and prints it): vLLM pins a torch
    and a transformers that the harness's environment cannot share, so the harness never installs it."""
    vllm_url: str | None = None
    """A vLLM server already running for the study's base model (its OpenAI root, e.g. http://127.0.0.1:8000/v1),
    started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True; used instead of starting one."""
    dtype: str = field(default="float32", metadata=one_of("float32", "bfloat16", "float16", "auto"))
    """The server's arithmetic. float32 gives the same greedy answers as the harness's own generation (in bf16 vLLM
    matched only 7 of 20 on SmolLM2); set bfloat16 on a GPU to price what production will run."""
    max_model_len: int = field(default=2048, metadata=at_least(64))
    """Longest prompt and answer the server accepts, in tokens."""
    max_loras: int = field(default=4, metadata=at_least(1))
    """Adapters the server holds at once."""
    max_lora_rank: int = field(default=64, metadata=one_of(*VLLM_LORA_RANKS))
    """Largest adapter rank it accepts, at least the space's largest `r` (vLLM allows only these values)."""
    concurrency: int = field(default=8, metadata=at_least(1))
    """Requests in flight while the sweep evaluates through the server."""
    load_test_requests: int = field(default=64, metadata=at_least(0))
    """Requests of each trial's load test, which prices serving: train inputs the server has not answered, asked as
    the trial asks (0: no load test; payback then prices the test split's own generation)."""
    load_test_concurrency: int = field(default=8, metadata=at_least(1))
    """Requests in flight during the load test: the concurrency payback's cost per query is measured at."""
    startup_timeout_s: float = field(default=600.0, metadata=greater_than(0))
    """How long a started server may take to answer /health."""


@dataclass(frozen=True)
class ObjectiveConfig:
    metric: str = "task_accuracy"
    """Dev metric the sweep optimises, in its scorer's direction (hallucination_rate is minimised). The test split
    is never used to choose."""
    min_format_compliance: float = field(default=0.9, metadata=between(0, 1))
    """Constraint: a trial below this dev format compliance is infeasible and never wins."""
    max_hallucination_rate: float = field(default=0.1, metadata=between(0, 1))
    """Constraint: a trial above this dev hallucination rate is infeasible."""
    max_regression_drop: float = field(default=0.05, metadata=between(0, 1))
    """Constraint: a trial that loses more than this on the general-capability check is infeasible."""


@dataclass(frozen=True)
class RegressionConfig:
    enabled: bool = True
    """Measure forgetting on a general-capability check after training (through lm-eval)."""
    suite: str = "piqa"
    """A bundled lm-eval task in suites/general/lm_eval/: `piqa` (log-likelihood, cheap) or `gsm8k` (generative,
    only meaningful for models well above 1B parameters, and slow)."""
    limit: int = field(default=200, metadata=at_least(1))
    """Items scored per trial (a seeded subset). The base model is scored once and cached."""
    batch_size: int = field(default=16, metadata=at_least(1))
    """Sequences per forward pass."""
    max_gen_toks: int | None = field(default=None, metadata=at_least(1))
    """Cap on generated tokens for generative checks (gsm8k); None keeps the task's own."""


@dataclass(frozen=True)
class RetentionConfig:
    keep_best: int = field(default=3, metadata=at_least(0))
    """Keep the saved adapters or models of the best k trials (by dev objective); delete the rest."""


@dataclass(frozen=True)
class RepeatsConfig:
    top_k: int = field(default=0, metadata=at_least(0))
    """After the sweep, re-run the k best configurations (by dev) with each seed below; 0 turns this off."""
    seeds: tuple[int, ...] = field(default=(1, 2), metadata=between(0, MAX_SEED))
    """Extra seeds, each other than the study's own `seed` (that run is the original). The spread across seeds
    shows whether the winner was a lucky draw."""

    def __post_init__(self) -> None:
        repeated = [seed for i, seed in enumerate(self.seeds) if seed in self.seeds[:i]]
        if repeated:  # the same seed gives the same run: the spread would look smaller than it is
            raise ConfigError(f"`repeats.seeds` lists {repeated[0]} more than once, and a repeat with the same seed "
                              "is the same run again; list each seed once.")


@dataclass(frozen=True)
class LearningCurveConfig:
    sizes: tuple[Any, ...] = field(default=(), metadata=greater_than(0))
    """After the sweep, re-train the best trained configuration on these train sizes: a whole number is a count of
    examples (100, 250, 500), a number with a decimal point up to 1.0 a fraction of the train subset (0.25, 0.5;
    1.0 is all of it). A count above the train subset is capped at it. Answers "would more labeled data pay?".
    Empty turns it off."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", tuple(_curve_size(size, i) for i, size in enumerate(self.sizes)))

    def counts(self, available: int) -> dict[int, list[int | float]]:
        """Each distinct number of train examples a curve point trains on (of the `available` in the train
        subset), ascending, with the sizes that ask for it."""
        points: dict[int, list[int | float]] = {}
        for size in self.sizes:
            points.setdefault(_curve_count(size, available), []).append(size)
        return dict(sorted(points.items()))


def _curve_size(size: Any, index: int) -> int | float:
    """A curve size as the number it is: YAML 1.1 reads `1e3` as a string. A whole float above 1 (`250.0`) is the
    count it names; 1.5 is refused, being neither a fraction nor a count."""
    key = f"`learning_curve.sizes[{index}]`"
    if isinstance(size, str):
        try:
            size = float(size)
        except ValueError:
            pass
    if isinstance(size, bool) or not isinstance(size, int | float) or not math.isfinite(size) or size <= 0:
        raise ConfigError(f"{key} must be a number above 0 (a count such as 250, or a fraction such as 0.5); got "
                          f"{size!r}.")
    if isinstance(size, float) and size > 1:
        if not size.is_integer():
            raise ConfigError(f"`learning_curve.sizes[{index}]: {size:g}` is neither a fraction of the train subset "
                              "(0 to 1.0) nor a whole number of examples; write e.g. 0.5 or 250.")
        return int(size)
    return size


def _curve_count(size: int | float, available: int) -> int:
    """A float is a fraction of the train subset (1.0 is all of it), an int a count (capped at the subset)."""
    if isinstance(size, float):
        return max(1, round(size * available))
    return min(size, available)


@dataclass(frozen=True)
class GateConfig:
    """What an adapter must show before `harness promote` moves it to staging or production, measured on the same
    test examples as the adapter it would replace (or, with none in production, the best prompting arm)."""

    margin: float = field(default=0.0, metadata=between(0, 1))
    """The study's objective metric must be better than the reference by the decision rule (the 95% interval of the
    paired difference wholly on the good side of 0), or, with a margin, not worse by more than it (the interval's bad
    end within the margin; 0.02 is 2 points)."""
    min_format_compliance: float = field(default=0.95, metadata=between(0, 1))
    """The candidate's test format compliance must reach this."""
    max_hallucination_rate: float = field(default=0.05, metadata=between(0, 1))
    """The candidate's test hallucination rate must stay at or below this."""
    max_regression_drop: float = field(default=0.05, metadata=between(0, 1))
    """Forgetting: the regression delta's point estimate must not fall below -max_regression_drop, the same reading
    as the sweep's constraint; its interval is shown beside it."""
    require_regression: bool = True
    """Refuse an adapter whose forgetting was never measured."""


@dataclass(frozen=True)
class EndpointConfig:
    """A hosted model behind an OpenAI-compatible chat endpoint: the `api` method's opponent."""

    base_url: str
    """e.g. https://api.openai.com/v1, or a local vLLM / TGI / Ollama server such as http://127.0.0.1:8000/v1."""
    model: str
    """The model name the endpoint serves, e.g. gpt-4o-mini."""
    api_key_env: str
    """The environment variable holding the key (read at run time, never stored or logged). For a local server
    that needs no key, name a variable and set it to anything, e.g. `LOCAL_KEY=none`."""
    price: str | None = None
    """An entry under `apis:` of the price table (or the experiment's `prices:`), which prices its tokens."""
    concurrency: int = field(default=4, metadata=at_least(1))
    """Requests in flight at once."""
    timeout_s: float = field(default=60.0, metadata=greater_than(0))
    """Seconds one request may take before it is retried (or, after max_retries, fails the arm)."""
    max_retries: int = field(default=5, metadata=at_least(0))
    """Retries of a request on 429, 5xx, a timeout or a dropped connection, with exponential backoff that honours
    Retry-After."""
    max_tokens: int | None = field(default=None, metadata=at_least(1))
    """Completion tokens per answer; None is twice the local cap derived from the output contract."""
    budget_tokens: int | None = field(default=None, metadata=at_least(1))
    """Hard cap on the tokens (prompt and completion) the study's arms on this endpoint may spend on new requests,
    shared by every trial, retry, follow-up and worker that asks it; an arm stops cleanly before a request that
    could cross it."""
    budget_usd: float | None = field(default=None, metadata=greater_than(0))
    """Hard cap in dollars, shared the same way (needs `price`)."""
    max_refused_share: float = field(default=0.02, metadata=between(0, 1))
    """Requests the endpoint may refuse (400, 422) before the arm fails unscored. Refused examples are left out of
    every metric and counted; above this share a score would describe another endpoint."""
    cache: bool = True
    """Keep every answer on disk, keyed by endpoint, model and the full request: a re-run sends nothing already
    answered."""


@dataclass(frozen=True)
class RedactionConfig:
    """Per-example inputs, targets and outputs may hold customer data. With `enabled`, every match is replaced before
    the example is stored; scores are computed before, on the text as generated, so no number changes."""

    enabled: bool = False
    """Redact the stored examples. Off, they are stored as generated (and the audit record says so)."""
    patterns: tuple[str, ...] = tuple(PATTERNS)
    """Built-in patterns: `email`, `phone` (7 to 15 digits in phone notation, so long order numbers too) and `iban`
    (ISO 13616 shape). `[]` keeps only `regexes`."""
    regexes: tuple[str, ...] = ()
    """Your own patterns (Python `re` syntax), e.g. `'CUST-\\d{8}'`; checked when the file loads. Named `regex1`,
    `regex2`, ... in the replacement."""
    replacement: str = DEFAULT_REPLACEMENT
    """What a match becomes; `{name}` is the pattern's name (`email`, `regex1`)."""

    def __post_init__(self) -> None:
        for i, name in enumerate(self.patterns):
            if name not in PATTERNS:
                raise ConfigError(f"`redaction.patterns[{i}]` must be one of {', '.join(PATTERNS)}; got {name!r}.")
        for i, regex in enumerate(self.regexes):
            if problem := regex_problem(regex):
                raise ConfigError(f"`redaction.regexes[{i}]` {regex!r} {problem}. Fix it or remove it.")
        try:
            self.replacement.format(name="email")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"`redaction.replacement` {self.replacement!r} is not a valid template ({exc!r}); "
                              "write `{name}` for the pattern's name and `{{`, `}}` for literal braces.") from None


@dataclass(frozen=True)
class ExperimentConfig:
    STRAY_KEY_HINT: ClassVar[str] = ("A method's parameters (learning_rate, r, shots, ...) go under its entry in "
                                     "`space:`, e.g. `space: {lora: {learning_rate: 2.0e-4}}`.")
    name: str
    """Names the study unless --study is given."""
    space: dict[str, dict[str, Any] | None]
    """Methods to compare and their search space: `method: {param: value | [choices] | {low, high, log}}`; `{}` runs
    a method with its defaults. A method left out is not compared, and an `enqueue` entry naming it is refused (a
    mistake in the file). `method: null` (or `--set space.full=null`) removes a method the file lists: the sweep goes
    ahead without it, says so, and drops the `enqueue` entries that name it."""
    model: str = "smollm2-135m"
    """An embedded model name (see `harness models list`), a local Hugging Face model dir, or a hub id."""
    suite: str = "ticket-triage"
    """A folder under suites/, or a path to a suite folder."""
    seed: int = field(default=0, metadata=between(0, MAX_SEED))
    """Seeds subsets, few-shot draws, the sampler and training."""
    device: str = field(default="auto", metadata=one_of("auto", "cpu", "cuda"))
    """`auto` (CUDA when present, else CPU), `cuda` or `cpu`."""
    results_dir: str = "results"
    """Where the database, Optuna journal and saved adapters go."""
    sampler: str = field(default="tpe", metadata=one_of("tpe", "random"))
    """`tpe` (Optuna's default, constraint-aware) or `random`."""
    enqueue: tuple[dict[str, Any], ...] = ()
    """Trials to run first, e.g. the prompting baselines: `{method: prompt, shots: 0}`."""
    gate: GateConfig | None = None
    """The promotion gate's thresholds; None uses the suite's `gate:` (suite.yaml), else the defaults."""
    endpoints: dict[str, EndpointConfig] = field(default_factory=dict)
    """Hosted models the `api` method may use, by name: `{mini: {base_url: ..., model: ..., api_key_env: ...}}`."""
    data: DataConfig = field(default_factory=DataConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    regression: RegressionConfig = field(default_factory=RegressionConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    prices: dict[str, Any] = field(default_factory=dict)
    """Overrides of the price table (the layout of harness/analysis/prices.yaml), e.g.
    `{devices: {H100: {usd_per_hour: 2.2}}}`; `harness payback` and the dashboard use them, marked as user input."""
    repeats: RepeatsConfig = field(default_factory=RepeatsConfig)
    learning_curve: LearningCurveConfig = field(default_factory=LearningCurveConfig)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_experiment(path: str | Path, overrides: list[str] = ()) -> ExperimentConfig:
    """Read an experiment YAML, apply `key=value` overrides, and return the validated config."""
    path = experiment_file(path)
    raw = read_yaml(path, ConfigError)
    if raw is None:  # nothing but comments or blank lines: say so, rather than "must be a mapping"
        raise ConfigError(f"{path}: the file is empty; an experiment needs at least `name:` and `space:` (start from "
                          "`harness init`, which writes one to edit, or copy a bundled one such as "
                          "experiments/demo.yaml).")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys such as `name`, `space`, `budget`.")
    with blame_overrides(overrides):
        for item in overrides:
            apply_override(raw, item, where=str(path))
        config = build(ExperimentConfig, raw, where=str(path))
        _check_agreement(config, str(path))
        _check_endpoints(config, str(path))
    # `~/results` as the shell reads it: Path() keeps a literal `~` folder, where DuckDB would look in the home folder
    home = {key: str(Path(value).expanduser()) for key, value in (("results_dir", config.results_dir),
                                                                  ("suite", config.suite)) if value.startswith("~")}
    return dataclasses.replace(config, **home)


def experiment_file(given: str | Path) -> Path:
    """The experiment file `given` names (harness/core/paths.py looks it up); a folder is named as one."""
    folder = Path(given)
    if folder.is_dir():
        found = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml"), *folder.glob("experiments/*.y*ml")])
        offer = (f"one of the experiment files in it: {', '.join(str(p) for p in found[:5])}" if found
                 else "an experiment file (`harness init` writes one into a folder)")
        raise ConfigError(f"{given}: is a folder, not an experiment file; give {offer}, or a bundled experiment's "
                          "name such as demo.")
    return find_experiment(given)


def override_keys(overrides: Iterable[str]) -> dict[str, str]:
    """Each `--set` item by the dotted key it sets."""
    return {item.partition("=")[0].strip(): item for item in overrides if "=" in item}


BLAMED = "the value came from"


class FlagOverride(str):
    """A `--set` item that a command's own flag stands for (`harness worker --results DIR` sets results_dir=DIR): a
    problem with its value names the flag the user typed, not a `--set` they never wrote."""

    flag: str

    def __new__(cls, item: str, flag: str) -> FlagOverride:
        made = super().__new__(cls, item)
        made.flag = flag
        return made


@contextmanager
def blame_overrides(overrides: Iterable[str]) -> Iterator[None]:
    """A problem with a key that `--set` gave (or a key above or under it) says so: the user would otherwise look
    for the bad value in the file, where it is not."""
    try:
        yield
    except HarnessError as exc:
        named = {_first_key(line) for line in str(exc).splitlines()} - {None}
        given = [item for key, item in override_keys(overrides).items()
                 if any(_related(key, other) for other in named)]
        if not given or str(exc).startswith("--set ") or BLAMED in str(exc):
            raise
        # the key, not its value: a key pasted into --set by mistake reached a CI log whose message above it had
        # promised not to repeat it; the message names the value where it is safe to
        sources = ", ".join(f"`{item.flag}`" if isinstance(item, FlagOverride)
                            else f"`--set {item.partition('=')[0].strip()}=...`" for item in given)
        kind = ConfigError if isinstance(exc, ConfigProblems) else type(exc)
        raise kind(f"{exc}\n  ({BLAMED} {sources} on the command line, not from the file.)") from None


def _first_key(line: str) -> str | None:
    """The dotted key a problem is about: the first one it quotes, without a value or an index."""
    match = re.search(r"`([A-Za-z0-9_.\-]+)", line)
    return match.group(1) if match else None


def _related(key: str, other: str) -> bool:
    return key == other or key.startswith(other + ".") or other.startswith(key + ".")


NOT_NULL = frozenset({"name", "model", "suite", "results_dir"})
"""Top-level keys whose null is their default: `--set suite=null` ran the bundled suite without a word."""


def apply_override(raw: dict[str, Any], item: str, where: str) -> None:
    """Apply one `dotted.key=value` override; the value is parsed as YAML (`3`, `1e-3`, `[8, 16]`)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: write it as key=value, e.g. --set budget.trials=4.")
    node = raw
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"--set {item!r}: the key `{key}` has an empty part (a leading, trailing or doubled `.`); "
                          "write dotted keys like budget.trials or space.lora.r.")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {item!r}: `{part}` in {where} is not a mapping, so it has no `{parts[-1]}`.")
        node = child
    if not text.strip():
        raise ConfigError(f"--set {item!r}: the value is empty; give one (--set {key}=VALUE), or write "
                          f"--set {key}=null to unset it where null is allowed.")
    try:
        node[parts[-1]] = parse_yaml(text)
        if node[parts[-1]] is None and key in NOT_NULL:
            raise ConfigError(f"--set {item!r}: `{key}` cannot be unset from the command line: null would quietly "
                              f"fall back to its default. Give a value, or leave --set {key} out.")
    except DuplicateKeyError as exc:
        raise ConfigError(f"--set {item!r}: key `{exc.key}` is given twice in the value; keep one.") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({problem}); quote it, or write a list as "
                          "[8, 16] and a mapping as {low: 1, high: 2}.") from None


def _check_agreement(config: ExperimentConfig, where: str) -> None:
    """Settings that are each in range but contradict one another: refused, naming both keys, rather than letting
    one silently win."""
    budget = config.budget  # (min_steps above max_steps is no conflict: it only bounds how far fit lowers)
    # With every step spent warming up, the learning rate never reaches its value, let alone decays to zero.
    if budget.max_steps is not None and config.training.warmup_steps >= budget.max_steps:
        raise ConfigError(f"{where}: `training.warmup_steps: {config.training.warmup_steps}` is not below "
                          f"`budget.max_steps: {budget.max_steps}`, so training would end before the warm-up does; "
                          "lower training.warmup_steps or raise budget.max_steps.")
    repeats = config.repeats
    if repeats.top_k > 0 and not repeats.seeds:
        raise ConfigError(f"{where}: `repeats.top_k: {repeats.top_k}` re-runs the best configurations with "
                          "each of `repeats.seeds`, which is empty; add seeds (e.g. [1, 2]) or set repeats.top_k: 0.")
    if repeats.top_k > 0 and config.seed in repeats.seeds:  # that "repeat" is the original run: no spread at all
        others = [seed for seed in range(config.seed + len(repeats.seeds) + 1) if seed != config.seed]
        raise ConfigError(f"{where}: `repeats.seeds` ({', '.join(map(str, repeats.seeds))}) holds {config.seed}, the "
                          f"study's own `seed: {config.seed}`, so that repeat would only run the original trial "
                          f"again and make the winner look steadier than it is; use other seeds, e.g. "
                          f"repeats.seeds: [{', '.join(map(str, others[:len(repeats.seeds)]))}].")
    _check_paths(config, where)


PATH_KEYS = {"results_dir": "a folder for the results", "suite": "a suite's name or folder",
             "model": "a model (an embedded name, a model folder or a hub id)"}
"""Keys that name a folder, and what each needs: an empty or blank one would quietly mean the current folder."""


def _check_paths(config: ExperimentConfig, where: str) -> None:
    for key, needed in PATH_KEYS.items():
        if not getattr(config, key).strip():
            default = ExperimentConfig.__dataclass_fields__[key].default
            raise ConfigError(f"{where}: `{key}` is empty, which would quietly mean the current folder; give "
                              f"{needed}, or leave `{key}` out for the default ({default}).")


_CREDENTIAL_NAME = re.compile(r"key|token|secret|sig|password|passwd|pwd|auth|credential", re.I)
"""Query parameters that carry a credential (`?api-key=`, Azure's `?sig=`, `?access_token=`); `api-version` does not."""


def _secret_parameter(url) -> str | None:
    """The first query parameter of `url` whose name says it carries a credential, or None."""
    if url is None:
        return None
    return next((name for name, _ in parse_qsl(url.query, keep_blank_values=True) if _CREDENTIAL_NAME.search(name)),
                None)


def _check_endpoints(config: ExperimentConfig, where: str) -> None:
    """The experiment is stored with every result, so it must hold no secret: `api_key_env` names a variable (a key
    pasted there is refused without being repeated), and `base_url` is a plain http(s) URL without a password."""
    for name, endpoint in config.endpoints.items():
        at = f"{where}: `endpoints.{name}"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", endpoint.api_key_env):
            raise ConfigError(f"{at}.api_key_env` must be the name of an environment variable (letters, digits and "
                              "`_`, such as OPENAI_API_KEY), not the key itself; the value given is not one, and is "
                              "not repeated here in case it is a key. Put the key in a variable (`export "
                              "OPENAI_API_KEY=...`) and write `api_key_env: OPENAI_API_KEY`.")
        try:
            url = urlsplit(endpoint.base_url)
            credentials = url.username is not None or url.password is not None
        except ValueError:
            url, credentials = None, False
        if credentials:
            raise ConfigError(f"{at}.base_url` holds a user name or password (`user:secret@host`), which would be "
                              "stored with every result; it is not repeated here. Remove it from the URL and put the "
                              f"key in the variable `endpoints.{name}.api_key_env` names.")
        if secret := _secret_parameter(url):
            raise ConfigError(f"{at}.base_url` carries a credential in its query (`{secret}=...`), which would be "
                              "stored with every result and printed in its errors; the value is not repeated here. "
                              f"Remove `{secret}` from the URL and put the key in the variable "
                              f"`endpoints.{name}.api_key_env` names: it is sent as the request's Authorization "
                              "header.")
        if url is None or url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"{at}.base_url: {endpoint.base_url}` is not an http:// or https:// URL with a host; "
                              "write it like https://api.openai.com/v1 or http://127.0.0.1:8000/v1.")
