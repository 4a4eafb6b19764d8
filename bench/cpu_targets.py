"""Issue 10's CPU targets, each against a baseline measured in the same run on the same machine.

    python bench/cpu_targets.py [--steps 12] [--db results/harness.duckdb --study demo] [--out FILE]

1. Training: seconds per step of the plain PEFT loop (../shared/bench/cpu_peft_banking77.py: fp32, padded,
   the harness's full prompt) against the harness, lever by lever (instruction in the prompt, + the shorter
   training prompt, + padding-free batches), in fp32 and, where it is native, in bf16 autocast.
2. Generation: the harness's `generate` with and without stopping each row once its answer is settled, on a
   zero-shot JSON extraction prompt where the base model runs on; the parsed answers must be identical.
3. Model load: tokenizer and weights of the embedded model from its cache, harness against a plain
   `from_pretrained`, each in a fresh process.
4. With --db: per-trial overhead (time outside training, generation and the regression check) and whether the
   demo's fine-tuned trial meets the demo targets (test accuracy >= 55%, hallucination <= 10%, format >= 90%).

Prints a table and writes JSON (the CPU's model name and ISA flags as /proc/cpuinfo and torch see them, thread
count, library versions, every figure) to --out. To measure what an AVX2-only CPU would do on a CPU that has more,
hold torch, oneDNN and MKL to AVX2 (the JSON records that it was held, and the figures are not an AVX2 machine's):

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python bench/cpu_targets.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from importlib import metadata
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model

sys.path.insert(0, str(Path(__file__).parent))
from train_step import plain_loop  # noqa: E402

from harness.core.config import BudgetConfig, TrainingConfig  # noqa: E402
from harness.data.contract import parse_output, settled  # noqa: E402
from harness.data.prompting import Prompter, trained_prompter  # noqa: E402
from harness.data.suites import load_suite, seeded_subset  # noqa: E402
from harness.models import loading  # noqa: E402
from harness.models import sources as models  # noqa: E402
from harness.models.device import ISA_FLAGS, cpu_flags, cpu_model, machine_name, native_bf16  # noqa: E402
from harness.training.generate import generate  # noqa: E402
from harness.training.sft import train  # noqa: E402

ISA_HOLDS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
"""Environment variables that hold torch, oneDNN and MKL below what the CPU has (recorded when set)."""
DEMO_TARGETS = {"task_accuracy": (">=", 0.55), "hallucination_rate": ("<=", 0.10), "format_compliance": (">=", 0.90)}
OVERHEAD_TARGET = 0.05
LOAD_TARGET_S = 2.0

LEVERS = [  # (name, training options): each adds one lever to the one before, at each precision timed
    ("with instruction", {"include_instruction": True, "padding_free": False}),
    ("+ no instruction in the training prompt", {"include_instruction": False, "padding_free": False}),
    ("+ padding-free batches", {"include_instruction": False, "padding_free": True}),
]


def training_levers(source, steps: int, batch_size: int) -> dict:
    """Seconds per step of each lever, in fp32 and, where it is native, in bf16 autocast (elsewhere it runs many
    times slower, and the calibration never picks it). The examples are a seeded sample of the whole train split:
    its first ones are one label's, which are shorter than most and pad less (they read padding-free as slower)."""
    suite = load_suite("ticket-triage")
    examples = list(seeded_subset(suite.splits["train"], steps * batch_size, 0))
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    rows = []
    tokenizer = loading.load_tokenizer(source)
    full_prompt = Prompter(tokenizer, suite.instruction, suite.contract, include_contract=False)
    model = get_peft_model(loading.load_model(source, "cpu", torch.float32), lora)
    plain = plain_loop(model, tokenizer, full_prompt, examples, steps, batch_size, "cpu").seconds_per_step
    rows.append({"variant": "plain PEFT loop (baseline), fp32", "s_per_step": plain, "tokens_per_example":
                 _tokens_per_example(full_prompt, examples)})
    for precision in ("fp32", "bf16") if native_bf16("cpu") else ("fp32",):
        for name, options in LEVERS:
            training = TrainingConfig(precision=precision, batch_size=batch_size, eval_every_steps=0, **options)
            tokenizer = loading.load_tokenizer(source)
            prompter = trained_prompter(tokenizer, suite, training)
            model = get_peft_model(loading.load_model(source, "cpu", torch.float32), lora)
            report = train(model, tokenizer, prompter, examples, 1e-3,
                           BudgetConfig(max_steps=steps, trial_train_seconds=None), training, "cpu", 0)
            timed = report.step_seconds[1:] or report.step_seconds  # the first step warms kernels and the allocator
            rows.append({"variant": f"harness {precision}, {name}", "s_per_step": sum(timed) / len(timed),
                         "tokens_per_example": _tokens_per_example(prompter, examples),
                         "padding_free": report.padding_free})
    for row in rows:
        row["speedup_vs_plain"] = plain / row["s_per_step"]
    return {"steps": steps, "batch_size": batch_size, "examples": "seeded sample of the train split", "rows": rows}


