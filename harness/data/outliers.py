"""Inputs far longer than the rest of their suite: a whole e-mail thread pasted into one cell, a file read as one
example. `harness suite validate` names them where the data is fixed; the plan refuses (or cuts) an input longer
than `training.max_length` only later, at the dry run, after minutes of calibration."""

from __future__ import annotations

from statistics import median

from harness.data.suites import Example, Suite, example_at

TIMES_MEDIAN, MIN_CHARS = 20, 2_000
"""An input counts as far longer than the rest at 20 times the suite's median input and 2,000 characters or more."""


def long_inputs(suite: Suite) -> tuple[list[Example], int]:
    """(the inputs far longer than the suite's median, longest first; the median input length in characters)."""
    examples = [ex for split in suite.splits.values() for ex in split]
    if not examples:
        return [], 0
    middle = int(median(len(ex.input) for ex in examples))
    limit = max(MIN_CHARS, TIMES_MEDIAN * middle)
    return sorted((ex for ex in examples if len(ex.input) > limit), key=lambda ex: -len(ex.input)), middle


def long_inputs_text(found: list[Example], middle: int, shown: int = 3) -> str:
    listed = "; ".join(f"{example_at(ex)} ({len(ex.input):,} characters)" for ex in found[:shown])
    return (f"{len(found)} input(s) are far longer than the suite's median of {middle:,} characters ({listed}"
            f"{'; ...' if len(found) > shown else ''}): a pasted thread or a whole file in one cell? Longer than "
            "training.max_length tokens, a train input is refused at the dry run (or cut, with "
            "training.over_length: truncate), and a long dev or test input slows every trial's scoring. Fix them in "
            "the data if they are mistakes.")
