"""Count the tokens of many prompts that share their start (the system turn with a long label list) without
tokenizing that start once per prompt, and with exactly the count that tokenizing each prompt whole would give.

A fast tokenizer splits a text at its added (special) tokens before it normalises, pre-tokenizes or merges anything,
and reads each piece between them on its own. So when every prompt starts with the same head ending in a special
token, the prompt's tokens are the head's followed by those of the rest, read after that same special token. A
prompt where this cannot be shown (it does not start with the head, or an added token could span the cut) is
tokenized whole: the count is exact either way, only its cost differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.data.suites import Example

_PROBE = "\u2063harness-probe-input\u2063"
"""An input no real example holds (invisible separators around it): where it lands in a rendered prompt is where
the examples' own text starts."""
_BATCH = 256
"""Texts tokenized per call: the tokenizer's threads get work, and a batch of long prompts stays small in memory."""


@dataclass(frozen=True)
class SharedHead:
    """The start every prompt of a prompter shares, up to and including its last special token, tokenized once."""

    text: str
    anchor: str
    """The special token `text` ends with. The rest of a prompt is tokenized after it, so that it is read as it is
    inside the whole prompt (some tokenizers read the start of a text differently)."""
    tokens: int
    """Tokens of `text`, without those the tokenizer adds around a whole text (a BOS token, say)."""
    spanning: tuple[str, ...]
    """Starts of a prompt's rest that would complete an added token begun inside `text`: such prompts are tokenized
    whole."""


@dataclass(frozen=True)
class PromptLengths:
    """Prompt tokens of examples, in their order, and how many of each prompt's tokens every prompt shares."""

    tokens: tuple[int, ...]
    shared: int | None
    """Tokens of the shared head (the system turn: instruction and contract, up to the input's turn); None when the
    prompts share no head ending in a special token (plain layouts), so each was tokenized whole."""


def shared_head(prompter) -> SharedHead | None:
    """The head every prompt of `prompter` starts with, or None where none can be cut exactly (a slow tokenizer, a
    layout without special tokens, a template that rewrites the input)."""
    tokenizer = prompter.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        return None
    probe = prompter.prompt(Example("probe", _PROBE, ""))
    if _PROBE not in probe:
        return None
    before = probe[: probe.index(_PROBE)]
    added = {token.content: token_id for token_id, token in tokenizer.added_tokens_decoder.items()}
    anchors = [token.content for token in tokenizer.added_tokens_decoder.values() if _cuttable(token)]
    ends = {content: before.rfind(content) + len(content) for content in anchors if content in before}
    if not ends:
        return None
    cut = max(ends.values())
    anchor = max((content for content, end in ends.items() if end == cut), key=len)  # leftmost-longest wins
    head = before[:cut]
    ids = tokenizer(head, add_special_tokens=False, verbose=False).input_ids
    alone = tokenizer(anchor, add_special_tokens=False, verbose=False).input_ids
    if not ids or ids[-1] != added[anchor] or alone != [added[anchor]]:
        return None
    spanning = tuple(content[k:] for content in added for k in range(1, len(content)) if head.endswith(content[:k]))
    return SharedHead(head, anchor, len(ids), spanning)


def _cuttable(token) -> bool:
    """An added token that splits a text wherever it stands: matched before normalisation and not only as a whole
    word. (One that takes the whitespace after it does so inside `anchor + rest` too.)"""
    return not token.normalized and not token.single_word and bool(token.content.strip())


def count_tokens(tokenizer, texts: Sequence[str], head: SharedHead | None) -> list[int]:
    """Tokens of each text as `tokenizer(text).input_ids` counts them (the tokenizer's own added tokens included)."""
    added = len(tokenizer("", verbose=False).input_ids) - len(tokenizer("", add_special_tokens=False).input_ids)
    counts: list[int | None] = [None] * len(texts)
    split = [i for i, text in enumerate(texts) if head is not None and _splits(text, head)]
    rests = [head.anchor + texts[i][len(head.text):] for i in split] if head is not None else []
    for i, n in zip(split, _lengths(tokenizer, rests, add_special_tokens=False), strict=True):
        counts[i] = head.tokens + n - 1 + added  # the anchor is counted in the head
    whole = [i for i, n in enumerate(counts) if n is None]
    for i, n in zip(whole, _lengths(tokenizer, [texts[i] for i in whole], add_special_tokens=True), strict=True):
        counts[i] = n
    return counts


