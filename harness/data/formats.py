"""The data files `harness suite init` reads: told apart by their fields, each turned into the same rows.

A reader turns a file's records (line number, JSON object or CSV row) into `Row`s of (line, input, answer,
instruction), so that de-duplication, the contract and the split never need to know which format it was:

  chat    JSONL `{"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}`, the format of
          OpenAI's fine-tuning API and of TRL: the last assistant turn is the answer (see `read_chat`).
  alpaca  `instruction` / `input` / `output` (JSONL or CSV); an empty `input` is allowed (see `read_alpaca`).
  fields  any other CSV or JSONL: one input field and one answer field, named by flags or guessed by name; a field
          nested inside a JSONL object is named by its path, `doc.body` for {"doc": {"body": ...}}.

A CSV file may be comma-, semicolon-, tab- or pipe-separated (found from its header, see `csvfile.py`); a `.tsv`
file is read the same way. A `.parquet` file is read as JSONL would be, one record per row, and its messages name
the row (counted from 1) where the others name a line.

An answer is text (a label or free text) or a JSON object; which contract it becomes is decided by the caller.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from harness.core.errors import SuiteError
from harness.core.text import fold
from harness.data.contract import json_error, load_json
from harness.data.csvfile import delimiter_name, read_csv
from harness.data.suites import Problems, encoding_problem, show_path

INPUT_GUESSES = ("text", "input", "sentence", "utterance", "question", "query", "prompt", "body", "message", "content")
"""Input fields guessed by name, first found wins: `sentence` is GLUE's and many Hugging Face sets' name for it."""
LABEL_GUESSES = ("label", "category", "intent")
ANSWER_GUESSES = ("output", "answer", "response", "completion", "target")
"""Answer fields guessed by name; a field from LABEL_GUESSES is expected to hold labels, the others anything."""

Record = tuple[int, dict]
"""(1-based line number, the JSON object or CSV row on that line)."""
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
"""Delimited-text files, with the delimiter their suffix suggests (the header decides)."""
SUFFIXES = (".jsonl", *TABLE_SUFFIXES, ".parquet")
"""Every data file `harness suite init` reads."""


@dataclass(frozen=True)
class Row:
    line: int
    """The 1-based line in the source file, so that every message can point at it."""
    input: str
    """What the model reads, stripped."""
    answer: str | dict
    """The reference answer: text (a label or free text) or a JSON object."""
    instruction: str | None = None
    """This row's own instruction (system message); None means the suite's."""
    split: str | None = None
    """The split this row belongs to when its file was given as one (`suite init --test-from`, `--dev-from`); None
    when init chooses its split."""
    file: str | None = None
    """The file `line` is in, as the user typed it, when that is not the --from file."""

    def at(self, where: str) -> str:
        """`file:line` for a message: this row's own file, else `where` (the --from file)."""
        return f"{self.file or where}:{self.line}"


@dataclass(frozen=True)
class Fields:
    """Which fields a `fields` file is read from (unused for chat and alpaca)."""

    input: str | None = None
    answer: str | None = None
    labels_expected: bool = False
    """The answer field was named as a label (--label-field, or guessed from a name such as `label`): free text
    found there is refused instead of silently becoming a text suite."""
    answer_columns: tuple[str, ...] = ()
    """`--output-field customer,amount,currency`: the answer is the JSON object of these fields, each under its own
    name (`answer` then names them all, as given), as a table with a column per extracted field is written."""

    @property
    def named(self) -> tuple[str, ...]:
        """Every field a row is read from."""
        return tuple(filter(None, (self.input, *(self.answer_columns or (self.answer,)))))


@dataclass(frozen=True)
class SourceData:
    """A data file read into rows, with the format it was detected as."""

    format: str
    """`chat`, `alpaca` or `fields`."""
    described: str
    """The format in words, with the fields read, for the user."""
    rows: list[Row]
    fields: Fields
    empty_rows: int = 0
    """CSV rows skipped because every cell was empty (see `csvfile.py`)."""
    notes: tuple[str, ...] = ()
    """How the reader read something unusual (one-element lists taken as their element), for init's notes."""


