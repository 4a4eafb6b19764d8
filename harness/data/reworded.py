"""Dev and test inputs that are a train input reworded: the same words in another order, one word more or less, or
one word changed (a customer's name in a templated e-mail).

Loading a suite refuses inputs equal across splits after folding case, whitespace and punctuation, and warns of
inputs equal but for their numbers. A copy edited a little more passed: a test ticket in train with its words
shuffled, or with " really" added. Those can also be two honest examples (banking77 holds hundreds of test messages
one word from a train message: "Is there a reason my new card hasn't arrived?" and "... arrived yet?"), so
`harness suite validate` names them for a person to judge; a sweep does not refuse them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.core.text import near_fold
from harness.data.suites import Example, Suite, example_at, snippet

MIN_WORDS = 4
"""Shorter inputs are left out: two three-word questions one word apart are often two questions."""

_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"\d+")
_REFERENCE = re.compile(r"(?<!\S)[#A-Za-z]+[-_#/]?\d{3,}\S*")
"""A ticket or order reference: letters (or #) then three or more digits, `TCK-10403:`, `#5521`, `ref12345`. Plain
numbers stay words: in `a tune from 2010` the year is what the answer extracts."""
REORDERED = "its words reordered"


@dataclass(frozen=True)
class Reworded:
    example: Example
    """The dev or test example."""
    train: Example
    """The train example it rewords."""
    how: str
    """How the dev or test input differs from the train one: `its words reordered`, `an id or number added or
    changed`, `a word removed`, `a word added` or `a word changed`."""


def reworded_copies(suite: Suite) -> dict[str, list[Reworded]]:
    """{split: the dev or test examples that reword a train input}, in file order; splits with none left out. A suite
    that allows near-duplicates (`near_duplicates: allow`) keeps them knowingly: none."""
    if suite.info.get("near_duplicates") == "allow":
        return {}
    whole: dict[tuple[str, ...], Example] = {}
    shorter = _OneFewer()
    for ex in suite.splits.get("train", ()):
        words = _words(ex.input)
        if len(words) >= MIN_WORDS:
            whole.setdefault(words, ex)
            shorter.add(words, ex)
    found: dict[str, list[Reworded]] = {}
    for split in ("dev", "test"):
        for ex in suite.splits.get(split, ()):
            words = _words(ex.input)
            if len(words) < MIN_WORDS:
                continue
            match = _match(words, whole, shorter)
            if match is not None and not _already_named(ex.input, match[0].input):
                train, how = match
                if how == REORDERED and _words(ex.input, references=True) != _words(train.input, references=True):
                    how = "an id or number added or changed"
                found.setdefault(split, []).append(Reworded(ex, train, how))
    return found


class _OneFewer:
    """Each train input's words less one word, to the first train example they came from. Keyed by the hash of the
    words, not the words: 30,000 inputs of 80 words held 2.4 million tuples (1.75 GB); a hit is checked against the
    example's own words, so a collision finds nothing rather than a wrong pair."""

    def __init__(self) -> None:
        self._first: dict[int, int] = {}
        self._examples: list[tuple[tuple[str, ...], Example]] = []

    def add(self, words: tuple[str, ...], ex: Example) -> None:
        self._examples.append((words, ex))
        for dropped in _one_fewer(words):
            self._first.setdefault(hash(dropped), len(self._examples) - 1)

    def get(self, dropped: tuple[str, ...]) -> Example | None:
        at = self._first.get(hash(dropped))
        if at is None:
            return None
        words, ex = self._examples[at]
        return ex if len(words) == len(dropped) + 1 and dropped in _one_fewer(words) else None


def _match(words: tuple[str, ...], whole: dict, shorter: _OneFewer) -> tuple[Example, str] | None:
    if words in whole:
        return whole[words], REORDERED
    if (removed := shorter.get(words)) is not None:
        return removed, "a word removed"
    if (added := next((whole[dropped] for dropped in _one_fewer(words) if dropped in whole), None)) is not None:
        return added, "a word added"
    # one word for another (a customer's name, a product): both lose one word and meet
    return next(((changed, "a word changed") for dropped in _one_fewer(words)
                 if (changed := shorter.get(dropped)) is not None), None)


def _words(text: str, references: bool = False) -> tuple[str, ...]:
    """The input's words, folded and sorted: order does not count. A reference (`TCK-10403:`, `#5521`) is left out
    unless `references`: a ticket copied with its reference put in front had passed as two words added."""
    kept = text if references else _REFERENCE.sub(" ", text)
    return tuple(sorted(_WORD.findall(near_fold(kept).casefold())))


def _one_fewer(words: tuple[str, ...]) -> Iterable[tuple[str, ...]]:
    for i in range(len(words)):
        if i == 0 or words[i] != words[i - 1]:  # dropping either of two equal words gives the same key
            yield words[:i] + words[i + 1:]


def _already_named(a: str, b: str) -> bool:
    """Equal after folding (refused on load) or but for their numbers (warned of on load)."""
    return _DIGITS.sub("0", near_fold(a)) == _DIGITS.sub("0", near_fold(b))


def reworded_text(found: dict[str, list[Reworded]], shown: int = 3) -> str:
    """One warning: how many of each split, the first pairs with their lines, and what to do."""
    counts = " and ".join(f"{len(pairs)} {split}" for split, pairs in found.items())
    first = [pair for pairs in found.values() for pair in pairs][:shown]
    pairs = "; ".join(f"{example_at(p.example)} {snippet(p.example.input)} is {example_at(p.train)} "
                      f"{snippet(p.train.input)} with {p.how}" for p in first)
    return (f"{counts} input(s) reword a train input ({pairs}{'; ...' if sum(map(len, found.values())) > shown else ''}"
            "). Judge them: a copy in train scores the model on memory, while two honest examples may stay. They are "
            "named here, never refused.")

