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
        "example": Rate(0.262, "bench/RESULTS.md, CPU demo of 2026-11-27, first run: 720 examples in 189 s"),
        "train_example": Rate(0.613, "bench/RESULTS.md, CPU demo of 2026-11-27, first run: 86 steps of 8 in 422 s"),
    },
    "cuda": {
        "train_example": Rate(0.011, "bench/RESULTS.md, H100 sweep: gpu-ticket-triage/2, 282 steps of 32 in 98 s"),
    },
}


def estimate_seconds(plan: SweepPlan, store: Store) -> tuple[float, str]:
    """Expected wall time of the planned trials, and what the rates behind it are."""
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
    config, sizes = plan.config, {k: len(v) for k, v in plan.subsets.items()}
    per_step = config.training.batch_size * config.training.gradient_accumulation
    steps = int(sizes["train"] * config.budget.epochs / per_step)
    steps = min(steps, config.budget.max_steps or steps)
    per_example, per_train_example = rates.get("example", 0.0), rates.get("train_example", 0.0)
    train_s = min(steps * per_step * per_train_example, config.budget.trial_train_seconds or float("inf"))
    probes = steps // config.training.eval_every_steps if config.training.eval_every_steps else 0
    train_s += probes * config.training.eval_examples * per_example
    eval_s = (sizes["dev"] + sizes["test"]) * per_example
    trains = [METHODS.get(m).trains for m in plan.space.methods]
    share_trained = sum(trains) / len(trains)
    enqueued = [METHODS.get(e["method"]).trains for e in plan.enqueued][: plan.trials]
    expected_trained = sum(enqueued) + share_trained * (plan.trials - len(enqueued))
    total = plan.trials * eval_s + expected_trained * train_s
    if config.budget.sweep_minutes:
        total = min(total, config.budget.sweep_minutes * 60 + train_s + eval_s)
    if missing:
        basis.append(f"not covered: no measured {' or '.join(missing)} rate on {plan.device} yet (it is learned "
                     "from the first trial)")
    return total, "; ".join(basis)
