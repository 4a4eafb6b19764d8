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


class ConfigProblems(ConfigError):
    """Several mistakes found in one pass over a file, all reported at once: one error per run would make a user
    with three typos run the command four times."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {_without(where, problem)}" for problem in self.problems)
        super().__init__(f"{where}: {len(self.problems)} problems; fix each, then run again:\n{lines}")


def _without(where: str, message: str) -> str:
    """A problem's message without the file name the combined message already starts with."""
    return message.removeprefix(f"{where}: ")


def problems_of(exc: ConfigError) -> list[str]:
    return list(exc.problems) if isinstance(exc, ConfigProblems) else [str(exc)]


def raise_problems(where: str, problems: list[str]) -> None:
    """Nothing for no problems, the one error for one, every one for several."""
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigProblems(where, problems)


def build(cls: type, raw: Any, where: str, prefix: str = "") -> Any:
    """Turn a mapping into dataclass `cls`, checking every key, type and bound; errors name the dotted key, and
    every problem in the mapping (nested ones too) is reported in one error."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: `{prefix.rstrip('.') or 'top level'}` must be a mapping, got "
                          f"{type(raw).__name__}.")
    known = {f.name: f for f in dataclasses.fields(cls)}
    stray = getattr(cls, "STRAY_KEY_HINT", "")
    problems = [_unknown(key, known, where, prefix, stray) for key in raw if key not in known]
    values = {}
    hints = typing.get_type_hints(cls)
    for name, spec in known.items():
        if name in raw and raw[name] is None and _has_default(spec) and type(None) not in typing.get_args(hints[name]):
            continue  # null where None is no value: the default, as `--set KEY=null` is documented to give
        if name in raw:
            try:
                values[name] = check_field(cls, name, raw[name], where, f"{prefix}{name}")
            except ConfigError as exc:
                problems += problems_of(exc)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            under = f"under `{prefix.rstrip('.')}`" if prefix else "at the top level"
            problems.append(f"{where}: missing required key `{prefix}{name}`; add `{name}: ...` {under}.")
    raise_problems(where, problems)
    try:
        return cls(**values)
    except ConfigError as exc:  # a record's own check (__post_init__) knows the key, not the file
        raise ConfigError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from None


def _unknown(key: Any, known: Mapping[str, Any], where: str, prefix: str, stray: str = "") -> str:
    """`stray`: where keys that do not belong at this level usually go (a class's `STRAY_KEY_HINT`)."""
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" Did you mean `{prefix}{close[0]}`?" if close else f" Known keys: {', '.join(known)}."
    return f"{where}: unknown key `{prefix}{key}`.{hint}{f' {stray}' if stray else ''}"


def _has_default(spec: dataclasses.Field) -> bool:
    return spec.default is not dataclasses.MISSING or spec.default_factory is not dataclasses.MISSING


def check_field(cls: type, name: str, value: Any, where: str, key: str) -> Any:
    """`value` coerced to field `name` of `cls` and checked against its bounds (each element's, for a list);
    `key` names it in errors."""
    spec = next(f for f in dataclasses.fields(cls) if f.name == name)
    coerced = _coerce(typing.get_type_hints(cls)[name], value, where, key)
    if isinstance(coerced, tuple):
        for i, item in enumerate(coerced):
            _check_bounds(item, spec.metadata, where, f"{key}[{i}]")
    else:
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
            raise ConfigError(f"{where}: `{key}` must be at least {_number(bounds['min'])}{_upto(bounds)}; got "
                              f"{value!r}.")
        if "max" in bounds and value > bounds["max"]:
            raise ConfigError(f"{where}: `{key}` must be at most {_number(bounds['max'])}; got {value!r}.")
        if "gt" in bounds and value <= bounds["gt"]:
            raise ConfigError(f"{where}: `{key}` must be greater than {bounds['gt']:g}; got {value!r}.")
        if "lt" in bounds and value >= bounds["lt"]:
            raise ConfigError(f"{where}: `{key}` must be below {bounds['lt']:g}; got {value!r}.")


def _upto(bounds: Mapping[str, Any]) -> str:
    return f" and at most {_number(bounds['max'])}" if "max" in bounds else ""


def _number(bound: float) -> str:
    """A bound as a user would write it: 2147483647, not 2.14748e+09."""
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


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
            return _build_each(args[1], value, where, key)
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


def _build_each(cls: type, entries: dict, where: str, key: str) -> dict:
    built, problems = {}, []
    for name, entry in entries.items():
        try:
            built[name] = build(cls, entry, where, prefix=f"{key}.{name}.")
        except ConfigError as exc:
            problems += problems_of(exc)
    raise_problems(where, problems)
    return built


def _type_name(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, hint.__name__)
