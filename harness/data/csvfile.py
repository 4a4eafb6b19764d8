"""Reading a CSV file for `harness suite init`: the delimiter found from the header, every row checked against it.

Spreadsheets export with a comma, a semicolon (where the decimal mark is a comma), a tab or a pipe, and one unquoted
delimiter inside a cell shifts every cell after it, so the wrong cell would become the answer. The header therefore
fixes the delimiter and the width, and a row of another width is refused with its line instead of being misread.
Excel's own habits are read as Excel reads them: a `sep=;` first line names the delimiter, header names are
stripped, and rows of empty cells (a formatted but unused row) are skipped.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from harness.core.errors import SuiteError
from harness.data.suites import Problems

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
"""The delimiters detected, with their names for messages."""
_SAMPLE_ROWS = 20
"""Rows after the header that vote on the delimiter: enough to outvote a few broken rows, cheap on any file."""
_MAX_FIELD = 2**31 - 1
"""csv's field limit is a C long, 32 bits on some platforms."""


@dataclass(frozen=True)
class CsvTable:
    columns: list[str]
    """The header's names, stripped, in file order."""
    records: list[tuple[int, dict[str, str]]]
    """(1-based line where the row starts, {column: cell}); a quoted cell may span lines."""
    delimiter: str
    empty_rows: int = 0
    """Rows skipped because every cell was empty (`,,,`): spreadsheets export formatted rows below the data."""


def read_csv(text: str, where: str, preferred: str = ",", keep_empty: bool = False) -> CsvTable:
    """The header and rows of CSV text; SuiteError for an empty file, a repeated column name, a file with no rows,
    rows whose width differs from the header's, or a quote left open that swallowed the rows after it (every such
    row listed, by line). `keep_empty`: a blank or all-empty row inside the data is kept, its cells empty, for a
    reader whose rows must stay in line with its output (`harness predict`), rather than skipped."""
    lines = io.StringIO(text, newline="").readlines()  # split as csv splits, so line_num indexes this list
    excel_sep = _EXCEL_SEP.fullmatch(lines[0]) if lines else None
    with _field_limit(len(text) + 1):
        delimiter = excel_sep[1] if excel_sep else detect_delimiter(text, preferred)
        reader = csv.reader(lines, delimiter=delimiter)
        records, problems, start, empty_rows = [], Problems(), 1, 0
        try:
            if excel_sep:
                next(reader)  # Excel's `sep=X` line is not the header
            columns = [name.strip() for name in next(reader, [])]  # ` Text ` is what the user calls `Text`
            _check_header(columns, where)
            start = reader.line_num + 1
            for cells in reader:
                end = reader.line_num
                if not any(cell.strip() for cell in cells) and keep_empty:
                    records.append((start, dict.fromkeys(columns, "")))
                elif not any(cell.strip() for cell in cells):
                    # a blank line holds no example (csv.DictReader skips them too); `,,,` is a sheet's unused row
                    empty_rows += bool(cells)
                elif len(cells) != len(columns):
                    problems.add(_width_problem(where, start, end, len(cells), len(columns), delimiter))
                elif end > start and (broken := _strict_error(lines[start - 1 : end], delimiter)):
                    problems.add(_open_quote_problem(where, start, end, broken))
                else:
                    records.append((start, dict(zip(columns, map(_unix_newlines, cells)))))
                start = end + 1
        except csv.Error as exc:
            raise SuiteError(
                f"{where}:{start}: not readable as CSV ({exc}); check the quotes on this row, or export the sheet "
                f"again as CSV."
            ) from None
    problems.raise_if_any(where)
    if not records:
        raise SuiteError(f"{where}: the file has a header ({', '.join(columns)}) and no rows; add one example per "
                         f"line below it.")
    return CsvTable(columns, records, delimiter, empty_rows)


_EXCEL_SEP = re.compile(r"sep=(.)\r?\n?")
"""Excel's first line `sep=;`, which names the delimiter when the locale's default is another."""


