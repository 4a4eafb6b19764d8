"""The search space: the only place that knows Optuna distributions.

The experiment declares `space: {method: {param: spec}}`, where a spec is a fixed value, a list of choices,
or `{low, high, log?, step?}`. The space is conditional: a trial first picks the method, then only that
method's parameters, so rank and alpha exist only for adapters and `shots` only for prompting. Optuna
names them `<method>.<param>` so two methods never share a distribution.

Every value the space can produce is checked against the method's typed `Params` (type and bounds) when the
space is built, and every `enqueue` entry must lie inside the space: Optuna would otherwise replace an
out-of-space value silently, and a bad value would only fail after a model had loaded.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from harness.core.errors import ConfigError
from harness.core.typed import build, check_field, problems_of, raise_problems
from harness.training.methods import METHODS
from harness.training.methods.base import MOOT_WHEN

Spec = BaseDistribution | Any  # a distribution, or a fixed value


@dataclass(frozen=True)
class SearchSpace:
    methods: tuple[str, ...]
    """Methods that can run on this device, in the experiment's order."""
    skipped: dict[str, str]
    """Methods left out, with the reason (e.g. QLoRA without CUDA)."""
    params: dict[str, dict[str, Spec]]

    @property
    def unavailable(self) -> dict[str, str]:
        """The skipped methods the experiment asked for that this machine cannot run (not those set to null)."""
        return {method: why for method, why in self.skipped.items() if method in self.params}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample one configuration: `{"method": ..., <param>: ...}` with every parameter of that method."""
        method = trial.suggest_categorical("method", list(self.methods))
        chosen: dict[str, Any] = {"method": method}
        for name, spec in self.params[method].items():
            chosen[name] = _suggest(trial, f"{method}.{name}", spec) if isinstance(spec, BaseDistribution) else spec
        return chosen

    def distributions(self) -> dict[str, BaseDistribution]:
        """What Optuna is asked for, by its parameter names (`method`, `lora.r`): a study's trials must keep them."""
        out: dict[str, BaseDistribution] = {"method": CategoricalDistribution(list(self.methods))}
        for method in self.methods:
            out.update({f"{method}.{name}": self.params[method][name] for name in self.searched(method)})
        return out

    def searched(self, method: str) -> list[str]:
        """The parameters of `method` the sampler chooses (the others are fixed)."""
        return [name for name, spec in self.params[method].items() if isinstance(spec, BaseDistribution)]

    def fixed(self, method: str) -> dict[str, Any]:
        """The parameters of `method` the space fixes, with their values (Optuna never sees them)."""
        return {name: spec for name, spec in self.params[method].items() if not isinstance(spec, BaseDistribution)}

    def size(self) -> int | None:
        """How many distinct configurations the space holds, or None when a parameter is a continuous range (no
        `step`): a choice counts its values, an integer range or a range with `step` its grid points."""
        total = 0
        for method in self.methods:
            specs, count = self.params[method], 1
            for name, spec in specs.items():
                values = _count(spec)
                if values is None:
                    return None
                count *= values
            for moot, (on, value) in MOOT_WHEN.items():  # each value of `on` that makes `moot` moot counts once
                if moot in specs and on in specs and value in _values(specs[on]):
                    count = count // _count(specs[moot]) // _count(specs[on]) * (
                        (_count(specs[on]) - 1) * _count(specs[moot]) + 1)
            total += count
        return total

    def configuration(self, sampled: dict[str, Any], fixed: dict[str, Any] | None = None) -> tuple | None:
        """A trial's configuration, as a key: its searched parameters as Optuna names them (`{"method": "lora",
        "lora.r": 8}`), a choice or a grid value by its place (so an enqueued 1.5e-3 and a sampled
        0.0015000000000000002 on one grid are one configuration), with `fixed`, the values it ran the space's fixed
        parameters with (None where not known: taken to be the space's). None when that is not a configuration of
        this space: a study's older trials may come from a narrower or a wider one, or with other fixed values. A
        parameter moot under the others (`MOOT_WHEN`: the shot selection of no shots) is left out of the key."""
        method = sampled.get("method")
        if method not in self.methods:
            return None
        specs = self.params[method]
        given = {key.split(".", 1)[1]: value for key, value in sampled.items() if key != "method"}
        if set(given) - set(specs):
            return None  # a parameter the method no longer has
        values = {**self.fixed(method), **(fixed or {}), **given}
        moot = {name for name, (on, value) in MOOT_WHEN.items() if name in values and values.get(on) == value}
        key = [method]
        for name, spec in specs.items():
            if name not in values:
                return None  # searched now, and the trial recorded no value for it
            if name not in moot and _outside(spec, values[name]):
                return None
            if isinstance(spec, BaseDistribution):
                key.append(None if name in moot else _place(spec, values[name]))
        return tuple(key)

    def describe(self) -> list[str]:
        """One line per method, for --dry-run and the sweep header; and the number of configurations when the
        space is finite, since a study cannot run more distinct ones than that."""
        lines = []
        for method in self.methods:
            parts = [f"{k}={_describe(v)}" for k, v in self.params[method].items()]
            lines.append(f"{method}: {', '.join(parts) or '(no parameters)'}")
        size = self.size()
        if size is not None:
            lines.append(f"{configurations(size)} in all")
        lines += [f"{m}: skipped - {why}" for m, why in self.skipped.items()]
        return lines


