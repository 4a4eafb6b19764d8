"""The study's generation engine for the length of a sweep: nothing to start for `hf`; for `vllm`, one server for
the study's base model, started from `serving.vllm_python` (or found at `serving.vllm_url`) before the first trial and
stopped after the last, its log under the results folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.models.sources import ModelSource, setup_sha256
from harness.serving.vllm import VllmError, VllmServer, VllmSettings
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
        if serving.vllm_url:  # a server started here serves the study's model; one found running may not
            check_served_model(server, SERVED_NAME, data.source, echo)
        echo(f"engine: vLLM {server.version} ({server.dtype or 'dtype not reported'}) at {server.base_url}")
        return server

    engine = VllmEngine(connect, serving.concurrency, serving.load_test_requests, serving.load_test_concurrency, echo)
    if serving.vllm_url:
        engine.server  # noqa: B018  attaching takes seconds: check the running server before any trial trains
    try:
        yield engine
    finally:
        engine.stop()


def check_served_model(server: VllmServer, name: str, source: ModelSource, echo: Callable[[str], None]) -> None:
    """Refuse a running server whose `name` is another base model than `source`: every score would be that model's,
    recorded as the study's (a server for gemma3 scored a SmolLM2 study, and loaded its adapters, without a word). The
    folder the server loaded is compared by its config and tokenizer (`sources.setup_sha256`); a folder not on this
    machine cannot be compared, and that is said."""
    root = server.served_root(name)
    if root is None or not Path(root).is_dir():
        echo(f"warning: the vLLM server at {server.base_url} serves {name!r} from {root or 'a folder it does not name'}"
             f", which is not on this machine, so it cannot be checked to be {source.name}; make sure it is, or every "
             "score is another model's.")
        return
    if Path(root).resolve() == Path(source.path).resolve() or setup_sha256(root) == setup_sha256(source.path):
        return
    raise VllmError(f"the vLLM server at {server.base_url} serves {name!r} from {root}, which is not {source.name} "
                    f"({source.path}): their config or tokenizer differ, so every score would be another model's. "
                    f"Start the server with `--model {source.path} --served-model-name {name}`, or point at one "
                    "that does.")
