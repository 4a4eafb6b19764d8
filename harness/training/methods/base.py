"""The Method interface: how a trial turns a base model (or a hosted endpoint) into something that answers the
suite, and how that something is saved and loaded again (for `harness predict`, and whatever comes after)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.core.config import ExperimentConfig
from harness.core.records import HostedUsage, PromptSearch
from harness.data import prompting
from harness.data.contract import settled
from harness.data.prompting import Prompter
from harness.data.shots import picker
from harness.data.suites import Example, Suite
from harness.hosted.client import HostedEndpoint
from harness.hosted.ledger import SpendLedger
from harness.models import loading
from harness.models.sources import ModelSource
from harness.training.constrained import Grammar
from harness.training.generate import Generation, generate
from harness.training.train_report import DevProbe, TrainReport


@dataclass(frozen=True)
class TrialContext:
    """Everything a method may read. Methods never see the test split."""

    config: ExperimentConfig
    suite: Suite
    train_examples: tuple[Example, ...]
    source: ModelSource
    device: str
    dtype: Any
    seed: int
    make_dev_probe: Callable[[Any, Any, Prompter, Grammar | None], DevProbe | None] = lambda *args: None
    """Given (model, tokenizer, prompter, grammar), returns the pruning probe called during training; it decodes as
    the trial will (constrained when the trial is)."""
    endpoints: Mapping[str, HostedEndpoint] = field(default_factory=dict)
    """Hosted endpoints by the experiment's name for them, with their keys (in memory only) and prices."""
    max_new_tokens: int = 64
    """The answer cap derived from the output contract (the sweep's generation cap)."""
    hosted_ledger: Callable[[str], SpendLedger | None] = lambda endpoint: None
    """Endpoint name -> the study's spend on it, shared by every worker: its budget is the study's, not a trial's.
    None: the arm's own requests are all its budget counts."""
    shot_pool: tuple[Example, ...] | None = None
    """Train as the suite gives it, where `train_examples` holds inputs cut to fit `training.max_length`
    (`training.over_length: truncate`, a training setting): prompting arms show and search shots from it, whole.
    None: `train_examples`, which nothing cut."""
    recorded_shots: tuple[str, ...] | None = None
    """The train ids a finished trial was prompted with (`harness predict`); None in a sweep. A method that searched
    for its shots rebuilds them from these instead of searching again."""
    recorded_instruction: str | None = None
    """The instruction a finished trial's search chose in place of the suite's (MIPROv2), read with
    `recorded_shots`; None: the suite's."""


    @property
    def shots_from(self) -> tuple[Example, ...]:
        """The train examples prompting arms draw shots from (`shot_pool`)."""
        return self.train_examples if self.shot_pool is None else self.shot_pool


class Candidate(Protocol):
    """Something that answers: a local model, or a hosted endpoint, and the prompter that frames each input."""

    prompter: Prompter
    trained: bool
    train_report: TrainReport | None
    hosted: HostedUsage | None
    """What a hosted arm asked of its endpoint so far; None for local models."""
    search: PromptSearch | None
    """How its prompt was searched for (`dspy`, `api_dspy`); None for every other arm."""

    def answer(self, examples: Sequence[Example], max_new_tokens: int, batch_size: int,
               desc: str) -> list[Generation]: ...


@dataclass
class LocalCandidate:
    model: Any
    tokenizer: Any
    prompter: Prompter
    trained: bool
    train_report: TrainReport | None = None
    grammar: Grammar | None = None
    """Constrained decoding to the output contract, when the method asked for it."""
    hosted: HostedUsage | None = None
    search: PromptSearch | None = None
    """How its prompt was searched for (`dspy`)."""
    quantized: bool = False
    """The base is loaded in 4-bit (QLoRA): its forgetting is measured against the same quantized base."""

    def answer(self, examples: Sequence[Example], max_new_tokens: int, batch_size: int,
               desc: str = "generate") -> list[Generation]:
        prompts = [self.prompter.prompt(ex) for ex in examples]
        contract = self.prompter.contract
        return generate(self.model, self.tokenizer, prompts, batch_size, max_new_tokens, desc=desc,
                        grammar=self.grammar, settled=lambda text: settled(text, contract))


def trained_prompter(ctx: TrialContext, tokenizer) -> Prompter:
    """How trained methods frame inputs (see `harness.data.prompting.trained_prompter`)."""
    return prompting.trained_prompter(tokenizer, ctx.suite, ctx.config.training)