def delimiter_name(delimiter: str) -> str:
    """`comma`, `tab`, ... for messages; any other character (from a `sep=` line) as itself."""
    return DELIMITERS.get(delimiter, f"`{delimiter}`")


def _strict_error(lines: list[str], delimiter: str) -> str | None:
    """Why a row spanning `lines` is not valid CSV, or None when it is (a quoted cell may hold line breaks).

    The lenient reader lets a quote left open run on until the next quote, usually the opening quote of a later
    row, and then reads on as if nothing happened: two rows become one of the header's width. Strict CSV refuses
    exactly that (text right after a closing quote, or the file ending inside quotes), while a legitimately quoted
    multi-line cell passes; only rows spanning lines are re-read, so this costs nothing on ordinary files.
    """
    try:
        for _ in csv.reader(lines, delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        return str(exc)
    return None


def _open_quote_problem(where: str, start: int, end: int, error: str) -> str:
    return (f'{where}:{start}: the row runs on to line {end} ({error}): a quote (") opened in it is not closed where '
            f"its cell ends, so the rows below were read into that cell; close the quote, or write a quote that is "
            f'part of the text as two ("").')


def _unix_newlines(cell: str) -> str:
    """A quoted cell's line breaks as `\n`: a Windows export writes `\r\n` inside cells too, and a model trained on
    `\r` it never meets in production text learns a prompt it will not see."""
    return cell.replace("\r\n", "\n").replace("\r", "\n")


def detect_delimiter(text: str, preferred: str = ",") -> str:
    """The delimiter that splits the header into two or more columns and the most rows after it into as many;
    `preferred` when none does, or on a tie.

    Parsing with each candidate, rather than counting characters, keeps a delimiter inside a quoted cell from
    voting; letting the rows vote keeps a header such as `Nachricht, Text;Abteilung` from choosing the comma.
    """
    candidates = [preferred, *(d for d in DELIMITERS if d != preferred)]
    scores: dict[str, tuple[int, int]] = {}
    for delimiter in candidates:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            header = next(reader, [])
            widths = [len(cells) for _, cells in zip(range(_SAMPLE_ROWS), reader) if cells]
        except csv.Error:
            continue  # read_csv reports it, with its line, if the chosen delimiter meets it too
        if len(header) > 1:
            scores[delimiter] = (widths.count(len(header)), len(header))
    return max(scores, key=scores.__getitem__) if scores else preferred  # max keeps the first of equals


def _check_header(columns: list[str], where: str) -> None:
    if not columns:
        raise SuiteError(f"{where}: empty CSV; the first line must name the columns.")
    # empty names are left alone: spreadsheets export trailing empty columns, and no flag can name one
    repeated = [name for name, count in Counter(columns).items() if count > 1 and name.strip()]
    if repeated:
        names = ", ".join(f"`{name}`" for name in repeated)
        raise SuiteError(
            f"{where}:1: the header names {names} more than once, so only one of those columns could be read; "
            f"rename or remove the others."
        )


def _width_problem(where: str, start: int, end: int, width: int, expected: int, delimiter: str) -> str:
    """What is wrong with a row of `width` cells (lines `start` to `end`) under a header of `expected`, and the fix."""
    at, name = f"{where}:{start}", delimiter_name(delimiter)
    fields = f"{width} field{'' if width == 1 else 's'}, the header has {expected}"
    if end > start:  # a quote left open swallows the lines after it into one cell
        return f'{at}: {fields}, and the row runs on to line {end}; close the quote (") left open in it.'
    if width > expected:
        return f'{at}: {fields}; quote fields that contain {name}s ("...").'
    return f"{at}: {fields}; fill in the missing fields (an empty field still needs its {name}) or remove the row."


@contextmanager
def _field_limit(size: int) -> Iterator[None]:
    """Let one field be as long as the whole text: csv refuses fields over 128 KiB by default, which JSONL accepts.

    The limit is process-wide, so it is restored after.
    """
    previous = csv.field_size_limit()
    csv.field_size_limit(min(max(previous, size), _MAX_FIELD))
    try:
        yield
    finally:
        csv.field_size_limit(previous)