Reader = Callable[[list[Record], str, Problems], list[Row]]
"""Every format reader: (records, the file as shown to the user, problems) -> rows. A reader adds one problem per
bad line (naming `file:line` and the fix) and leaves that line out; the caller raises them all at once. What it read
in an unusual way it says with `problems.warn`, which becomes one of init's notes."""


def read_source(
    path: Path, input_field: str | None = None, label_field: str | None = None, output_field: str | None = None,
    *, read_like: tuple[str, SourceData] | None = None,
) -> SourceData:
    """Read a .jsonl, .csv or .tsv file, detect its format and return its rows; SuiteError lists every bad line.

    `read_like`: (a file as shown, what it read as): read this one in the same format and from the same fields, as
    a split given in its own file must be (`suite init --test-from`); refused, naming both files, when it cannot be.
    """
    where = show_path(path)
    if read_like is not None and not path.is_file():
        raise SuiteError(f"{where}: file not found; pass an existing data file, with the fields of {read_like[0]}.")
    records, columns, delimiter, empty_rows = read_records(path)
    kind = path.suffix.lower().lstrip(".").upper()
    if kind == "PARQUET":
        kind = "Parquet (a number after `file:` in messages is a row, from 1)"
    if delimiter is not None and delimiter != TABLE_SUFFIXES[path.suffix.lower()]:
        kind = f"{delimiter_name(delimiter)}-separated {kind}"
    fmt = detect_format(columns, named=bool(input_field or label_field or output_field))
    if read_like is not None:
        fmt = _same_format(read_like, fmt, columns + nested_paths(records, columns), where)
    fields = Fields()
    if fmt == "chat":
        reader: Reader = read_chat
        described = f"chat `messages` {kind} (OpenAI fine-tuning / TRL): the last assistant turn is the answer"
    elif fmt == "alpaca":
        reader = read_alpaca
        described = f"alpaca {kind} (`instruction` / `input` / `output`)"
    else:
        fields = (read_like[1].fields if read_like is not None else
                  pick_fields(columns + nested_paths(records, columns), input_field, label_field, output_field, where))
        reader = partial(read_fields, fields=fields)
        described = f"{kind} fields: input `{fields.input}`, answer `{fields.answer}`"
    problems = Problems()
    rows = reader(records, where, problems)
    problems.raise_if_any(where)
    return SourceData(fmt, described, rows, fields, empty_rows, tuple(problems.warnings))


def _same_format(read_like: tuple[str, SourceData], detected: str, names: list[str], where: str) -> str:
    """The format `read_like` was read as, when this file (with fields `names`) can be read that way."""
    other_where, other = read_like
    if other.format == "fields":
        missing = [name for name in other.fields.named if name not in names]
        if missing:
            raise SuiteError(
                f"{where}: no field {', '.join(f'`{name}`' for name in missing)}; it is read as {other_where} is "
                f"(input `{other.fields.input}`, answer `{other.fields.answer}`) and its fields are {names}. Rename "
                f"them to match."
            )
    elif detected != other.format:
        raise SuiteError(f"{where}: not {other.format} lines like {other_where}; give every split's file one format.")
    return other.format


def detect_format(columns: list[str], named: bool) -> str:
    """`chat` when lines carry `messages`, `alpaca` when they carry `instruction` and `output`, else `fields`.

    A field named with a flag means "read these fields", so it always selects `fields`.
    """
    if named:
        return "fields"
    if "messages" in columns:
        return "chat"
    if {"instruction", "output"} <= set(columns):
        return "alpaca"
    return "fields"


# ------------------------------------------------------------------------------------------------ readers

_CHAT_LAYOUT = (
    '{"messages": [{"role": "system", "content": ...} (optional), {"role": "user", "content": ...}, '
    '{"role": "assistant", "content": ...}]}'
)
_SPEAKERS = {"user": "User", "assistant": "Assistant"}


