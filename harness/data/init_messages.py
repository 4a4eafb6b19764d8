"""How `harness suite init`'s notes and refusals name lines, answers, lists and repeated inputs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from harness.data.formats import Row, SourceData
from harness.data.suites import show_path

MAX_LISTED = 10
"""How many items (merged label spellings, rare labels, lines) a note lists before `and N more`."""


def given_text(given: Mapping[str, Path]) -> str:
    """`test comes from test.csv`, for messages about what the --from file must still supply."""
    return " and ".join(f"{split} comes from {show_path(path)}" for split, path in given.items())


def row_line(row: Row) -> str:
    """`line 12` of the --from file a message already names, or `test.csv:12` of a split given as its own file."""
    return row.at("") if row.file else f"line {row.line}"


def shown_answer(answer: str | dict) -> str:
    return f"`{answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)}`"


def few_inputs_text(data: SourceData, kept: int, where: str) -> str:
    """Most rows dropped as repeats of an input: a file of repeated inputs, or an input field naming the wrong column
    (a label column), which leaves a few rows whose counts read as nonsense in any later message."""
    field = f"`{data.fields.input}`" if data.fields.input else "the input"
    return (f"{where}: {len(data.rows) - kept} of {len(data.rows)} rows dropped as repeated inputs: {field} holds "
            f"only {kept} distinct values. If that is not the column with the inputs, pass --input-field with the "
            "right one.")
