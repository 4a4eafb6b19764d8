"""Writes to the results database while readers poll it back to back (a dashboard per lead, `harness trials` in a
`watch`): each write's wait, against the same writes with no reader, measured in one run.

DuckDB gives the file to whoever asks first. Before writers marked that they wait (`Store._with_connection`), three
readers polling without pause kept each of a sweep's writes out for about a second (20 writes in 21.3 s, AMD EPYC,
2026-12-06), and more readers, or heavier reads, could keep one out past its 30 s lock timeout, which stops a sweep.
Target: a write among the readers waits at most a few of their reads, not seconds.

    python bench/store_readers.py [--readers 3] [--writes 20] [--out bench/results/store_readers.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_store import make_record  # noqa: E402  a whole trial: row, metrics, throughput and examples

from harness.store.database import Store  # noqa: E402


def _reader(path: str, ready, stop, counts) -> None:
    store = Store(path, lock_timeout_s=600)
    reads = 0
    ready.release()
    while not stop.is_set():
        store.trials()
        reads += 1
    counts.put(reads)


def _writes(store: Store, writes: int) -> list[float]:
    waits = []
    for number in range(1, writes + 1):
        began = time.perf_counter()
        store.record_trial_result(make_record(number=number))
        waits.append(time.perf_counter() - began)
    return waits


def _summary(waits: list[float]) -> dict:
    ordered = sorted(waits)
    return {"writes": len(waits), "mean_s": statistics.mean(waits), "p50_s": ordered[len(ordered) // 2],
            "p95_s": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], "max_s": ordered[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("store_readers.json"))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="harness-readers-"))

    alone = Store(folder / "alone.duckdb", lock_timeout_s=600)
    alone.record_trial_result(make_record())
    quiet = _writes(alone, args.writes)

    busy = Store(folder / "busy.duckdb", lock_timeout_s=600)
    busy.record_trial_result(make_record())
    ready, stop, counts = mp.Semaphore(0), mp.Event(), mp.Queue()
    readers = [mp.Process(target=_reader, args=(str(busy.path), ready, stop, counts)) for _ in range(args.readers)]
    for process in readers:
        process.start()
    for _ in readers:
        ready.acquire()  # every reader is polling before the first write
    began = time.perf_counter()
    crowded = _writes(busy, args.writes)
    seconds = time.perf_counter() - began
    stop.set()
    reads = [counts.get() for _ in readers]
    for process in readers:
        process.join()

    result = {
        "what": f"{args.writes} trial writes, alone and with {args.readers} readers polling back to back",
        "alone": _summary(quiet), "with_readers": _summary(crowded),
        "ratio_mean_wait": statistics.mean(crowded) / statistics.mean(quiet),
        "reads_per_reader_per_s": [r / seconds for r in reads],
        "machine": {"cpu": _cpu_model(), "cores": mp.cpu_count(), "python": platform.python_version(),
                    "duckdb": duckdb.__version__},
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
