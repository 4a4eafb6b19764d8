"""How long a planned sweep will take, for `harness sweep --dry-run`."""

from __future__ import annotations

from harness.store.database import Store
from harness.sweep.plan import SweepPlan
from harness.training.methods import METHODS

# Seconds per scored example and per training example for SmolLM2-135M, used when this database holds no trial
# to learn from. Measured on ticket-triage (bench/RESULTS.md): 2 CPU cores in fp32 (batches of 8); one H100 in
# bf16 (batches of 32). Prompting trials score slower than this (their prompts carry the label list).
FALLBACK_RATES = {"cpu": {"example": 0.35, "train_example": 0.42}, "cuda": {"example": 0.03, "train_example": 0.011}}


def estimate_seconds(plan: SweepPlan, store: Store) -> tuple[float, str]:
    """Expected wall time of the planned trials, from this database's past trials on this device if any."""
    rates, basis = dict(FALLBACK_RATES[plan.device]), "rough rates for SmolLM2-135M; no past trials to learn from"
    past = [t for t in store.trials() if t.complete and t.device == plan.device]
    evaluated = [(t.eval_seconds or 0.0, sum(p.examples for p in t.throughput.values())) for t in past]
    trained = [(t.train_seconds or 0.0, t.training.steps * t.training.examples_per_step)
               for t in past if t.training]
    if evaluated:
        rates["example"] = sum(s for s, _ in evaluated) / max(1, sum(n for _, n in evaluated))
        basis = f"rates measured in {len(past)} past trials on {plan.device}"
    if trained:
        rates["train_example"] = sum(s for s, _ in trained) / max(1, sum(n for _, n in trained))
    config, sizes = plan.config, {k: len(v) for k, v in plan.subsets.items()}
    per_step = config.training.batch_size * config.training.gradient_accumulation
    steps = int(sizes["train"] * config.budget.epochs / per_step)
    steps = min(steps, config.budget.max_steps or steps)
    train_s = min(steps * per_step * rates["train_example"], config.budget.trial_train_seconds or float("inf"))
    probes = steps // config.training.eval_every_steps if config.training.eval_every_steps else 0
    train_s += probes * config.training.eval_examples * rates["example"]
    eval_s = (sizes["dev"] + sizes["test"]) * rates["example"]
    trains = [METHODS.get(m).trains for m in plan.space.methods]
    share_trained = sum(trains) / len(trains)
    enqueued = [METHODS.get(e["method"]).trains for e in plan.enqueued][: plan.trials]
    expected_trained = sum(enqueued) + share_trained * (plan.trials - len(enqueued))
    total = plan.trials * eval_s + expected_trained * train_s
    if config.budget.sweep_minutes:
        total = min(total, config.budget.sweep_minutes * 60 + train_s + eval_s)
    return total, basis
