"""rouge_l: how close is a text answer to the reference? Partial credit that accuracy cannot give.

Final-answer accuracy says whether the number is right; ROUGE-L (longest common subsequence F-measure, Porter
stemmed, via the `rouge-score` package) says whether the worked steps resemble the reference's, which moves
earlier in training and separates "right steps, slip at the end" from "no idea". When the answer is the whole
output (`whole_output` contracts: summaries, rewrites, chat replies), it compares the whole answers instead, where
exact match alone would score near zero. It is a similarity, not a proof of a correct answer, so it is reported
beside accuracy and never instead of it.

Tokens are Unicode words (`UnicodeTokenizer`), not rouge-score's default `[a-z0-9]+`, which deletes every other
letter: an Arabic or Chinese answer identical to its reference would score 0.0, and `café` would match `cafe`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from harness.core.text import unicode_words
from harness.data.contract import OutputContract
from harness.evaluation.scorers.base import ScoredCase
from harness.evaluation.stats import Metric, bootstrap_mean

_ASCII_WORD = re.compile(r"[a-z0-9]+")


class UnicodeTokenizer:
    """rouge-score's tokenizer contract (`tokenize(text) -> list[str]`) over Unicode words (`core.text.unicode_words`):
    NFC, casefolded, runs of letters, digits and combining marks, one token per character in unspaced scripts. ASCII
    words longer than three
    characters are Porter-stemmed exactly as rouge-score's default does, so English scores are unchanged."""

    def __init__(self) -> None:
        from nltk.stem import porter  # rouge-score's own dependency and stemmer

        self._stemmer = porter.PorterStemmer()

    def tokenize(self, text: str) -> list[str]:
        return [self._stem(token) for token in unicode_words(text)]

    def _stem(self, token: str) -> str:
        return self._stemmer.stem(token) if len(token) > 3 and _ASCII_WORD.fullmatch(token) else token


@cache
def _scorer():
    from rouge_score.rouge_scorer import RougeScorer  # imported on first use: only text suites need it

    return RougeScorer(["rougeL"], tokenizer=UnicodeTokenizer())


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure in [0, 1]; 0.0 when either side has no tokens."""
    return float(_scorer().score(reference, prediction)["rougeL"].fmeasure)


class RougeL:
    """Per example: ROUGE-L F between the output's rationale (the text before its final answer; the whole output
    when no final answer was found, since format is scored separately) and the reference's rationale. With
    `whole_output`, between the whole answers: there is no rationale, the answer is the text to compare.

    None for label/json contracts and for references with no rationale. Aggregate: the mean with a seeded
    bootstrap 95% interval (`stats.bootstrap_mean`), since these are scores, not 0/1 flags.
    """

    name = "rouge_l"
    higher_is_better = True

    def score(self, cases: Sequence[ScoredCase], contract: OutputContract) -> tuple[list[float | None], Metric]:
        if contract.kind != "text":
            return [None] * len(cases), Metric(None, None, None, 0)
        part = "answer" if contract.whole_output else "rationale"
        values: list[float | None] = []
        for case in cases:
            reference = case.target.get(part, "")
            if not reference.strip():
                values.append(None)
                continue
            value = case.parsed.value
            prediction = value[part] if value is not None else (case.output or "").strip()
            values.append(rouge_l(prediction, reference))
        return values, bootstrap_mean([v for v in values if v is not None])
