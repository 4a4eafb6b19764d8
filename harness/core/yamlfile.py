"""YAML files people write and edit: read them with errors that point at the line, write them readably."""

from __future__ import annotations

import re
from dataclasses import dataclass
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


MAX_YAML_BYTES = 4 << 20
"""Experiments, suite.yaml and price tables are a few KiB; data goes in JSONL or CSV splits, never YAML."""
MAX_DEPTH = 64
"""Nesting deeper than any config needs; PyYAML's composer recurses per level and would overflow the stack."""
MAX_NODES = 1_000_000
"""Values after every alias is expanded: a few aliases can otherwise stand for billions (the "billion laughs")."""


class ShapeError(yaml.YAMLError):
    """YAML that parses but is too large, too deep, or refers to itself; `problem_mark` is where it became so."""

    def __init__(self, problem: str, mark: yaml.Mark, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark, self.fix = problem, mark, fix


@dataclass
class _Span:
    anchor: str | None
    nodes_before: int
    depth: int
    deepest: int


def check_shape(text: str) -> None:
    """Refuse what would exhaust memory or the stack once composed, from the parser's events (an iterative state
    machine, so this cannot overflow itself): nesting past MAX_DEPTH, aliases expanding past MAX_NODES values, and an
    alias inside its own anchor (a structure that contains itself, which every reader after this would loop on)."""
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (values, nesting) it expands to
    open_spans: list[_Span] = []
    nodes = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        depth = len(open_spans)
        if isinstance(event, yaml.AliasEvent):
            if any(span.anchor == event.anchor for span in open_spans):
                raise ShapeError(f"the alias *{event.anchor} is inside its own anchor &{event.anchor}, so the value "
                                 "contains itself", event.start_mark, "write the value out instead of the alias.")
            count, nesting = sizes.get(event.anchor, (1, 0))
            nodes, reached = nodes + count, depth + nesting
        elif isinstance(event, yaml.ScalarEvent):
            nodes, reached = nodes + 1, depth
            if event.anchor:
                sizes[event.anchor] = (1, 0)
        elif isinstance(event, yaml.CollectionStartEvent):
            nodes, reached = nodes + 1, depth + 1
            open_spans.append(_Span(event.anchor, nodes, reached, reached))
        elif isinstance(event, yaml.CollectionEndEvent):
            span = open_spans.pop()
            if span.anchor:
                sizes[span.anchor] = (nodes - span.nodes_before + 1, span.deepest - span.depth + 1)
            reached = span.deepest
        else:
            continue
        if open_spans:
            open_spans[-1].deepest = max(open_spans[-1].deepest, reached)
        if reached > MAX_DEPTH:
            raise ShapeError(f"nested more than {MAX_DEPTH} levels deep", event.start_mark,
                             "no setting nests that deep: flatten it.")
        if nodes > MAX_NODES:
            raise ShapeError(f"its aliases expand to more than {MAX_NODES:,} values", event.start_mark,
                             "write the values out, or use fewer aliases (an alias of an alias multiplies).")


def parse_yaml(text: str) -> Any:
    """`text` parsed safely, refusing duplicate keys, and anything too deep or expanding too far (raises
    yaml.YAMLError)."""
    check_shape(text)
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: still safe


def read_yaml(path: Path, error: type[HarnessError], where: str | None = None) -> Any:
    """Parse `path`; a bad encoding, bad syntax or a key given twice raises `error` naming the file, the line and
    the fix."""
    where = where or str(path)
    size = Path(path).stat().st_size
    if size > MAX_YAML_BYTES:
        raise error(f"{where}: {size:,} bytes is too large for a settings file (at most {MAX_YAML_BYTES:,}); is this "
                    "the right file? Examples belong in the suite's JSONL or CSV splits, not in YAML.")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not UTF-8 ({exc.reason}); re-save the file as UTF-8.") from None
    try:
        return parse_yaml(text)
    except DuplicateKeyError as exc:
        raise error(f"{where}:{exc.problem_mark.line + 1}: key `{exc.key}` is given twice in the same mapping "
                    f"(first on line {exc.first_line}); keep one of them and delete the other.") from None
    except ShapeError as exc:
        raise error(f"{where}:{exc.problem_mark.line + 1}: {exc.problem}; {exc.fix}") from None
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
    if "could not determine a constructor for the tag" in problem:
        return ("the harness reads plain YAML data only, never tags that build objects (`!!python/...`, `!custom`): "
                "delete the tag and write the value itself.")
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
