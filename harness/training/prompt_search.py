"""A prompt searched for, not written: DSPy's `BootstrapFewShotWithRandomSearch` chooses the few-shot examples a
prompting arm shows, by trying candidate sets on the model itself and keeping the one that scores best on a
validation slice of train. Dev and test are never seen: the sweep chooses among arms on dev and reports test, as for
every other arm.

DSPy asks the model through two small bridges, so the prompt it scores is the prompt dev and test are asked with:
- the adapter (`_adapter`) lays a call out as the arm's `Prompter` does (the suite's instruction and contract, each
  shot as a user and an assistant turn, then the input), showing each shot with its own train answer;
- `_ArmEngine` hands those messages to the arm's own answering: a local model renders them with its chat template
  (`Prompter.render`) and generates greedily, constrained when the arm is; a hosted arm sends them to its endpoint.

DSPy asks one example at a time, and on a CPU one prompt of a long shared start costs what a batch of 16 does
(SmolLM2, 8 shots of ticket-triage: 2.0 s alone, 0.29 s each in a batch). What it will ask is known, though: a
candidate is scored on every validation example, and its teacher bootstraps over the pool. So the first time a set
of shots meets the validation slice (or the pool), the engine answers the whole of it in one batched call, and DSPy's
own calls are read from those answers. The search then costs a fixed number of generated answers
(`SearchSettings.calls`), every one a function of its prompt alone, so it is deterministic too.

DSPy's own output (prints, bars, logging) is kept out of the sweep's, which shows one bar of its own. This module is
the only importer of dspy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

from tqdm import tqdm

from harness.core.progress import bar_options
from harness.core.records import PromptSearch
from harness.data.prompting import Prompter
from harness.data.shots import FixedShots
from harness.data.suites import Example

OPTIMIZER = "BootstrapFewShotWithRandomSearch"
FIXED_CANDIDATES = 3
"""Candidates DSPy's random search scores besides its random ones: no shots, labelled shots only, and the
unshuffled bootstrap."""

POOL = 1
"""The pool's place in the engine's groups, after the validation slice."""
Messages = list[dict[str, str]]
Complete = Callable[[list[Messages]], list[str]]
"""Conversations (as `Prompter.messages` lays them out) -> the arm's answers to them, in order, asked in batches."""


@dataclass(frozen=True)
class SearchSettings:
    max_demos: int
    """Most shots a candidate prompt shows (DSPy's `max_labeled_demos`)."""
    max_bootstrapped: int
    """Most of them that are bootstrapped: train examples the model, prompted with labelled shots, answered fully
    right (DSPy's `max_bootstrapped_demos`); each random candidate takes between 1 and this many, and fills up with
    labelled ones."""
    candidates: int
    """Random candidate sets, besides the three fixed ones (DSPy's `num_candidate_programs`)."""
    val_size: int
    """Train examples held out to score every candidate on."""
    pool_size: int
    """Train examples the shots are drawn from (and bootstrapped on)."""
    seed: int

    def calls(self) -> int:
        """The answers the search generates: every candidate on the validation slice, and each bootstrapping
        teacher (the unshuffled one and one per random candidate) on the pool."""
        return (self.candidates + FIXED_CANDIDATES) * self.val_size + (self.candidates + 1) * self.pool_size


@dataclass(frozen=True)
class SearchResult:
    shots: tuple[Example, ...]
    report: PromptSearch | None
    """None for shots a finished trial recorded (nothing was searched now)."""


def split(train: Sequence[Example], settings: SearchSettings) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """The validation slice and the shot pool: disjoint, seeded draws from train."""
    order = list(train)
    random.Random(settings.seed).shuffle(order)
    val = tuple(order[: settings.val_size])
    return val, tuple(order[settings.val_size: settings.val_size + settings.pool_size])


def searched_prompter(prompter: Prompter, shots: Sequence[Example]) -> Prompter:
    return dataclasses.replace(prompter, shots=FixedShots(tuple(shots)))