def _tokens_per_example(prompter: Prompter, examples) -> float:
    sample = examples[:200]
    tok = prompter.tokenizer
    return sum(len(tok(prompter.prompt(e) + prompter.completion(e)).input_ids) + 1 for e in sample) / len(sample)


def early_stop(source, n: int) -> dict:
    suite = load_suite("slot-extraction")
    tokenizer = loading.load_tokenizer(source)
    model = loading.load_model(source, "cpu", torch.float32)
    prompter = Prompter(tokenizer, suite.instruction, suite.contract, include_contract=True)
    examples = list(suite.splits["dev"][:n])
    prompts = [prompter.prompt(e) for e in examples]
    cap = 96
    began = time.perf_counter()
    capped = generate(model, tokenizer, prompts, 16, cap, desc="to the cap")
    capped_s = time.perf_counter() - began
    began = time.perf_counter()
    stopped = generate(model, tokenizer, prompts, 16, cap, desc="settled",
                       settled=lambda text: settled(text, suite.contract))
    stopped_s = time.perf_counter() - began
    same = all(parse_output(a.output, suite.contract) == parse_output(b.output, suite.contract)
               for a, b in zip(capped, stopped))
    return {"suite": "slot-extraction", "prompt": "zero-shot, schema stated", "n": n, "max_new_tokens": cap,
            "to_the_cap_s": capped_s, "settled_s": stopped_s, "speedup": capped_s / stopped_s,
            "new_tokens_to_the_cap": sum(g.completion_tokens for g in capped),
            "new_tokens_settled": sum(g.completion_tokens for g in stopped), "parsed_answers_identical": same}


# Both snippets import the same libraries before the clock for the load starts: the import is the process's cost,
# paid once whatever loads next, and the harness imports transformers lazily, inside its load functions.
LOAD_HARNESS = """
import time, torch
t = time.perf_counter()
from transformers import AutoModelForCausalLM, AutoTokenizer
from harness.models import loading, sources
s = sources.resolve("smollm2-135m", pull_missing=False)
imported = time.perf_counter()
loading.load_tokenizer(s); loading.load_model(s, "cpu", torch.float32)
print(imported - t, time.perf_counter() - imported)
"""
LOAD_PLAIN = """
import sys, time, torch
t = time.perf_counter()
from transformers import AutoModelForCausalLM, AutoTokenizer
imported = time.perf_counter()
AutoTokenizer.from_pretrained(sys.argv[1]); AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
print(imported - t, time.perf_counter() - imported)
"""


