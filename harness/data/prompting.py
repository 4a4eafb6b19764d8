"""Turn suite examples into prompt text and answer text, the same way for training, evaluation and predict.

Models with a chat template get system/user/assistant turns; models without one (base models such as
Gemma 3 270M) get a plain `Input:` / `Output:` layout. Few-shot examples become earlier turns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from harness.core.config import TrainingConfig
from harness.data.contract import OutputContract
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

    @property
    def chat(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def system_text(self, example: Example) -> str:
        parts = [example.instruction or self.instruction, self.contract.describe() if self.include_contract else ""]
        return "\n\n".join(part for part in parts if part)

    def messages(self, example: Example) -> list[dict[str, str]]:
        """The conversation before the answer: system, then each shot as a user and an assistant turn, then the
        input. A hosted endpoint receives exactly this."""
        messages = [{"role": "system", "content": self.system_text(example)}]
        for shot in self.shots.pick(example):
            messages += [{"role": "user", "content": shot.input}, {"role": "assistant", "content": shot.target}]
        messages.append({"role": "user", "content": example.input})
        return messages

    def prompt(self, example: Example) -> str:
        """Everything a local model sees before its answer."""
        if self.chat:
            return self.tokenizer.apply_chat_template(self.messages(example), add_generation_prompt=True,
                                                      tokenize=False)
        blocks = [self.system_text(example)] if self.system_text(example) else []
        blocks += [f"Input: {shot.input}\nOutput: {shot.target}" for shot in self.shots.pick(example)]
        blocks.append(f"Input: {example.input}\nOutput:")
        return "\n\n".join(blocks)

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
    tokenizer = prompter.tokenizer
    lengths = [(ex, len(tokenizer(prompter.prompt(ex) + prompter.completion(ex)).input_ids) + 1) for ex in examples]
    return sorted(((ex, n) for ex, n in lengths if n > max_length), key=lambda pair: -pair[1])


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
