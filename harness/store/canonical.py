"""Rows as the hashes read them: the registry's chain (`chain.py`) and the trials' seals (`seal.py`) hash a row as
read back from the database, in one canonical form, so that its hash reads what every later reader reads."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import duckdb


def rows(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The result of a query as {column: value} rows."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, values)) for values in cur.fetchall()]


def plain(value: Any, json_column: bool = False) -> Any:
    """A column's value as a hash reads it: a JSON column parsed (its spacing is the database's; text that is not
    JSON is hashed as it is, so it can only fail to match), a time in ISO form, a non-finite float as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if json_column and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def canonical(value: Any) -> str:
    """`value` as one JSON text: keys sorted, no spacing."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
