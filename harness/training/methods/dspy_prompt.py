"""Prompting with a searched prompt: few-shot examples (and, with MIPROv2, the instruction) DSPy's optimizer chose.

Where `prompt` and `api` show shots a team would pick by hand (a random draw, or the train messages most like the
input), these arms let DSPy choose. `optimizer: random_search` (the default) runs `BootstrapFewShotWithRandomSearch`:
it builds candidate sets of shots from a pool of train examples (some bootstrapped: examples the model itself
answered fully right), scores every candidate on a validation slice held out of train, and keeps the best; the
instruction stays the suite's. `optimizer: mipro` runs MIPROv2, which also writes candidate instructions (proposed by
the arm's own model, from a summary of the pool, the bootstrapped shots and a random prompting tip; the suite's
instruction is one candidate) and searches instruction and shot set together with a Bayesian optimiser over
minibatches of the validation slice (`harness.training.prompt_search_mipro`). Dev and test are asked with the chosen
prompt, laid out exactly as every other prompting arm's (the chosen instruction in place of the suite's, the
contract stated after it as always), so the search is one more way to prompt, scored like the others
(`harness.training.prompt_search`). The trial records the shots and the instruction; `show` prints them, and
`predict` and `recheck` rebuild the prompt from them without searching again.

- `dspy`: the local model, its search answered by its own generation (the proposer's free text never constrained);
- `api_dspy`: a hosted model behind an `endpoints:` entry, its search asked of the endpoint (the proposer's requests
  without `response_format`; the study's budget for it counts every request, and the trial records what the search
  spent apart from what dev and test cost).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from harness.core.errors import HarnessError
from harness.core.typed import at_least, one_of
from harness.data.contract import parse_output, parse_target, settled
from harness.data.prompting import Prompter
from harness.data.suites import Example
from harness.evaluation.scorers import SCORERS, ScoredCase, higher_is_better, score_cases
from harness.hosted.client import ChatRequest, HostedClient
from harness.models import loading
from harness.training.generate import generate
from harness.training.methods.api import ApiCandidate, hosted_candidate
from harness.training.methods.base import LocalCandidate, TrialContext, contract_grammar, prompting_prompter
from harness.training.prompt_search import (
    OPTIMIZERS,
    Complete,
    SearchResult,
    SearchSettings,
    search_shots,
    searched_prompter,
)
from harness.training.prompt_search_mipro import (
    DEFAULT_MINIBATCH,
    HOSTED_PROPOSER_MAX_TOKENS,
    PROPOSER_MAX_TOKENS,
    default_trials,
    full_evaluations,
)

FALLBACK_METRIC = "task_accuracy"
"""What the search scores each example by when the study's objective is a split-level metric (macro F1)."""


MIPRO_ONLY = ("trials", "minibatch_size")
"""Parameters only `optimizer: mipro` reads: refused with `optimizer: random_search` alone; a space choosing between
both optimizers sets them for its mipro trials."""