def search_shots(prompter: Prompter, complete: Complete, train: Sequence[Example], settings: SearchSettings,
                 score: Callable[[Example, str], float], metric: str, desc: str = "search prompt") -> SearchResult:
    """The shots DSPy's random search found best for `prompter`'s arm. `complete(conversations)` answers as the
    arm answers; `score(example, output)` is the objective of one example in [0, 1], higher better."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # nothing fetched, should litellm ever load
    import dspy

    val, pool = split(train, settings)
    by_id = {ex.id: ex for ex in (*val, *pool)}

    def metric_of(example, prediction, trace=None) -> float:
        return score(by_id[example.id], prediction.answer)

    began = time.perf_counter()
    with tqdm(total=settings.calls(), desc=desc, unit="ex", leave=False, **bar_options()) as bar, _quiet():
        # the bar, made before _quiet, keeps the real stderr
        engine = _ArmEngine(prompter, complete, (val, pool), min(settings.max_demos, len(pool)), bar)
        optimizer = dspy.BootstrapFewShotWithRandomSearch(
            metric=metric_of, metric_threshold=1.0, max_bootstrapped_demos=settings.max_bootstrapped,
            max_labeled_demos=settings.max_demos, num_candidate_programs=settings.candidates, num_threads=1,
            max_errors=1)
        program = dspy.Predict(dspy.Signature("id, text -> answer", prompter.instruction))
        lm = dspy.LM("harness/local", engine=engine, cache=False)
        with dspy.context(lm=lm, adapter=_adapter(dspy, engine, by_id)):
            try:
                best = optimizer.compile(program, trainset=[_example(dspy, ex) for ex in pool],
                                         valset=[_example(dspy, ex) for ex in val])
            except Exception:
                if engine.failure is not None:  # DSPy counts a failed call as an error and cancels: say why
                    raise engine.failure from None
                raise
    shots = tuple(by_id[demo["id"]] for demo in best.predictors()[0].demos)
    scores = tuple(float(candidate["score"]) / 100 for candidate in best.candidate_programs)  # best first
    report = PromptSearch(f"{OPTIMIZER} (dspy {metadata.version('dspy')})", metric, len(val), len(pool), scores,
                          len(shots), engine.calls, time.perf_counter() - began)
    return SearchResult(shots, report)


def _example(dspy, ex: Example):
    return dspy.Example(id=ex.id, text=ex.input, answer=ex.target).with_inputs("id", "text")


@contextlib.contextmanager
def _quiet():
    """DSPy prints each candidate's scores and draws its own bars; the sweep's output keeps one bar."""
    loggers = [logging.getLogger(name) for name in ("dspy", "LiteLLM")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _adapter(dspy, engine: _ArmEngine, by_id: dict[str, Example]):
    """A DSPy adapter that lays each call out as the arm's prompter does; the answer is the model's whole output.
    A bootstrapped shot is shown with its train answer (the one the model got fully right)."""

    class PrompterAdapter(dspy.Adapter):
        def format(self, signature, demos, inputs):
            shots = [by_id[demo["id"]] for demo in demos]
            example = by_id[inputs["id"]]
            engine.answer_all(shots, example)
            return searched_prompter(engine.prompter, shots).messages(example)

        def parse(self, signature, completion):
            return {"answer": completion}

    return PrompterAdapter()


class _ArmEngine:
    """DSPy's engine interface (`complete(Request) -> Response`) over the arm's own answering. Answers are kept by
    conversation: `answer_all` fills them a whole group at a time, and a conversation asked again costs nothing."""

    def __init__(self, prompter: Prompter, complete: Complete, groups: tuple[tuple[Example, ...], ...],
                 teacher_shots: int, bar) -> None:
        """`groups`: the validation slice and the pool (`POOL`); `teacher_shots`: the labelled shots a bootstrapping
        teacher shows (DSPy's LabeledFewShot takes `max_demos` of the pool, or all of a smaller one)."""
        self.prompter, self._complete, self.groups, self.bar = prompter, complete, groups, bar
        self.members = [{ex.id for ex in group} for group in groups]
        self.teacher_shots = teacher_shots
        self.answers: dict[str, str] = {}
        self.answered: set[tuple[int, tuple[str, ...]]] = set()
        self.calls = 0
        self.failure: BaseException | None = None

    def answer_all(self, shots: Sequence[Example], example: Example) -> None:
        """The first time these shots meet the group (validation slice or pool) `example` is in, answer the whole
        group with them in one batched call. On the pool only a teacher asks, with all its labelled shots: DSPy
        asks a teacher's own shot without itself, and that one call is answered alone."""
        group = next((i for i, members in enumerate(self.members) if example.id in members), None)
        key = (group, tuple(ex.id for ex in shots))
        if group is None or key in self.answered or (group == POOL and len(shots) < self.teacher_shots):
            return
        self.answered.add(key)
        shown = {ex.id for ex in shots}
        prompter = searched_prompter(self.prompter, shots)
        self._answer([prompter.messages(ex) for ex in self.groups[group] if ex.id not in shown])

    def complete(self, request):
        from dspy.lm15 import Message, Response, TextPart, Usage

        messages = [{"role": "system", "content": _text(request.system)}] if request.system is not None else []
        messages += [{"role": m.role, "content": m.text or ""} for m in request.messages]
        self._answer([messages])
        return Response(id=None, model="harness", message=Message.assistant([TextPart(self.answers[_key(messages)])]),
                        finish_reason="stop", usage=Usage(input_tokens=0, output_tokens=0, total_tokens=0))

    def _answer(self, conversations: list[Messages]) -> None:
        wanted = list({_key(m): m for m in conversations if _key(m) not in self.answers}.items())
        if not wanted:
            return
        try:
            outputs = self._complete([messages for _, messages in wanted])
        except Exception as exc:
            self.failure = exc
            raise
        self.answers.update(zip((key for key, _ in wanted), outputs, strict=True))
        self.calls += len(wanted)
        self.bar.update(len(wanted))

    def stream(self, request):
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        return None


def _key(messages: Messages) -> str:
    return json.dumps(messages, ensure_ascii=False)


def _text(system) -> str:
    return system if isinstance(system, str) else "".join(part.text for part in system)
