"""Where a command's memory goes: run it, sample its resident set (children included) a few times a second, and
print the peak with the output line it was reached under, so a peak can be put on a phase of the sweep.

    python bench/memory.py [--interval 0.1] [--log FILE] -- .venv/bin/harness sweep experiments/demo.yaml --dry-run

Prints, as JSON: the peak RSS in MiB, the peak under each output line that was followed by a new high, and the
kernel's own peak of the process tree (`ru_maxrss` of the children, the figure `/usr/bin/time -v` prints). `--log`
keeps every sample (seconds, MiB, the last output line).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of the process and its children (a `--workers` sweep, lm-eval's helpers)."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between samples (default 0.1)")
    parser.add_argument("--log", type=Path, help="write every sample here: seconds, MiB, the last output line")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    began = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    last_line = ["(start)"]

    def read() -> None:
        for line in child.stdout:  # tqdm redraws with \r: keep the last piece, which says where it is
            sys.stdout.write(line)
            text = line.rstrip("\n").split("\r")[-1].strip()
            if text:
                last_line[0] = text[:160]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    watched = psutil.Process(child.pid)
    samples, peak, peaks = [], 0, []
    while child.poll() is None:
        rss = tree_rss(watched)
        now = time.perf_counter() - began
        samples.append((round(now, 2), round(rss / 2**20, 1), last_line[0]))
        if rss > peak:
            peak = rss
            if peaks and peaks[-1]["line"] == last_line[0]:
                peaks[-1].update(mib=round(rss / 2**20, 1), at_s=round(now, 1))
            else:
                peaks.append({"mib": round(rss / 2**20, 1), "at_s": round(now, 1), "line": last_line[0]})
        time.sleep(args.interval)
    reader.join(timeout=5)
    from harness.models.device import cpu_model  # only now: a parent holding torch would inflate the child's maxrss

    if args.log:
        args.log.write_text("\n".join(f"{t}\t{m}\t{line}" for t, m, line in samples) + "\n")
    print(json.dumps({
        "command": command, "returncode": child.returncode, "seconds": round(time.perf_counter() - began, 1),
        "peak_rss_mib": round(peak / 2**20, 1),
        "kernel_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "cpu": cpu_model(), "new_highs": peaks[-12:],
    }, indent=2))


if __name__ == "__main__":
    main()
