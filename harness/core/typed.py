"""Typed, frozen dataclasses from YAML mappings: unknown keys, wrong types and out-of-range values are errors that
name the dotted key and say what is allowed, so a typo never falls back to a default that changes what a number
means.

Bounds live beside each field as metadata: `r: int = field(default=16, metadata=at_least(1))`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from harness.core.errors import ConfigError


def at_least(low: float) -> dict[str, Any]:
    return {"min": low}


def greater_than(low: float) -> dict[str, Any]:
    return {"gt": low}


def between(low: float, high: float) -> dict[str, Any]:
    """low <= value <= high."""
    return {"min": low, "max": high}


def from_up_to(low: float, high: float) -> dict[str, Any]:
    """low <= value < high."""
    return {"min": low, "lt": high}


def one_of(*choices: Any) -> dict[str, Any]:
    return {"choices": choices}


def build(cls: type, raw: Any, where: str, prefix: str = "") -> Any:
    """Turn a mapping into dataclass `cls`, checking every key, type and bound; errors name the dotted key."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: `{prefix.rstrip('.') or 'top level'}` must be a mapping, got "
                          f"{type(raw).__name__}.")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in raw if k not in known]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" Did you mean `{prefix}{close[0]}`?" if close else f" Known keys: {', '.join(known)}."
        raise ConfigError(f"{where}: unknown key `{prefix}{key}`.{hint}")
    values = {}
    for name, spec in known.items():
        if name in raw:
            values[name] = check_field(cls, name, raw[name], where, f"{prefix}{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            under = f"under `{prefix.rstrip('.')}`" if prefix else "at the top level"
            raise ConfigError(f"{where}: missing required key `{prefix}{name}`; add `{name}: ...` {under}.")
    return cls(**values)


def check_field(cls: type, name: str, value: Any, where: str, key: str) -> Any:
    """`value` coerced to field `name` of `cls` and checked against its bounds; `key` names it in errors."""
    spec = next(f for f in dataclasses.fields(cls) if f.name == name)
    coerced = _coerce(typing.get_type_hints(cls)[name], value, where, key)
    _check_bounds(coerced, spec.metadata, where, key)
    return coerced


def _check_bounds(value: Any, bounds: Mapping[str, Any], where: str, key: str) -> None:
    if value is None or not bounds:
        return
    if "choices" in bounds and value not in bounds["choices"]:
        options = ", ".join(map(str, bounds["choices"]))
        raise ConfigError(f"{where}: `{key}` must be one of {options}; got {value!r}.")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}: `{key}` must be a finite number, got {value!r}.")
        if "min" in bounds and value < bounds["min"]:
            raise ConfigError(f"{where}: `{key}` must be at least {bounds['min']:g}{_upto(bounds)}; got {value!r}.")
        if "max" in bounds and value > bounds["max"]:
            raise ConfigError(f"{where}: `{key}` must be at most {bounds['max']:g}; got {value!r}.")
        if "gt" in bounds and value <= bounds["gt"]:
            raise ConfigError(f"{where}: `{key}` must be greater than {bounds['gt']:g}; got {value!r}.")
        if "lt" in bounds and value >= bounds["lt"]:
            raise ConfigError(f"{where}: `{key}` must be below {bounds['lt']:g}; got {value!r}.")


def _upto(bounds: Mapping[str, Any]) -> str:
    return f" and at most {bounds['max']:g}" if "max" in bounds else ""


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where, prefix=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where, key)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: `{key}` must be a list.")
        return tuple(_coerce(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: `{key}` must be a mapping.")
        if dataclasses.is_dataclass(args[1]):  # e.g. `endpoints: {name: {...}}`: each entry is typed too
            return {name: build(args[1], entry, where, prefix=f"{key}.{name}.") for name, entry in value.items()}
        return value
    if hint is Any:
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads `1e-3` as a string; users write it that way.
            return float(value)
        except ValueError:
            pass
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: `{key}` must be {_type_name(hint)}, got {value!r}.")
    return value


def _type_name(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, hint.__name__)
