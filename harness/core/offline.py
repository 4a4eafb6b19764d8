"""The harness reaches no hub unless the user asks it to. A sweep that trained a LoRA arm sent TRL's telemetry
(library versions, architecture, device) and huggingface_hub's daily fetch of its agent registry to huggingface.co,
where every model and dataset was local; from Python (a notebook that imported transformers first) it still did
after the command line had stopped it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SWITCHES = ("HF_HUB_DISABLE_TELEMETRY", "HF_HUB_OFFLINE")
"""Set to 1 unless the user set them: `HF_HUB_OFFLINE=0` lets a hub id the experiment names be downloaded
(`harness.models.sources`)."""

HUB_CONSTANTS = "huggingface_hub.constants"


def no_calls_home() -> None:
    """Turn the switches on for the rest of this process and the children it starts (workers, the dashboard, vLLM):
    what every command does first. huggingface_hub reads them once, at import: where it was imported before, its
    module constants are set too, so that what it read then no longer decides."""
    for name in SWITCHES:
        os.environ.setdefault(name, "1")
    constants = sys.modules.get(HUB_CONSTANTS)  # imported by someone else; never imported here
    if constants is None:
        return
    for name in SWITCHES:
        if _on(os.environ[name]):
            setattr(constants, name, True)


@contextmanager
def offline() -> Iterator[None]:
    """The switches on for a library call only (`harness.api.sweep`), then as they were: a notebook's own hub
    downloads afterwards are its business, where `no_calls_home` left the whole kernel offline."""
    environment = {name: os.environ.get(name) for name in SWITCHES}
    constants = sys.modules.get(HUB_CONSTANTS)
    before = {name: getattr(constants, name) for name in SWITCHES if hasattr(constants, name)} if constants else {}
    no_calls_home()
    try:
        yield
    finally:
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        constants = sys.modules.get(HUB_CONSTANTS)  # imported during the call, its import read the switches on
        for name in SWITCHES:
            if constants is not None and hasattr(constants, name):
                setattr(constants, name, before.get(name, _on(environment[name] or "")))


def _on(value: str) -> bool:
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")
