"""The harness reaches no hub unless the user asks it to. A sweep that trained a LoRA arm sent TRL's telemetry
(library versions, architecture, device) and huggingface_hub's daily fetch of its agent registry to huggingface.co,
where every model and dataset was local; from Python (a notebook that imported transformers first) it still did
after the command line had stopped it."""

from __future__ import annotations

import os
import sys

SWITCHES = ("HF_HUB_DISABLE_TELEMETRY", "HF_HUB_OFFLINE")
"""Set to 1 unless the user set them: `HF_HUB_OFFLINE=0` lets a hub id the experiment names be downloaded
(`harness.models.sources`)."""


def no_calls_home() -> None:
    """Turn the switches on, for this process and the children it starts (workers, the dashboard, vLLM). Called by
    every command and by every library entry that may load a Hugging Face library (`plan_sweep`, `load_model`).
    huggingface_hub reads them once, at import: where it was imported before (a notebook that imported transformers
    first), its module constants are set too, so that what it read then no longer decides."""
    for name in SWITCHES:
        os.environ.setdefault(name, "1")
    constants = sys.modules.get("huggingface_hub.constants")  # imported by someone else; never imported here
    if constants is None:
        return
    for name in SWITCHES:
        if os.environ[name].strip().upper() in ("1", "ON", "YES", "TRUE"):
            setattr(constants, name, True)
