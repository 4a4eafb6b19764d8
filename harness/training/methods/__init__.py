"""Registered methods: `prompt`, `lora`, `qlora`, `full`. Each is small and registered by name."""

from __future__ import annotations

from harness.core.errors import ConfigError
from harness.training.methods.base import Candidate, Method, TrialContext
from harness.training.methods.full import FullFineTune
from harness.training.methods.lora import LoRA, QLoRA
from harness.training.methods.prompt import Prompting

_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    _REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method `{name}`; choose from {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]


def method_names() -> list[str]:
    return list(_REGISTRY)


for _method in (Prompting(), LoRA(), QLoRA(), FullFineTune()):
    register(_method)

__all__ = ["Candidate", "Method", "TrialContext", "get_method", "method_names", "register"]
