"""MIPROv2 for the searching arms (`optimizer: mipro`): the instruction is searched too, not only the shots.

DSPy's `MIPROv2` proposes candidate instructions with a model (the proposer: the arm's own model), draws candidate
shot sets as the random search does (none, labelled only, the unshuffled bootstrap, then shuffled bootstraps), and
searches the pairs with Optuna's TPE sampler: each of its `trials` scores one pair on a minibatch of the validation
slice, and every `FULL_EVAL_EVERY` trials (and at the end) the pair with the best minibatch mean is scored on the
whole slice. Only a pair scored on the whole slice can be chosen, and the first one scored so is the suite's own
instruction with no shots, so the chosen prompt never scores below that on the validation slice.

What DSPy would do one call at a time is batched here, as the random search's is (`prompt_search`):
- every evaluation (a minibatch, or the whole slice) is answered in one batched call before DSPy asks its examples
  one by one (`_Batches`, a DSPy callback that sees each evaluation's program and examples first);
- the proposer's calls are not the task's: DSPy's own `ChatAdapter` lays them out and the arm's `propose` answers
  them as free text, never constrained to the output contract and never with structured output; a reply that
  ignores ChatAdapter's field markers (a small model's) is taken whole as the one field asked for.

This module imports dspy only inside `compile_mipro` and `free_text_adapter`; its counts are pure, for the estimate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.data.suites import Example
    from harness.training.prompt_search import SearchSettings

FULL_EVAL_EVERY = 5
"""Minibatch trials between scorings on the whole validation slice (MIPROv2's `minibatch_full_eval_steps`, its
default)."""
DEFAULT_MINIBATCH = 25
"""Validation examples a trial is scored on, when `minibatch_size` is not given (at most the slice)."""
VIEW_DATA_BATCH = 25
"""Pool examples the proposer reads per call when it summarises the data (MIPROv2's `view_data_batch_size`; 10 in
DSPy): a pool of 100 is summarised in 5 calls instead of 11, and on a CPU each is a long one."""
SUMMARY_MORE_CALLS = 9
"""DSPy's dataset summary reads at most this many more batches after its first (`create_dataset_summary`)."""
PROPOSER_MAX_TOKENS = 128
"""Most tokens a local proposer writes per call (observations, a summary, an instruction): about 90 words, room for an
instruction; a small model left longer repeats itself to the cap, and on a CPU a token of one conversation costs about
half what a token of a whole batch of 16 does."""
HOSTED_PROPOSER_MAX_TOKENS = 512
"""The same for a hosted proposer, whose instructions run longer and whose tokens cost little time here."""
PROPOSER_CALL_ANSWERS = 36
"""What the estimate counts a local proposer call as, in task answers at the arm's calibrated pace: one
conversation decoding up to PROPOSER_MAX_TOKENS, against answers generated in batches of 16. Measured with
SmolLM2-135M on ticket-triage, on a busy 2-core Intel Xeon (2026-12-06): 256 tokens in 252 s against 3.5 s per
answer with 8 shots (so 36 for 128), and 128 tokens in 167 and 206 s against about 6 s per answer with 4 shots. On
the same CPU idle, a 1,046-token conversation decoding 80 tokens took 4.7 s against 0.16 s per answer in a batch of
16 (about 30)."""


def default_trials(candidates: int) -> int:
    """MIPROv2's own suggestion for `num_trials` with shots and one predictor: max(4 log2 N, 1.5 N); 10 for N=6."""
    return max(1, int(max(2 * 2 * math.log2(candidates), 1.5 * candidates)))


def full_evaluations(trials: int) -> int:
    """Scorings on the whole validation slice during MIPROv2's minibatch trials (besides the first, of the suite's
    prompt). Replays its rule: trial `t` (numbered from 2, since the suite's prompt is trial 1) is followed by one
    when t % (FULL_EVAL_EVERY + 1) == 0 or t is its last planned number; each one is an Optuna trial of its own, so
    the numbers after it skip one."""
    steps = FULL_EVAL_EVERY
    planned = trials + trials // steps + 1 + (1 if trials % steps else 0)
    number, full = 1, 0
    for _ in range(trials):
        trial_num = number + 1
        number += 1
        if trial_num % (steps + 1) == 0 or trial_num == planned - 1:
            full += 1
            number += 1
    return full


