"""Few-shot examples, always drawn from train (never dev or test): a seeded random draw, or the most similar
train examples to each input (BM25 as Lucene and Elasticsearch score it, the `bm25s` package), the way a team would
pick them with the search index it already has."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from harness.core.text import UNSPACED, fold, unicode_words
from harness.data.suites import Example

SELECTIONS = ("random", "similar")


class ShotPicker(Protocol):
    """Chooses the few-shot examples shown before one input. Contract: deterministic (the same input always gets
    the same shots), drawn only from the train examples it was built with, and never the input itself."""

    def pick(self, example: Example) -> tuple[Example, ...]: ...


@dataclass(frozen=True)
class FixedShots:
    """The same shots before every input (a seeded random draw, or none)."""

    examples: tuple[Example, ...] = ()

    def pick(self, example: Example) -> tuple[Example, ...]:
        return self.examples


@dataclass(frozen=True)
class SimilarShots:
    """The k train examples whose inputs score highest under BM25 against the input (ties: the earlier one)."""

    pool: tuple[Example, ...]
    k: int
    _index: object = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        import bm25s

        index = bm25s.BM25(method="lucene")  # Lucene's idf never goes negative, so a common word never repels
        index.index([_words(ex.input) or [""] for ex in self.pool], show_progress=False)
        object.__setattr__(self, "_index", index)

    def pick(self, example: Example) -> tuple[Example, ...]:
        if not self.k:
            return ()
        import numpy as np

        words = _words(example.input)
        scores = self._index.get_scores(words) if words else np.zeros(len(self.pool))
        order = np.lexsort((np.arange(len(self.pool)), -scores))  # best first; equal scores keep train order
        same = fold(example.input)
        chosen = [self.pool[i] for i in order[: self.k + 1] if fold(self.pool[i].input) != same]
        if len(chosen) < self.k:  # the input repeats in train more than once: look further down
            chosen = [self.pool[i] for i in order if fold(self.pool[i].input) != same]
        return tuple(reversed(chosen[: self.k]))  # the most similar last, right before the input


def picker(selection: str, pool: Sequence[Example], k: int, seed: int) -> ShotPicker:
    if selection == "similar":
        return SimilarShots(tuple(pool), k)
    if selection == "random":
        return FixedShots(draw_shots(tuple(pool), k, seed))
    raise ValueError(f"shot selection {selection!r} is not one of {', '.join(SELECTIONS)}")


def draw_shots(examples: tuple[Example, ...], k: int, seed: int) -> tuple[Example, ...]:
    """k seeded examples from train, preferring distinct answers so the shots show the label variety."""
    pool = list(examples)
    random.Random(seed).shuffle(pool)
    chosen, seen = [], set()
    for ex in pool:
        if len(chosen) == k:
            break
        if ex.target not in seen:
            chosen.append(ex)
            seen.add(ex.target)
    for ex in pool:  # fewer distinct answers than k: fill up with repeats
        if len(chosen) == k:
            break
        if ex not in chosen:
            chosen.append(ex)
    return tuple(chosen)


def _words(text: str) -> list[str]:
    """Search terms: Unicode words (`unicode_words`), and in scripts written without spaces each character and each
    pair of neighbours, as Lucene's CJK analyser indexes them. Splitting on spaces alone made a whole Japanese sentence
    one term that no train input shares, so every Japanese input got the same first train examples as shots."""
    words = unicode_words(text)
    single = [len(w) == 1 and UNSPACED.match(w) is not None for w in words]
    pairs = [words[i] + words[i + 1] for i in range(len(words) - 1) if single[i] and single[i + 1]]
    return words + pairs
