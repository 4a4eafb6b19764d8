"""YAML files people write and edit: read them with errors that point at the line, write them readably."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from harness.core.errors import HarnessError


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one mapping; `problem_mark` is the second occurrence."""

    def __init__(self, key: Any, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(None, None, f"duplicate key {key!r}", again)
        self.key, self.first_line = key, first.line + 1


class UniqueKeyLoader(yaml.SafeLoader):
    """Safe loading that refuses a key given twice in one mapping. PyYAML keeps the last one silently, so a second
    `name:` further down a long file would quietly change the study (or a budget) the user reads at the top."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` then overriding a key is intended
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: the base constructor says so
                    continue
                if first is not key_node:
                    raise DuplicateKeyError(key, first.start_mark, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """`text` parsed safely, refusing duplicate keys (raises yaml.YAMLError)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: still safe


def read_yaml(path: Path, error: type[HarnessError], where: str | None = None) -> Any:
    """Parse `path`; a bad encoding, bad syntax or a key given twice raises `error` naming the file, the line and
    the fix."""
    where = where or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not UTF-8 ({exc.reason}); re-save the file as UTF-8.") from None
    try:
        return parse_yaml(text)
    except DuplicateKeyError as exc:
        raise error(f"{where}:{exc.problem_mark.line + 1}: key `{exc.key}` is given twice in the same mapping "
                    f"(first on line {exc.first_line}); keep one of them and delete the other.") from None
    except yaml.reader.ReaderError as exc:  # a control character: it has a position, not a mark
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise error(f"{where}:{line}: not valid YAML (the control character U+{code:04X} is not allowed in it); "
                    "delete it, or re-save the file as plain UTF-8 text.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        column = f", column {mark.column + 1}" if mark is not None else ""
        raise error(f"{where}{at}: not valid YAML ({problem}{column}); {_fix(problem)}") from None


def _fix(problem: str) -> str:
    """The fix for the syntax mistakes people make most, in words; the parser's own words for the rest."""
    if "'\\t'" in problem or "\t" in problem:
        return "YAML indents with spaces, never tabs: replace the tab there (and any others) with spaces."
    if "another document" in problem:
        return "the file must hold one YAML document: remove the `---` line there and what follows, or merge the two."
    return "fix the syntax there."


class Flow(dict):
    """A mapping written on one line (`{type: string}`), for small repeated sub-schemas."""


class _Dumper(yaml.SafeDumper):
    """Quotes strings YAML would misread once edited (`1.0` is a float) or garble (edge whitespace, newlines)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    quote = "\n" in value or value != value.strip() or re.fullmatch(r"[\d.]+", value) is not None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if quote else None)


_Dumper.ignore_aliases = lambda self, data: True  # a shared sub-schema must not become &id001 / *id001
_Dumper.add_representer(str, _str)
_Dumper.add_representer(
    Flow, lambda dumper, value: dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=True)
)


def dump_yaml(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
