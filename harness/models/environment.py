"""What a result depends on: library versions, git commit, device, model and data hashes."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

import torch

from harness.core.paths import git_commit
from harness.models.device import machine_name

PACKAGES = ("finetune-harness", "torch", "transformers", "peft", "trl", "optuna", "duckdb", "bitsandbytes",
            "accelerate", "tokenizers", "datasets", "safetensors", "numpy", "scipy", "lm-eval", "vllm")
"""Every distribution whose version can move a stored number: training, generation, tokenisation, the intervals
(numpy, scipy), the forgetting check (lm-eval) and serving (vllm). Absent ones are recorded as None."""


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
        "determinism": determinism(),
        "model": model,
        "data": data,
    }


def determinism() -> dict[str, Any]:
    """The settings that decide whether the same seed gives the same bits. On a CPU, training and greedy generation
    repeat exactly run to run; on a GPU, kernels that add in a varying order (atomics in attention's and the
    embedding's backward, cuBLAS split-K) do not, unless torch is told to use deterministic ones. The harness does
    not force them (they are slower, and some ops have none); it records what was in force, so an auditor who sees
    two GPU runs disagree in the last digits can tell why."""
    cuda = torch.cuda.is_available()
    return {
        "torch_deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic if cuda else None,
        "cudnn_benchmark": torch.backends.cudnn.benchmark if cuda else None,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "bitwise_reproducible": "expected on a CPU" if not cuda else (
            "expected" if torch.are_deterministic_algorithms_enabled() else
            "not guaranteed: nondeterministic CUDA kernels were allowed"),
    }
