"""Shared fixtures: a tiny model directory and a tiny learnable suite, built offline in a second."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import yaml
from tiny import build_tiny_model_dir

from harness.models import loading

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config) -> None:
    """`make test` runs one pytest-xdist worker per core: each worker, and every process it starts, keeps torch to
    its share of the cores (as `harness/sweep/workers.py` does for sweep workers). Two processes that each use every
    core thrash. Torch is not imported yet here, so the setting holds for this process too."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(workers))))


@pytest.fixture(autouse=True)
def idle_cpu(monkeypatch):
    """Every test reads the CPU as idle unless it sets a load itself. The calibration re-measures a cache taken on a
    busy CPU once the CPU is idle, and a test's real load is its neighbours' (pytest-xdist, CI): a test that timed
    under load 4 on 2 cores and read its cache back under load 1 saw it measured again (CI, 2026-12-07)."""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))


COLOURS = ("red", "green", "blue")
NOUNS = ("car", "hat", "door", "cup", "kite", "boat", "lamp", "sock", "wall", "bike", "ball", "pen")


def printed(capsys) -> str:
    """What the last commands printed to the terminal: standard output, then the errors (on standard error)."""
    captured = capsys.readouterr()
    return captured.out + captured.err


def toy_rows(seed: int = 0) -> list[dict]:
    """Every input names its colour; the answer is that colour. Learnable, and unguessable by chance."""
    rng = random.Random(seed)
    rows = []
    for i in range(600):
        colour = rng.choice(COLOURS)
        rows.append({"input": f"item {i}: the {rng.choice(NOUNS)} is {colour}", "output": {"colour": colour}})
    return rows


def swept(path: Path, experiment: str, *flags: str):
    """Write `experiment` (whose results_dir is `results/` beside `path`) to `path`, run `harness sweep` on it to the
    end, and return its results store."""
    from harness.cli import main
    from harness.store.database import Store

    path.write_text(experiment)
    assert main(["sweep", str(path), *flags]) == 0
    return Store(path.parent / "results" / "harness.duckdb")


def write_toy_suite(root: Path) -> Path:
    rows = toy_rows()
    splits = {"train": rows[:480], "dev": rows[480:540], "test": rows[540:]}
    root.mkdir(parents=True, exist_ok=True)
    for name, items in splits.items():
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    (root / "suite.yaml").write_text(yaml.safe_dump({
        "name": "toy-colours", "version": "1.0.0", "task": "classification",
        "description": "Name the colour in the sentence.", "instruction": "Name the colour of the thing.",
        "output": {"kind": "label", "key": "colour", "labels": list(COLOURS)},
        "scorers": ["format_compliance", "hallucination_rate", "task_accuracy"],
    }))
    return root


@pytest.fixture()
def no_model_loads(monkeypatch):
    """Any model or tokenizer load fails the test: the input must be refused before."""
    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was validated")

    monkeypatch.setattr(loading, "load_model", loaded)
    monkeypatch.setattr(loading, "load_tokenizer", loaded)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    texts = [json.dumps(r["output"]) + " " + r["input"] for r in toy_rows()]
    texts += [line for line in (REPO / "suites/ticket-triage/train.jsonl").read_text().splitlines()[:300]]
    return build_tiny_model_dir(tmp_path_factory.mktemp("models") / "tiny", texts=texts)


@pytest.fixture(scope="session")
def toy_suite(tmp_path_factory) -> Path:
    return write_toy_suite(tmp_path_factory.mktemp("suites") / "toy-colours")


class OpenAIServer:
    """A real OpenAI-compatible server on 127.0.0.1: `transformers serve` with a local model folder."""

    def __init__(self, model_dir: Path, log: Path) -> None:
        import socket
        import subprocess
        import sys
        import time
        import urllib.request

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.model = str(model_dir)
        self.url = f"http://127.0.0.1:{self.port}/v1"
        serve = Path(sys.executable).with_name("transformers")
        self.process = subprocess.Popen(
            [str(serve), "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"],
            stdout=open(log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115 - closed with the process
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.process.returncode}: {log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"transformers serve did not answer /health within 90 s: {log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def openai_server(tiny_model_dir, tmp_path_factory):
    pytest.importorskip("fastapi", reason="the hosted-arm tests need `transformers serve`: pip install "
                                          "'transformers[serving]' (make setup installs it)")
    server = OpenAIServer(tiny_model_dir, tmp_path_factory.mktemp("serve") / "serve.log")
    yield server
    server.stop()
