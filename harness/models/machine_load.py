"""How busy the rest of the machine was while something was timed.

A speed timed on a machine that other work shares is that machine's speed at that moment: two adapters of one shape
timed 1527 and 925 completion tokens/s on the same CPU an hour apart (2026-12-06). The system's CPU counters say how
much of the machine other processes took during the timing, so a reader can tell a slow model from a busy machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil


@dataclass
class OtherLoad:
    """Filled in when the `other_load()` block ends."""

    seconds: float = 0.0
    """Wall seconds of the block."""
    cpu_seconds: float | None = None
    """CPU seconds other processes used in it (all cores together); None where the counters could not be read."""
    cpus: int = 1

    @property
    def share(self) -> float | None:
        """Others' CPU seconds over the machine's capacity in the block (wall seconds x logical CPUs), in [0, 1]."""
        if self.cpu_seconds is None or self.seconds <= 0:
            return None
        return min(1.0, max(0.0, self.cpu_seconds / (self.seconds * self.cpus)))


@contextmanager
def other_load() -> Iterator[OtherLoad]:
    """Measure the CPU time that processes other than this one use while the block runs."""
    found = OtherLoad(cpus=psutil.cpu_count() or 1)
    me = psutil.Process()
    before = _readings(me)
    began = time.perf_counter()
    try:
        yield found
    finally:
        found.seconds = time.perf_counter() - began
        after = _readings(me)
        if before is not None and after is not None:
            found.cpu_seconds = max(0.0, (after[0] - before[0]) - (after[1] - before[1]))


def _readings(me: psutil.Process) -> tuple[float, float] | None:
    """(CPU seconds the whole machine has spent busy, CPU seconds this process has used), or None where a platform or
    sandbox hides either."""
    try:
        machine, mine = psutil.cpu_times(), me.cpu_times()
    except (psutil.Error, OSError):
        return None
    # idle and iowait are not work; steal is a hypervisor's other guests, which the machine's own counters of busy
    # time leave out, as they leave out this process's waiting for them
    busy = sum(getattr(machine, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))
    return busy, mine.user + mine.system
