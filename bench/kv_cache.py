"""Generation with the reserved key/value cache against transformers' own growing cache, same prompts, same run.

    python bench/kv_cache.py [--examples 160] [--shots 3] [--batch-size 16] [--rounds 2]

The prompts are those of the demo's prompting arm on ticket-triage: the instruction with its 77 labels, the shots
most similar to each message among the first 2,000 train messages, decoding constrained to the label set; the
harness's `generate` answers them. The baseline is the same call with `batch_cache` replaced by `growing_cache`,
what it did before: the shared prefix's cache repeated for each batch by transformers, else no cache passed, so that
`generate` builds its own. Variants alternate, `--rounds` times each. Prints, as JSON: seconds per variant,
the peak resident set reached inside each variant's generation (after the heap is handed back before it), whether
every answer is identical, the machine and the versions.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from importlib import metadata

import psutil
import torch

from harness.data.prompting import Prompter
from harness.data.shots import picker
from harness.data.suites import load_suite
from harness.models import loading
from harness.models import sources as models
from harness.models.device import machine_name, return_freed_heap
from harness.training import generate as generate_module
from harness.training.constrained import Grammar
from harness.training.kv_cache import batch_cache, growing_cache


def peak_during(work) -> tuple[float, float, object]:
    """(seconds, peak resident MiB sampled every 20 ms, result) of `work()`."""
    process, peak, done = psutil.Process(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    began = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - began
    done.set()
    watcher.join()
    return seconds, peak[0] / 2**20, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=160, help="test messages to answer (default 160)")
    parser.add_argument("--shots", type=int, default=3, help="similar shots in each prompt (default 3)")
    parser.add_argument("--batch-size", type=int, default=16, help="generation batch (default 16, the demo's)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant, alternating (default 2)")
    args = parser.parse_args()
    torch.manual_seed(0)
    source = models.resolve("smollm2-135m")
    suite = load_suite("ticket-triage")
    tokenizer = loading.load_tokenizer(source)
    model = loading.load_model(source, "cpu", torch.float32)
    shots = picker("similar", suite.splits["train"][:2000], args.shots, seed=0)
    prompter = Prompter(tokenizer, suite.instruction, suite.contract, shots=shots)
    prompts = [prompter.prompt(ex) for ex in suite.splits["test"][:args.examples]]
    grammar = Grammar(suite.contract, tokenizer)

    def run():
        return [g.output for g in generate_module.generate(model, tokenizer, prompts, args.batch_size, 27,
                                                           desc="generate", grammar=grammar)]

    variants = {"transformers' cache (baseline)": growing_cache, "reserved cache": batch_cache}
    results: dict[str, list] = {name: [] for name in variants}
    run()  # warm-up: first calls pay for allocations and kernel choices
    for _ in range(args.rounds):
        for name, cache in variants.items():
            generate_module.batch_cache = cache
            return_freed_heap()
            results[name].append(peak_during(run))
    generate_module.batch_cache = batch_cache
    answers = [runs[0][2] for runs in results.values()]
    baseline, reserved = (min(s for s, _, _ in runs) for runs in results.values())
    print(json.dumps({
        "examples": len(prompts), "batch_size": args.batch_size, "shots": args.shots,
        "seconds": {name: [round(s, 2) for s, _, _ in runs] for name, runs in results.items()},
        "peak_rss_mib": {name: [round(m) for _, m, _ in runs] for name, runs in results.items()},
        "speedup_best_of_rounds": round(baseline / reserved, 3),
        "identical_answers": all(a == answers[0] for a in answers),
        "machine": machine_name("cpu"),
        "versions": {p: metadata.version(p) for p in ("torch", "transformers")},
    }, indent=2))


if __name__ == "__main__":
    main()
