"""Writing YAML that people edit afterwards (suite.yaml): stable, readable, and safe to re-read."""

from __future__ import annotations

import re

import yaml


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
