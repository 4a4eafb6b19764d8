"""Prompting baseline: the base model, zero-shot or with k examples drawn from train.

The prompt always states the label set or schema, so the baseline is a fair one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.typed import at_least
from harness.data.prompting import Prompter
from harness.data.suites import Example
from harness.models import loading
from harness.models.sources import ModelSource
from harness.training.methods.base import Candidate, TrialContext


@dataclass(frozen=True)
class PromptParams:
    shots: int = field(default=0, metadata=at_least(0))
    """Few-shot examples drawn from train (seeded, preferring distinct answers); 0 is zero-shot."""


class Prompting:
    name = "prompt"
    trains = False
    Params = PromptParams

    def unavailable_reason(self, device: str) -> str | None:
        return None

    def prepare(self, ctx: TrialContext, params: PromptParams) -> Candidate:
        model, tokenizer = self.load(ctx.source, None, ctx.device, ctx.dtype)
        shots = draw_shots(ctx.train_examples, params.shots, ctx.seed)
        prompter = Prompter(tokenizer, ctx.suite.instruction, ctx.suite.contract, shots, include_contract=True)
        return Candidate(model, tokenizer, prompter, trained=False)

    def save(self, candidate: Candidate, directory: Path) -> Path | None:
        return None  # the base model answers; the shots are stored with the trial

    def load(self, source: ModelSource, artifact: Path | None, device: str, dtype: Any) -> tuple[Any, Any]:
        return loading.load_model(source, device, dtype), loading.load_tokenizer(source)


def draw_shots(examples: tuple[Example, ...], k: int, seed: int) -> tuple[Example, ...]:
    """k seeded examples from train, preferring distinct answers so the shots show the label variety."""
    pool = list(examples)
    random.Random(seed).shuffle(pool)
    chosen, seen = [], set()
    for ex in pool:
        if len(chosen) == k:
            break
        if ex.target not in seen:
            chosen.append(ex)
            seen.add(ex.target)
    for ex in pool:  # fewer distinct answers than k: fill up with repeats
        if len(chosen) == k:
            break
        if ex not in chosen:
            chosen.append(ex)
    return tuple(chosen)
