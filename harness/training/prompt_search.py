"""A prompt searched for, not written: DSPy's `BootstrapFewShotWithRandomSearch` chooses the few-shot examples a
prompting arm shows, by trying candidate sets on the model itself and keeping the one that scores best on a
validation slice of train; with `optimizer: mipro`, DSPy's MIPROv2 searches the instruction too
(`prompt_search_mipro`). Dev and test are never seen: the sweep chooses among arms on dev and reports test, as for
every other arm.

DSPy asks the model through two small bridges, so the prompt it scores is the prompt dev and test are asked with:
- the adapter (`_adapter`) lays a call out as the arm's `Prompter` does (the instruction, the suite's own or the one
  DSPy is trying, then the contract, each shot as a user and an assistant turn, then the input), showing each shot
  with its own train answer; a call that is not the task's (MIPROv2's proposer) is left to DSPy's ChatAdapter;
- `_ArmEngine` hands those messages to the arm's own answering: a local model renders them with its chat template
  (`Prompter.render`) and generates greedily, constrained when the arm is; a hosted arm sends them to its endpoint.

DSPy asks one example at a time, and on a CPU one prompt of a long shared start costs what a batch of 16 does
(SmolLM2, 8 shots of ticket-triage: 2.0 s alone, 0.29 s each in a batch). What it will ask is known, though: a
candidate is scored on every validation example, and its teacher bootstraps over the pool. So the first time an
instruction and a set of shots meet the validation slice (or the pool), the engine answers the whole of it in one
batched call, and DSPy's own calls are read from those answers (MIPROv2 scores minibatches: each of its evaluations
is answered in one call as it starts). The search then costs a bounded number of generated answers
(`SearchSettings.calls`), every one a function of its prompt alone, so it is deterministic too.

DSPy's own output (prints, bars, logging) is kept out of the sweep's, which shows one bar of its own. This module and
`prompt_search_mipro` are the only importers of dspy.
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
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

from tqdm import tqdm

from harness.core.progress import bar_options
from harness.core.records import PromptSearch
from harness.data.prompting import Prompter
from harness.data.shots import FixedShots
from harness.data.suites import Example
from harness.training import prompt_search_mipro as mipro

OPTIMIZERS = {"random_search": "BootstrapFewShotWithRandomSearch", "mipro": "MIPROv2"}
"""The arms' `optimizer` choices and the DSPy optimizer each runs."""
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
    optimizer: str = "random_search"
    """A key of OPTIMIZERS. For `mipro`, `candidates` is MIPROv2's `num_candidates`: the instructions (the suite's
    and those proposed) and the shot sets (the three fixed ones among them)."""
    trials: int = 0
    """MIPROv2's `num_trials` (`mipro` only)."""
    minibatch_size: int = 0
    """Validation examples a MIPROv2 trial is scored on; `val_size` (or more): no minibatches (`mipro` only)."""

    def calls(self) -> int:
        """The model calls the search makes. Random search, exactly: every candidate on the validation slice, and
        each bootstrapping teacher (the unshuffled one and one per random candidate) on the pool. MIPROv2, at most:
        its task answers (`prompt_search_mipro.task_calls`) and its proposer's calls."""
        if self.optimizer == "mipro":
            return mipro.task_calls(self) + self.proposer_calls()
        return (self.candidates + FIXED_CANDIDATES) * self.val_size + (self.candidates + 1) * self.pool_size

    def proposer_calls(self) -> int:
        """Of `calls`, those that write text (MIPROv2's proposer) rather than answer the task."""
        return mipro.proposer_calls(self) if self.optimizer == "mipro" else 0


@dataclass(frozen=True)
class SearchResult:
    shots: tuple[Example, ...]
    report: PromptSearch | None
    """None for shots a finished trial recorded (nothing was searched now)."""
    instruction: str | None = None
    """The instruction chosen in place of the suite's (MIPROv2); None: the suite's."""


def split(train: Sequence[Example], settings: SearchSettings) -> tuple[tuple[Example, ...], tuple[Example, ...]]:
    """The validation slice and the shot pool: disjoint, seeded draws from train."""
    order = list(train)
    random.Random(settings.seed).shuffle(order)
    val = tuple(order[: settings.val_size])
    return val, tuple(order[settings.val_size: settings.val_size + settings.pool_size])


