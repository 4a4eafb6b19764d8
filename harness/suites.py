"""Evaluation suites: a versioned folder with suite.yaml and train/dev/test JSONL splits.

Loading validates everything up front (format, contract, duplicates, contamination between splits) because a
bad split found halfway through a sweep wastes hours and a contaminated one silently inflates every score.
Problems are collected (up to 10) so one run shows the user everything to fix.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import shutil
import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.contract import OutputContract
from harness.errors import SuiteError

SPLITS = ("train", "dev", "test")
MAX_PROBLEMS = 10
RESERVED_DIRS = ("general", "_build")
"""Folders under suites/ that hold shared data or build scripts, not task suites."""
SUITE_KEYS = ("name", "version", "task", "description", "instruction", "output", "scorers", "source", "cleaning")
INPUT_GUESSES = ("text", "input", "utterance", "question")
LABEL_GUESSES = ("label", "category", "intent")
LABEL_SCORERS = ["format_compliance", "hallucination_rate", "task_accuracy"]
JSON_SCORERS = LABEL_SCORERS + ["field_precision", "field_recall", "field_f1"]


@dataclass(frozen=True)
class Example:
    id: str
    """Stable id: `<split>:<line number>` in the split's JSONL file (1-based)."""
    input: str
    """The text the model sees (the user turn)."""
    target: str
    """The exact reference answer text, e.g. `{"intent": "card_arrival"}`."""
    instruction: str | None = None
    """A per-example instruction from the row (or its system message); None means use the suite's."""


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    task: str
    """`classification` or `extraction` (free text for display; the contract decides scoring)."""
    instruction: str
    """The task statement, used as the system prompt. The contract's description is appended for prompting."""
    contract: OutputContract
    splits: dict[str, tuple[Example, ...]]
    split_sha256: dict[str, str]
    """sha256 of each split file's bytes, stored with every trial."""
    path: Path
    scorers: tuple[str, ...] = ()
    info: dict = field(default_factory=dict)
    """Free-form provenance from suite.yaml (source, license, cleaning report)."""


def normalize(text: str) -> str:
    """The key for duplicate/overlap checks: case and whitespace differences do not make a new example."""
    return " ".join(text.casefold().split())


def _show(path: Path) -> str:
    """A path as the user most likely typed it (relative to the working directory when inside it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _Problems:
    """Collects problems so the user sees up to MAX_PROBLEMS at once instead of fixing them one per run."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def raise_if_any(self, what: str) -> None:
        if not self.items:
            return
        shown = self.items[:MAX_PROBLEMS]
        lines = [f"{what}: {len(self.items)} problem(s):"] + [f"  - {p}" for p in shown]
        if len(self.items) > MAX_PROBLEMS:
            lines.append(f"  and {len(self.items) - MAX_PROBLEMS} more")
        raise SuiteError("\n".join(lines))


# --------------------------------------------------------------------------------------------- locating


def _repo_suites_dir() -> Path:
    from harness.paths import repo_root

    return repo_root() / "suites"


def list_suites(suites_dir: Path | None = None) -> list[str]:
    """Names of the folders under suites/ that are suites (have a suite.yaml); shared-data folders are not."""
    root = suites_dir if suites_dir is not None else _repo_suites_dir()
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir()
        and not p.name.startswith((".", "_"))
        and p.name not in RESERVED_DIRS
        and (p / "suite.yaml").is_file()
    )


def resolve_suite_path(name_or_path: str) -> Path:
    """An existing directory as given, else ./suites/NAME, else the repo's bundled suites/NAME."""
    given = Path(name_or_path)
    candidates = [given, Path.cwd() / "suites" / name_or_path, _repo_suites_dir() / name_or_path]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    available = sorted(set(list_suites(Path.cwd() / "suites")) | set(list_suites()))
    raise SuiteError(
        f"suite {name_or_path!r} not found (looked for the directory itself, ./suites/{name_or_path} and "
        f"{_show(candidates[2])}). Pass an existing suite folder or one of: {', '.join(available) or '(none)'}; "
        f"create a new one with `harness suite init NAME --from FILE`."
    )


# ----------------------------------------------------------------------------------------------- loading


