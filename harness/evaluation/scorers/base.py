"""The one interface every scorer implements, and the text normalisation they share.

Scorers answer exactly one question each (is the format right? is anything made up? is the content right?)
so that a report never blends them: a model that answers in prose is a format failure, not a wrong answer
hidden inside an accuracy number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from harness.core.metric import Metric
from harness.core.text import fold
from harness.data.contract import OutputContract, ParsedOutput, parse_number
from harness.data.suites import Example


@dataclass(frozen=True)
class ScoredCase:
    example: Example
    output: str
    """Raw generated text."""
    parsed: ParsedOutput
    """`parse_output(output, contract)`."""
    target: dict
    """`parse_target(example.target, contract)`."""


@runtime_checkable
class Scorer(Protocol):
    """Contract for every scorer.

    - `score` returns one value per case, aligned with `cases`: a float in [0, 1], or None when the measure
      does not apply to that case (e.g. hallucination of an output that did not parse).
    - The aggregate `Metric.n` equals the number of non-None per-example values; `Metric.value` is None when
      n == 0. Rates carry a Wilson 95% interval (`stats.proportion`); micro scores may carry a bootstrap one.
    - Scoring is deterministic (any resampling is seeded) and never raises on odd model output.
    - `higher_is_better` tells reports and the optimiser which way is good.
    """

    name: str
    higher_is_better: bool

    def score(self, cases: Sequence[ScoredCase], contract: OutputContract) -> tuple[list[float | None], Metric]: ...


def canonical(value: Any) -> str:
    """A comparison key for a JSON value: strings folded (`fold`), lists as sorted multisets, a one-item list as
    its item, and empty values (None, "", [], {}) dropped from objects so "absent" and "empty" compare equal."""
    return json.dumps(_canon(value), sort_keys=True, ensure_ascii=False)


def _canon(value: Any) -> Any:
    if isinstance(value, str):
        return fold(value)
    if isinstance(value, list):
        items = [_canon(v) for v in value]
        if len(items) == 1:
            return items[0]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False))
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items() if not is_empty(v)}
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)  # 1 and 1.0 are the same answer
    return str(value)


NUMERIC_TYPES = frozenset({"number", "integer"})
_EXPONENT = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?[eE][+-]?\d+")


def declared_numbers(value: Any, schema: Any) -> Any:
    """`value` with each string that `schema` types as a number (`type: number` or `integer`, alone or beside
    `string`) read as the number it writes (`parse_number`): a reference that writes an amount "4417.50" and an answer
    4417.5 give one amount, which `canonical` alone read as a string and a number, two answers. A string the schema
    types as a string only ("02134", a postcode) is left as it is, as is one that writes no number."""
    return _declared(value, schema, schema)


def _declared(value: Any, schema: Any, root: Any) -> Any:
    branches = _branches(schema, root)
    if isinstance(value, str):
        if not any(_types(b) & NUMERIC_TYPES for b in branches):
            return value
        number = parse_number(value)
        if number is None and _EXPONENT.fullmatch(value.strip()):  # JSON's own form, "1e3"
            return float(value)
        return value if number is None else float(number)
    if isinstance(value, dict):
        return {k: _declared(v, _child(branches, k), root) for k, v in value.items()}
    if isinstance(value, list):
        items = next((b["items"] for b in branches if isinstance(b.get("items"), dict)), None)
        return [_declared(v, items, root) for v in value]
    return value


def _branches(schema: Any, root: Any, seen: frozenset[int] = frozenset()) -> list[dict]:
    """The schema and the alternatives it allows (`anyOf`, `oneOf`, `allOf`), local `$ref`s followed (each once on a
    path: a recursive schema refers to itself)."""
    if not isinstance(schema, dict) or id(schema) in seen:
        return []
    seen = seen | {id(schema)}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        target: Any = root
        for part in filter(None, ref[1:].split("/")):
            target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, dict) else None
        return _branches(target, root, seen)
    out = [schema]
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key) or ():
            out += _branches(sub, root, seen)
    return out


def _types(schema: dict) -> set[str]:
    declared = schema.get("type")
    return {declared} if isinstance(declared, str) else set(declared) if isinstance(declared, list) else set()


def _child(branches: list[dict], key: str) -> Any:
    for branch in branches:
        if isinstance(branch.get("properties"), dict) and key in branch["properties"]:
            return branch["properties"][key]
    return next((b["additionalProperties"] for b in branches if isinstance(b.get("additionalProperties"), dict)),
                None)


def is_empty(value: Any) -> bool:
    """An answer slot the model left blank; treated like an absent key."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, (list, dict)) and not value)