def method_params(params: dict[str, Any], where: str) -> Any:
    """A sampled configuration as its method's typed `Params` (checked once more: cheap, and never wrong)."""
    method = METHODS.get(params["method"])
    return build(method.Params, {k: v for k, v in params.items() if k != "method"}, where, f"{method.name}.")


def build_space(raw: dict[str, dict[str, Any] | None], device: str, where: str) -> SearchSpace:
    """Validate `space:` against the method registry and each method's Params; drop methods this device lacks, and
    methods set to null (`--set space.full=null` removes one the file lists)."""
    if not raw:
        raise ConfigError(f"{where}: `space` is empty; list at least one of {', '.join(METHODS.names())}.")
    params, skipped, methods, problems = {}, {}, [], []
    for method_name, spec in raw.items():
        if method_name not in METHODS:
            close = difflib.get_close_matches(str(method_name), METHODS.names(), n=1)
            hint = f"did you mean `space.{close[0]}`? The methods are" if close else "choose from"
            problems.append(f"{where}: unknown method `space.{method_name}`; {hint} {', '.join(METHODS.names())}.")
            continue
        if spec is None:  # null, not `{}` (the defaults): the way to take a method out from the command line
            skipped[method_name] = (f"`space.{method_name}` is null, which removes it (write `{method_name}: {{}}` "
                                    "to run it with its defaults)")
            continue
        method = METHODS.get(method_name)
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: `space.{method_name}` must be a mapping of parameters, `{{}}` for the "
                              "defaults, or null to remove it.")
        fields = {f.name: f for f in dataclasses.fields(method.Params)}
        for name in sorted(set(spec) - set(fields), key=str):
            close = difflib.get_close_matches(str(name), fields, n=1)
            hint = f" Did you mean `space.{method_name}.{close[0]}`?" if close else ""
            problems.append(f"{where}: `space.{method_name}.{name}` is not a parameter of {method_name}; it accepts "
                            f"{', '.join(fields)}.{hint}")
        params[method_name] = {}
        for name, field in fields.items():
            try:
                params[method_name][name] = _distribution(method.Params, name, spec.get(name, field.default), where,
                                                          f"space.{method_name}.{name}")
            except ConfigError as exc:
                problems += problems_of(exc)
        reason = method.unavailable_reason(device)
        if reason:
            skipped[method_name] = reason
        else:
            methods.append(method_name)
    raise_problems(where, problems)
    if not methods:
        removed = [f"space.{m}" for m in raw if raw[m] is None]
        if len(removed) == len(raw):
            raise ConfigError(f"{where}: every method in `space` is null ({', '.join(f'`{r}`' for r in removed)}), "
                              "so there is nothing left to run; keep at least one (drop its `=null` override, or "
                              "give it `{}` for its defaults).")
        reasons = "; ".join(f"{m}: {why}" for m, why in skipped.items())
        raise ConfigError(f"{where}: no method in `space` can run on this machine ({reasons}). "
                          "Add another method, e.g. `lora`, or run on a machine that has what is missing.")
    return SearchSpace(tuple(methods), skipped, params)


