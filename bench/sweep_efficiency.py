"""Sweep efficiency (issue 10): does the default sampler and pruner find, in at most 35% of a full grid's device
time, a configuration within 1 point of the grid's best dev accuracy? Both measured in one run, on one device.

1. The grid: every configuration of a LoRA space (rank x alpha x learning rate) enqueued, pruning off.
2. The default: the same space, the harness's default sampler (TPE) and pruner (median, on intermediate dev scores),
   with its sweep budget (`budget.sweep_minutes`) set to 35% of the grid's summed trial time.
It reports each one's best dev accuracy (the harness chooses on dev), trials, and summed trial time.

    python bench/sweep_efficiency.py [--steps 120] [--out sweep_efficiency.json]
    python bench/sweep_efficiency.py --model PATH --suite PATH --steps 5 --set data.dev_limit=8   (a CPU dry run)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from itertools import product
from pathlib import Path

from sweeps import device_name, sweep, versions, write_experiment

SPACE = {"r": [8, 16, 32], "lora_alpha": [16, 32], "learning_rate": [3.0e-4, 1.0e-3, 3.0e-3]}
SHARE = 0.35


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--suite", default="ticket-triage")
    parser.add_argument("--steps", type=int, default=120, help="training steps per trial")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=Path("sweep_efficiency.json"))
    args = parser.parse_args()
    grid = [{"method": "lora", **dict(zip(SPACE, values))} for values in product(*SPACE.values())]
    common = dict(budget={"max_steps": args.steps, "trial_train_seconds": 1200},
                  data={"train_limit": 4000, "dev_limit": 300, "test_limit": 300},
                  training={"batch_size": 32, "include_instruction": False, "eval_every_steps": max(1, args.steps // 4),
                            "eval_examples": 100})
    overrides = [a for o in args.overrides for a in ("--set", o)]
    folder = Path(tempfile.mkdtemp(prefix="harness-efficiency-"))
    grid_exp = write_experiment(folder, "grid", args.model, args.suite, {"lora": SPACE}, enqueue=grid,
                                pruning={"enabled": False}, **common)
    full = sweep(grid_exp, "grid", len(grid), *overrides)
    minutes = SHARE * full.trial_seconds() / 60
    default_exp = write_experiment(folder, "default", args.model, args.suite, {"lora": SPACE}, **common)
    # As many trials as fit in the budget: the sweep stops on `sweep_minutes`, the trial count is only a ceiling.
    default = sweep(default_exp, "default", len(grid), "--set", f"budget.sweep_minutes={minutes:.4f}", *overrides)
    best_grid, best_default = full.best_dev(), default.best_dev()
    gap = None if best_grid is None or best_default is None else round(100 * (best_grid - best_default), 2)
    share = default.trial_seconds() / full.trial_seconds() if full.trial_seconds() else None
    result = {
        "what": f"LoRA on {args.suite}, {len(grid)}-point grid against the default sampler and pruner given "
                f"{SHARE:.0%} of the grid's trial time; {args.steps} steps per trial",
        "device": device_name(), "versions": versions(), "model": args.model, "space": SPACE,
        "grid": full.summary(), "default": default.summary(),
        "gap_points": gap, "time_share": None if share is None else round(share, 3),
        "target": f"gap <= 1 point in <= {SHARE:.0%} of the grid's time",
        "met": gap is not None and share is not None and gap <= 1.0 and share <= SHARE + 0.02,
        "note": "The sweep budget is checked between trials, so the last trial may run past it; time_share says "
                "what was used.",
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