@dataclass(frozen=True)
class SearchParams:
    SEARCH_ONLY: ClassVar[frozenset[str]] = frozenset({"optimizer", "max_bootstrapped", "candidates", "val_size",
                                                       "pool_size", "trials", "minibatch_size"})
    """The parameters that steer the search alone: how many answers it asks for, not what one answer costs. The
    calibration times an answer with `max_demos` shots whatever these are, and changing them re-times nothing."""

    optimizer: str = field(default="random_search", metadata=one_of(*OPTIMIZERS))
    """`random_search`: DSPy's BootstrapFewShotWithRandomSearch chooses the shots; the instruction stays the
    suite's. `mipro`: MIPROv2 searches the instruction too (candidates written by the arm's own model) with the shots,
    trial by trial on minibatches of the validation slice. It costs about what the random search does in answers,
    plus its proposer's calls (11 with the defaults, each writing up to 128 tokens)."""
    max_demos: int = field(default=8, metadata=at_least(1))
    """Most shots a candidate prompt shows."""
    max_bootstrapped: int = field(default=4, metadata=at_least(1))
    """Most of those that are bootstrapped (train examples the model answered fully right with labelled shots);
    each random candidate takes between 1 and this many and fills up to `max_demos` with labelled ones. At most
    `max_demos`."""
    candidates: int = field(default=6, metadata=at_least(1))
    """random_search: random candidate sets scored, besides three fixed ones (no shots, labelled shots only, the
    first bootstrap). mipro: MIPROv2's `num_candidates`, the instructions (the suite's and N-1 proposed) and the shot
    sets (the three fixed ones among them) it combines."""
    val_size: int = field(default=50, metadata=at_least(1))
    """Train examples held out to score every candidate on (never dev or test)."""
    pool_size: int = field(default=100, metadata=at_least(1))
    """Train examples the shots are drawn from and bootstrapped on (after the validation slice); MIPROv2's proposer
    summarises them too."""
    trials: int = field(default=0, metadata=at_least(0))
    """mipro only: the instruction and shot-set pairs MIPROv2 tries, each on a minibatch. 0 (the default): its own
    suggestion for `candidates`, max(4 log2 N, 1.5 N) (10 for 6)."""
    minibatch_size: int = field(default=0, metadata=at_least(0))
    """mipro only: validation examples each trial is scored on; every 5 trials (and at the end) the pair with the best
    minibatch mean is scored on the whole slice. At most `val_size`, which scores every trial on the whole slice.
    0 (the default): 25, or `val_size` when smaller."""

    def settings(self, seed: int, train_size: int) -> SearchSettings:
        """The search's settings on a train subset of `train_size`: the shot pool is what is left of it after the
        validation slice, at most (a `pool_size` of 500 on 100 train examples drew 90, and was estimated as 500)."""
        trials = self.trials or default_trials(self.candidates)
        minibatch = min(self.minibatch_size or DEFAULT_MINIBATCH, self.val_size)
        pool = max(0, min(self.pool_size, train_size - self.val_size))
        return SearchSettings(self.max_demos, self.max_bootstrapped, self.candidates, self.val_size, pool,
                              seed, self.optimizer, trials if self.optimizer == "mipro" else 0,
                              minibatch if self.optimizer == "mipro" else 0)


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


def optimizer_problem(method: str, values: Callable[[str], list], where: str) -> str | None:
    """Why `space.<method>`'s optimizer and its other parameters do not go together, if they do not (the plan asks
    before any model loads); `values(name)`: every value the space gives that parameter (a range's two ends)."""
    optimizers = values("optimizer")
    given = [name for name in MIPRO_ONLY if any(values(name))]  # 0: not given
    if "mipro" not in optimizers:  # a space choosing between both sets them for its mipro trials
        if given:
            return (f"{where}: `space.{method}.{given[0]}` applies to `optimizer: mipro` only, but "
                    f"`space.{method}.optimizer` is random_search; set `space.{method}.optimizer: "
                    f"mipro` (or a list with both, to compare them), or remove `{given[0]}`.")
        return None
    val, minibatch = min(values("val_size")), [v for v in values("minibatch_size") if v]
    if minibatch and max(minibatch) > val:
        return (f"{where}: `space.{method}.minibatch_size` reaches {max(minibatch)}, more than the {val} validation "
                f"examples of `val_size` it is drawn from; lower minibatch_size to at most val_size (equal to it "
                "scores every MIPROv2 trial on the whole slice), or raise val_size.")
    candidates = min(values("candidates"))
    trials = max((v for v in values("trials") if v), default=default_trials(candidates))
    full = full_evaluations(trials) if min(minibatch or [DEFAULT_MINIBATCH]) < max(values("val_size")) else 0
    if full > candidates ** 2:
        return (f"{where}: `space.{method}.trials` {trials} has MIPROv2 score {full} prompts on the whole validation "
                f"slice, each another instruction and shot set, but `candidates` {candidates} makes only "
                f"{candidates ** 2} of them; raise space.{method}.candidates or lower space.{method}.trials.")
    return None


class _Searching:
    trains = False
    searches = True

    def unavailable_reason(self, device: str) -> str | None:
        if importlib.util.find_spec("dspy") is None:  # a dependency of the harness; only a partial install lacks it
            return "DSPy is not installed in this environment: pip install 'dspy>=3.4.1,<3.6'"
        return None

    def framing(self, ctx: TrialContext, params, tokenizer) -> Prompter | None:
        """The recorded prompt's framing; None before the search has found one."""
        if ctx.recorded_shots is None:
            return None
        return searched_prompter(prompting_prompter(ctx, tokenizer, 0, "random", local=not self.hosted), _recorded(ctx),
                                 ctx.recorded_instruction)

    def prepare(self, ctx: TrialContext, params):
        return self.load(ctx, params, None)

    def save(self, candidate, directory: Path) -> Path | None:
        return None  # the chosen shots are stored with the trial


