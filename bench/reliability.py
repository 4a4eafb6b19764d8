"""Load and faults held by several workers on one study, measured: the numbers behind README's Reliability section.

A throwaway PostgreSQL cluster on 127.0.0.1 (tests/pg.py), a tiny model built from a config, and
WORKERS `harness worker` processes on one study of TRIALS trials. Mid-way one worker is SIGKILLed while it
trains. Meanwhile two readers poll the results database as fast as they can, one as `harness trials` reads it
(Store.trials) and one as the dashboard does (its data module, per study and per trial). It reports every read,
every failed read ("Conflicting lock" and the like), every finished trial seen without its scores, and how the
study's trials were accounted for at the end.

    .venv/bin/python bench/reliability.py [--workers 3] [--trials 24] [--out bench/results/reliability_DATE.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import optuna  # noqa: E402
from conftest import write_toy_suite  # noqa: E402
from harness_dashboards import data as dashboard_data  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from pg import Cluster  # noqa: E402
from tiny import build_tiny_model_dir  # noqa: E402

from harness.store.database import Store  # noqa: E402
from harness.sweep.resume import counted_trials  # noqa: E402
from harness.sweep.storage import normalise  # noqa: E402

EXPERIMENT = """name: load
model: {model}
suite: {suite}
results_dir: {results}
regression: {{enabled: false}}
budget: {{trials: {trials}, max_steps: 150, epochs: 1000, trial_train_seconds: 60}}
training: {{batch_size: 4, eval_every_steps: 0}}
pruning: {{enabled: false}}
data: {{dev_limit: 8, test_limit: 8}}
space:
  prompt: {{shots: [0, 1, 2]}}
  full: {{learning_rate: {{low: 1.0e-4, high: 1.0e-2, log: true}}}}
enqueue: [{{method: prompt, shots: 0}}, {{method: prompt, shots: 1}}, {{method: prompt, shots: 2}}]
"""


class Reader(threading.Thread):
    def __init__(self, name: str, db: Path, read):
        super().__init__(daemon=True)
        self.name, self.db, self.read = name, db, read
        self.stop, self.reads, self.failures, self.partial = threading.Event(), 0, [], set()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.db.exists():
                try:
                    for t in self.read(self.db):
                        if t.status == "complete" and t.metric("test", "task_accuracy") is None:
                            self.partial.add(t.id)
                    self.reads += 1
                except Exception as exc:  # noqa: BLE001 - each failure is the measurement
                    self.failures.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            time.sleep(0.01)

    def summary(self) -> dict:
        return {"reads": self.reads, "failed_reads": len(self.failures), "failures": self.failures[:5],
                "finished_trials_seen_without_scores": sorted(self.partial)}


def as_cli(db: Path):
    return Store(db).trials()


def as_dashboard(db: Path):
    dashboard_data.trials.clear()  # past the dashboard's short cache: every poll reads the file
    dashboard_data.trial.clear()
    rows = dashboard_data.trials(str(db))
    for row in rows[-3:]:
        dashboard_data.trial(str(db), row.id)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--out", type=Path, default=REPO / f"bench/results/reliability_{date.today()}.json")
    args = parser.parse_args()
    # "No runtime found": the dashboard's cache works without a Streamlit server, as here.
    logging.getLogger("streamlit.runtime.caching.cache_data_api").setLevel(logging.ERROR)
    root = Path(tempfile.mkdtemp(prefix="harness-reliability-"))
    model, suite = build_tiny_model_dir(root / "model"), write_toy_suite(root / "suites")
    experiment = root / "load.yaml"
    experiment.write_text(EXPERIMENT.format(model=model, suite=suite, results=root / "results", trials=args.trials))
    db = root / "results/harness.duckdb"
    began = time.perf_counter()
    with Cluster() as cluster:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HARNESS_STORAGE": cluster.url,
               "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // args.workers))}
        logs = [(root / f"worker-{i}.log").open("w") for i in range(args.workers)]
        workers = [subprocess.Popen([sys.executable, "-m", "harness", "worker", str(experiment), "--index", str(i)],
                                    cwd=REPO, env=env, stdout=logs[i], stderr=subprocess.STDOUT)
                   for i in range(args.workers)]
        readers = [Reader("harness trials", db, as_cli), Reader("dashboard", db, as_dashboard)]
        for reader in readers:
            reader.start()
        killed = None
        while any(w.poll() is None for w in workers):
            done = sum(t.status != "running" for t in Store(db).trials()) if db.exists() else 0
            if killed is None and done >= args.trials // 3:
                killed = _kill_a_training_worker(db, workers)
            time.sleep(0.3)
        for reader in readers:
            reader.stop.set()
            reader.join()
        for log in logs:
            log.close()
        study = optuna.load_study(study_name="load", storage=normalise(cluster.url))
        states = Counter(t.state.name for t in study.get_trials(deepcopy=False))
        counted = counted_trials(study)
        running_left = states.get(TrialState.RUNNING.name, 0)
    trials = Store(db).trials("load")
    result = {
        "what": "WORKERS harness worker processes on one PostgreSQL study; one SIGKILLed mid-training; two readers "
                "polling the results database throughout",
        "workers": args.workers, "study_trials": args.trials, "wall_seconds": round(time.perf_counter() - began, 1),
        "killed_worker_pid": killed, "worker_exit_codes": [w.returncode for w in workers],
        "optuna": {"counted_trials": counted, "states": dict(states), "running_left": running_left},
        "results_db": {
            "trials": len(trials), "unique_ids": len({t.id for t in trials}),
            "by_status": dict(Counter(t.status for t in trials)),
            "failed_reasons": [t.failure_reason for t in trials if t.status == "failed"],
        },
        "readers": {r.name: r.summary() for r in readers},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "versions": {name: _version(name) for name in ("optuna", "duckdb", "psycopg", "torch", "transformers")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _kill_a_training_worker(db: Path, workers: list[subprocess.Popen]) -> int | None:
    store = Store(db)
    by_pid = {w.pid: w for w in workers}
    running = [t for t in store.trials() if t.status == "running" and t.method == "full"]
    runs = store.runs({t.run_id for t in running})
    for trial in running:
        proc = by_pid.get(runs[trial.run_id].pid) if trial.run_id in runs else None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return proc.pid
    return None


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
