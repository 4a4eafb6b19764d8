"""`harness suite init`: turn a user's JSONL or CSV file into a validated suite folder.

It de-duplicates (after folding case and whitespace), splits with a seed (stratified by label), and writes a
suite.yaml for the user to edit. The folder appears complete or not at all.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.core.errors import SuiteError
from harness.core.text import fold
from harness.core.yamlfile import dump_yaml
from harness.data.suites import RESERVED_DIRS, Problems, load_suite, show_path

INPUT_GUESSES = ("text", "input", "utterance", "question")
LABEL_GUESSES = ("label", "category", "intent")
LABEL_SCORERS = ["format_compliance", "hallucination_rate", "task_accuracy"]
JSON_SCORERS = LABEL_SCORERS + ["field_precision", "field_recall", "field_f1"]


def init_suite(
    name: str,
    source: Path,
    input_field: str | None,
    label_field: str | None,
    output_field: str | None,
    seed: int = 0,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.1,
    suites_dir: Path = Path("suites"),
) -> Path:
    """Build suites/NAME from a JSONL or CSV file: dedupe, split (stratified by label), write, validate.

    The folder appears complete or not at all (built in a temp dir, validated, then renamed), so a failed init
    never leaves a half-written suite that a later run would pick up. The cleaning report is in suite.yaml.
    """
    source = Path(source)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or name in RESERVED_DIRS:
        raise SuiteError(
            f"suite name {name!r} is not allowed; use letters, digits, '.', '_' or '-' (not starting with '.' or "
            f"'_', and not {' or '.join(RESERVED_DIRS)})."
        )
    dest = Path(suites_dir) / name
    if dest.exists():
        raise SuiteError(
            f"{show_path(dest)} already exists; refusing to overwrite it. Choose another name or delete the folder."
        )
    if not (0 < dev_fraction < 1 and 0 < test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise SuiteError(f"dev/test fractions {dev_fraction}/{test_fraction} must be in (0, 1) and sum below 1.")
    rows, columns = _read_rows(source)
    where = show_path(source)
    input_field = _pick_field(input_field, INPUT_GUESSES, columns, "input", where)
    if label_field and output_field:
        raise SuiteError("pass either --label-field (a closed label set) or --output-field (JSON objects), not both.")
    if not output_field:
        label_field = _pick_field(label_field, LABEL_GUESSES, columns, "label", where, extra="or --output-field")
    else:
        output_field = _pick_field(output_field, (), columns, "output", where)

    items, problems = [], Problems()
    for line, row in rows:
        at = f"{where}:{line}"
        text = row.get(input_field)
        if not isinstance(text, str) or not text.strip():
            problems.add(f"{at}: `{input_field}` is empty or not a string; fill it in or remove the row.")
            continue
        answer = _row_answer(row, label_field, output_field, at, problems)
        if answer is not None:
            items.append((line, text.strip(), answer))
    problems.raise_if_any(where)

    kept, dropped, conflicting = _dedupe(items)
    if len(kept) < 3:
        raise SuiteError(f"{where}: only {len(kept)} distinct example(s) after de-duplication; need at least 3.")

    train, dev, test = _split(kept, seed, dev_fraction, test_fraction, stratify=output_field is None)
    if not dev or not test:
        raise SuiteError(
            f"{where}: too few examples ({len(kept)}) for non-empty dev and test splits at fractions "
            f"{dev_fraction}/{test_fraction}; add data or raise the dev/test fractions."
        )
    if output_field is None:
        key = label_field
        contract: dict[str, Any] = {"kind": "label", "key": key, "labels": sorted({a for _, _, a in kept})}
        outputs = lambda a: {key: a}  # noqa: E731
    else:
        contract = {"kind": "json", **_infer_schema([a for _, _, a in kept]), "grounded": False}
        outputs = lambda a: a  # noqa: E731
    meta = {
        "name": name,
        "version": "1.0.0",
        "task": "classification" if output_field is None else "extraction",
        "description": f"Built from {source.name} by `harness suite init`; edit this description.",
        "instruction": _default_instruction(label_field, output_field),
        "output": contract,
        "scorers": LABEL_SCORERS if output_field is None else JSON_SCORERS,
        "source": {
            "file": source.name,
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "fields": {"input": input_field, "label": label_field, "output": output_field},
            "seed": seed,
            "fractions": {"dev": dev_fraction, "test": test_fraction},
        },
        "cleaning": {
            "dropped": {"duplicates": dropped},
            "duplicates_with_a_different_answer": conflicting,
            "note": "inputs stripped; duplicates compare inputs after folding case/whitespace; first kept",
        },
    }

    files = {"suite.yaml": _SUITE_HEADER + dump_yaml(meta)}
    for split, part in (("train", train), ("dev", dev), ("test", test)):
        lines = [json.dumps({"input": t, "output": outputs(a)}, ensure_ascii=False) for _, t, a in part]
        files[f"{split}.jsonl"] = "\n".join(lines) + "\n"
    _publish(dest, files)
    return dest


def _dedupe(items: list[tuple[int, str, Any]]) -> tuple[list, int, int]:
    """(kept, dropped, dropped with an answer that differs from the kept copy); the first occurrence wins."""
    kept, seen, dropped, conflicting = [], {}, 0, 0
    for line, text, answer in items:
        key = fold(text)
        if key in seen:
            dropped += 1
            conflicting += seen[key] != answer
            continue
        seen[key] = answer
        kept.append((line, text, answer))
    return kept, dropped, conflicting


def _publish(dest: Path, files: dict[str, str]) -> None:
    """Write into a temp dir next to `dest`, validate it as a suite, then rename: all or nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the published folder should not be
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        load_suite(str(tmp))  # never publish a suite that would not load
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_SUITE_HEADER = """\
# Generated by `harness suite init`. Edit `description` and `instruction` (the system prompt for every method;
# the output contract below is appended for prompting, so do not repeat the labels there). Bump `version`
# whenever you change the data or the contract: it is stored with every score.
"""


