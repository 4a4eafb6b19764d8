"""Shared by the benchmarks that time whole sweeps: an experiment file, a timed `harness sweep`, its trials.

Every sweep runs through the real command line (`python -m harness sweep`) in its own process, so what is timed
is what a user waits for: start-up, data preparation, every trial, and the database writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def write_experiment(folder: Path, name: str, model: str, suite: str, space: dict, enqueue: list[dict] | None = None,
                     **sections) -> Path:
    """An experiment YAML in `folder` with its results under `folder/results`."""
    folder.mkdir(parents=True, exist_ok=True)
    body = {"name": name, "model": model, "suite": suite, "results_dir": str(folder / "results"), "space": space,
            "regression": {"enabled": False}, **sections}
    if enqueue:
        body["enqueue"] = enqueue
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@dataclass(frozen=True)
class SweepRun:
    study: str
    wall_seconds: float
    """What the user waited for: the whole command, start-up and data preparation included."""
    trials: list
    """The study's trials as the store reads them (TrialView)."""

    @property
    def complete(self) -> list:
        return [t for t in self.trials if t.status == "complete"]

    def best_dev(self) -> float | None:
        """The best objective on dev (the harness chooses on dev), among complete trials."""
        values = [t.objective for t in self.complete if t.objective is not None]
        return max(values) if values else None

    def trial_seconds(self) -> float:
        """Device time the trials took: the sum of their wall times (load, train, evaluation, saving)."""
        return sum(t.wall_seconds or 0.0 for t in self.trials)

    def summary(self) -> dict:
        return {"study": self.study, "wall_seconds": round(self.wall_seconds, 1), "trials": len(self.trials),
                "complete": len(self.complete), "pruned": sum(t.status == "pruned" for t in self.trials),
                "failed": sum(t.status == "failed" for t in self.trials),
                "trial_seconds": round(self.trial_seconds(), 1), "best_dev": self.best_dev()}


def sweep(experiment: Path, study: str, trials: int, *extra: str, env: dict | None = None,
          timeout: float = 3600) -> SweepRun:
    """Run `harness sweep` to completion, timed, and read back the study's trials."""
    from harness.store.database import Store

    command = [sys.executable, "-m", "harness", "sweep", str(experiment), "--study", study, "--trials", str(trials),
               *extra]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                           f"{done.stderr[-3000:]}")
    return SweepRun(study, wall, Store(experiment.parent / "results" / "harness.duckdb").trials(study))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft", "trl", "optuna", "duckdb"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
