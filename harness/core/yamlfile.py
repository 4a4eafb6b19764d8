"""YAML files people write and edit: read them with errors that point at the line, write them readably."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from harness.core.errors import HarnessError


def read_yaml(path: Path, error: type[HarnessError], where: str | None = None) -> Any:
    """Parse `path`; a bad encoding or syntax raises `error` naming the file, the line and the fix."""
    where = where or str(path)
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not UTF-8 ({exc.reason}); re-save the file as UTF-8.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{where}{at}: not valid YAML ({problem}); fix the syntax there.") from None


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