def read_chat(records: list[Record], where: str, problems: Problems) -> list[Row]:
    """Chat lines: the last assistant turn is the answer and a leading system message the row's instruction.

    Multi-turn lines keep their earlier turns: the input becomes a transcript of every turn before the answer,
    `User: ...` and `Assistant: ...` blocks separated by a blank line, ending with the last user turn. A follow-up
    question ("and the second one?") means nothing without them, and a suite example has a single input. A
    one-turn line's input is its user text alone. Only the last assistant turn is scored.
    """
    rows = []
    for line, record in records:
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            problems.add(f"{where}:{line}: `messages` must be a list of {{role, content}} objects: {_CHAT_LAYOUT}.")
            continue
        problem = _chat_problem(messages)
        if problem:
            problems.add(f"{where}:{line}: {problem}")
            continue
        system = messages[0]["content"].strip() if messages[0]["role"] == "system" else None
        *context, last = [m for m in messages if m["role"] != "system"]
        if len(context) == 1:
            text = context[0]["content"].strip()
        else:
            text = "\n\n".join(f"{_SPEAKERS[m['role']]}: {m['content'].strip()}" for m in context)
        rows.append(Row(line, text, as_answer(last["content"]), system))
    return rows


def _chat_problem(messages: list[dict]) -> str | None:
    """What is wrong with one line's turns, in words with the fix, or None."""
    roles = [m.get("role") for m in messages]
    for number, (role, message) in enumerate(zip(roles, messages), start=1):
        if role not in ("system", "user", "assistant") or (role == "system" and number > 1):
            return f"message {number} has role {role!r}; use an optional first system turn, then user and assistant."
        content = message.get("content")
        if role == "assistant" and isinstance(content, dict):
            continue  # a JSON answer given as an object rather than a string
        if not isinstance(content, str):
            return f"the {role} turn (message {number}) has no text `content`; write it as a string."
        if not content.strip():
            return f"the {role} turn (message {number}) is empty; fill it in or remove the line."
    if len(roles) < 2 or roles[-2:] != ["user", "assistant"]:
        return f"the last two turns must be a user turn and the assistant's answer (got roles {roles})."
    return None


def read_alpaca(records: list[Record], where: str, problems: Problems) -> list[Row]:
    """Alpaca lines: `instruction` is the row's instruction, `input` what the model reads, `output` the answer.

    Alpaca leaves `input` empty when the instruction is the whole request ("Name three primary colours."); such a
    line's instruction becomes its input, with no instruction of its own, since an example needs something to
    read. When every line has the same instruction an empty input asks nothing, so that line is refused.
    """
    same_instruction = len(records) > 1 and len({fold(str(r.get("instruction"))) for _, r in records}) == 1
    rows = []
    for line, record in records:
        at = f"{where}:{line}"
        instruction, text = record.get("instruction"), record.get("input") or ""
        answer = as_answer(record.get("output"))
        if not isinstance(instruction, str) or not instruction.strip():
            problems.add(f"{at}: `instruction` is empty or not a string; fill it in or remove the line.")
        elif not isinstance(text, str):
            problems.add(f"{at}: `input` must be a string (or empty), got {type(text).__name__}.")
        elif answer is None:
            problems.add(f"{at}: `output` is empty or not text or a JSON object; fill it in or remove the line.")
        elif text.strip():
            rows.append(Row(line, text.strip(), answer, instruction.strip()))
        elif same_instruction:
            problems.add(
                f"{at}: `input` is empty and every line has the same `instruction`, so this line asks nothing of "
                f"its own; fill in `input` or remove the line."
            )
        else:
            rows.append(Row(line, instruction.strip(), answer))
    return rows


