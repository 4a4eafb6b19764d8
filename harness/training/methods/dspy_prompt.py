"""Prompting with searched shots: a prompt whose few-shot examples DSPy's optimizer chose.

Where `prompt` and `api` show shots a team would pick by hand (a random draw, or the train messages most like the
input), these arms let DSPy's `BootstrapFewShotWithRandomSearch` choose them: it builds candidate sets of shots from
a pool of train examples (some bootstrapped: examples the model itself answered fully right), scores every candidate
on a validation slice held out of train, and keeps the best. Dev and test are asked with that prompt, laid out
exactly as every other prompting arm's, so the search is one more way to prompt, scored like the others
(`harness.training.prompt_search`).

- `dspy`: the local model, its search answered by its own generation;
- `api_dspy`: a hosted model behind an `endpoints:` entry, its search asked of the endpoint (the study's budget for
  it counts every request, and the trial records what the search spent apart from what dev and test cost).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.typed import at_least
from harness.data.contract import parse_output, parse_target, settled
from harness.data.prompting import Prompter
from harness.data.suites import Example
from harness.evaluation.scorers import SCORERS, ScoredCase, higher_is_better, score_cases
from harness.hosted.client import HostedClient
from harness.models import loading
from harness.training.generate import generate
from harness.training.methods.api import ApiCandidate, hosted_candidate
from harness.training.methods.base import LocalCandidate, TrialContext, contract_grammar, prompting_prompter
from harness.training.prompt_search import Complete, SearchResult, SearchSettings, search_shots, searched_prompter

FALLBACK_METRIC = "task_accuracy"
"""What the search scores each example by when the study's objective is a split-level metric (macro F1)."""


@dataclass(frozen=True)
class SearchParams:
    max_demos: int = field(default=8, metadata=at_least(1))
    """Most shots a candidate prompt shows."""
    max_bootstrapped: int = field(default=4, metadata=at_least(1))
    """Most of those that are bootstrapped (train examples the model answered fully right with labelled shots);
    each random candidate takes between 1 and this many and fills up to `max_demos` with labelled ones. At most
    `max_demos`."""
    candidates: int = field(default=6, metadata=at_least(1))
    """Random candidate sets scored, besides three fixed ones (no shots, labelled shots only, the first
    bootstrap)."""
    val_size: int = field(default=50, metadata=at_least(1))
    """Train examples held out to score every candidate on (never dev or test)."""
    pool_size: int = field(default=100, metadata=at_least(1))
    """Train examples the shots are drawn from and bootstrapped on (after the validation slice)."""

    def settings(self, seed: int) -> SearchSettings:
        return SearchSettings(self.max_demos, self.max_bootstrapped, self.candidates, self.val_size, self.pool_size,
                              seed)


@dataclass(frozen=True)
class DspyParams(SearchParams):
    constrained: bool = False
    """Limit generation to the output contract, in the search and in dev and test alike. Not for free text."""


@dataclass(frozen=True)
class ApiDspyParams(SearchParams):
    endpoint: str = ""
    """The name of an entry under the experiment's `endpoints:`."""
    structured: bool = False
    """Request structured output (`response_format` with the suite's JSON Schema), in the search and in dev and
    test alike."""


class _Searching:
    trains = False
    searches = True

    def unavailable_reason(self, device: str) -> str | None:
        if importlib.util.find_spec("dspy") is None:  # a dependency of the harness; only a partial install lacks it
            return "DSPy is not installed in this environment: pip install 'dspy>=3.4.1,<3.6'"
        return None

    def prepare(self, ctx: TrialContext, params):
        return self.load(ctx, params, None)

    def save(self, candidate, directory: Path) -> Path | None:
        return None  # the chosen shots are stored with the trial