def task_calls(settings: SearchSettings) -> int:
    """At most the task answers a MIPROv2 search generates: each bootstrapping teacher (one per shot set after
    the first two) on the pool, then the suite's prompt on the slice, each trial on its minibatch (or the slice) and
    each full scoring; never more than every instruction with every shot set on the whole slice. A prompt asked
    twice is answered once, so a search usually stays under it."""
    teachers = max(0, settings.candidates - 2)
    val = settings.val_size
    if settings.minibatch_size < val:
        scored = val * (1 + full_evaluations(settings.trials)) + settings.minibatch_size * settings.trials
    else:
        scored = val * (1 + settings.trials)
    return teachers * settings.pool_size + min(scored, val * settings.candidates ** 2)


def proposer_calls(settings: SearchSettings) -> int:
    """At most the proposer's calls: the dataset summary (a first look, up to SUMMARY_MORE_CALLS more batches of the
    pool, and the summary itself), then one instruction per candidate (the first is replaced by the suite's)."""
    more = min(len(range(VIEW_DATA_BATCH, settings.pool_size, VIEW_DATA_BATCH)), SUMMARY_MORE_CALLS)
    return 2 + more + settings.candidates


def compile_mipro(dspy, program, metric: Callable, task_lm, proposer_lm, engine, by_id: dict[str, Example],
                  pool: Sequence[Example], val: Sequence[Example], settings: SearchSettings, as_dspy: Callable):
    """Run MIPROv2 on `program` with explicit settings (never `auto`, which wants 100+ validation examples).
    `engine`: the arm's `_ArmEngine`, which batches each evaluation; `as_dspy(example)`: a dspy.Example."""
    from dspy.utils.callback import BaseCallback

    class _Batches(BaseCallback):
        """Answers an evaluation's examples in one batched call before DSPy asks them one at a time."""

        def on_evaluate_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
            predictor = inputs["program"].predictors()[0]
            examples = inputs.get("devset") or instance.devset
            engine.answer_examples(engine.instruction_of(predictor.signature),
                                   [by_id[demo["id"]] for demo in predictor.demos], [by_id[ex.id] for ex in examples])

    minibatch = settings.minibatch_size < len(val)
    # Seeds from the trial's seed: the shot sets' shuffles, the proposer's tips and the TPE sampler. The proposer's
    # temperature (1.0) and rollout ids reach the arm's `propose`, which ignores them: a local model decodes greedily
    # and a hosted request is sent at temperature 0, so a re-run proposes the same instructions.
    optimizer = dspy.teleprompt.MIPROv2(
        metric=metric, prompt_model=proposer_lm, task_model=task_lm, max_bootstrapped_demos=settings.max_bootstrapped,
        max_labeled_demos=settings.max_demos, auto=None, num_candidates=settings.candidates, num_threads=1,
        max_errors=1, seed=settings.seed, verbose=False, metric_threshold=1.0)
    with dspy.context(callbacks=[_Batches()]):
        # program_aware_proposer off: the program is one Predict step, and describing DSPy's own code for it cost
        # two more proposer calls per instruction without telling the proposer anything the data summary and the
        # bootstrapped shots do not
        return optimizer.compile(program, trainset=[as_dspy(ex) for ex in pool], valset=[as_dspy(ex) for ex in val],
                                 num_trials=settings.trials, minibatch=minibatch,
                                 minibatch_size=min(settings.minibatch_size, len(val)),
                                 minibatch_full_eval_steps=FULL_EVAL_EVERY, program_aware_proposer=False,
                                 view_data_batch_size=VIEW_DATA_BATCH, seed=settings.seed)


def free_text_adapter(dspy):
    """DSPy's ChatAdapter for the proposer's calls, without its JSON fallback (which would ask again, with structured
    output): a reply without ChatAdapter's field markers is the one field asked for, whole."""
    from dspy.utils.exceptions import AdapterParseError

    class FreeTextAdapter(dspy.ChatAdapter):
        def parse(self, signature, completion: str) -> dict[str, Any]:
            try:
                return super().parse(signature, completion)
            except AdapterParseError:
                if len(signature.output_fields) != 1:
                    raise
                text = re.sub(r"\[\[ ## \w+ ## \]\]", "", completion).strip()
                return {next(iter(signature.output_fields)): text}

    return FreeTextAdapter(use_json_adapter_fallback=False)
