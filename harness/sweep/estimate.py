"""How long a planned sweep will take, for `harness sweep --dry-run`.

Rates come from this database's own past trials on the same device when there are any. Before the first trial,
measured rates for SmolLM2-135M on ticket-triage stand in; each says where bench/RESULTS.md records it, and a rate
that was never measured is left out (and the estimate says what it does not cover).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.store.database import Store
from harness.sweep.plan import SweepPlan
from harness.training.methods import METHODS


@dataclass(frozen=True)
class Rate:
    seconds: float
    """Seconds per example: per scored (generated) example, or per training example seen."""
    source: str


FALLBACK_RATES: dict[str, dict[str, Rate]] = {
    "cpu": {
        "example": Rate(0.296, "bench/RESULTS.md, CPU demo of 2026-11-27, third run: 720 examples in 213 s"),
        "train_example": Rate(0.254, "bench/RESULTS.md, CPU demo of 2026-11-27, third run: 250 steps of 8 in 508 s"),
    },
    "cuda": {
        "train_example": Rate(0.011, "bench/RESULTS.md, H100 sweep: gpu-ticket-triage/2, 282 steps of 32 in 98 s"),
    },
}


@dataclass(frozen=True)
class Estimate:
    """What a planned sweep is expected to take, trial by trial, and on what rates."""

    total_seconds: float
    untrained_trial_seconds: float
    """A prompting trial: dev and test generation."""
    trained_trial_seconds: float
    """A fine-tuned trial: training (with its dev probes), then dev and test generation."""
    first_trained_start: float | None
    """Seconds into the sweep at which the first fine-tuned trial starts; None when none is planned."""
    budget_seconds: float | None
    basis: str

    def warning(self) -> str | None:
        """Why the sweep may end without the comparison it exists for, and the fix; None when it reaches it."""
        if self.first_trained_start is None or self.budget_seconds is None:
            return None
        if self.first_trained_start < self.budget_seconds:
            return None
        needed = (self.first_trained_start + 60) / 60
        return (f"the budget is unlikely to reach a fine-tuned trial: the first one would start after about "
                f"{self.first_trained_start / 60:.0f} min, but budget.sweep_minutes is "
                f"{self.budget_seconds / 60:.0f}. Raise it (--set budget.sweep_minutes={needed:.0f}), enqueue a "
                "fine-tuned trial earlier, or shrink data.dev_limit / data.test_limit.")


def estimate(plan: SweepPlan, store: Store) -> Estimate:
    """Expected wall time of the planned trials, in the order they will run, and what the rates behind it are."""
    rates, basis = _rates(plan, store)
    config, sizes = plan.config, {k: len(v) for k, v in plan.subsets.items()}
    per_step = config.training.batch_size * config.training.gradient_accumulation
    steps = int(sizes["train"] * config.budget.epochs / per_step)
    steps = min(steps, config.budget.max_steps or steps)
    per_example, per_train_example = rates.get("example", 0.0), rates.get("train_example", 0.0)
    train_s = min(steps * per_step * per_train_example, config.budget.trial_train_seconds or float("inf"))
    probes = steps // config.training.eval_every_steps if config.training.eval_every_steps else 0
    train_s += probes * config.training.eval_examples * per_example
    eval_s = (sizes["dev"] + sizes["test"]) * per_example
    enqueued = [METHODS.get(e["method"]).trains for e in plan.enqueued][: plan.trials]
    trains = [METHODS.get(m).trains for m in plan.space.methods]
    share_trained = sum(trains) / len(trains)
    expected_trained = sum(enqueued) + share_trained * (plan.trials - len(enqueued))
    total = plan.trials * eval_s + expected_trained * train_s
    budget = config.budget.sweep_minutes * 60 if config.budget.sweep_minutes else None
    if budget is not None:
        total = min(total, budget + train_s + eval_s)
    first_trained = None
    if any(enqueued):
        first_trained = enqueued.index(True) * eval_s
    elif share_trained:
        # The sampler picks methods at random among the space's: expect a trained one after 1/share trials.
        first_trained = (len(enqueued) + max(0.0, 1 / share_trained - 1)) * eval_s
    return Estimate(total, eval_s, train_s + eval_s, first_trained, budget, basis)


def _rates(plan: SweepPlan, store: Store) -> tuple[dict[str, float], str]:
    rates = {name: rate.seconds for name, rate in FALLBACK_RATES[plan.device].items()}
    basis = [f"{name} {rate.seconds:g} s ({rate.source})" for name, rate in FALLBACK_RATES[plan.device].items()]
    past = [t for t in store.trials() if t.complete and t.device == plan.device]
    evaluated = [(t.eval_seconds or 0.0, sum(p.examples for p in t.throughput.values())) for t in past]
    trained = [(t.train_seconds or 0.0, t.training.steps * t.training.examples_per_step)
               for t in past if t.training]
    if evaluated:
        rates["example"] = sum(s for s, _ in evaluated) / max(1, sum(n for _, n in evaluated))
        basis = [f"rates measured in {len(past)} past trial(s) on {plan.device} in this database"]
    if trained:
        rates["train_example"] = sum(s for s, _ in trained) / max(1, sum(n for _, n in trained))
    missing = [name for name in ("example", "train_example") if name not in rates]
    if missing:
        basis.append(f"not covered: no measured {' or '.join(missing)} rate on {plan.device} yet (it is learned "
                     "from the first trial)")
    return rates, "; ".join(basis)
