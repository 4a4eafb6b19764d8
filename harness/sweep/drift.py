"""Check the calibration against the trials it planned: a cached timing taken while other work shared the cores
reads slow, and would stay slow.

The calibration times a handful of steps once per machine, model, suite and batch shape, and caches them. When the
CPU was busy then (a test run, a build), every later plan reads those slow timings: estimates run long, a trial is
refused as unable to finish inside its cap, and `budget.fit_minutes` gives trained trials fewer steps than the
machine can afford, which changes the answer. A trained trial times every one of its steps, so after the sweep its
mean step is set beside the calibration's:
- much faster than calibrated: the cached timings are dropped, and the next run measures the machine again;
- much slower: this run shared the machine; the timings are kept, and the user is told why trials ran long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.core.records import TrialView
from harness.sweep.calibrate import TIMED_STEPS, Calibration

DRIFT = 1.5
"""How many times slower or faster than calibrated a trial's mean step may run before the calibration is called
out. A trial's mean and the calibration's agree within about 20% on an idle machine (the demo's LoRA: 1.04 s a step
calibrated, about 1.1 s over its 250 steps, Intel Xeon, 2026-12-05); one calibrated while a test run shared the
cores read 6.33 s a bf16 step, which the trial then ran in 0.99 s (Intel Xeon, 2026-12-06)."""


FIT_DRIFT = 1.2
"""The same, for timings that read slow where `budget.fit_minutes` lowered the steps from them: the steps, and with
them the answer, rest on those timings. A cached calibration taken while the load was about 3 on 2 cores (below the
busy mark) read a bf16 LoRA step at 2.02 s; the demo then ran its steps at 1.4-1.7 s, within DRIFT, so the cache
stayed, and fit gave 150 of 250 steps: NOT SHOWN, +1.2 points, where 250 steps gave YES, +21.9 (AMD EPYC,
2026-12-07)."""


@dataclass(frozen=True)
class Drift:
    trial: str
    method: str
    steps: int
    measured: float
    """The trial's mean seconds per optimizer step, without dev probes."""
    calibrated: float
    """What the calibration timed for the same method and precision."""

    @property
    def factor(self) -> float:
        """How many times slower or faster than calibrated the trial ran (at least 1)."""
        return max(self.measured / self.calibrated, self.calibrated / self.measured)

    @property
    def calibrated_slow(self) -> bool:
        """The machine was busier when it was calibrated than when the trial ran: the cached timings mislead."""
        return self.measured < self.calibrated


def drift(calibration: Calibration, trials: Sequence[TrialView], threshold: float = DRIFT) -> Drift | None:
    """The trained trial whose mean step strays furthest from the calibration's, when one strays more than
    `threshold` times either way; None when they agree. Trials too short to compare with the calibration's few steps,
    and trials recorded before step times were kept, are left out."""
    found = []
    for trial in trials:
        timing = calibration.timing(trial.method)
        summary = trial.training
        if summary is None or summary.step_seconds is None or summary.steps <= TIMED_STEPS:
            continue
        if timing is None or not timing.step_seconds:
            continue
        found.append(Drift(trial.id, trial.method, summary.steps, summary.step_seconds, timing.step_seconds))
    worst = max(found, key=lambda d: d.factor, default=None)
    return worst if worst is not None and worst.factor > threshold else None


def check_calibration(calibration: Calibration | None, trials: Sequence[TrialView],
                      lowered: tuple[int, int] | None = None) -> str | None:
    """What the user must know when this run's trials did not run at the calibrated speed, having dropped cached
    timings that read slow; None when they agree. `lowered`: (steps, written) when `budget.fit_minutes` lowered the
    step budget from these timings."""
    if calibration is None:
        return None
    found = drift(calibration, trials, FIT_DRIFT if lowered else DRIFT)
    if found is None or (not found.calibrated_slow and found.factor <= DRIFT):  # slower by little: nothing to say
        return None
    ran = (f"{found.method}'s optimizer steps ran at {found.measured:.2f} s in trial {found.trial} ({found.steps} "
           f"steps), against {found.calibrated:.2f} s calibrated ({calibration.measured_at or 'at an unknown time'})")
    if not found.calibrated_slow:
        return (f"note: {ran}: {found.factor:.1f}x slower. Other work shared this machine's cores "
                "during the sweep, so trials ran longer than estimated; the cached timings are kept. If this machine "
                "itself changed, measure it again with --recalibrate.")
    if calibration.path:
        Path(calibration.path).unlink(missing_ok=True)
    fitted = (f" budget.fit_minutes gave trained trials {lowered[0]} of {lowered[1]} steps from them: more fit here."
              if lowered else "")
    return (f"note: {ran}: the calibration read {found.factor:.1f}x slow, as if other work had "
            f"shared the cores while it was measured, so the estimate did too.{fitted} Its cached timings are "
            "dropped: the next run on this machine measures it again.")
