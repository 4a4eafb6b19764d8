"""Several trials at once on one device (issue 10's concurrency target): aggregate trials per hour of
`harness sweep --workers K` against the same trials run one after another (`--workers 1`), measured in one run.

Small-model trials do not fill an H100, so K workers sharing one GPU should finish the same trials at least 2x
sooner. Both sweeps run the same enqueued LoRA configurations (so the work is identical), through the real command
line; the ratio is of whole-command wall times, start-up included. Each configuration's dev score is reported for
both runs, as a check that running concurrently changed the work done, not its results.

    python bench/concurrency.py [--workers 3] [--configs 6] [--steps 60] [--out concurrency.json]
    python bench/concurrency.py --model PATH --suite PATH --steps 5 --set data.dev_limit=8   (a dry run on a CPU)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from itertools import product
from pathlib import Path

from sweeps import device_name, sweep, versions, write_experiment

RANKS, RATES = (8, 16), (5.0e-4, 1.0e-3, 2.0e-3, 3.0e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--suite", default="ticket-triage")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--configs", type=int, default=6, help="LoRA configurations, each one trial (at most 8)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per trial")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=Path("concurrency.json"))
    args = parser.parse_args()
    configs = [{"method": "lora", "r": r, "lora_alpha": 2 * r, "learning_rate": lr}
               for r, lr in product(RANKS, RATES)][: args.configs]
    folder = Path(tempfile.mkdtemp(prefix="harness-concurrency-"))
    experiment = write_experiment(
        folder, "concurrency", args.model, args.suite,
        space={"lora": {"r": list(RANKS), "lora_alpha": [2 * r for r in RANKS], "learning_rate": list(RATES)}},
        enqueue=configs, pruning={"enabled": False},
        budget={"max_steps": args.steps, "trial_train_seconds": 1200},
        data={"train_limit": 2000, "dev_limit": 200, "test_limit": 200},
        training={"batch_size": 32, "eval_every_steps": 0, "include_instruction": False})
    overrides = [a for o in args.overrides for a in ("--set", o)]
    alone = sweep(experiment, "one-at-a-time", len(configs), *overrides)
    together = sweep(experiment, "concurrent", len(configs), "--workers", str(args.workers), *overrides)
    per_hour = {run.study: len(run.complete) / run.wall_seconds * 3600 for run in (alone, together)}
    ratio = per_hour["concurrent"] / per_hour["one-at-a-time"]
    scores = {run.study: {json.dumps({k: v for k, v in t.params.items() if k != "method"}): t.objective
                          for t in run.complete} for run in (alone, together)}
    result = {
        "what": f"{len(configs)} LoRA trials of {args.steps} steps on {args.suite}: --workers 1 against "
                f"--workers {args.workers}, one device",
        "device": device_name(), "versions": versions(), "model": args.model,
        "one_at_a_time": alone.summary(), "concurrent": together.summary(),
        "trials_per_hour": {k: round(v, 1) for k, v in per_hour.items()},
        "ratio": round(ratio, 2), "target": ">= 2x", "met": ratio >= 2,
        "dev_scores_by_config": scores,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