def _splits(text: str, head: SharedHead) -> bool:
    return text.startswith(head.text) and not text.startswith(head.spanning, len(head.text))


def _lengths(tokenizer, texts: list[str], add_special_tokens: bool) -> list[int]:
    lengths: list[int] = []
    for start in range(0, len(texts), _BATCH):
        batch = tokenizer(texts[start:start + _BATCH], add_special_tokens=add_special_tokens, verbose=False)
        lengths += [len(ids) for ids in batch.input_ids]
    return lengths


def prompt_lengths(prompter, examples: Sequence[Example]) -> PromptLengths:
    """Each example's prompt tokens, as `prompter.tokenizer(prompter.prompt(example))` counts them."""
    head = shared_head(prompter)
    tokens = count_tokens(prompter.tokenizer, [prompter.prompt(ex) for ex in examples], head)
    return PromptLengths(tuple(tokens), head.tokens if head is not None else None)


def row_lengths(prompter, examples: Sequence[Example]) -> list[int]:
    """Each example's prompt and answer tokens, as `prompter.tokenizer(prompt + completion)` counts them."""
    texts = [prompter.prompt(ex) + prompter.completion(ex) for ex in examples]
    return count_tokens(prompter.tokenizer, texts, shared_head(prompter))


def common_prefix(tokenizer, texts: Sequence[str], head: SharedHead | None) -> int:
    """Tokens (the same ids, in the same places) that every text's `tokenizer(text).input_ids` starts with: what
    `training/generate.py` encodes once for all of a split's prompts. Read from the rests after `head` where every
    text starts with it and the tokenizer adds nothing around a text; else from each text tokenized whole."""
    if not texts:
        return 0
    added = len(tokenizer("", verbose=False).input_ids)
    if head is not None and not added and all(_splits(text, head) for text in texts):
        rests = [head.anchor + text[len(head.text):] for text in texts]
        return head.tokens - 1 + _common(_ids(tokenizer, rests, add_special_tokens=False))  # the anchor: in both
    return _common(_ids(tokenizer, list(texts), add_special_tokens=True))


def _ids(tokenizer, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
    ids: list[list[int]] = []
    for start in range(0, len(texts), _BATCH):
        ids += tokenizer(texts[start:start + _BATCH], add_special_tokens=add_special_tokens, verbose=False).input_ids
    return ids


def _common(ids: list[list[int]]) -> int:
    first, length = ids[0], min(len(row) for row in ids)
    for row in ids[1:]:
        length = next((k for k in range(length) if row[k] != first[k]), length)
    return length


def generated_prefix(tokens: Sequence[int], common: int, minimum: int) -> int:
    """The shared prefix `generate` encodes once, as it chooses it: the common tokens, leaving at least one token of
    each prompt to encode per batch, and none below `minimum` (`generate.MIN_SHARED_PREFIX`: not worth the copy)."""
    shared = max(0, min(common, min(tokens, default=1) - 1))
    return shared if shared >= minimum else 0


def generation_batches(tokens: Sequence[int], shared: int, batch_size: int) -> list[tuple[int, int]]:
    """(rows, width) of each batch `generate` forms from prompts of these token counts: sorted by length, cut into
    batches of `batch_size`, each row left-padded to its batch's longest, after the `shared` prefix. A batch costs
    about rows x width prompt tokens, so one long prompt makes its whole batch as wide as itself."""
    ordered = sorted(tokens)
    return [(len(ordered[start:start + batch_size]), ordered[start:start + batch_size][-1] - shared)
            for start in range(0, len(ordered), max(1, batch_size))]
