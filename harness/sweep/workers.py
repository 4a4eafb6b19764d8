"""`harness sweep --workers N`: N worker processes on this machine, one study, one progress bar.

Each worker is `harness worker` in its own process, so a crash in one (out of memory, a killed process) costs
only its trial, which the others fail and retry. With GPUs, worker i sees only GPU i (mod the count). Each
worker's output goes to its own log under the results folder; the terminal shows one bar over the study. On a
CPU the cores are shared out (OMP_NUM_THREADS): workers that each use every core thrash.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from harness.core.paths import STORAGE_ENV, results_folder
from harness.core.progress import bar_options
from harness.core.records import is_duplicate
from harness.store.database import Store
from harness.sweep.plan import SweepPlan


@dataclass(frozen=True)
class WorkerExit:
    index: int
    returncode: int
    log: Path


def worker_command(plan: SweepPlan, overrides: list[str], db: Path, index: int) -> list[str]:
    """The `harness worker` command line that runs worker `index` of this plan (storage: STORAGE_ENV). The plan was
    checked against the machine already (`overrides` carry what it decided), so workers do not refuse it again."""
    command = [sys.executable, "-m", "harness", "worker", str(plan.config_path), "--study", plan.study,
               "--trials", str(plan.trials), "--index", str(index), "--db", str(db), "--allow-under-trained"]
    for override in overrides:
        command += ["--set", override]
    return command


def run_local_workers(plan: SweepPlan, overrides: list[str], store: Store, count: int, gpus: int,
                      echo: Callable[[str], None] = print) -> list[WorkerExit]:
    """Start `count` workers, follow the study until they end, and return how each ended."""
    results_folder(plan.results_dir)  # owner-only, as every results folder: the logs' mkdir made it world-readable
    logs = plan.results_dir / "logs"
    logs.mkdir(exist_ok=True)
    procs: list[tuple[int, subprocess.Popen, Path]] = []
    for index in range(count):
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{STORAGE_ENV: plan.storage})
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
        else:  # N processes each using every core run many times slower than N sharing them out
            env["OMP_NUM_THREADS"] = str(worker_threads(count))
        log = logs / f"{plan.study}-worker-{index}.log"
        with log.open("w") as handle:
            proc = subprocess.Popen(worker_command(plan, overrides, store.path, index), env=env, stdout=handle,
                                    stderr=subprocess.STDOUT)
        procs.append((index, proc, log))
    where = f"{gpus} GPU(s)" if gpus else plan.device
    echo(f"study {plan.study}: {count} workers on {where}; their logs are in {logs}/")
    try:
        _follow(plan, store, [p for _, p, _ in procs])
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reaches the workers too (one process group), and a second SIGINT could cut short
        # their recording of the interrupted trial: pass it on only to those still running after a moment.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(proc.poll() is None for _, proc, _ in procs):
            time.sleep(0.2)
        for _, proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _, proc, _ in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise
    return [WorkerExit(index, proc.returncode, log) for index, proc, log in procs]


def worker_threads(count: int) -> int:
    """The threads each of `count` workers on this machine's CPU gets: OMP_NUM_THREADS where the user set it, else
    an equal share of the cores."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return max(1, (os.cpu_count() or 1) // count)


@contextmanager
def as_one_worker(device: str, count: int) -> Iterator[None]:
    """This process with the threads one of `count` CPU workers will have, while it plans their sweep: the
    calibration is then the workers' own (its cache is keyed by threads), which they read instead of each timing
    the machine again, for minutes, all at once. Nothing changes on a GPU, where each worker has a GPU of its own."""
    if device != "cpu" or count < 2:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(worker_threads(count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _follow(plan: SweepPlan, store: Store, procs: list[subprocess.Popen]) -> None:
    finished = _finished(store, plan.study)
    with tqdm(total=plan.trials, initial=finished, desc=f"sweep ({len(procs)} workers)", unit="trial",
              **bar_options()) as bar:
        while any(p.poll() is None for p in procs):
            time.sleep(1.0)
            now = _finished(store, plan.study)
            if now != bar.n:  # a redraw per second would flood a log
                bar.update(now - bar.n)
        bar.update(_finished(store, plan.study) - bar.n)


def _finished(store: Store, study: str) -> int:
    """The study's finished trials by the results database; duplicates take no slot of the total (run.py)."""
    if not store.path.exists():
        return 0
    return sum(1 for t in store.trials(study)
               if t.status in ("complete", "pruned", "failed") and not is_duplicate(t.failure_reason))


def log_tail(path: Path, lines: int = 15) -> str:
    """The end of a worker's log, for the message when it failed."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    tail = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return "\n".join(tail[-lines:])
