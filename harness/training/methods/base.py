"""The Method interface: how a trial turns a base model into something that answers the suite, and how that
something is saved and loaded again (for `harness predict`, and whatever comes after the sweep)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.core.config import ExperimentConfig
from harness.data.prompting import Prompter
from harness.data.suites import Example, Suite
from harness.models.sources import ModelSource
from harness.training.sft import DevProbe, TrainReport, train


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
    make_dev_probe: Callable[[Any, Any, Prompter], DevProbe | None]
    """Given (model, tokenizer, prompter), returns the pruning probe called during training."""


@dataclass
class Candidate:
    """A model ready to answer, plus how it was made."""

    model: Any
    tokenizer: Any
    prompter: Prompter
    trained: bool
    train_report: TrainReport | None = None


def save_pretrained(candidate: Candidate, directory: Path) -> Path:
    """What `save_pretrained` writes (a PEFT adapter, or the whole model) as safetensors, with the tokenizer."""
    directory.mkdir(parents=True, exist_ok=True)
    candidate.model.save_pretrained(directory, safe_serialization=True)
    candidate.tokenizer.save_pretrained(directory)
    return directory


def train_candidate(ctx: TrialContext, model, tokenizer, learning_rate: float) -> Candidate:
    """Fine-tune `model` on the trial's train examples and wrap it as a Candidate (LoRA, QLoRA and full)."""
    prompter = Prompter(tokenizer, ctx.suite.instruction, ctx.suite.contract,
                        include_contract=ctx.config.training.include_contract)
    report = train(model, tokenizer, prompter, list(ctx.train_examples), learning_rate, ctx.config.budget,
                   ctx.config.training, ctx.device, ctx.seed, ctx.make_dev_probe(model, tokenizer, prompter))
    return Candidate(model, tokenizer, prompter, trained=True, train_report=report)


class Method(Protocol):
    """One way to adapt a model. Contract (tests/test_methods.py runs it over every registered method):

    - `Params` is a frozen dataclass: its fields are every parameter the method accepts, with their defaults, bounds
      (field metadata) and docs. The experiment's `space.<method>` may only name these, and every value the space
      can produce is checked against them before any model loads.
    - `unavailable_reason(device)` returns why the method cannot run here (None when it can); the sweep then
      leaves it out of the space and records the reason.
    - `prepare(ctx, params)` returns a Candidate; `params` is a `Params`.
    - `save(candidate, directory)` writes what `load` needs as safetensors and returns the folder, or None when
      the method keeps no weights (prompting).
    - `load(source, artifact, device, dtype)` returns (model, tokenizer) answering exactly as the saved candidate
      did: the same predictions, greedy, on the same prompts.
    """

    name: str
    trains: bool
    Params: type

    def unavailable_reason(self, device: str) -> str | None: ...

    def prepare(self, ctx: TrialContext, params: Any) -> Candidate: ...

    def save(self, candidate: Candidate, directory: Path) -> Path | None: ...

    def load(self, source: ModelSource, artifact: Path | None, device: str, dtype: Any) -> tuple[Any, Any]: ...