def read_fields(records: list[Record], where: str, problems: Problems, fields: Fields) -> list[Row]:
    """CSV rows or JSONL objects: the input from `fields.input`, the answer from `fields.answer`."""
    rows, unwrapped = [], 0
    names, typed = _answer_names(fields.answer_columns), _typed_columns(records, fields.answer_columns)
    for line, record in records:
        at = f"{where}:{line}"
        text = value_at(record, fields.input)
        value = _object_of(record, names, typed) if fields.answer_columns else \
            value_at(record, fields.answer)
        if _one_item(value):
            value, unwrapped = value[0], unwrapped + 1
        answer = as_answer(value)
        if not isinstance(text, str) or not text.strip():
            problems.add(f"{at}: `{fields.input}` is empty or not a string; fill it in or remove the row.")
        elif isinstance(value, list):
            problems.add(f"{at}: {_list_problem(value, fields.answer)}")
        elif answer is None and fields.answer_columns:
            problems.add(f"{at}: every answer field ({fields.answer}) is empty; fill them in or remove the row.")
        elif answer is None:
            problems.add(f"{at}: `{fields.answer}` is empty or not text or a JSON object; fill it in or remove it.")
        else:
            rows.append(Row(line, text.strip(), answer))
    if unwrapped:
        problems.warn(f"answers: `{fields.answer}` holds a one-element list on {unwrapped} row(s); each is read as "
                      f"its element. Multi-label answers (several in one list) are not supported.")
    return rows


def _object_of(record: dict, names: Mapping[str, str], typed: frozenset[str]) -> dict | None:
    """The answer object of a row with a field per extracted value: each column under its name in the answer
    (`_answer_names`), an empty one left out (an absent key and an empty value score alike). A text cell of a `typed`
    column is read as the JSON it writes."""
    answer = {}
    for column, name in names.items():
        value = value_at(record, column)
        if isinstance(value, str):
            value = _json_cell(value.strip()) if column in typed else value.strip()
        if value is not None and value != "":
            answer[name] = value
    return answer or None


def _answer_names(columns: tuple[str, ...]) -> dict[str, str]:
    """Each answer column's key in the answer: its last part, or its whole dotted name where two would share one."""
    last = [column.rsplit(".", 1)[-1] for column in columns]
    return {column: name if last.count(name) == 1 else column for column, name in zip(columns, last, strict=True)}


def _typed_columns(records: list[Record], columns: tuple[str, ...]) -> frozenset[str]:
    """The answer columns whose every text cell reads as a JSON number, true or false, list or object (a CSV holds
    only text: "4417.50" is an amount, `["lamp"]` a list). A column where some cell does not ("02134", a code with
    its zero) stays text throughout, so that one field is never a number in some answers and text in others."""
    typed = set()
    for column in columns:
        cells = [v.strip() for _, record in records if isinstance(v := value_at(record, column), str) and v.strip()]
        if cells and all(not isinstance(_json_cell(cell), str) for cell in cells):
            typed.add(column)
    return frozenset(typed)


