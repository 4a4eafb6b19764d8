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


def infer_schema(objects: list[dict]) -> dict[str, Any]:
    """A schema of what every answer shows: every key seen, with the JSON types seen for it; the keys present in
    every answer required, so that `{}` is not a compliant answer; and an array's item type when all its items
    share one, so that objects where the answers hold strings are not compliant either."""
    types: dict[str, set[str]] = {}
    item_types: dict[str, set[str]] = {}
    strings: dict[str, list[str]] = {}
    present: Counter[str] = Counter()
    for obj in objects:
        present.update(obj.keys())
        for key, value in obj.items():
            types.setdefault(key, set()).add(_json_type(value))
            if isinstance(value, str):
                strings.setdefault(key, []).append(value)
            if isinstance(value, list):
                item_types.setdefault(key, set()).update(_json_type(item) for item in value)
    properties = {}
    for key, kinds in types.items():
        properties[key] = {"type": _type_value(kinds)}
        items = item_types.get(key, set())
        if kinds == {"array"} and items and len(_number_merged(items)) == 1:
            properties[key]["items"] = {"type": _type_value(items)}
        dates = strings.get(key, [])
        if kinds == {"string"} and len(dates) >= MIN_DATES and all(re.match(ISO_DATE, d) for d in dates):
            properties[key]["pattern"] = ISO_DATE
    required = [key for key in types if present[key] == len(objects)]
    schema = {"type": "object", "properties": properties, **({"required": required} if required else {})}
    return {"schema": schema, "fields": list(types)}


def dates_note(schema: dict[str, Any]) -> str | None:
    """What init says of the keys the schema holds to ISO dates (`ISO_DATE`), or None."""
    keys = [key for key, spec in schema.get("properties", {}).items() if spec.get("pattern") == ISO_DATE]
    if not keys:
        return None
    listed = ", ".join(f"`{key}`" for key in keys)
    return (f"schema: {listed} {'is' if len(keys) == 1 else 'are'} an ISO date (YYYY-MM-DD) in every answer, so the "
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
