"""Prompting baseline: the base model with the contract stated, zero- or few-shot, and optionally constrained.

A fair baseline is the best prompting a team would try before paying for fine-tuning: the label set or schema in
the instruction, shots that resemble the input (`shot_selection: similar`), and decoding that cannot leave the
contract (`constrained: true`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.core.typed import at_least, one_of
from harness.data.prompting import Prompter
from harness.data.shots import SELECTIONS
from harness.models import loading
from harness.training.methods.base import LocalCandidate, TrialContext, contract_grammar, prompting_prompter


@dataclass(frozen=True)
class PromptParams:
    shots: int = field(default=0, metadata=at_least(0))
    """Few-shot examples from train before each input; 0 is zero-shot."""
    shot_selection: str = field(default="random", metadata=one_of(*SELECTIONS))
    """`random`: one seeded draw (distinct answers first) for every input; `similar`: the k train examples most
    similar to each input (BM25)."""
    constrained: bool = False
    """Limit generation to the output contract (the label set or the JSON Schema), so the model cannot invent a
    label or break the format. Not for free-text suites."""


class Prompting:
    name = "prompt"
    trains = False
    hosted = False
    searches = False
    Params = PromptParams

    def unavailable_reason(self, device: str) -> str | None:
        return None

    def framing(self, ctx: TrialContext, params: PromptParams, tokenizer) -> Prompter:
        return prompting_prompter(ctx, tokenizer, params.shots, params.shot_selection)

    def prepare(self, ctx: TrialContext, params: PromptParams) -> LocalCandidate:
        return self.load(ctx, params, None)

    def save(self, candidate: LocalCandidate, directory: Path) -> Path | None:
        return None  # the base model answers; the shots are stored with the trial

    def load(self, ctx: TrialContext, params: PromptParams, artifact: Path | None) -> LocalCandidate:
        model, tokenizer = loading.load_model(ctx.source, ctx.device, ctx.dtype), loading.load_tokenizer(ctx.source)
        grammar = contract_grammar(ctx, tokenizer, params.constrained)
        return LocalCandidate(model, tokenizer, self.framing(ctx, params, tokenizer), trained=False, grammar=grammar)
