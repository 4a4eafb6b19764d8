"""What a training run reports, apart from the trainer that fills it in: the plan and the calibration read it without
importing TRL, PEFT and datasets (seconds of start-up for `sweep --check`)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

WARMUP_STEPS = 1
"""Optimizer steps left out of a step-time mean: the first pays for allocations that later steps do not."""
DevProbe = Callable[[int], bool]
"""Called every `eval_every_steps` with the step; scores the dev subset and returns True to stop (prune)."""


@dataclass
class TrainReport:
    steps: int = 0
    seconds: float = 0.0
    stopped_by: str = "epochs"
    """What ended training: `epochs`, `max_steps`, `time budget` or `pruned`."""
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    train_examples: int = 0
    planned_steps: int | None = None
    """The step budget the trainer planned: `max_steps`, or the steps its epochs take."""
    step_seconds: list[float] = field(default_factory=list)
    """Wall seconds of each optimizer step, without the dev probes between them (the calibration reads these)."""
    padding_free: bool = False
    """Batches were joined into one row each (`training.padding_free`, where the model keeps their examples apart)."""

    @property
    def mean_step_seconds(self) -> float | None:
        """The mean of `step_seconds` after the first WARMUP_STEPS, which pay for allocations; None without more."""
        timed = self.step_seconds[WARMUP_STEPS:]
        return statistics.fmean(timed) if timed else None