def prompting_prompter(ctx: TrialContext, tokenizer, shots: int, selection: str, local: bool = True) -> Prompter:
    """How prompting arms frame inputs: the contract stated, and shots from train (random or similar); for the local
    model (`local`), as many as fit its context window with room for the answer (a hosted model's is its own)."""
    window = loading.context_window(ctx.source, tokenizer) if local and tokenizer is not None else None
    return Prompter(tokenizer, ctx.suite.instruction, ctx.suite.contract,
                    picker(selection, ctx.shots_from, shots, ctx.seed), include_contract=True,
                    room=None if window is None else window - ctx.max_new_tokens)


def train_candidate(ctx: TrialContext, model, tokenizer, learning_rate: float, constrained: bool = False,
                    quantized: bool = False) -> LocalCandidate:
    """Fine-tune `model` on the trial's train examples and wrap it as a Candidate (LoRA, QLoRA and full).
    `constrained`: it answers with decoding limited to the contract, as a constrained prompting arm does."""
    from harness.training.sft import train  # TRL, PEFT and datasets load only when a trial trains

    prompter = trained_prompter(ctx, tokenizer)
    grammar = contract_grammar(ctx, tokenizer, constrained)
    report = train(model, tokenizer, prompter, list(ctx.train_examples), learning_rate, ctx.config.budget,
                   ctx.config.training, ctx.device, ctx.seed, ctx.make_dev_probe(model, tokenizer, prompter, grammar))
    return LocalCandidate(model, tokenizer, prompter, trained=True, train_report=report, grammar=grammar,
                          quantized=quantized)


def contract_grammar(ctx: TrialContext, tokenizer, constrained: bool) -> Grammar | None:
    """Constrained decoding to the suite's contract (label set or JSON Schema) when the arm asks for it."""
    return Grammar(ctx.suite.contract, tokenizer) if constrained else None


def save_pretrained(candidate: LocalCandidate, directory: Path) -> Path:
    """What `save_pretrained` writes (a PEFT adapter, or the whole model) as safetensors, with the tokenizer."""
    directory.mkdir(parents=True, exist_ok=True)
    with loading.library_bars_off():
        candidate.model.save_pretrained(directory, safe_serialization=True)
    candidate.tokenizer.save_pretrained(directory)
    return directory


MOOT_WHEN = {"shot_selection": ("shots", 0)}
"""A parameter that changes nothing while another has a value: with no shots there is nothing to select, so
`shots: 0` with `shot_selection: random` and with `similar` are one configuration (the sweep ran both)."""


class Method(Protocol):
    """One way to answer the suite. Contract (tests/test_methods.py runs it over every registered method):

    - `Params` is a frozen dataclass: its fields are every parameter the method accepts, with their defaults, bounds
      (field metadata) and docs. The experiment's `space.<method>` may only name these, and every value the space
      can produce is checked against them before any model loads.
    - `unavailable_reason(device)` returns why the method cannot run here (None when it can); the sweep then
      leaves it out of the space and records the reason.
    - `framing(ctx, params, tokenizer)` frames each input as the candidate `prepare` returns does.
    - `prepare(ctx, params)` returns a Candidate; `params` is a `Params`.
    - `save(candidate, directory)` writes what `load` needs as safetensors and returns the folder, or None when
      the method keeps no weights (prompting).
    - `load(ctx, params, artifact)` returns a Candidate answering exactly as the saved one did: the same
      predictions, greedy, on the same prompts.
    """

    name: str
    trains: bool
    hosted: bool
    """It answers through a hosted endpoint, not on this machine's device."""
    searches: bool
    """It searches its prompt on train before answering (`dspy`, `api_dspy`): its `Params` then has `max_demos`
    (the most shots a searched prompt shows, which the calibration times an answer with) and
    `settings(seed, train_size)` (whose `calls()` counts the answers a trial's search generates, for the estimate)."""
    Params: type

    def unavailable_reason(self, device: str) -> str | None: ...

    def framing(self, ctx: TrialContext, params: Any, tokenizer: Any) -> Prompter | None:
        """How its candidate frames each input (the same messages), from the trial's context alone: no model loads and
        nothing trains. The calibration counts dev and test prompts with it. None where the trial finds its framing
        itself (a search, unless `ctx.recorded_shots`)."""
        ...

    def prepare(self, ctx: TrialContext, params: Any) -> Candidate: ...

    def save(self, candidate: Any, directory: Path) -> Path | None: ...

    def load(self, ctx: TrialContext, params: Any, artifact: Path | None) -> Candidate: ...
