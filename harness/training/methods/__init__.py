"""Registered methods: `prompt`, `dspy`, `api`, `api_dspy`, `lora`, `qlora`, `full`. Each is small, declares its
parameters as a typed dataclass, and owns its save and load (see `base.Method`)."""

from __future__ import annotations

from harness.core.registry import Registry
from harness.training.methods.api import HostedPrompting
from harness.training.methods.base import Method
from harness.training.methods.dspy_prompt import DspyPrompting, HostedDspyPrompting
from harness.training.methods.full import FullFineTune
from harness.training.methods.lora import LoRA, QLoRA
from harness.training.methods.prompt import Prompting

METHODS: Registry[Method] = Registry("method")
for _method in (Prompting(), DspyPrompting(), HostedPrompting(), HostedDspyPrompting(), LoRA(), QLoRA(),
                FullFineTune()):
    METHODS.register(_method)