def _json_cell(text: str) -> object:
    """A cell as the JSON it writes, or the text itself where it writes none (or NaN, Infinity)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, float) and not math.isfinite(value):  # NaN, Infinity: JSON reads them, no answer holds them
        return text
    return value if isinstance(value, (int, float, bool, list, dict)) else text


def _one_item(value: object) -> bool:
    """A list holding one label or text (`["PlayMusic"]`), as multi-label exports write a single label."""
    return isinstance(value, list) and len(value) == 1 and isinstance(value[0], (str, int, float, bool))


def _list_problem(value: list, name: str) -> str:
    """Why a list cannot be an answer, in words with the fix; the same words on every row, so rows group."""
    if not value:
        return f"`{name}` is an empty list; give the row its label or answer, or remove the row."
    if all(isinstance(item, (str, int, float, bool)) for item in value):
        return (f"`{name}` is a list of several values: multi-label answers are not supported, so give each row one "
                f"label (a one-element list is read as its element), or remove the row.")
    return (f"`{name}` is a JSON list, not text or a JSON object; wrap it in an object (`{{\"{name}\": [...]}}`) to "
            f"build an extraction suite.")


def nested_paths(records: list[Record], columns: list[str]) -> list[str]:
    """Dotted paths to the fields nested inside top-level objects (`doc`, `doc.body`, ...), in the order first seen,
    so that flags can name them and messages can list them; the first records suffice to name the fields."""
    paths: dict[str, None] = {}

    def walk(prefix: str, value: object, depth: int) -> None:
        if not isinstance(value, dict) or depth > _MAX_DEPTH:
            return
        for key, item in value.items():
            paths.setdefault(f"{prefix}.{key}")
            walk(f"{prefix}.{key}", item, depth + 1)

    for _, record in records[:_PATH_SAMPLE]:
        for name in columns:
            walk(name, record.get(name), 1)
    return [path for path in paths if path not in columns]


_PATH_SAMPLE = 1000
_MAX_DEPTH = 4


def value_at(record: dict, name: str) -> object:
    """The field `name` of a record: a top-level key, else a dotted path into nested objects; None when absent."""
    if name in record:
        return record[name]
    value: object = record
    for key in name.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def as_answer(value: object) -> str | dict | None:
    """An answer as stripped text or a JSON object; None when it is empty or of another type.

    A string holding a JSON object is that object, because CSV cells and chat turns can only hold strings.
    Numbers and booleans become their JSON text, so JSONL labels such as 0/1 or true/false work.
    """
    if isinstance(value, bool):
        return json.dumps(value)  # "true"/"false", as the JSON was written, not Python's "True"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = load_json(text)
        except json.JSONDecodeError:
            return text  # free text that happens to start with a brace
        if isinstance(parsed, dict):
            return parsed
    return text


# ------------------------------------------------------------------------------------------ fields and files


def pick_fields(
    columns: list[str], input_field: str | None, label_field: str | None, output_field: str | None, where: str
) -> Fields:
    """The input and answer fields: as named by the flags, else guessed from common names."""
    if label_field and output_field:
        raise SuiteError("pass either --label-field (a closed label set) or --output-field (any answer), not both.")
    input_name = _pick_field(input_field, INPUT_GUESSES, columns, "input", "--input-field", where)
    if output_field and output_field not in columns and "," in output_field:
        named = [_pick_field(name.strip(), (), columns, "answer", "each name of --output-field", where)
                 for name in output_field.split(",") if name.strip()]
        if input_name in named:
            raise SuiteError(f"{where}: --output-field names the input field `{input_name}` among the answer's; "
                             "name the input with --input-field and only the extracted fields with --output-field.")
        return Fields(input_name, ",".join(named), answer_columns=tuple(dict.fromkeys(named)))
    if label_field or output_field:
        flag = "--label-field" if label_field else "--output-field"
        answer = _pick_field(label_field or output_field, (), columns, "answer", flag, where)
        return Fields(input_name, answer, labels_expected=bool(label_field))
    flags = ("--label-field (labels) or --output-field (text or JSON objects; several fields, `--output-field "
             "customer,amount,currency`, make one JSON object)")
    answer = _pick_field(None, LABEL_GUESSES + ANSWER_GUESSES, columns, "answer", flags, where)
    return Fields(input_name, answer, labels_expected=answer.lower() in LABEL_GUESSES)


def _pick_field(
    given: str | None, guesses: tuple[str, ...], columns: list[str], role: str, flag: str, where: str
) -> str:
    if given:
        if given in columns:
            return given
        same = [c for c in columns if c.strip().lower() == given.strip().lower()]  # `Colour` for `colour`
        if len(same) == 1:
            return same[0]
        raise SuiteError(f"{where}: no field {given!r}; {flag} must be one of {columns}.")
    guessed = guess_field(guesses, columns)
    if guessed is not None:
        return guessed
    if any(not c.strip() or len(c.split()) >= 3 for c in columns):  # `,`, or a sentence for a name
        raise SuiteError(f"{where}: its first row {columns} does not name its columns: it looks like a row of data, or "
                         "its names are blank. Add a header row that names each column (e.g. `text,label`), then "
                         f"pass {flag} if the names are not common ones.")
    raise SuiteError(f"{where}: cannot guess the {role} field (looked for {list(guesses)}); pass {flag} with one of "
                     f"{columns}.")


def guess_field(guesses: tuple[str, ...], columns: list[str]) -> str | None:
    """The first of `guesses` among `columns`, compared without case, as the file spells it; None when none is."""
    by_lower = {c.lower(): c for c in columns}
    return next((by_lower[guess] for guess in guesses if guess in by_lower), None)


def read_records(source: Path) -> tuple[list[Record], list[str], str | None, int]:
    """(line number, record) pairs, the field names seen, the delimiter of a CSV file (None for JSONL) and the CSV
    rows of empty cells skipped; UTF-8 only (a BOM is skipped)."""
    where = show_path(source)
    if source.is_dir():
        raise SuiteError(f"{where} is a directory; --from takes one data file: {_data_files_in(source)}.")
    if not source.is_file():
        raise SuiteError(f"{where}: file not found; pass an existing .jsonl, .csv, .tsv or .parquet file to --from.")
    suffix = source.suffix.lower()
    if suffix not in SUFFIXES:
        hint = f" (a JSON array converts with `jq -c '.[]' {source.name} > data.jsonl`)" if suffix == ".json" else ""
        raise SuiteError(f"{where}: unsupported file type {suffix!r}; convert it to .jsonl or .csv{hint} (.parquet "
                         f"is read too).")
    if suffix == ".parquet":
        records, columns = parquet_records(source, where)
        return records, columns, None, 0
    text = _utf8_text(source.read_bytes(), source.name, where)
    if suffix in TABLE_SUFFIXES:
        table = read_csv(text, where, preferred=TABLE_SUFFIXES[suffix])
        return table.records, table.columns, table.delimiter, table.empty_rows
    records, columns = jsonl_records(text, where)
    return records, columns, None, 0


def _utf8_text(data: bytes, name: str, where: str) -> str:
    """The file's text (a UTF-8 BOM skipped); SuiteError with the `iconv` that re-saves it as UTF-8 when it is not."""
    problem = encoding_problem(data, name)  # validate's check: UTF-16 (Excel's "Unicode Text"), Windows-1252, Latin-1
    if problem is not None:
        raise SuiteError(f"{where}:{problem}")
    return data.decode("utf-8-sig")  # -sig: spreadsheet exports often start with a BOM


