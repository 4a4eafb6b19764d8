"""The search space: the only place that knows Optuna distributions.

The experiment declares `space: {method: {param: spec}}`, where a spec is a fixed value, a list of choices,
or `{low, high, log?, step?}`. The space is conditional: a trial first picks the method, then only that
method's parameters, so rank and alpha exist only for adapters and `shots` only for prompting. Optuna
names them `<method>.<param>` so two methods never share a distribution.
"""

from __future__ import annotations

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
from harness.training.methods import get_method, method_names

Spec = BaseDistribution | Any  # a distribution, or a fixed value


@dataclass(frozen=True)
class SearchSpace:
    methods: tuple[str, ...]
    """Methods that can run on this device, in the experiment's order."""
    skipped: dict[str, str]
    """Methods left out, with the reason (e.g. QLoRA without CUDA)."""
    params: dict[str, dict[str, Spec]]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample one configuration: `{"method": ..., <param>: ...}` with every parameter of that method."""
        method = trial.suggest_categorical("method", list(self.methods))
        chosen: dict[str, Any] = {"method": method}
        for name, spec in self.params[method].items():
            key = f"{method}.{name}"
            if isinstance(spec, BaseDistribution):
                chosen[name] = _suggest(trial, key, spec)
            else:
                chosen[name] = spec
        return chosen

    def describe(self) -> list[str]:
        """One line per method, for --dry-run and the sweep header."""
        lines = []
        for method in self.methods:
            parts = [f"{k}={_describe(v)}" for k, v in self.params[method].items()]
            lines.append(f"{method}: {', '.join(parts) or '(no parameters)'}")
        lines += [f"{m}: skipped - {why}" for m, why in self.skipped.items()]
        return lines


def build_space(raw: dict[str, dict[str, Any]], device: str, where: str) -> SearchSpace:
    """Validate `space:` against the method registry and drop methods this device cannot run."""
    if not raw:
        raise ConfigError(f"{where}: `space` is empty; list at least one of {method_names()}.")
    params, skipped, methods = {}, {}, []
    for method_name, spec in raw.items():
        if method_name not in method_names():
            raise ConfigError(f"{where}: unknown method `space.{method_name}`; choose from {method_names()}.")
        method = get_method(method_name)
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: `space.{method_name}` must be a mapping of parameters (or empty).")
        unknown = sorted(set(spec) - set(method.defaults))
        if unknown:
            raise ConfigError(f"{where}: `space.{method_name}.{unknown[0]}` is not a parameter of "
                              f"{method_name}; it accepts {sorted(method.defaults)}.")
        params[method_name] = {
            name: _distribution(spec.get(name, default), f"{where}: `space.{method_name}.{name}`")
            for name, default in method.defaults.items()
        }
        reason = method.unavailable_reason(device)
        if reason:
            skipped[method_name] = reason
        else:
            methods.append(method_name)
    if not methods:
        reasons = "; ".join(f"{m}: {why}" for m, why in skipped.items())
        raise ConfigError(f"{where}: no method in `space` can run on this machine ({reasons}). "
                          "Add another method, e.g. `lora`, or run on a machine that has what is missing.")
    return SearchSpace(tuple(methods), skipped, params)


def optuna_params(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """Map an `enqueue:` entry `{method: lora, r: 16}` onto Optuna's names `{method: lora, lora.r: 16}`."""
    entry = dict(entry)
    method = entry.pop("method", None)
    if method not in method_names():
        raise ConfigError(f"{where}: each `enqueue` entry needs `method:` one of {method_names()}, got {method!r}.")
    unknown = sorted(set(entry) - set(get_method(method).defaults))
    if unknown:
        raise ConfigError(f"{where}: enqueue entry for {method} names unknown parameter `{unknown[0]}`.")
    return {"method": method, **{f"{method}.{k}": v for k, v in entry.items()}}


def _distribution(spec: Any, where: str) -> Spec:
    spec = _numeric(spec)
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where} is an empty list; give at least one choice.")
        return CategoricalDistribution(spec) if len(spec) > 1 else spec[0]
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"low", "high", "log", "step"})
        if unknown or "low" not in spec or "high" not in spec:
            raise ConfigError(f"{where} must be a value, a list of choices, or {{low, high, log?, step?}}.")
        low, high = spec["low"], spec["high"]
        if isinstance(low, int) and isinstance(high, int) and not isinstance(spec.get("step", 1), float):
            return IntDistribution(low, high, log=bool(spec.get("log", False)), step=int(spec.get("step", 1)))
        try:
            return FloatDistribution(float(low), float(high), log=bool(spec.get("log", False)), step=spec.get("step"))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return spec


def _numeric(spec: Any) -> Any:
    """YAML 1.1 reads `1e-3` (no dot) as a string; users write learning rates that way."""
    if isinstance(spec, list):
        return [_numeric(v) for v in spec]
    if isinstance(spec, dict):
        return {k: _numeric(v) for k, v in spec.items()}
    if isinstance(spec, str):
        try:
            return float(spec)
        except ValueError:
            return spec
    return spec


def _suggest(trial: optuna.Trial, key: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, list(dist.choices))
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


def _describe(spec: Spec) -> str:
    if isinstance(spec, CategoricalDistribution):
        return "{" + ", ".join(map(str, spec.choices)) + "}"
    if isinstance(spec, IntDistribution | FloatDistribution):
        return f"[{spec.low:g}, {spec.high:g}]{' log' if spec.log else ''}"
    return repr(spec)
