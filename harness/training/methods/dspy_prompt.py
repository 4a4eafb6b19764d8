"""Prompting with searched shots: the base model, its prompt's few-shot examples chosen by DSPy's optimizer.

Where `prompt` shows shots a team would pick by hand (a random draw, or the train messages most like the input), this
arm lets DSPy's `BootstrapFewShotWithRandomSearch` choose them: it builds candidate sets of shots from a pool of
train examples (some bootstrapped: examples the model itself answered fully right), scores every candidate on a
validation slice held out of train, and keeps the best. Dev and test are asked with that prompt, laid out exactly
as every other prompting arm's, so the search is one more way to prompt, scored like the others
(`harness.training.prompt_search`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.typed import at_least
from harness.data.contract import parse_output, parse_target, settled
from harness.data.suites import Example
from harness.evaluation.scorers import SCORERS, ScoredCase, higher_is_better, score_cases
from harness.models import loading
from harness.training.generate import generate
from harness.training.methods.base import LocalCandidate, TrialContext, contract_grammar, prompting_prompter
from harness.training.prompt_search import SearchSettings, search_shots, searched_prompter

FALLBACK_METRIC = "task_accuracy"
"""What the search scores each example by when the study's objective is a split-level metric (macro F1)."""


@dataclass(frozen=True)
class DspyParams:
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
    constrained: bool = False
    """Limit generation to the output contract, in the search and in dev and test alike. Not for free text."""

    def settings(self, seed: int) -> SearchSettings:
        return SearchSettings(self.max_demos, self.max_bootstrapped, self.candidates, self.val_size, self.pool_size,
                              seed)


class DspyPrompting:
    name = "dspy"
    trains = False
    hosted = False
    searches = True
    Params = DspyParams

    def unavailable_reason(self, device: str) -> str | None:
        if importlib.util.find_spec("dspy") is None:  # a dependency of the harness; only a partial install lacks it
            return "DSPy is not installed in this environment: pip install 'dspy>=3.4.1,<3.6'"
        return None

    def prepare(self, ctx: TrialContext, params: DspyParams) -> LocalCandidate:
        return self.load(ctx, params, None)

    def save(self, candidate: LocalCandidate, directory: Path) -> Path | None:
        return None  # the base model answers; the chosen shots are stored with the trial

    def load(self, ctx: TrialContext, params: DspyParams, artifact: Path | None) -> LocalCandidate:
        """The searched prompt: rebuilt from the shots a finished trial recorded, else searched for now."""
        model, tokenizer = loading.load_model(ctx.source, ctx.device, ctx.dtype), loading.load_tokenizer(ctx.source)
        grammar = contract_grammar(ctx, tokenizer, params.constrained)
        base = prompting_prompter(ctx, tokenizer, 0, "random")  # the contract stated; the shots are searched for
        if ctx.recorded_shots is not None:
            return LocalCandidate(model, tokenizer, searched_prompter(base, _recorded(ctx)), trained=False,
                                  grammar=grammar)
        contract = ctx.suite.contract

        def complete(prompts: list[str]) -> list[str]:
            answers = generate(model, tokenizer, prompts, ctx.config.generation.batch_size, ctx.max_new_tokens,
                               grammar=grammar, settled=lambda text: settled(text, contract), bar=False)
            return [answer.output for answer in answers]

        metric = search_metric(ctx.config.objective.metric)
        higher = higher_is_better(metric)

        def score(example: Example, output: str) -> float:
            case = ScoredCase(example, output, parse_output(output, contract), parse_target(example.target, contract))
            value = score_cases([case], contract, (metric,))[0][metric][0]
            value = 0.0 if value is None else float(value)
            return value if higher else 1.0 - value

        found = search_shots(base, complete, ctx.train_examples, params.settings(ctx.seed), score,
                             metric.replace("_", " "))
        return LocalCandidate(model, tokenizer, searched_prompter(base, found.shots), trained=False, grammar=grammar,
                              search=found.report)


def search_metric(objective: str) -> str:
    """The study's objective when each example has a value of it, else task accuracy."""
    return objective if objective in SCORERS else FALLBACK_METRIC


def _recorded(ctx: TrialContext) -> tuple[Example, ...]:
    by_id = {ex.id: ex for ex in ctx.train_examples}
    missing = [i for i in ctx.recorded_shots or () if i not in by_id]
    if missing:
        raise HarnessError(f"the trial's searched shots {missing[:3]} are not in suite {ctx.suite.name}'s train subset "
                           "any more; its train split has changed, so the prompt cannot be rebuilt. Re-run the trial.")
    return tuple(by_id[i] for i in ctx.recorded_shots or ())
