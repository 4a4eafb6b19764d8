"""Prompting baseline: the base model, zero-shot or with k examples drawn from train.

The prompt always states the label set or schema, so the baseline is a fair one.
"""

from __future__ import annotations

import random
from typing import Any

from harness.data.prompting import Prompter
from harness.data.suites import Example
from harness.models import sources as models
from harness.training.methods.base import Candidate, TrialContext


class Prompting:
    name = "prompt"
    trains = False
    defaults = {"shots": 0}

    def unavailable_reason(self, device: str) -> str | None:
        return None

    def prepare(self, ctx: TrialContext, params: dict[str, Any]) -> Candidate:
        tokenizer = models.load_tokenizer(ctx.source)
        model = models.load_model(ctx.source, ctx.device, ctx.dtype)
        shots = draw_shots(ctx.train_examples, int(params["shots"]), ctx.seed)
        prompter = Prompter(tokenizer, ctx.suite.instruction, ctx.suite.contract, shots, include_contract=True)
        return Candidate(model, tokenizer, prompter, trained=False)


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