def load_suite(name_or_path: str) -> Suite:
    """Load and validate a suite; raise one SuiteError listing every problem found (up to 10 shown)."""
    path = resolve_suite_path(str(name_or_path))
    yaml_path = path / "suite.yaml"
    if path.name in RESERVED_DIRS or not yaml_path.is_file():
        raise SuiteError(
            f"{_show(path)} is not a suite: it has no suite.yaml. Pick a suite folder (one of: "
            f"{', '.join(list_suites()) or '(none)'}) or create one with `harness suite init NAME --from FILE`."
        )
    meta = _load_meta(yaml_path)
    problems = _Problems()
    splits: dict[str, tuple[Example, ...]] = {}
    shas: dict[str, str] = {}
    for split in SPLITS:
        loaded = _load_split(path / f"{split}.jsonl", split, meta["contract"], problems)
        if loaded is not None:
            splits[split], shas[split] = loaded
    _check_duplicates(path, splits, problems)
    problems.raise_if_any(_show(path))
    return Suite(
        name=meta["name"],
        version=meta["version"],
        task=meta["task"],
        instruction=meta["instruction"],
        contract=meta["contract"],
        splits=splits,
        split_sha256=shas,
        path=path,
        scorers=meta["scorers"],
        info=meta["info"],
    )


