"""Which device a run uses, and what it costs in memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import platform
import resource
from pathlib import Path

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


def default_dtype(device: str, precision: str = "auto"):
    """The weights' dtype. bf16 on a GPU (as fast as fp16 and safe to train in) unless `precision` is fp32; fp32
    on a CPU, where bf16 runs as autocast over fp32 weights (see `use_bf16`)."""
    return torch.bfloat16 if device == "cuda" and use_bf16(precision, device) else torch.float32


ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni")
"""The CPU flags that decide how fast (and in which precision) training and generation run."""


def machine_name(device: str) -> str:
    """`NVIDIA H100 80GB HBM3`, or the CPU's model name with the flags that matter: `AMD EPYC (avx2, avx512f,
    avx512_bf16)`. A figure measured on one is not a figure for another."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    flags = cpu_flags()
    shown = [f for f in ISA_FLAGS if f in flags]
    # what torch actually uses: ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA can hold it below what the CPU has
    used = f"torch {torch.backends.cpu.get_cpu_capability()}, bf16 {'native' if native_bf16('cpu') else 'not native'}"
    return f"{cpu_model()} ({', '.join(shown) or 'no AVX2'}; {used})"


def cpu_model() -> str:
    info = _cpuinfo()
    for line in info.splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "cpu"


def cpu_flags() -> set[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them (empty where it has none, e.g. macOS)."""
    for line in _cpuinfo().splitlines():
        if line.lower().startswith(("flags", "features")):
            return set(line.split(":", 1)[1].split())
    return set()


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def native_bf16(device: str) -> bool:
    """Whether bf16 arithmetic runs natively here: a GPU that supports it, or a CPU with AVX512-BF16 or AMX."""
    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def use_bf16(precision: str, device: str) -> bool:
    """Resolve `training.precision` (auto, bf16, fp32) on this device."""
    return precision == "bf16" or (precision == "auto" and native_bf16(device))


def peak_memory_mb(device: str) -> float:
    """CUDA: peak allocated since the last reset. CPU: the process's peak resident set so far (Linux: KiB)."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_memory(device: str) -> None:
    """Give back what a finished or failed model held: it lives on in reference cycles (a trainer's, an exception's
    frames) until a collection, CUDA keeps freed blocks cached for this process until asked to release them, and
    glibc keeps freed heap pages (`return_freed_heap`)."""
    gc.collect()
    return_freed_heap()
    if device == "cuda":
        torch.cuda.empty_cache()


def return_freed_heap() -> bool:
    """Hand the pages of freed heap memory back to the OS (glibc's `malloc_trim`): whether any were returned (never,
    where the C library is not glibc).

    torch allocates CPU tensors through malloc, and glibc keeps what they free for later allocations instead of
    returning it: a generation batch's key/value cache grows by one token a step, each step's tensors a little
    larger than the holes the last step left, so the demo's calibration kept 0.9 GB of free heap resident after
    its models were gone. Nothing is moved or recomputed, so no number changes; only the resident set
    shrinks. Call it between phases (a model released), not inside a loop: each call walks the heap."""
    trim = _malloc_trim()
    return bool(trim is not None and trim(0))


@functools.cache
def _malloc_trim():
    if platform.system() != "Linux":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl has no malloc_trim
        return None


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError)


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
