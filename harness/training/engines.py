"""One seam for every generator: what answers a trial's dev and test examples.

- `HfEngine`: the trial's own in-process model, through `generate` (the default).
- `VllmEngine`: one vLLM server for the study's base model (`harness.serving.vllm`). A prompting arm asks the base
  model; a LoRA arm's saved adapter is loaded into the server at run time, asked, and unloaded, so a sweep of many
  adapters never reloads the base model. Prompts are the exact text the HF path generates from (the same chat
  template), greedy; constrained arms get vLLM's structured outputs from the same llguidance grammar
  (`constrained.served_schema`), so the same scorers judge answers from either engine, blind to which answered.

Training, the dev probes that feed the pruner and the forgetting check always run in the harness's process.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

from harness.core.records import EngineInfo, ServingLoad
from harness.data.prompting import Prompter
from harness.data.suites import Example
from harness.serving.vllm import VllmLost, VllmServer
from harness.training.constrained import served_schema
from harness.training.generate import Generation
from harness.training.methods.base import LocalCandidate


class Engine(Protocol):
    """Contract: `ready` makes sure the engine can answer before a trial trains (or raises EngineLost);
    `serve` returns something that answers like the candidate (a Candidate), through this engine;
    `release` frees what `serve` took (an adapter slot); `load_test` measures what serving this candidate sustains, or
    returns None when the engine has no server to measure."""

    name: str
    needs_saved_weights: bool
    """A trained candidate must be saved (safetensors) before it can be served."""

    def ready(self) -> None: ...

    def serve(self, candidate: LocalCandidate, weights: Path | None, trial_id: str): ...

    def release(self, served) -> None: ...

    def info(self, candidate: LocalCandidate) -> EngineInfo: ...

    def load_test(self, served, examples: Sequence[Example], max_new_tokens: int) -> ServingLoad | None: ...


class HfEngine:
    name = "hf"
    needs_saved_weights = False

    def ready(self) -> None:
        return None  # the trial's own model, in this process

    def serve(self, candidate: LocalCandidate, weights: Path | None, trial_id: str) -> LocalCandidate:
        return candidate

    def release(self, served) -> None:
        return None

    def info(self, candidate: LocalCandidate) -> EngineInfo:
        dtype = str(next(candidate.model.parameters()).dtype).removeprefix("torch.")
        return EngineInfo("hf", metadata.version("transformers"), dtype, candidate.grammar is not None)

    def load_test(self, served, examples: Sequence[Example], max_new_tokens: int) -> ServingLoad | None:
        return None  # priced from its own generation of the test split, labelled as the fallback it is


@dataclass
class VllmCandidate:
    """A candidate answering through a vLLM server: the base model (prompting) or a loaded adapter."""

    server: VllmServer
    model: str
    """The served name asked for: the base model's, or the adapter's."""
    prompter: Prompter
    trained: bool
    constrained: bool
    schema: dict | None
    concurrency: int
    train_report: object = None
    hosted: None = None
    search: None = None
    adapter: str | None = None
    """The adapter loaded for this candidate, unloaded by `release`."""

    @property
    def structured(self) -> dict | None:
        """vLLM's `structured_outputs` for this candidate's answers: its contract's schema when it decodes
        constrained, else None."""
        return {"json": self.schema} if self.constrained and self.schema is not None else None

    def answer(self, examples: Sequence[Example], max_new_tokens: int, batch_size: int,
               desc: str = "vllm") -> list[Generation]:
        done = self.server.complete(self.model, [self.prompter.prompt(ex) for ex in examples], max_new_tokens,
                                    structured=self.structured, concurrency=self.concurrency)
        return [Generation(c.text, c.prompt_tokens, c.completion_tokens, c.latency_s) for c in done]


class VllmEngine:
    name = "vllm"
    needs_saved_weights = True

    def __init__(self, connect: Callable[[], VllmServer], concurrency: int, load_test_requests: int,
                 load_test_concurrency: int, echo: Callable[[str], None] = print) -> None:
        """`connect` starts (or attaches to) the server; it is called on first use, so a sweep with nothing left to
        run starts none."""
        self._connect, self._server, self._echo = connect, None, echo
        self.concurrency = concurrency
        self.load_test_requests = load_test_requests
        self.load_test_concurrency = load_test_concurrency

    @property
    def server(self) -> VllmServer:
        if self._server is None:
            self._server = self._connect()
        return self._server

    def ready(self) -> None:
        """Before a trial trains: a server this engine started that has died since (out of memory, killed) is started
        again; one found running that stopped answering raises EngineLost. Either way no trial trains for minutes only
        to find nothing to answer through."""
        lost = self._server
        if lost is None or lost.healthy():
            return
        if lost.process is None:
            raise VllmLost(lost.lost("stopped answering /health"))
        code = lost.process.poll()
        state = f"exited with code {code}" if code is not None else "stopped answering /health"
        self._echo(f"engine: the vLLM server {state} (its log: {lost.log_path}); starting a new one")
        lost.stop()
        self._server = None
        self._server = self._connect()

    def stop(self) -> None:
        """Stop the server if this engine started one (an attached server is left running)."""
        if self._server is not None:
            self._server.stop()

    def serve(self, candidate: LocalCandidate, weights: Path | None, trial_id: str) -> VllmCandidate:
        adapter = None
        if candidate.trained:
            if weights is None or not (Path(weights) / "adapter_config.json").is_file():
                raise ValueError(f"{trial_id}: vLLM serves a trained trial as a LoRA adapter, and this one saved "
                                 f"none ({weights}); evaluate it with generation.engine: hf")
            adapter = "trial-" + trial_id.replace("/", "-").replace("+", "-")
            self.server.load_adapter(adapter, weights)
        contract = candidate.prompter.contract
        return VllmCandidate(self.server, adapter or self.server.served_name, candidate.prompter, candidate.trained,
                             candidate.grammar is not None, served_schema(contract) if contract.kind != "text"
                             else None, self.concurrency, candidate.train_report, adapter=adapter)

    def release(self, served: VllmCandidate) -> None:
        if served.adapter is not None:
            self.server.unload_adapter(served.adapter)

    def info(self, candidate: LocalCandidate) -> EngineInfo:
        return EngineInfo("vllm", self.server.version, self.server.dtype, candidate.grammar is not None)

    def load_test(self, served: VllmCandidate, examples: Sequence[Example], max_new_tokens: int) -> ServingLoad | None:
        """`examples`: inputs the server has not answered (the train subset's), each asked as the trial asks,
        constrained where it decodes constrained. A prompt the server answered moments ago reads from its prefix
        cache, prefill and all, as no new query does: test prompts sent again read 2.3x faster than fresh ones."""
        if not self.load_test_requests or not examples:
            return None
        distinct = min(len(examples), self.load_test_requests)
        chosen = [examples[i] for i in sorted(random.Random(0).sample(range(len(examples)), distinct))]
        prompts = [served.prompter.prompt(chosen[i % distinct]) for i in range(self.load_test_requests)]
        test = self.server.load_test(served.model, prompts, max_new_tokens, self.load_test_concurrency,
                                     served.structured)
        repeated = ("" if distinct == test.requests else
                    f", only {distinct} distinct (a repeat reads from the prefix cache, so this reads fast)")
        constrained = ", constrained as the trial answers" if served.structured else ""
        return ServingLoad("vllm", test.concurrency, test.completion_tokens_per_s, test.requests,
                           test.p50_latency_s, test.p95_latency_s, test.requests_per_s,
                           f"load test of vLLM {self.server.version} ({self.server.dtype}) at {self.server.base_url}: "
                           f"{test.requests} prompts of train inputs it had not answered{repeated}{constrained}, "
                           f"{test.concurrency} in flight")
