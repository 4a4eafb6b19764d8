"""The real opponent: a large hosted model behind an OpenAI-compatible endpoint, prompted as a team would prompt it
(the contract stated, few-shot examples from train, structured output when asked), and scored by the same scorers
as every other arm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.config import EndpointConfig
from harness.core.errors import ConfigError
from harness.core.records import HostedUsage, PromptSearch
from harness.core.typed import at_least, one_of
from harness.data.contract import OutputContract
from harness.data.prompting import Prompter
from harness.data.shots import SELECTIONS
from harness.data.suites import Example
from harness.hosted.client import ChatRequest, HostedClient
from harness.training.constrained import contract_schema
from harness.training.generate import Generation
from harness.training.methods.base import TrialContext, prompting_prompter


@dataclass(frozen=True)
class ApiParams:
    endpoint: str = ""
    """The name of an entry under the experiment's `endpoints:`."""
    shots: int = field(default=0, metadata=at_least(0))
    """Few-shot examples from train before each input; 0 is zero-shot."""
    shot_selection: str = field(default="random", metadata=one_of(*SELECTIONS))
    """`random`: one seeded draw for every input; `similar`: the k train examples most similar to each input."""
    structured: bool = False
    """Request structured output (`response_format` with the suite's JSON Schema). Endpoints that ignore it are
    scored the same way; the trial records that it was requested."""


@dataclass
class ApiCandidate:
    client: HostedClient
    prompter: Prompter
    max_tokens: int
    response_format: dict | None
    trained: bool = False
    train_report: None = None
    search: PromptSearch | None = None
    """How its shots were searched for (`api_dspy`)."""

    @property
    def hosted(self) -> HostedUsage:
        return self.client.usage

    def request(self, example: Example) -> ChatRequest:
        """Exactly what the arm sends for this example."""
        return self.ask(self.prompter.messages(example))

    def ask(self, messages: list[dict[str, str]]) -> ChatRequest:
        """The arm's request for a conversation."""
        return ChatRequest(messages, self.max_tokens, self.response_format)

    def answer(self, examples: Sequence[Example], max_new_tokens: int, batch_size: int,
               desc: str = "ask") -> list[Generation]:
        return [Generation(a.output, a.prompt_tokens, a.completion_tokens, a.latency_s, a.error, a.excluded)
                for a in self.client.answer([self.request(ex) for ex in examples], desc=desc)]


class HostedPrompting:
    name = "api"
    trains = False
    hosted = True
    searches = False
    Params = ApiParams

    def unavailable_reason(self, device: str) -> str | None:
        return None  # it needs an endpoint, not hardware; the plan checks that each one answers

    def framing(self, ctx: TrialContext, params: ApiParams, tokenizer) -> Prompter:
        return prompting_prompter(ctx, tokenizer, params.shots, params.shot_selection, local=False)

    def prepare(self, ctx: TrialContext, params: ApiParams) -> ApiCandidate:
        return self.load(ctx, params, None)

    def save(self, candidate: ApiCandidate, directory: Path) -> Path | None:
        return None  # the answers are in the results store and the response cache

    def load(self, ctx: TrialContext, params: ApiParams, artifact: Path | None) -> ApiCandidate:
        return hosted_candidate(ctx, params.endpoint, params.structured, self.framing(ctx, params, None))


def hosted_candidate(ctx: TrialContext, name: str, structured: bool, prompter: Prompter) -> ApiCandidate:
    """The endpoint `name` asked with `prompter`'s messages, its spend counted against the study's budget for it."""
    if name not in ctx.endpoints:
        raise ConfigError(f"endpoint {name!r} is not among the experiment's `endpoints` "
                          f"({', '.join(ctx.endpoints) or 'none'}).")
    endpoint = ctx.endpoints[name]
    response_format = structured_format(ctx.suite.contract) if structured else None
    client = HostedClient(endpoint, structured=structured, ledger=ctx.hosted_ledger(name))
    return ApiCandidate(client, prompter, hosted_max_tokens(endpoint.config, ctx.max_new_tokens), response_format)


def structured_format(contract: OutputContract) -> dict:
    """The `response_format` a structured request sends: the contract's JSON Schema."""
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": contract_schema(contract)}}


def hosted_max_tokens(endpoint: EndpointConfig, cap: int) -> int:
    """Completion tokens a hosted answer may take: the endpoint's `max_tokens`, else twice the local cap `cap`, since
    hosted tokenizers differ from the local one; twice leaves room without running on."""
    return endpoint.max_tokens or max(32, 2 * cap)
