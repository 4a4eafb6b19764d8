"""Full fine-tuning: every weight trained."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.typed import greater_than
from harness.models import loading
from harness.models.sources import ModelSource
from harness.training.methods.base import Candidate, TrialContext, save_pretrained, train_candidate


@dataclass(frozen=True)
class FullParams:
    learning_rate: float = field(default=5e-5, metadata=greater_than(0))
    """AdamW learning rate; every weight moves, so far smaller than an adapter's (1e-5 to 1e-4)."""


class FullFineTune:
    name = "full"
    trains = True
    Params = FullParams

    def unavailable_reason(self, device: str) -> str | None:
        return None

    def prepare(self, ctx: TrialContext, params: FullParams) -> Candidate:
        model, tokenizer = self.load(ctx.source, None, ctx.device, ctx.dtype)
        return train_candidate(ctx, model, tokenizer, params.learning_rate)

    def save(self, candidate: Candidate, directory: Path) -> Path:
        """The whole model as safetensors, with its tokenizer."""
        return save_pretrained(candidate, directory)

    def load(self, source: ModelSource, artifact: Path | None, device: str, dtype: Any) -> tuple[Any, Any]:
        """The saved model when there is one (its tokenizer is the base's); the base model otherwise."""
        weights = source if artifact is None else dataclasses.replace(source, name=str(artifact), path=str(artifact))
        return loading.load_model(weights, device, dtype), loading.load_tokenizer(source)
