"""Full fine-tuning: every weight trained."""

from __future__ import annotations

from typing import Any

from harness.models import sources as models
from harness.training.methods.base import Candidate, TrialContext, train_candidate


class FullFineTune:
    name = "full"
    trains = True
    defaults = {"learning_rate": 5e-5}

    def unavailable_reason(self, device: str) -> str | None:
        return None

    def prepare(self, ctx: TrialContext, params: dict[str, Any]) -> Candidate:
        tokenizer = models.load_tokenizer(ctx.source)
        model = models.load_model(ctx.source, ctx.device, ctx.dtype)
        return train_candidate(ctx, model, tokenizer, float(params["learning_rate"]))
