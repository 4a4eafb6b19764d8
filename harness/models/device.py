"""Which device a run uses, and what it costs in memory."""

from __future__ import annotations

import resource

import torch

from harness.core.errors import DeviceError


def resolve_device(requested: str) -> str:
    if requested not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"device: {requested!r} is not one of auto, cpu, cuda. Fix `device:` or --set device=auto.")
    if requested == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"the experiment asks for device: cuda, but torch {torch.__version__} sees no CUDA GPU. "
            "Install a CUDA build of torch on a GPU machine, or use --set device=auto to run on the CPU."
        )
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def default_dtype(device: str):
    """bf16 on a GPU (as fast as fp16 and safe to train in); fp32 on a CPU, where bf16 matmuls are slow."""
    return torch.bfloat16 if device == "cuda" else torch.float32


def peak_memory_mb(device: str) -> float:
    """CUDA: peak allocated since the last reset. CPU: the process's peak resident set so far (Linux: KiB)."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
