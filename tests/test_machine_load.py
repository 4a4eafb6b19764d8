"""What other processes took of the machine while something was timed, counted from the system's CPU counters. The
check waits on CPU seconds a real process spent, never on a fixed sleep."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from harness.models.machine_load import OtherLoad, other_load


def test_another_processs_cpu_time_is_counted():
    hog = subprocess.Popen([sys.executable, "-c", "print('spinning', flush=True)\nwhile True: pass"],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert hog.stdout.readline().strip() == "spinning"  # it is running before the measurement starts
        with other_load() as load:
            waited = psutil.Process(hog.pid)
            start = sum(waited.cpu_times()[:2])
            while sum(waited.cpu_times()[:2]) - start < 0.5:
                time.sleep(0.01)  # this process idles; the hog's seconds are the others'
    finally:
        hog.kill()
        hog.wait()
    assert load.cpu_seconds is not None and load.cpu_seconds >= 0.45  # the hog's 0.5 s, counters' rounding aside
    assert load.share == pytest.approx(min(1.0, load.cpu_seconds / (load.seconds * load.cpus)))


def test_a_share_is_bounded_and_absent_without_counters():
    assert OtherLoad(seconds=1.0, cpu_seconds=5.0, cpus=2).share == 1.0
    assert OtherLoad(seconds=1.0, cpu_seconds=None, cpus=2).share is None
    assert OtherLoad(seconds=0.0, cpu_seconds=0.0, cpus=2).share is None