def _data_files_in(folder: Path) -> str:
    """The data files in a folder that --from can take, as the user would pass them, for a message."""
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    if not found:
        return "a .jsonl or .csv file (this folder has none)"
    shown = ", ".join(show_path(p) for p in found[:3])
    return f"one of {shown}{f' (and {len(found) - 3} more)' if len(found) > 3 else ''}"


def parquet_records(source: Path, where: str) -> tuple[list[Record], list[str]]:
    """(row number from 1, row as a dict) of a Parquet file and its column names; nested columns become dicts and
    lists, as in JSONL. SuiteError when the file is not Parquet or has no rows."""
    import pyarrow.parquet as pq  # installed with `datasets`; imported here since only Parquet input needs it

    try:
        table = pq.read_table(source)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError family for unreadable files
        raise SuiteError(f"{where}: not readable as Parquet ({exc}); export it again, or as .jsonl or .csv.") from None
    if table.num_rows == 0:
        raise SuiteError(f"{where}: the file has columns ({', '.join(table.column_names)}) and no rows; add examples.")
    return list(enumerate(table.to_pylist(), start=1)), list(table.column_names)


def jsonl_records(text: str, where: str) -> tuple[list[Record], list[str]]:
    """(line number, object) of every non-blank line and the field names seen; SuiteError lists every bad line."""
    problems, columns = Problems(), {}
    records = []
    # split on "\n" only: str.splitlines would also break on U+2028 etc., which are legal inside JSON strings
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = load_json(line)
        except json.JSONDecodeError as exc:
            problems.add(f"{where}:{number}: malformed JSON ({json_error(exc, f'column {exc.colno}')}); one object per "
                         "line.")
            continue
        if not isinstance(record, dict):
            problems.add(f"{where}:{number}: expected a JSON object, got {type(record).__name__}.")
            continue
        try:
            json.dumps(record, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            problems.add(f"{where}:{number}: a text holds an unpaired surrogate escape (such as \\ud800), which is not "
                         "a character; fix or remove the escape.")
            continue
        columns.update(dict.fromkeys(record))
        records.append((number, record))
    problems.raise_if_any(where)
    if not records:
        raise SuiteError(f"{where}: the file has no lines; write one JSON object per line.")
    return records, list(columns)
