"""The JSON Schema that a new JSON suite's answers show: the keys, their types, and which keys are required."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
"""The pattern a key gets when every answer writes it as an ISO date: a team normalises dates so, and a prompt that
does not say it leaves a prompting arm to copy the date as the document writes it, wrong on every example, where an
adapter learns the form from its answers."""
MIN_DATES = 3
"""Answers that must show a key as an ISO date before the schema says it is one."""


MAX_DEPTH = 4
"""Levels of nested objects the schema describes; deeper ones are typed `object` alone."""
FEW_VALUES = 12
"""A string key with at most this many distinct values, each in several answers, is named to init's user as one that
may take a closed set (`enum`); init does not add it, since a closed set of names or ids would refuse a new one."""


def infer_schema(objects: list[dict]) -> dict[str, Any]:
    """A schema of what every answer shows: every key seen, with the JSON types seen for it; the keys present in
    every answer required, so that `{}` is not a compliant answer; an array's item type when all its items share
    one, so that objects where the answers hold strings are not compliant either; and a nested object's keys, so
    described (to `MAX_DEPTH`)."""
    return {"schema": _object_schema(objects, 0), "fields": list(dict.fromkeys(k for obj in objects for k in obj))}


def _object_schema(objects: list[dict], depth: int) -> dict[str, Any]:
    types: dict[str, set[str]] = {}
    values: dict[str, list[Any]] = {}
    present: Counter[str] = Counter()
    for obj in objects:
        present.update(obj.keys())
        for key, value in obj.items():
            types.setdefault(key, set()).add(_json_type(value))
            values.setdefault(key, []).append(value)
    properties = {key: _value_schema(kinds, values[key], depth) for key, kinds in types.items()}
    required = [key for key in types if present[key] == len(objects)]
    return {"type": "object", "properties": properties, **({"required": required} if required else {})}


def _value_schema(kinds: set[str], values: list[Any], depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": _type_value(kinds)}
    nested = [v for v in values if isinstance(v, dict)]
    if kinds - {"null"} == {"object"} and depth < MAX_DEPTH and any(nested):
        spec.update({k: v for k, v in _object_schema(nested, depth + 1).items() if k != "type"})
    items = [item for v in values if isinstance(v, list) for item in v]
    item_kinds = {_json_type(item) for item in items}
    if kinds - {"null"} == {"array"} and items and len(_number_merged(item_kinds)) == 1:
        spec["items"] = _value_schema(item_kinds, items, depth + 1) if item_kinds == {"object"} else \
            {"type": _type_value(item_kinds)}
    dates = [v for v in values if isinstance(v, str)]
    if kinds - {"null"} == {"string"} and len(dates) >= MIN_DATES and all(re.match(ISO_DATE, d) for d in dates):
        spec["pattern"] = ISO_DATE  # null where an answer has no date: the pattern holds the ones written
    return spec


def few_values_note(objects: list[dict]) -> str | None:
    """The top-level string keys whose answers take few values, each seen in several answers (a currency, a
    status), as init's advice to close the set where it is closed: a schema without it lets "dollars" be compliant."""
    seen: dict[str, Counter[str]] = {}
    for obj in objects:
        for key, value in obj.items():
            if isinstance(value, str):
                seen.setdefault(key, Counter())[value] += 1
    few = {key: counts for key, counts in seen.items()
           if 1 < len(counts) <= FEW_VALUES and min(counts.values()) >= 3
           and not all(re.match(ISO_DATE, value) for value in counts)}  # dates have their pattern
    if not few:
        return None
    listed = ", and ".join(f"`{key}` only {', '.join(sorted(counts))}" for key, counts in few.items())
    return (f"schema: the answers give {listed}. If no other value is right, add `enum: [...]` under the key in "
            "`output.schema.properties`: the prompt then states them, constrained decoding keeps to them, and another "
            "value is not format-compliant.")


def dates_note(schema: dict[str, Any]) -> str | None:
    """What init says of the keys the schema holds to ISO dates (`ISO_DATE`), or None."""
    keys = [key for key, spec in schema.get("properties", {}).items() if spec.get("pattern") == ISO_DATE]
    if not keys:
        return None
    listed = ", ".join(f"`{key}`" for key in keys)
    return (f"schema: {listed} {'is' if len(keys) == 1 else 'are'} an ISO date (YYYY-MM-DD) in every answer that "
            "gives one, so the "
            "schema says so (`pattern`), and the prompt with it: a prompting arm is told the form an adapter learns "
            "from the answers, and a date written otherwise is not format-compliant. Remove the `pattern` if answers "
            "may write dates otherwise.")


def required_note(schema: dict[str, Any], answers: int) -> str:
    """What the inferred schema requires, in init's words: a required key missing makes an answer non-compliant."""
    required = schema.get("required", [])
    if not required:
        return ("schema: no key is in every answer, so none is required and `{}` is a compliant answer; list the keys "
                "every answer must have under `output.schema.required` if some must.")
    listed = ", ".join(f"`{key}`" for key in required)
    return (f"schema: {listed} {'is' if len(required) == 1 else 'are'} in all {answers} answers, so required: an "
            f"answer without {'it' if len(required) == 1 else 'one of them'} is not format-compliant. If answers "
            f"may leave one out, remove it from `output.schema.required`.")


def _json_type(value: Any) -> str:
    return next(name for py, name in _JSON_TYPES if isinstance(value, py))


def _number_merged(kinds: set[str]) -> set[str]:
    """`integer` is a `number` in JSON Schema, so answers holding both need only `number`."""
    return kinds - {"integer"} if {"integer", "number"} <= kinds else kinds


def _type_value(kinds: set[str]) -> str | list[str]:
    ordered = sorted(_number_merged(kinds))
    return ordered[0] if len(ordered) == 1 else ordered


_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
               (dict, "object"), (type(None), "null"))
