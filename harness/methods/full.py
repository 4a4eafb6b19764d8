"""Full fine-tuning: every weight trained."""

from __future__ import annotations

from typing import Any

from harness import models
from harness.methods.base import Candidate, TrialContext
from harness.prompting import Prompter
from harness.train import train


class FullFineTune:
    name = "full"
    trains = True
    defaults = {"learning_rate": 5e-5}

    def unavailable_reason(self, device: str) -> str | None:
        return None

    def prepare(self, ctx: TrialContext, params: dict[str, Any]) -> Candidate:
        tokenizer = models.load_tokenizer(ctx.source)
        model = models.load_model(ctx.source, ctx.device, ctx.dtype)
        prompter = Prompter(tokenizer, ctx.suite.instruction, ctx.suite.contract,
                            include_contract=ctx.config.training.include_contract)
        report = train(model, tokenizer, prompter, list(ctx.train_examples), float(params["learning_rate"]),
                       ctx.config.budget, ctx.config.training, ctx.device, ctx.seed,
                       ctx.make_dev_probe(model, tokenizer, prompter))
        return Candidate(model, tokenizer, prompter, trained=True, train_report=report)
