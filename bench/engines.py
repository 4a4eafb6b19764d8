"""The two engines on one adapter: transformers' generate in the harness's process against a vLLM server, on the
same test examples of a finished trial, in the same run on the same machine.

    python bench/engines.py --db results/harness.duckdb --trial demo/1 --vllm-python PATH [--out FILE]

For each engine: test accuracy (with its interval), completion tokens per second, and latency p50/p95 (per request
for vLLM at each concurrency; per batch for generate at the sweep's batch size, the time each of its examples
waited); then how often the two engines' answers agree (identical text, identical parsed answer) and the paired
difference of accuracy by the decision rule. Writes JSON with the machine, the library versions and every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from importlib import metadata
from pathlib import Path

from harness.analysis.decision import compare_paired
from harness.core.config import ExperimentConfig
from harness.core.typed import build
from harness.data.contract import parse_output
from harness.data.suites import seeded_subset
from harness.evaluation.scoring import score_split
from harness.models import sources
from harness.models.device import machine_name
from harness.serving.vllm import VllmServer, VllmSettings
from harness.store.database import Store
from harness.sweep.predict import load_candidate
from harness.training.engines import VllmEngine


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=Path("results/harness.duckdb"))
    parser.add_argument("--trial", required=True, help="a finished LoRA trial, STUDY/N")
    parser.add_argument("--vllm-python", required=True, help="the python `bash scripts/vllm_env.sh` prints")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--out", type=Path, default=Path(f"bench/results/engines_cpu_{date.today()}.json"))
    args = parser.parse_args()

    store = Store(args.db)
    trial = store.require_trial(args.trial, complete=True)
    study = store.study(trial.study)
    config = build(ExperimentConfig, dict(study.experiment), f"study {study.name}")
    candidate, suite, cap = load_candidate(store, trial.id, device="cpu")
    examples = seeded_subset(suite.splits["test"], config.data.test_limit, config.seed)
    batch = config.generation.batch_size
    metric = study.objective_metric

    began = time.perf_counter()
    local = candidate.answer(examples, cap, batch)
    hf_wall = time.perf_counter() - began
    hf_scores = score_split(examples, [g.output for g in local], suite, config.seed)
    hf_latency = [g.latency_s for g in local]
    result = {
        "machine": machine_name("cpu"), "trial": trial.id, "suite": f"{suite.name} {suite.version}",
        "examples": len(examples), "answer_cap_tokens": cap,
        "versions": {p: metadata.version(p) for p in ("torch", "transformers", "peft")},
        "hf": {"engine": "transformers generate, in process", "batch_size": batch,
               "constrained": candidate.grammar is not None,
               "completion_tokens_per_s": sum(g.completion_tokens for g in local) / hf_wall, "wall_s": hf_wall,
               "p50_latency_s": percentile(hf_latency, 0.5), "p95_latency_s": percentile(hf_latency, 0.95),
               metric: hf_scores.metrics[metric].to_dict()},
    }
    print(json.dumps({"hf": result["hf"]}), flush=True)

    source = sources.resolve(study.model_name)
    settings = VllmSettings(python=args.vllm_python, dtype=config.serving.dtype, max_model_len=config.serving
                            .max_model_len)
    log = args.out.with_suffix(".vllm.log")
    began = time.perf_counter()
    with VllmServer.start(source.path, settings, "base", log) as server:
        result["vllm_start_s"] = time.perf_counter() - began
        engine = VllmEngine(lambda: server, max(args.concurrency), 0, 1)
        served = engine.serve(candidate, trial.artifact_path, trial.id)
        began = time.perf_counter()
        answers = served.answer(examples, cap, batch)
        wall = time.perf_counter() - began
        prompts = [served.prompter.prompt(ex) for ex in examples]
        loads = {c: server.load_test(served.model, prompts, cap, c).to_dict() for c in args.concurrency}
        engine.release(served)
        result["vllm_version"], result["vllm_dtype"] = server.version, server.dtype
    vllm_scores = score_split(examples, [a.output for a in answers], suite, config.seed)
    result["vllm"] = {"engine": f"vLLM {result['vllm_version']} ({result['vllm_dtype']})",
                      "concurrency": max(args.concurrency), "constrained": served.constrained,
                      "completion_tokens_per_s": sum(a.completion_tokens for a in answers) / wall, "wall_s": wall,
                      "p50_latency_s": statistics.median(a.latency_s for a in answers),
                      "p95_latency_s": percentile([a.latency_s for a in answers], 0.95),
                      metric: vllm_scores.metrics[metric].to_dict(), "load_tests": loads}

    def parsed(text: str):
        return parse_output(text, suite.contract).value

    decision = compare_paired({ex.id: v.get(metric) for ex, v in zip(examples, vllm_scores.per_example)},
                              {ex.id: v.get(metric) for ex, v in zip(examples, hf_scores.per_example)}, metric,
                              higher_is_better=study.maximize)
    result["agreement"] = {
        "identical_text": sum(a.output == g.output for a, g in zip(answers, local)),
        "identical_answer": sum(parsed(a.output) == parsed(g.output) for a, g in zip(answers, local)),
        "of": len(examples), "vllm_minus_hf": decision.evidence(), "outcome": decision.outcome.value,
    }
    result["speedup_tokens_per_s"] = result["vllm"]["completion_tokens_per_s"] / result["hf"]["completion_tokens_per_s"]
    print(json.dumps({k: result[k] for k in ("vllm", "agreement", "speedup_tokens_per_s")}, indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