def enqueue_params(entry: Any, space: SearchSpace, where: str, index: int) -> dict[str, Any] | None:
    """An `enqueue:` entry `{method: lora, r: 16}` in Optuna's names `{method: lora, lora.r: 16}`, checked to lie
    inside the space. None when its method is skipped on this machine (the caller says so)."""
    at = f"{where}: `enqueue[{index}]`"
    if not isinstance(entry, dict):
        raise ConfigError(f"{at} must be a mapping such as {{method: prompt, shots: 0}}.")
    values = dict(entry)
    method = values.pop("method", None)
    if not isinstance(method, str) or (method not in space.methods and method not in space.skipped):
        choices = ", ".join(space.methods + tuple(space.skipped))
        raise ConfigError(f"{at} needs `method:` one of the methods in `space` ({choices}); got {method!r}. An entry "
                          "is one trial: write one entry for each method.")
    if method in space.skipped:
        return None
    declared = space.params[method]
    for name, value in values.items():
        if name not in declared:
            raise ConfigError(f"{at} names `{name}`, which is not a parameter of {method}; it accepts "
                              f"{', '.join(declared)}.")
        # typed as `space:` is, so `1e-3` (a string to YAML 1.1) is the number it is there
        values[name] = value = check_field(METHODS.get(method).Params, name, value, where, f"enqueue[{index}].{name}")
        problem = _outside(declared[name], value)
        if problem:
            raise ConfigError(f"{at}: `{name}: {value!r}` is outside the space (`space.{method}.{name}` is "
                              f"{_describe(declared[name])}): {problem}. Optuna would silently replace it; put the "
                              "value inside the space, or widen the space.")
    return {"method": method, **{f"{method}.{k}": v for k, v in values.items()}}


def _distribution(params_cls: type, name: str, spec: Any, where: str, key: str) -> Spec:
    """A fixed value, a CategoricalDistribution or an Int/FloatDistribution, every value checked against the
    field's type and bounds."""
    def check(value: Any, at: str = key) -> Any:
        return check_field(params_cls, name, value, where, at)

    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: `{key}` is an empty list; give at least one choice.")
        choices = [check(v, f"{key}[{i}]") for i, v in enumerate(spec)]
        repeated = [c for i, c in enumerate(choices) if c in choices[:i]]
        if repeated:  # the sampler would draw that value twice as often
            raise ConfigError(f"{where}: `{key}` lists {repeated[0]!r} more than once, so it would be drawn more often "
                              "than the others; list each choice once.")
        return CategoricalDistribution(choices) if len(choices) > 1 else choices[0]
    if not isinstance(spec, dict):
        return check(spec)
    unknown = sorted(set(spec) - {"low", "high", "log", "step"}, key=str)
    if unknown or "low" not in spec or "high" not in spec:
        why = f"`{unknown[0]}` is not one of low, high, log, step" if unknown else "a range needs both low and high"
        if any(":" in str(k) for k in unknown):  # `{low:1e-4}`: YAML reads a key `low:1e-4` with no value
            why += " (YAML needs a space after each colon: `{low: 1e-4, high: 1e-3}`)"
        raise ConfigError(f"{where}: `{key}` must be a value, a list of choices, or {{low, high, log?, step?}}; "
                          f"{why}.")
    low, high = check(spec["low"], f"{key}.low"), check(spec["high"], f"{key}.high")
    if isinstance(low, bool | str) or isinstance(high, bool | str):
        raise ConfigError(f"{where}: `{key}` is {_type_word(low)}, so it cannot be a range; list the choices "
                          f"instead, e.g. [{_yaml_word(low)}, {_yaml_word(high)}].")
    if low > high:
        raise ConfigError(f"{where}: `{key}` has low {low!r} above high {high!r}; swap them.")
    integer = typing.get_type_hints(params_cls)[name] is int
    log, step = _log(spec.get("log", False), where, key), _step(spec.get("step"), integer, where, key)
    if log and low <= 0:  # Optuna's own words name its arguments, not the file's keys
        raise ConfigError(f"{where}: `{key}` has `log: true`, so `low` must be above 0 (a log scale never reaches "
                          f"0); got {low!r}. Give a low above 0 (1.0e-3), or drop `log: true` to sample evenly.")
    if log and step is not None:
        raise ConfigError(f"{where}: `{key}` has both `log: true` and `step`; a log range is sampled without a grid. "
                          "Drop one of them.")
    if step is not None and not _on_grid(high - low, step):
        top = low + math.floor((high - low) / step + 1e-9) * step
        raise ConfigError(f"{where}: `{key}`: high {high:g} is not low {low:g} plus whole steps of {step:g}, and "
                          f"Optuna would quietly lower it to {top:g}; set high to {top:g} or {top + step:g}, or "
                          "change the step.")
    try:
        if integer:
            return IntDistribution(int(low), int(high), log=log, step=int(step or 1))
        return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))
    except (TypeError, ValueError) as exc:  # e.g. a log range that starts at 0
        raise ConfigError(f"{where}: `{key}`: {exc}") from None