def searched_prompter(prompter: Prompter, shots: Sequence[Example], instruction: str | None = None) -> Prompter:
    """`prompter` with these shots, and this instruction in place of its own (None keeps its own); the contract it
    states stays as it is."""
    searched = dataclasses.replace(prompter, shots=FixedShots(tuple(shots)))
    return searched if instruction is None else dataclasses.replace(searched, instruction=instruction)


def search_shots(prompter: Prompter, complete: Complete, train: Sequence[Example], settings: SearchSettings,
                 score: Callable[[Example, str], float], metric: str, desc: str = "search prompt",
                 propose: Complete | None = None) -> SearchResult:
    """The prompt DSPy's optimizer found best for `prompter`'s arm: its shots, and with MIPROv2 its instruction.
    `complete(conversations)` answers as the arm answers; `propose(conversations)` (MIPROv2 only) writes free text
    for its proposer, unconstrained; `score(example, output)` is the objective of one example in [0, 1], higher
    better."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # nothing fetched, should litellm ever load
    import dspy

    searches_instruction = settings.optimizer == "mipro"
    if searches_instruction and propose is None:
        raise ValueError("MIPROv2 needs `propose`, the arm's free-text answering for its proposer")
    val, pool = split(train, settings)
    by_id = {ex.id: ex for ex in (*val, *pool)}

    def metric_of(example, prediction, trace=None) -> float:
        return score(by_id[example.id], prediction.answer)

    began = time.perf_counter()
    with tqdm(total=settings.calls(), desc=desc, unit="ex", **bar_options(transient=True)) as bar, _quiet():
        # the bar, made before _quiet, keeps the real stderr
        program = dspy.Predict(dspy.Signature("id, text -> answer", prompter.instruction))
        # MIPROv2's evaluations are batched as they start (a minibatch is not the whole slice): no group for them
        groups = ((), pool) if searches_instruction else (val, pool)
        own = {program.signature.instructions, dspy.Signature("id, text -> answer", "").instructions}
        engine = _ArmEngine(prompter, complete, groups, min(settings.max_demos, len(pool)), bar, own)
        proposer = _ArmEngine(prompter, propose or complete, ((), ()), 0, bar)
        lm = dspy.LM("harness/local", engine=engine, cache=False)
        free_text = mipro.free_text_adapter(dspy) if searches_instruction else None
        with dspy.context(lm=lm, adapter=_adapter(dspy, engine, by_id, free_text)):
            try:
                if searches_instruction:
                    best = mipro.compile_mipro(dspy, program, metric_of, lm,
                                               dspy.LM("harness/proposer", engine=proposer, cache=False), engine,
                                               by_id, pool, val, settings, lambda ex: _example(dspy, ex))
                else:
                    optimizer = dspy.BootstrapFewShotWithRandomSearch(
                        metric=metric_of, metric_threshold=1.0, max_bootstrapped_demos=settings.max_bootstrapped,
                        max_labeled_demos=settings.max_demos, num_candidate_programs=settings.candidates,
                        num_threads=1, max_errors=1)
                    best = optimizer.compile(program, trainset=[_example(dspy, ex) for ex in pool],
                                             valset=[_example(dspy, ex) for ex in val])
            except Exception:
                _raise_failure(engine, proposer)  # DSPy counts a failed call as an error and cancels: say why
                raise
            _raise_failure(engine, proposer)  # MIPROv2 scores a failed evaluation 0 and goes on
    predictor = best.predictors()[0]
    shots = tuple(by_id[demo["id"]] for demo in predictor.demos)
    instruction = engine.instruction_of(predictor.signature) if searches_instruction else None
    scores = tuple(float(candidate["score"]) / 100 for candidate in best.candidate_programs)  # best first
    report = PromptSearch(f"{OPTIMIZERS[settings.optimizer]} (dspy {metadata.version('dspy')})", metric, len(val),
                          len(pool), scores, len(shots), engine.calls + proposer.calls, time.perf_counter() - began,
                          instruction=instruction, proposer_calls=proposer.calls)
    return SearchResult(shots, report, instruction)


def _raise_failure(*engines: _ArmEngine) -> None:
    for engine in engines:
        if engine.failure is not None:
            raise engine.failure from None


def _example(dspy, ex: Example):
    return dspy.Example(id=ex.id, text=ex.input, answer=ex.target).with_inputs("id", "text")


@contextlib.contextmanager
def _quiet():
    """DSPy prints each candidate's scores and draws its own bars, and MIPROv2 runs an Optuna study of its own (and
    sets Optuna's verbosity, which is the sweep's too); the sweep's output keeps one bar, and its Optuna logging
    its own level."""
    loggers = [logging.getLogger(name) for name in ("dspy", "LiteLLM", "optuna")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    muted = list(logging.getLogger("optuna").handlers)  # made when optuna loaded: they hold the real stderr
    for handler in muted:
        handler.addFilter(_nothing)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning for MIPROv2's multivariate sampler
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        for handler in muted:
            handler.removeFilter(_nothing)


def _nothing(record: logging.LogRecord) -> bool:
    return False


def _adapter(dspy, engine: _ArmEngine, by_id: dict[str, Example], other=None):
    """A DSPy adapter that lays each task call out as the arm's prompter does, with the instruction the call's
    signature carries; the answer is the model's whole output. A bootstrapped shot is shown with its train answer
    (the one the model got fully right). A call of another signature (MIPROv2's proposer) goes to `other`."""

    class PrompterAdapter(dspy.Adapter):
        def __call__(self, lm, lm_kwargs, signature, demos, inputs):
            if other is not None and not _is_task(signature):
                return other(lm, lm_kwargs, signature, demos, inputs)
            return super().__call__(lm, lm_kwargs, signature, demos, inputs)

        def format(self, signature, demos, inputs):
            shots = [by_id[demo["id"]] for demo in demos]
            example = by_id[inputs["id"]]
            instruction = engine.instruction_of(signature)
            engine.answer_all(instruction, shots, example)
            return searched_prompter(engine.prompter, shots, instruction).messages(example)

        def parse(self, signature, completion):
            return {"answer": completion}

    return PrompterAdapter()


def _is_task(signature) -> bool:
    return set(signature.input_fields) == {"id", "text"} and set(signature.output_fields) == {"answer"}


class _ArmEngine:
    """DSPy's engine interface (`complete(Request) -> Response`) over the arm's own answering. Answers are kept by
    conversation: `answer_all` fills them a whole group at a time, and a conversation asked again costs nothing."""

    def __init__(self, prompter: Prompter, complete: Complete, groups: tuple[tuple[Example, ...], ...],
                 teacher_shots: int, bar, own_instructions: frozenset[str] | set[str] = frozenset()) -> None:
        """`groups`: the validation slice and the pool (`POOL`); `teacher_shots`: the labelled shots a bootstrapping
        teacher shows (DSPy's LabeledFewShot takes `max_demos` of the pool, or all of a smaller one);
        `own_instructions`: what a task signature holds when it carries the prompter's own instruction (the suite's,
        or DSPy's default text, which an empty instruction becomes)."""
        self.prompter, self._complete, self.groups, self.bar = prompter, complete, groups, bar
        self.members = [{ex.id for ex in group} for group in groups]
        self.teacher_shots = teacher_shots
        self.own_instructions = own_instructions
        self.answers: dict[str, str] = {}
        self.answered: set[tuple[int, str, tuple[str, ...]]] = set()
        self.calls = 0
        self.failure: BaseException | None = None

    def instruction_of(self, signature) -> str:
        """The instruction a task call is asked with: the prompter's own, unless DSPy put another in the signature.
        An empty one (the suite's, or a proposal) is DSPy's default text there, and the prompter's own here."""
        instructions = signature.instructions
        return self.prompter.instruction if instructions in self.own_instructions else instructions

    def answer_all(self, instruction: str, shots: Sequence[Example], example: Example) -> None:
        """The first time this instruction and these shots meet the group (validation slice or pool) `example` is in,
        answer the whole group with them in one batched call. On the pool only a teacher asks, with all its labelled
        shots: DSPy asks a teacher's own shot without itself, and that one call is answered alone."""
        group = next((i for i, members in enumerate(self.members) if example.id in members), None)
        key = (group, instruction, tuple(ex.id for ex in shots))
        if group is None or key in self.answered or (group == POOL and len(shots) < self.teacher_shots):
            return
        self.answered.add(key)
        self.answer_examples(instruction, shots, self.groups[group])

    def answer_examples(self, instruction: str, shots: Sequence[Example], examples: Sequence[Example]) -> None:
        """Answer `examples` (those not shown as shots) with this instruction and these shots, in one batched call."""
        shown = {ex.id for ex in shots}
        prompter = searched_prompter(self.prompter, shots, instruction)
        self._answer([prompter.messages(ex) for ex in examples if ex.id not in shown])

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
        if self.failure is not None:  # the model failed once: nothing more is asked of it
            raise self.failure
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
