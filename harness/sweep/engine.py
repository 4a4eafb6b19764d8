"""The study's generation engine for the length of a sweep: nothing to start for `hf`; for `vllm`, one server for
the study's base model, started from `serving.vllm_python` (or found at `serving.vllm_url`) before the first trial and
stopped after the last, its log under the results folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from harness.serving.vllm import VllmServer, VllmSettings
from harness.sweep.plan import SweepPlan, serving_name
from harness.sweep.prepare import SweepData
from harness.training.engines import Engine, HfEngine, VllmEngine

SERVED_NAME = serving_name()
"""The base model's name on the study's vLLM server; adapters are served under `trial-<study>-<number>`."""


def vllm_settings(plan: SweepPlan) -> VllmSettings:
    serving = plan.config.serving
    return VllmSettings(python=serving.vllm_python, url=serving.vllm_url, dtype=serving.dtype,
                        max_model_len=serving.max_model_len, max_loras=serving.max_loras,
                        max_lora_rank=serving.max_lora_rank, startup_timeout_s=serving.startup_timeout_s)


@contextmanager
def engine_for(plan: SweepPlan, data: SweepData, echo: Callable[[str], None]) -> Iterator[Engine]:
    if plan.config.generation.engine != "vllm":
        yield HfEngine()
        return
    serving = plan.config.serving
    log = plan.results_dir / "logs" / f"{plan.study}-vllm.log"

    def connect() -> VllmServer:
        where = serving.vllm_url or f"{serving.vllm_python} (its log: {log})"
        echo(f"engine: starting vLLM for {data.source.name} from {where}" if not serving.vllm_url
             else f"engine: vLLM at {where}")
        server = VllmServer.connect(vllm_settings(plan), data.source.path, SERVED_NAME, log)
        echo(f"engine: vLLM {server.version} ({server.dtype or 'dtype not reported'}) at {server.base_url}")
        return server

    engine = VllmEngine(connect, serving.concurrency, serving.load_test_requests, serving.load_test_concurrency)
    try:
        yield engine
    finally:
        engine.stop()