def _load_meta(yaml_path: Path) -> dict[str, Any]:
    where = _show(yaml_path)
    try:
        raw = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{where}: not UTF-8 ({exc.reason}); re-save the file as UTF-8.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SuiteError(f"{where}{at}: not valid YAML ({problem}); fix the syntax there.") from None
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: must be a YAML mapping with name, version, instruction and output.")
    problems = _Problems()
    unknown = sorted(set(raw) - set(SUITE_KEYS))
    if unknown:
        problems.add(f"{where}: unknown key(s) {unknown}; allowed keys are {list(SUITE_KEYS)} (check the spelling).")
    for key in ("name", "instruction"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            problems.add(f"{where}: `{key}` must be a non-empty string.")
    version = raw.get("version")
    if not isinstance(version, str) or not version.strip():
        problems.add(f'{where}: `version` must be a quoted string, e.g. version: "1.0.0" (got {version!r}).')
    task = raw.get("task", "")
    if not isinstance(task, str):
        problems.add(f"{where}: `task` must be a string such as classification or extraction.")
    scorers = raw.get("scorers", [])
    if not isinstance(scorers, list) or not all(isinstance(s, str) and s for s in scorers):
        problems.add(f"{where}: `scorers` must be a list of scorer names, e.g. [format_compliance, task_accuracy].")
    problems.raise_if_any(where)
    contract = OutputContract.from_dict(raw.get("output"), where)
    info = {k: raw[k] for k in ("description", "source", "cleaning") if k in raw}
    return {
        "name": raw["name"].strip(),
        "version": version.strip(),
        "task": task,
        "instruction": raw["instruction"].strip(),
        "contract": contract,
        "scorers": tuple(scorers),
        "info": info,
    }


def _load_split(
    path: Path, split: str, contract: OutputContract, problems: _Problems
) -> tuple[tuple[Example, ...], str] | None:
    where = _show(path)
    if not path.is_file():
        problems.add(f"{where}: missing; every suite needs {', '.join(s + '.jsonl' for s in SPLITS)}.")
        return None
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.add(f"{where}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); re-save the file as UTF-8.")
        return None
    examples = []
    check = _TargetCheck(contract)
    # split on "\n" only: str.splitlines would also break on U+2028 etc., which are legal inside JSON strings
    for number, line in enumerate(text.lstrip("\ufeff").split("\n"), start=1):
        if not line.strip():
            continue
        at = f"{where}:{number}"
        row = _parse_row(line, at, problems)
        if row is None:
            continue
        instruction, input_text, target = row
        problem = check(target, input_text)
        if problem:
            problems.add(f"{at}: {problem}")
            continue
        examples.append(Example(id=f"{split}:{number}", input=input_text, target=target, instruction=instruction))
    if not examples and not any(p.startswith(where) for p in problems.items):
        problems.add(f"{where}: empty; add at least one example (one JSON object per line).")
    return tuple(examples), hashlib.sha256(data).hexdigest()


def _parse_row(line: str, at: str, problems: _Problems) -> tuple[str | None, str, str] | None:
    """(instruction, input, target) from one JSONL line in either accepted format, or None after a problem."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        problems.add(f"{at}: malformed JSON ({exc.msg} at column {exc.colno}); write one JSON object per line.")
        return None
    if not isinstance(row, dict):
        problems.add(f"{at}: expected a JSON object, got {type(row).__name__}.")
        return None
    if "messages" in row:
        return _parse_messages(row, at, problems)
    missing = [k for k in ("input", "output") if k not in row]
    if missing:
        problems.add(
            f"{at}: missing field(s) {missing}; each line needs `input` and `output` (and optionally "
            f"`instruction`), or `messages`."
        )
        return None
    instruction, input_text, output = row.get("instruction"), row["input"], row["output"]
    if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
        problems.add(f"{at}: `instruction` must be a non-empty string when present; remove it or fill it in.")
        return None
    if not isinstance(input_text, str) or not input_text.strip():
        problems.add(f"{at}: `input` must be a non-empty string.")
        return None
    if isinstance(output, dict):
        output = json.dumps(output, ensure_ascii=False)
    if not isinstance(output, str) or not output.strip():
        problems.add(f"{at}: `output` must be a JSON object or a non-empty string holding one.")
        return None
    return instruction, input_text, output


_MESSAGES_FIX = (
    'use [{"role": "system", "content": ...} (optional), {"role": "user", "content": ...}, '
    '{"role": "assistant", "content": ...}]'
)


def _parse_messages(row: dict, at: str, problems: _Problems) -> tuple[str | None, str, str] | None:
    messages = row["messages"]
    ok = isinstance(messages, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), (str, dict))
        for m in messages
    )
    roles = [m["role"] for m in messages] if ok else []
    if roles not in (["user", "assistant"], ["system", "user", "assistant"]):
        got = roles if ok else "not a list of {role, content} objects"
        problems.add(f"{at}: bad `messages` format (roles {got}); {_MESSAGES_FIX}.")
        return None
    system = messages[0]["content"] if roles[0] == "system" else None
    user, assistant = messages[-2]["content"], messages[-1]["content"]
    if isinstance(assistant, dict):
        assistant = json.dumps(assistant, ensure_ascii=False)
    if not all(isinstance(c, str) and c.strip() for c in (user, assistant)) or (
        system is not None and (not isinstance(system, str) or not system.strip())
    ):
        problems.add(f"{at}: bad `messages` format (empty or non-string content); {_MESSAGES_FIX}.")
        return None
    return system, user, assistant


class _TargetCheck:
    """Checks a reference answer against the contract: parse_target plus grounding for grounded contracts."""

    def __init__(self, contract: OutputContract) -> None:
        from harness.contract import parse_target

        self.contract = contract
        self.parse = parse_target

    def __call__(self, target: str, input_text: str) -> str | None:
        try:
            value = self.parse(target, self.contract)
        except ValueError as exc:
            return str(exc)
        if self.contract.kind == "json" and self.contract.grounded:
            # a correct reference that is not grounded would be scored as a hallucination
            folded = normalize(input_text)
            for key, item in value.items():
                for s in item if isinstance(item, list) else [item]:
                    if isinstance(s, str) and normalize(s) not in folded:
                        return (
                            f"value {s!r} of {key!r} does not appear in the input, but the contract is grounded; "
                            f"copy the value from the input or set `output.grounded: false`."
                        )
        return None


def _check_duplicates(path: Path, splits: dict[str, tuple[Example, ...]], problems: _Problems) -> None:
    """Duplicates inflate a split's weight; overlap between splits is contamination and is refused."""
    first: dict[str, dict[str, str]] = {}
    for split, examples in splits.items():
        seen: dict[str, str] = {}
        for ex in examples:
            key = normalize(ex.input)
            line = ex.id.split(":", 1)[1]
            if key in seen:
                problems.add(
                    f"{_show(path / f'{split}.jsonl')}:{line}: duplicate input (same as line {seen[key]} after "
                    f"folding case/whitespace); remove one of them."
                )
            else:
                seen[key] = line
        first[split] = seen
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        if a not in first or b not in first:
            continue
        for key, line in first[b].items():
            if key in first[a]:
                problems.add(
                    f"{_show(path / f'{b}.jsonl')}:{line}: input also in {a}.jsonl:{first[a][key]} "
                    f"(contamination between splits); remove it from one of them."
                )


# ------------------------------------------------------------------------------------------------- stats


def suite_stats(suite: Suite) -> dict[str, dict[str, Any]]:
    """Per split: size, label distribution (label) or key counts (json), and input/target lengths in chars."""
    from harness.contract import parse_target

    stats: dict[str, dict[str, Any]] = {}
    for split, examples in suite.splits.items():
        values = [parse_target(ex.target, suite.contract) for ex in examples]
        entry: dict[str, Any] = {
            "n": len(examples),
            "input_chars": _lengths([len(ex.input) for ex in examples]),
            "target_chars": _lengths([len(ex.target) for ex in examples]),
        }
        if suite.contract.kind == "label":
            counts = Counter(v[suite.contract.key] for v in values)
            entry["labels"] = {label: counts.get(label, 0) for label in suite.contract.labels}
            entry["labels_missing"] = [label for label in suite.contract.labels if not counts.get(label)]
        else:
            entry["keys"] = dict(Counter(k for v in values for k in v).most_common())
            entry["empty_objects"] = sum(1 for v in values if not v)
        stats[split] = entry
    return stats


def _lengths(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "mean": 0.0, "max": 0}
    return {"min": min(values), "mean": round(statistics.fmean(values), 1), "max": max(values)}


# -------------------------------------------------------------------------------------------------- init


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
            f"{_show(dest)} already exists; refusing to overwrite it. Choose another name or delete the folder."
        )
    if not (0 < dev_fraction < 1 and 0 < test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise SuiteError(f"dev/test fractions {dev_fraction}/{test_fraction} must be in (0, 1) and sum below 1.")
    rows, columns = _read_rows(source)
    where = _show(source)
    input_field = _pick_field(input_field, INPUT_GUESSES, columns, "input", where)
    if label_field and output_field:
        raise SuiteError("pass either --label-field (a closed label set) or --output-field (JSON objects), not both.")
    if not output_field:
        label_field = _pick_field(label_field, LABEL_GUESSES, columns, "label", where, extra="or --output-field")
    else:
        output_field = _pick_field(output_field, (), columns, "output", where)

    items, problems = [], _Problems()
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

    files = {"suite.yaml": _SUITE_HEADER + _dump_yaml(meta)}
    for split, part in (("train", train), ("dev", dev), ("test", test)):
        lines = [json.dumps({"input": t, "output": outputs(a)}, ensure_ascii=False) for _, t, a in part]
        files[f"{split}.jsonl"] = "\n".join(lines) + "\n"
    _publish(dest, files)
    return dest


def _dedupe(items: list[tuple[int, str, Any]]) -> tuple[list, int, int]:
    """(kept, dropped, dropped with an answer that differs from the kept copy); the first occurrence wins."""
    kept, seen, dropped, conflicting = [], {}, 0, 0
    for line, text, answer in items:
        key = normalize(text)
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


class _Dumper(yaml.SafeDumper):
    """Quotes strings YAML would misread once edited (`1.0` is a float) or garble (edge whitespace, newlines)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    quote = "\n" in value or value != value.strip() or re.fullmatch(r"[\d.]+", value) is not None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if quote else None)


_Dumper.ignore_aliases = lambda self, data: True  # a shared sub-schema must not become &id001 / *id001
_Dumper.add_representer(str, _represent_str)


def _dump_yaml(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def _default_instruction(label_field: str | None, output_field: str | None) -> str:
    if output_field is None:
        return f"Read the input and classify it: name its {label_field}."
    return "Read the input and extract the requested fields as a JSON object."


def _read_rows(source: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    """(line number, row) pairs and the column names; JSONL or CSV, UTF-8 only."""
    where = _show(source)
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
    problems, columns_seen = _Problems(), {}
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


def _row_answer(row: dict, label_field: str | None, output_field: str | None, at: str, problems: _Problems) -> Any:
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