def _type_word(value: Any) -> str:
    return "true or false" if isinstance(value, bool) else "a string"


def _yaml_word(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _log(value: Any, where: str, key: str) -> bool:
    """`log:` must be true or false: the string 'no' is truthy and would silently sample on a log scale."""
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: `{key}.log` must be true or false, got {value!r}.")
    return value


def _step(value: Any, integer: bool, where: str, key: str) -> float | int | None:
    """A range's `step`: None for no grid, else a number above 0 (a whole number for an integer parameter)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:  # YAML 1.1 reads `1e-3` as a string
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: `{key}.step` must be a number above 0, got {value!r}; leave it out for no grid.")
    if integer and not float(value).is_integer():
        raise ConfigError(f"{where}: `{key}.step` must be a whole number for this integer parameter, got {value!r}.")
    return int(value) if integer else float(value)


def _on_grid(distance: float, step: float) -> bool:
    steps = distance / step
    return abs(steps - round(steps)) <= 1e-9 * max(1.0, abs(steps))


def _outside(spec: Spec, value: Any) -> str | None:
    """Why `value` is not a value the spec can take, or None when it is."""
    if isinstance(spec, CategoricalDistribution):
        return None if value in spec.choices else f"the choices are {_describe(spec)}"
    if isinstance(spec, IntDistribution | FloatDistribution):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "it is not a number"
        if isinstance(spec, IntDistribution) and not float(value).is_integer():
            return "it must be an integer"
        if not spec.low <= value <= spec.high:
            return f"it must lie in [{spec.low:g}, {spec.high:g}]"
        if spec.step is not None and not _on_grid(value - spec.low, spec.step):
            return f"it must be {spec.low:g} plus a whole number of steps of {spec.step:g}"
        return None
    return None if value == spec else f"the space fixes it at {spec!r}"


def _count(spec: Spec) -> int | None:
    """How many values a parameter can take: None for a continuous range."""
    if isinstance(spec, CategoricalDistribution):
        return len(spec.choices)
    if isinstance(spec, IntDistribution):  # a log range too: Optuna rounds it to whole numbers
        return (spec.high - spec.low) // spec.step + 1
    if isinstance(spec, FloatDistribution):
        return None if spec.step is None else round((spec.high - spec.low) / spec.step) + 1
    return 1


def _values(spec: Spec) -> list[Any]:
    """The values a finite parameter can take (a continuous range: none listed)."""
    if isinstance(spec, CategoricalDistribution):
        return list(spec.choices)
    if isinstance(spec, IntDistribution):
        return list(range(spec.low, spec.high + 1, spec.step))
    if isinstance(spec, FloatDistribution):
        return [] if spec.step is None else [spec.low + k * spec.step for k in range(_count(spec) or 0)]
    return [spec]


def _place(spec: BaseDistribution, value: Any) -> Any:
    """A value inside `spec` as its choice's index or its grid step, or as it is within a continuous range."""
    if isinstance(spec, CategoricalDistribution):
        return int(spec.to_internal_repr(value))
    if spec.step is None:
        return value
    return round((value - spec.low) / spec.step)


def configurations(count: int) -> str:
    """`1 distinct configuration`, `4 distinct configurations`: the words the sweep uses for a count of them."""
    return f"{count} distinct configuration{'' if count == 1 else 's'}"


def _suggest(trial: optuna.Trial, key: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, list(dist.choices))
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


def _describe(spec: Spec) -> str:
    """A parameter as the experiment file writes it: a choice `[8, 16]`, a range `{low: 1e-4, high: 1e-3, log: true}`,
    a fixed value as it is."""
    if isinstance(spec, CategoricalDistribution):
        return "[" + ", ".join(map(_yaml_word, spec.choices)) + "]"
    if isinstance(spec, IntDistribution | FloatDistribution):
        plain = 1 if isinstance(spec, IntDistribution) else None  # what a range without `step` has
        extra = (", log: true" if spec.log else "") + ("" if spec.step == plain else f", step: {spec.step:g}")
        return f"{{low: {spec.low:g}, high: {spec.high:g}{extra}}}"
    return _yaml_word(spec)
