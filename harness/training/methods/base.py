"""The Method interface: how a trial turns a base model into something that answers the suite."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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

    def save(self, directory: Path) -> Path:
        """Write the adapter (PEFT) or the whole model as safetensors, with its tokenizer."""
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)  # safetensors: the default for transformers 5 and PEFT
        self.tokenizer.save_pretrained(directory)
        return directory


def train_candidate(ctx: TrialContext, model, tokenizer, learning_rate: float) -> Candidate:
    """Fine-tune `model` on the trial's train examples and wrap it as a Candidate (LoRA, QLoRA and full)."""
    prompter = Prompter(tokenizer, ctx.suite.instruction, ctx.suite.contract,
                        include_contract=ctx.config.training.include_contract)
    report = train(model, tokenizer, prompter, list(ctx.train_examples), learning_rate, ctx.config.budget,
                   ctx.config.training, ctx.device, ctx.seed, ctx.make_dev_probe(model, tokenizer, prompter))
    return Candidate(model, tokenizer, prompter, trained=True, train_report=report)


class Method(Protocol):
    """One way to adapt a model. Contract:

    - `defaults` lists every parameter the method accepts, with the value used when the space omits it;
      the experiment's `space.<method>` may only name these.
    - `unavailable_reason(device)` returns why the method cannot run here (None when it can); the sweep
      then leaves it out of the space and records the reason.
    - `prepare(ctx, params)` returns a Candidate; `params` holds every key of `defaults`.
    """

    name: str
    trains: bool
    defaults: Mapping[str, Any]

    def unavailable_reason(self, device: str) -> str | None: ...

    def prepare(self, ctx: TrialContext, params: dict[str, Any]) -> Candidate: ...
