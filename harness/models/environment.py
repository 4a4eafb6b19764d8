"""What a result depends on: library versions, git commit, device, model and data hashes."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

import torch

from harness.core.paths import source_checkout
from harness.models.device import machine_name

PACKAGES = ("torch", "transformers", "peft", "trl", "optuna", "duckdb", "bitsandbytes", "accelerate")


def environment(device: str, model: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "git_commit": git_commit(),
        "device": device,
        "device_name": machine_name(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "model": model,
        "data": data,
    }


def git_commit() -> str | None:
    """The harness's own commit when it runs from a checkout (`+dirty` with local changes); None from a wheel."""
    checkout = source_checkout()
    if checkout is None:
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=checkout, capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=checkout, capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty else "")