class DspyPrompting(_Searching):
    name = "dspy"
    hosted = False
    Params = DspyParams

    def load(self, ctx: TrialContext, params: DspyParams, artifact: Path | None) -> LocalCandidate:
        """The searched prompt: rebuilt from the shots a finished trial recorded, else searched for now."""
        model, tokenizer = loading.load_model(ctx.source, ctx.device, ctx.dtype), loading.load_tokenizer(ctx.source)
        grammar = contract_grammar(ctx, tokenizer, params.constrained)
        base = prompting_prompter(ctx, tokenizer, 0, "random")  # the contract stated; the shots are searched for
        contract = ctx.suite.contract

        def complete(conversations: list[list[dict[str, str]]]) -> list[str]:
            prompts = [base.render(messages) for messages in conversations]
            answers = generate(model, tokenizer, prompts, ctx.config.generation.batch_size, ctx.max_new_tokens,
                               grammar=grammar, settled=lambda text: settled(text, contract), bar=False)
            return [answer.output for answer in answers]

        found = _shots(ctx, params, base, complete)
        return LocalCandidate(model, tokenizer, searched_prompter(base, found.shots), trained=False, grammar=grammar,
                              search=found.report)


class HostedDspyPrompting(_Searching):
    name = "api_dspy"
    hosted = True
    Params = ApiDspyParams

    def load(self, ctx: TrialContext, params: ApiDspyParams, artifact: Path | None) -> ApiCandidate:
        """The searched prompt on the endpoint. The search asks through a client of its own, so the arm's usage
        (what a query costs) is dev's and test's alone; both count against the study's budget for the endpoint."""
        arm = hosted_candidate(ctx, params.endpoint, params.structured, prompting_prompter(ctx, None, 0, "random"))
        if ctx.recorded_shots is not None:  # `harness predict`: the trial's prompt, rebuilt without a search client
            return dataclasses.replace(arm, prompter=searched_prompter(arm.prompter, _recorded(ctx)))
        searcher = hosted_candidate(ctx, params.endpoint, params.structured, arm.prompter)

        def complete(conversations: list[list[dict[str, str]]]) -> list[str]:
            answers = searcher.client.answer([searcher.ask(messages) for messages in conversations], desc="search")
            return [answer.output or "" for answer in answers]  # a refused request scores nothing

        found = _shots(ctx, params, arm.prompter, complete, searcher.client)
        return dataclasses.replace(arm, prompter=searched_prompter(arm.prompter, found.shots), search=found.report)


def _shots(ctx: TrialContext, params: SearchParams, prompter: Prompter, complete: Complete,
           client: HostedClient | None = None) -> SearchResult:
    """The recorded shots of a finished trial (`harness predict`), else the search's; `client`: a hosted search's,
    whose spend the report records."""
    if ctx.recorded_shots is not None:
        return SearchResult(_recorded(ctx), None)
    metric = search_metric(ctx.config.objective.metric)
    found = search_shots(prompter, complete, ctx.train_examples, params.settings(ctx.seed), _scorer(ctx, metric),
                         metric.replace("_", " "))
    if client is None:
        return found
    usage = client.usage
    spent = dataclasses.replace(found.report, prompt_tokens=usage.prompt_tokens,
                                completion_tokens=usage.completion_tokens, usd=usage.usd)
    return dataclasses.replace(found, report=spent)


def search_metric(objective: str) -> str:
    """The study's objective when each example has a value of it, else task accuracy."""
    return objective if objective in SCORERS else FALLBACK_METRIC


def _scorer(ctx: TrialContext, metric: str) -> Callable[[Example, str], float]:
    """One example's value of `metric` in [0, 1], higher better, as the suite's scorers give it."""
    contract, higher = ctx.suite.contract, higher_is_better(metric)

    def score(example: Example, output: str) -> float:
        case = ScoredCase(example, output, parse_output(output, contract), parse_target(example.target, contract))
        value = score_cases([case], contract, (metric,))[0][metric][0]
        value = 0.0 if value is None else float(value)
        return value if higher else 1.0 - value

    return score


def _recorded(ctx: TrialContext) -> tuple[Example, ...]:
    by_id = {ex.id: ex for ex in ctx.train_examples}
    missing = [i for i in ctx.recorded_shots or () if i not in by_id]
    if missing:
        raise HarnessError(f"the trial's searched shots {missing[:3]} are not in suite {ctx.suite.name}'s train subset "
                           "any more; its train split has changed, so the prompt cannot be rebuilt. Re-run the trial.")
    return tuple(by_id[i] for i in ctx.recorded_shots or ())