class DspyPrompting(_Searching):
    name = "dspy"
    hosted = False
    Params = DspyParams

    def load(self, ctx: TrialContext, params: DspyParams, artifact: Path | None) -> LocalCandidate:
        """The searched prompt: rebuilt from the shots (and instruction) a finished trial recorded, else searched for
        now."""
        model, tokenizer = loading.load_model(ctx.source, ctx.device, ctx.dtype), loading.load_tokenizer(ctx.source)
        grammar = contract_grammar(ctx, tokenizer, params.constrained)
        base = prompting_prompter(ctx, tokenizer, 0, "random")  # the contract stated; the shots are searched for
        contract = ctx.suite.contract
        batch_size = ctx.config.generation.batch_size

        def complete(conversations: list[list[dict[str, str]]]) -> list[str]:
            prompts = [base.render(messages) for messages in conversations]
            answers = generate(model, tokenizer, prompts, batch_size, ctx.max_new_tokens, grammar=grammar,
                               settled=lambda text: settled(text, contract), bar=False)
            return [answer.output for answer in answers]

        def propose(conversations: list[list[dict[str, str]]]) -> list[str]:
            """MIPROv2's proposer: free text, never constrained to the contract, greedy as every answer here."""
            prompts = [base.render(messages) for messages in conversations]
            answers = generate(model, tokenizer, prompts, batch_size, PROPOSER_MAX_TOKENS, bar=False)
            return [answer.output for answer in answers]

        found = _shots(ctx, params, base, complete, propose)
        return LocalCandidate(model, tokenizer, searched_prompter(base, found.shots, found.instruction),
                              trained=False, grammar=grammar, search=found.report)


class HostedDspyPrompting(_Searching):
    name = "api_dspy"
    hosted = True
    Params = ApiDspyParams

    def load(self, ctx: TrialContext, params: ApiDspyParams, artifact: Path | None) -> ApiCandidate:
        """The searched prompt on the endpoint. The search asks through a client of its own, so the arm's usage
        (what a query costs) is dev's and test's alone; both count against the study's budget for the endpoint."""
        arm = hosted_candidate(ctx, params.endpoint, params.structured, prompting_prompter(ctx, None, 0, "random"))
        if ctx.recorded_shots is not None:  # `harness predict`: the trial's prompt, rebuilt without a search client
            return dataclasses.replace(arm, prompter=self.framing(ctx, params, None))
        searcher = hosted_candidate(ctx, params.endpoint, params.structured, arm.prompter)

        def complete(conversations: list[list[dict[str, str]]]) -> list[str]:
            answers = searcher.client.answer([searcher.ask(messages) for messages in conversations], desc="search")
            return [answer.output or "" for answer in answers]  # a refused request scores nothing

        def propose(conversations: list[list[dict[str, str]]]) -> list[str]:
            """MIPROv2's proposer: free text, so no `response_format`; the same client counts its spend."""
            requests = [ChatRequest(messages, HOSTED_PROPOSER_MAX_TOKENS, None) for messages in conversations]
            return [answer.output or "" for answer in searcher.client.answer(requests, desc="propose")]

        found = _shots(ctx, params, arm.prompter, complete, propose, searcher.client)
        prompter = searched_prompter(arm.prompter, found.shots, found.instruction)
        return dataclasses.replace(arm, prompter=prompter, search=found.report)


def _shots(ctx: TrialContext, params: SearchParams, prompter: Prompter, complete: Complete, propose: Complete,
           client: HostedClient | None = None) -> SearchResult:
    """The recorded shots and instruction of a finished trial (`harness predict`), else the search's; `client`: a
    hosted search's, whose spend (the proposer's too) the report records."""
    if ctx.recorded_shots is not None:
        return SearchResult(_recorded(ctx), None, ctx.recorded_instruction)
    metric = search_metric(ctx.config.objective.metric)
    settings = params.settings(ctx.seed, len(ctx.shots_from))
    found = search_shots(prompter, complete, ctx.shots_from, settings, _scorer(ctx, metric),
                         metric.replace("_", " "), propose=propose)
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
    by_id = {ex.id: ex for ex in ctx.shots_from}
    missing = [i for i in ctx.recorded_shots or () if i not in by_id]
    if missing:
        raise HarnessError(f"the trial's searched shots {missing[:3]} are not in suite {ctx.suite.name}'s train subset "
                           "any more; its train split has changed, so the prompt cannot be rebuilt. Re-run the trial.")
    return tuple(by_id[i] for i in ctx.recorded_shots or ())