def load_time(source, repeats: int = 3) -> dict:
    out = {}
    for name, code in (("plain from_pretrained", LOAD_PLAIN), ("harness", LOAD_HARNESS)):
        runs = [subprocess.run([sys.executable, "-c", code, source.path], capture_output=True, text=True,
                               check=True).stdout.split() for _ in range(repeats)]
        out[name] = {"import_s": min(float(r[0]) for r in runs), "load_s": min(float(r[1]) for r in runs)}
    out["target_s"] = LOAD_TARGET_S
    out["met"] = out["harness"]["load_s"] <= LOAD_TARGET_S
    return out


def from_database(db: Path, study: str) -> dict:
    from harness.store.database import Store

    trials = [t for t in Store(db).trials(study) if t.complete]
    overhead = []
    for t in trials:
        if t.overhead_seconds is not None and t.wall_seconds:
            overhead.append({"trial": t.id, "method": t.method, "wall_s": t.wall_seconds,
                             "phases": dict(t.phase_seconds), "overhead_s": t.overhead_seconds,
                             "overhead_share": t.overhead_seconds / t.wall_seconds})
    demo = []
    for t in trials:
        if not t.trained:
            continue
        checks = {}
        for name, (op, bound) in DEMO_TARGETS.items():
            m = t.metric("test", name)
            ok = m is not None and m.value is not None and (m.value >= bound if op == ">=" else m.value <= bound)
            checks[name] = {"value": m and m.value, "low": m and m.low, "high": m and m.high, "n": m and m.n,
                            "target": f"{op} {bound}", "met": ok}
        demo.append({"trial": t.id, "params": dict(t.params), "steps": t.training and t.training.steps,
                     "stopped_by": t.training and t.training.stopped_by, "train_s": t.train_seconds,
                     "checks": checks, "met": all(c["met"] for c in checks.values())})
    return {"db": str(db), "study": study, "overhead": overhead, "overhead_target": OVERHEAD_TARGET,
            "overhead_met": bool(overhead) and all(o["overhead_share"] <= OVERHEAD_TARGET for o in overhead),
            "demo_trained_trials": demo}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="training steps timed per variant")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--generate-n", type=int, default=32, help="prompts in the early-stop comparison")
    parser.add_argument("--db", type=Path, help="a results database with a demo study to read")
    parser.add_argument("--study", default="demo")
    parser.add_argument("--skip", nargs="*", default=[], choices=["train", "generate", "load"])
    parser.add_argument("--out", type=Path, default=Path(f"bench/results/cpu_targets_{date.today()}.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    # --skip re-measures part of a run: the sections not measured now keep their figures from --out.
    earlier = json.loads(args.out.read_text()) if args.skip and args.out.exists() else {}
    source = models.resolve("smollm2-135m")
    result = {
        **earlier,
        "device": "cpu", "machine": machine_name("cpu"), "cpu_model": cpu_model(),
        "isa_flags": sorted(f for f in cpu_flags() if f in ISA_FLAGS), "native_bf16": native_bf16("cpu"),
        "held_to": {k: os.environ[k] for k in ISA_HOLDS if k in os.environ},
        "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "versions": {p: metadata.version(p) for p in ("torch", "transformers", "peft", "trl")},
    }
    print(f"machine: {result['machine']}" + (f", held to {result['held_to']}" if result["held_to"] else ""))
    if "load" not in args.skip:
        result["load"] = load_time(source)
        print(json.dumps({"load": result["load"]}), flush=True)
    if "generate" not in args.skip:
        result["early_stop"] = early_stop(source, args.generate_n)
        print(json.dumps({"early_stop": result["early_stop"]}), flush=True)
    if "train" not in args.skip:
        result["training"] = training_levers(source, args.steps, args.batch_size)
        for row in result["training"]["rows"]:
            print(f"{row['variant']:<58} {row['s_per_step']:.3f} s/step  {row['tokens_per_example']:.0f} tok/ex  "
                  f"x{row['speedup_vs_plain']:.2f}", flush=True)
    if args.db:
        result["sweep"] = from_database(args.db, args.study)
        print(json.dumps({"sweep": result["sweep"]}, indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
