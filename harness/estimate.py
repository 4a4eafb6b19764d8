"""How long a planned sweep will take, for `harness sweep --dry-run`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.methods import get_method
from harness.store import Store

if TYPE_CHECKING:
    from harness.sweep import SweepPlan

# Rough rates for SmolLM2-135M when this database holds no trial to learn from: generation with the label list
# in the prompt, and one optimizer step at batch 8 (CPU: 2 cores, fp32; CUDA: one H100, bf16). Seconds.
FALLBACK_RATES = {"cpu": {"example": 0.35, "step": 2.3}, "cuda": {"example": 0.03, "step": 0.25}}


def estimate_seconds(plan: SweepPlan, store: Store) -> tuple[float, str]:
    """Expected wall time of the planned trials, from this database's past trials on this device if any."""
    rates, basis = dict(FALLBACK_RATES[plan.device]), "rough rates for SmolLM2-135M; no past trials to learn from"
    past = [t for t in store.list_trials() if t["status"] == "complete" and t["device"] == plan.device]
    evaluated = [(t["eval_seconds"], sum(t["details"]["data"]["sizes"][s] for s in ("dev", "test"))) for t in past]
    trained = [(t["train_seconds"], t["details"]["training"]["steps"]) for t in past if t["details"].get("training")]
    if evaluated:
        rates["example"] = sum(s for s, _ in evaluated) / max(1, sum(n for _, n in evaluated))
        basis = f"rates measured in {len(past)} past trials on {plan.device}"
    if trained:
        rates["step"] = sum(s for s, _ in trained) / max(1, sum(n for _, n in trained))
    config, sizes = plan.config, {k: len(v) for k, v in plan.subsets.items()}
    per_step = config.training.batch_size * config.training.gradient_accumulation
    steps = int(sizes["train"] * config.budget.epochs / per_step)
    steps = min(steps, config.budget.max_steps or steps)
    train_s = min(steps * rates["step"], config.budget.trial_train_seconds or float("inf"))
    probes = steps // config.training.eval_every_steps if config.training.eval_every_steps else 0
    train_s += probes * config.training.eval_examples * rates["example"]
    eval_s = (sizes["dev"] + sizes["test"]) * rates["example"]
    trains = [get_method(m).trains for m in plan.space.methods]
    share_trained = sum(trains) / len(trains)
    enqueued = [get_method(e["method"]).trains for e in config.enqueue][: plan.trials]
    expected_trained = sum(enqueued) + share_trained * (plan.trials - len(enqueued))
    total = plan.trials * eval_s + expected_trained * train_s
    if config.budget.sweep_minutes:
        total = min(total, config.budget.sweep_minutes * 60 + train_s + eval_s)
    return total, basis
