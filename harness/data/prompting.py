"""Turn suite examples into prompt text and answer text, the same way for training, evaluation and predict.

Models with a chat template get system/user/assistant turns; models without one (base models such as
Gemma 3 270M) get a plain `Input:` / `Output:` layout. Few-shot examples become earlier turns.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from harness.core.config import TrainingConfig
from harness.core.errors import ConfigError
from harness.core.text import fold
from harness.data.contract import OutputContract, number_values, numbers_in, parse_target, string_values
from harness.data.prompt_tokens import PromptLengths, prompt_lengths, row_lengths
from harness.data.shots import FixedShots, ShotPicker
from harness.data.suites import Example, Suite


@dataclass(frozen=True)
class Prompter:
    tokenizer: object | None
    """Renders the chat template of local models; None for a hosted endpoint, which takes the messages."""
    instruction: str
    contract: OutputContract
    shots: ShotPicker = FixedShots()
    include_contract: bool = True
    """State the label set or schema in the prompt. Prompting always does: a baseline that cannot know the
    labels is a strawman. Trained methods may leave it out and learn the contract from the data."""
    room: int | None = None
    """Tokens a prompt may take: the model's context window less the answer's cap (None: no limit, as for a hosted
    endpoint, whose window is its own). Shots that would take a prompt past it are left out, the first shown first
    (for similar shots, the least similar): past its window a model answers from positions it was never built for,
    and a team's prompt builder keeps to its model's window. The input itself always fits (`check_eval_lengths`)."""

    @property
    def chat(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def system_text(self, example: Example) -> str:
        parts = [example.instruction or self.instruction, self.contract.describe() if self.include_contract else ""]
        return "\n\n".join(part for part in parts if part)

    def messages(self, example: Example) -> list[dict[str, str]]:
        """The conversation before the answer: system, then each shot as a user and an assistant turn, then the
        input. A hosted endpoint receives exactly this."""
        return self._laid_out(example, self.fitted_shots(example))

    def fitted_shots(self, example: Example) -> tuple[Example, ...]:
        """The shots `example`'s prompt shows: those its picker chose, less the first ones where the prompt would
        not fit `room`."""
        shots = self.shots.pick(example)
        while shots and self.room is not None and self._tokens(self._laid_out(example, shots)) > self.room:
            shots = shots[1:]
        return shots

    def input_room(self) -> int | None:
        """Tokens an input may take with all of its shots still shown, for shots that do not depend on the input:
        past it, `fitted_shots` leaves out the first ones. None without a `room` or shots."""
        empty = Example("", "", "")
        shots = self.shots.pick(empty)
        if self.room is None or not shots:
            return None
        return self.room - self._tokens(self._laid_out(empty, shots))

    def _laid_out(self, example: Example, shots: tuple[Example, ...]) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_text(example)}]
        for shot in shots:
            messages += [{"role": "user", "content": shot.input}, {"role": "assistant", "content": shot.target}]
        messages.append({"role": "user", "content": example.input})
        return messages

    def _tokens(self, messages: list[dict[str, str]]) -> int:
        """A prompt's tokens as `prompt_lengths` counts them."""
        return len(self.tokenizer(self.render(messages), verbose=False).input_ids)

    def prompt(self, example: Example) -> str:
        """Everything a local model sees before its answer."""
        return self.render(self.messages(example))

    def render(self, messages: list[dict[str, str]]) -> str:
        """The text a local model sees for a conversation laid out as `messages` lays it out: the chat template's,
        or, for a model without one, the system text, each shot as an `Input:`/`Output:` block, then the input."""
        if self.chat:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        system = [m["content"] for m in messages[:1] if m["role"] == "system" and m["content"]]
        turns = [m for m in messages if m["role"] != "system"]
        shots = [f"Input: {ask['content']}\nOutput: {said['content']}" for ask, said in zip(turns[:-1:2], turns[1::2])]
        return "\n\n".join([*system, *shots, f"Input: {turns[-1]['content']}\nOutput:"])

    def completion(self, example: Example) -> str:
        """The answer the model is trained to produce (TRL appends the end-of-sequence token)."""
        return example.target if self.chat else f" {example.target}"


def trained_prompter(tokenizer, suite: Suite, training: TrainingConfig) -> Prompter:
    """How trained methods frame inputs: no shots; the instruction and the contract as `training` says.

    Without the instruction a chat model still gets an (empty) system turn, so its template does not put in a
    default system prompt of its own."""
    return Prompter(tokenizer, suite.instruction if training.include_instruction else "", suite.contract,
                    include_contract=training.include_contract)


def over_length(prompter: Prompter, examples: list[Example], max_length: int) -> list[tuple[Example, int]]:
    """Examples whose prompt and answer (with the end-of-sequence token) exceed `max_length` tokens, longest
    first: training would cut their answers short."""
    lengths = zip(examples, (n + 1 for n in row_lengths(prompter, examples)), strict=True)  # + TRL's end token
    return sorted(((ex, n) for ex, n in lengths if n > max_length), key=lambda pair: -pair[1])


