"""Constrained decoding for local models: generation limited to the output contract, so a prompted model cannot
invent a label or break the schema. The grammar engine is llguidance (the `llguidance` package, also used by
vLLM and llama.cpp); this module only states the grammar and applies llguidance's token mask at each step.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessor

from harness.data.contract import OutputContract

# The separators of `json.dumps`, which the references are written with: constrained outputs look like them.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def contract_schema(contract: OutputContract) -> dict[str, Any] | None:
    """The JSON Schema an answer must satisfy (labels as an enum); None for free text, which has no schema."""
    if contract.kind == "label":
        return {"type": "object", "properties": {contract.key: {"type": "string", "enum": list(contract.labels)}},
                "required": [contract.key], "additionalProperties": False}
    if contract.kind == "json":
        return contract.schema
    return None


def served_schema(contract: OutputContract) -> dict[str, Any] | None:
    """The contract's schema for a vLLM server's guidance (llguidance) backend, with the harness's JSON layout under
    `x-guidance`: the server then builds the grammar `Grammar` builds, and constrained answers from either engine
    are the same text (token for token on the tests' models)."""
    schema = contract_schema(contract)
    return None if schema is None else {**schema, "x-guidance": JSON_LAYOUT}


class Grammar:
    """An llguidance grammar for one contract and one tokenizer, ready to constrain batches."""

    def __init__(self, contract: OutputContract, tokenizer) -> None:
        import llguidance
        import llguidance.hf

        schema = contract_schema(contract)
        if schema is None:
            raise ValueError(f"a {contract.kind} contract has no schema to constrain generation to")
        self._llguidance = llguidance
        self.grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults=JSON_LAYOUT)
        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer)
        problem = llguidance.LLMatcher.validate_grammar(self.grammar, self.tokenizer)
        if problem and not problem.startswith("WARNING"):
            raise ValueError(f"the contract's schema cannot be used for constrained decoding: {problem}")

    def processor(self, batch_size: int) -> LogitsProcessor:
        return _MaskLogits([self._llguidance.LLMatcher(self.tokenizer, self.grammar) for _ in range(batch_size)])


class _MaskLogits(LogitsProcessor):
    """Each step: feed every row's last token to its matcher, then keep only the tokens its grammar allows."""

    def __init__(self, matchers) -> None:
        self.matchers = matchers
        self.prefilled = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prefilled:  # the first call sees only the prompt; later ones add one generated token per row
            for matcher, token in zip(self.matchers, input_ids[:, -1].tolist()):
                if not matcher.is_stopped():
                    matcher.consume_token(token)
        self.prefilled = True
        vocab = scores.shape[1]
        for row, matcher in enumerate(self.matchers):
            if matcher.is_error():
                raise RuntimeError(f"constrained decoding failed: {matcher.get_error()}")
            bits = np.unpackbits(np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8), bitorder="little")
            allowed = np.zeros(vocab, dtype=bool)
            allowed[: min(vocab, len(bits))] = bits[:vocab].astype(bool)
            scores[row, torch.from_numpy(~allowed)] = float("-inf")
        return scores
