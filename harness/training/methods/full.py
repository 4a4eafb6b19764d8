"""Full fine-tuning: every weight trained."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.typed import greater_than
from harness.data.prompting import Prompter
from harness.models import loading
from harness.training.methods.base import (
    LocalCandidate,
    TrialContext,
    contract_grammar,
    save_pretrained,
    train_candidate,
    trained_prompter,
)


@dataclass(frozen=True)
class FullParams:
    learning_rate: float = field(default=5e-5, metadata={**greater_than(0), "max": 1.0})  # AdamW: above 1 diverges
    """AdamW learning rate; every weight moves, so far smaller than an adapter's (1e-5 to 1e-4)."""
    constrained: bool = False
    """Answer with decoding limited to the output contract (the label set or the JSON Schema), as a constrained
    prompting arm does, so the comparison is like for like: the adapter cannot invent a label. Not for free text."""


class FullFineTune:
    name = "full"
    trains = True
    hosted = False
    searches = False
    Params = FullParams

    def unavailable_reason(self, device: str) -> str | None:
        return None

    def framing(self, ctx: TrialContext, params: FullParams, tokenizer) -> Prompter:
        return trained_prompter(ctx, tokenizer)

    def prepare(self, ctx: TrialContext, params: FullParams) -> LocalCandidate:
        model = loading.load_model(ctx.source, ctx.device, ctx.dtype)
        tokenizer = loading.load_tokenizer(ctx.source)
        return train_candidate(ctx, model, tokenizer, params.learning_rate, params.constrained)

    def save(self, candidate: LocalCandidate, directory: Path) -> Path:
        """The whole model as safetensors, with its tokenizer."""
        return save_pretrained(candidate, directory)

    def load(self, ctx: TrialContext, params: FullParams, artifact: Path | None) -> LocalCandidate:
        """The saved model (its tokenizer is the base's)."""
        if artifact is None:
            raise ValueError("a full fine-tuning trial needs its saved model folder to load")
        weights = dataclasses.replace(ctx.source, name=str(artifact), path=str(artifact))
        tokenizer = loading.load_tokenizer(ctx.source)
        return LocalCandidate(loading.load_model(weights, ctx.device, ctx.dtype), tokenizer,
                              trained_prompter(ctx, tokenizer), trained=True,
                              grammar=contract_grammar(ctx, tokenizer, params.constrained))