def _default_instruction(label_field: str | None, output_field: str | None) -> str:
    if output_field is None:
        return f"Read the input and classify it: name its {label_field}."
    return "Read the input and extract the requested fields as a JSON object."


def _read_rows(source: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    """(line number, row) pairs and the column names; JSONL or CSV, UTF-8 only."""
    where = show_path(source)
    if not source.is_file():
        raise SuiteError(f"{where}: file not found; pass an existing .jsonl or .csv file to --from.")
    suffix = source.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise SuiteError(f"{where}: unsupported file type {suffix!r}; convert it to .jsonl or .csv.")
    data = source.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # -sig: spreadsheet exports often start with a BOM
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SuiteError(
            f"{where}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); re-save it as UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {source.name} > fixed{suffix}` if it is Latin-1."
        ) from None
    rows: list[tuple[int, dict]] = []
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = list(reader.fieldnames or [])
        if not columns:
            raise SuiteError(f"{where}: empty CSV; the first line must name the columns.")
        line = reader.line_num
        for row in reader:
            rows.append((line + 1, row))
            line = reader.line_num
        return rows, columns
    problems, columns_seen = Problems(), {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.add(f"{where}:{number}: malformed JSON ({exc.msg} at column {exc.colno}); one object per line.")
            continue
        if not isinstance(row, dict):
            problems.add(f"{where}:{number}: expected a JSON object, got {type(row).__name__}.")
            continue
        columns_seen.update(dict.fromkeys(row))
        rows.append((number, row))
    problems.raise_if_any(where)
    return rows, list(columns_seen)


def _pick_field(
    given: str | None, guesses: tuple[str, ...], columns: list[str], role: str, where: str, extra: str = ""
) -> str:
    if given:
        if given not in columns:
            raise SuiteError(f"{where}: no field {given!r}; --{role}-field must be one of {columns}.")
        return given
    by_lower = {c.lower(): c for c in columns}
    for guess in guesses:
        if guess in by_lower:
            return by_lower[guess]
    raise SuiteError(
        f"{where}: cannot guess the {role} field (looked for {list(guesses)}); pass --{role}-field "
        f"{extra + ' ' if extra else ''}with one of {columns}."
    )


def _row_answer(row: dict, label_field: str | None, output_field: str | None, at: str, problems: Problems) -> Any:
    if output_field is None:
        label = row.get(label_field)
        if isinstance(label, (int, float)) and not isinstance(label, bool):
            label = str(label)  # JSONL labels such as 0/1 become the strings a label contract needs
        if not isinstance(label, str) or not label.strip():
            problems.add(f"{at}: `{label_field}` is empty or not a string; fill it in or remove the row.")
            return None
        return label.strip()
    value = row.get(output_field)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if not isinstance(value, dict):
        problems.add(
            f"{at}: `{output_field}` is not a JSON object; --output-field needs objects (use --label-field for "
            f"a closed set of strings)."
        )
        return None
    return value


def _split(items: list, seed: int, dev_fraction: float, test_fraction: float, stratify: bool):
    """Seeded (train, dev, test), each in source order; per-label carving keeps label proportions."""
    rng = random.Random(seed)
    groups: dict[Any, list] = {}
    for item in items:
        groups.setdefault(item[2] if stratify else None, []).append(item)
    dev, test, rest = [], [], []
    for label in sorted(groups, key=str):
        group = list(groups[label])
        rng.shuffle(group)
        n_test = round(len(group) * test_fraction)
        n_dev = round(len(group) * dev_fraction)
        test += group[:n_test]
        dev += group[n_test : n_test + n_dev]
        rest.append(group[n_test + n_dev :])
    # small data: per-label rounding can leave dev or test empty; take one from the largest remainder instead
    for part in (test, dev):
        largest = max(rest, key=len)
        if not part and len(largest) > 1:
            part.append(largest.pop())
    chosen = {id(x) for x in dev + test}
    train = [x for x in items if id(x) not in chosen]
    order = {id(x): i for i, x in enumerate(items)}
    return train, sorted(dev, key=lambda x: order[id(x)]), sorted(test, key=lambda x: order[id(x)])


_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
               (dict, "object"), (type(None), "null"))


def _infer_schema(objects: list[dict]) -> dict[str, Any]:
    """A permissive schema: every key seen, with the JSON types seen for it, none required."""
    types: dict[str, set[str]] = {}
    for obj in objects:
        for key, value in obj.items():
            kind = next(name for py, name in _JSON_TYPES if isinstance(value, py))
            types.setdefault(key, set()).add(kind)
    properties = {}
    for key, kinds in types.items():
        if {"integer", "number"} <= kinds:
            kinds.discard("integer")
        ordered = sorted(kinds)
        properties[key] = {"type": ordered[0] if len(ordered) == 1 else ordered}
    return {"schema": {"type": "object", "properties": properties}, "fields": list(types)}