def beyond_context(prompter: Prompter, examples: list[Example], max_new: int, context: int,
                   lengths: PromptLengths | None = None) -> list[tuple[Example, int]]:
    """Examples whose prompt, with `max_new` tokens kept for the answer, does not fit the model's `context`, each with
    its prompt's tokens, longest first: past the window a model answers from positions it was never built for.
    `lengths`: the examples' `prompt_lengths`, when the caller has them already."""
    tokens = (lengths or prompt_lengths(prompter, examples)).tokens
    pairs = zip(examples, tokens, strict=True)
    return sorted(((ex, n) for ex, n in pairs if n + max_new > context), key=lambda pair: -pair[1])


def _tokens(prompter: Prompter, example: Example) -> int:
    """Tokens of one training row: prompt, answer and the end-of-sequence token TRL appends."""
    # verbose=False: transformers warns of "indexing errors" for a row longer than the model, which is being cut here
    return len(prompter.tokenizer(prompter.prompt(example) + prompter.completion(example), verbose=False).input_ids) + 1


def without_input(prompter: Prompter, example: Example) -> int:
    """Tokens of `example`'s training row with its input emptied: what the instruction, the template and the answer
    take whatever the input."""
    return _tokens(prompter, dataclasses.replace(example, input=""))


NO_ROOM_FIX = ("Shorten the suite's `instruction:` (in its suite.yaml; every training prompt holds it), set "
               "`training.include_instruction: false`, or raise training.max_length")


def cut_to_length(prompter: Prompter, examples: tuple[Example, ...], max_length: int,
                  where: str = "training.max_length") -> tuple[tuple[Example, ...], list[tuple[Example, int]]]:
    """`examples` with each over-long one's input cut at its end, by whole tokens, until prompt and answer fit
    `max_length`; returns them and the (original example, its length) pairs that were cut, longest first.

    The answer is never cut: it is what the loss is on, and a cut answer would teach the model to stop early. TRL
    does not truncate padding-free rows, so this is where an over-long row is made to fit. An example that cannot
    fit (even its first input token is too many) or whose answer copies a value from the cut-off part of a grounded
    input is refused, since training on it would teach an invented value."""
    too_long = over_length(prompter, list(examples), max_length)
    if not too_long:
        return tuple(examples), []
    replaced = {ex.id: _cut(prompter, ex, max_length, where) for ex, _ in too_long}
    return tuple(replaced.get(ex.id, ex) for ex in examples), too_long


def _cut(prompter: Prompter, example: Example, max_length: int, where: str) -> Example:
    tokenizer = prompter.tokenizer
    ids = tokenizer(example.input, add_special_tokens=False, verbose=False).input_ids

    def keep(k: int) -> Example:
        text = tokenizer.decode(ids[:k]).rstrip("\ufffd")  # a cut inside a character leaves a replacement mark
        return dataclasses.replace(example, input=text)

    low, high = 0, len(ids)  # the longest prefix that fits: binary search over whole tokens
    while low < high:
        middle = (low + high + 1) // 2
        if _tokens(prompter, keep(middle)) <= max_length:
            low = middle
        else:
            high = middle - 1
    cut = keep(low)
    if low == 0 or not cut.input.strip() or _tokens(prompter, cut) > max_length:
        raise ConfigError(
            f"{where}: train example {example.id} does not fit {max_length} tokens even with its input cut to one "
            f"token: without its input it takes {without_input(prompter, example):,} (the instruction, the template "
            f"and the answer). {NO_ROOM_FIX}, or shorten the example's answer."
        )
    if lost := lost_values(prompter.contract, example.target, example.input, cut.input):
        raise ConfigError(
            f"{where}: train example {example.id} would lose, cut to {max_length} tokens, "
            f"{', '.join(lost[:3])}{' ...' if len(lost) > 3 else ''}, which its answer copies from the part of the "
            f"input cut off, and training on it would teach an invented value. Raise training.max_length (up to the "
            f"model's context window), or set training.over_length: refuse and shorten or drop the example."
        )
    return cut


def lost_values(contract: OutputContract, target: str, whole: str, cut: str) -> list[str]:
    """The values of a JSON answer that `whole` writes and `cut` no longer does: strings (compared folded) and
    numbers (in every reading `numbers_in` takes), whatever `grounded` says, since a suite whose answers normalise
    one value (an ISO date) still copies the others. A value the input never wrote is not known to come from it."""
    if contract.kind != "json":
        return []
    answer = parse_target(target, contract)
    before, after = fold(whole), fold(cut)
    lost = [repr(s) for s in dict.fromkeys(string_values(answer)) if s.strip() and fold(s) in before
            and fold(s) not in after]
    written, kept = numbers_in(whole), numbers_in(cut)
    return lost + [str(n) for n in dict.fromkeys(number_values(answer)) if n in written and n not in kept]


def max_answer_tokens(tokenizer, contract: OutputContract, train_targets: list[str]) -> int:
    """Derive the generation cap from the output contract: the longest legal answer plus a margin.

    For a label contract that is exact (the longest `{"key": label}`); for a JSON contract it is the longest
    answer seen in train, with 25% headroom, since the schema alone does not bound its length.
    """
    if contract.kind == "label":
        answers = [json.dumps({contract.key: label}) for label in contract.labels]
        margin = 1.0
    else:
        answers = train_targets or ["{}"]
        margin = 1.25
    longest = max(len(tokenizer(" " + a, add_special_tokens=False).input_ids) for a in answers)
    return int(longest * margin) + 4
