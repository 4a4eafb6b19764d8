"""The installed tool, as a team gets it: build the wheel, install it into a fresh virtual environment, and run
the CLI from an empty folder, where nothing from this checkout can be found by accident.

Offline and quick: the wheel is built without isolation or dependencies, and the fresh environment (standard
library `venv`, no pip) sees this environment's dependencies through a `.pth` line instead of reinstalling torch.
A path added that way is not scanned for `.pth` files, so the checkout's editable install does not leak in; the
tests check that anyway.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "harness", "dashboards", "suites", "experiments")
"""What the wheel is built from; the rest of the checkout (tests, bench, results, build/) stays out of the copy."""
WHEEL_DIRS = {"harness": "harness", "dashboards": "harness_dashboards", "suites": "harness/bundled_suites",
              "experiments": "harness/bundled_experiments"}
"""Source folder -> where its files sit in the wheel (pyproject.toml's package-dir)."""
BUNDLED_SUITES = ("ticket-triage", "slot-extraction", "math-word-problems")
DASHBOARD_START_S = 60


@dataclass(frozen=True)
class Installed:
    """The wheel installed into a fresh environment, and an empty project folder to run it from."""

    python: Path
    script: Path
    site_packages: Path
    project: Path
    env: dict[str, str]

    def harness(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run the installed `harness` console script from the project folder; fail with its output if it fails."""
        done = subprocess.run([str(self.python), str(self.script), *args], cwd=self.project, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"harness {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A clean copy of what the wheel is built from: no caches, no build/ or egg-info left by earlier builds."""
    root = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, root / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, root / name)
    return root


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "--disable-pip-version-check", "-q", "-w", str(out), str(source)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout}{done.stderr}"
    (built,) = out.glob("finetune_harness-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    env_dir, project = root / "venv", root / "project"
    venv.create(env_dir, with_pip=False, symlinks=os.name != "nt")
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = Path(subprocess.run([str(python), "-c", purelib], check=True, capture_output=True,
                                        text=True).stdout.strip())
    with zipfile.ZipFile(wheel) as archive:  # a pure wheel installs by unpacking into site-packages
        archive.extractall(site_packages)
        entry_points = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")))
    parser = configparser.ConfigParser()
    parser.read_string(entry_points.decode())
    module, function = parser["console_scripts"]["harness"].split(":")
    script = python.parent / "harness"
    script.write_text(f"#!{python}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n")
    script.chmod(0o755)
    (site_packages / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    project.mkdir()
    keep = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env = {**keep, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(root / "home"),
           "HARNESS_CACHE": str(root / "cache"), "HF_HOME": str(root / "hf"), "XDG_CACHE_HOME": str(root / "xdg"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONNOUSERSITE": "1"}
    return Installed(python, script, site_packages, project, env)


def test_wheel_carries_every_module_and_bundled_file_and_nothing_else(source, wheel):
    expected = set()
    for folder, target in WHEEL_DIRS.items():
        for path in (source / folder).rglob("*"):
            relative = path.relative_to(source / folder)
            if path.is_file() and relative.parts[0] != "_build" and (folder != "experiments" or path.suffix == ".yaml"):
                expected.add(f"{target}/{relative.as_posix()}")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if ".dist-info/" not in n}
    assert shipped == expected, {"missing": sorted(expected - shipped), "extra": sorted(shipped - expected)}
    for name in BUNDLED_SUITES:
        for file in ("suite.yaml", "train.jsonl", "dev.jsonl", "test.jsonl", "LICENSE", "SOURCE.md"):
            assert f"harness/bundled_suites/{name}/{file}" in shipped
    for file in ("lm_eval/harness_piqa.yaml", "lm_eval/harness_gsm8k.yaml", "piqa/piqa.jsonl",
                 "gsm8k/gsm8k-250.jsonl", "gsm8k/gsm8k-fewshot.jsonl"):
        assert f"harness/bundled_suites/general/{file}" in shipped
    assert {"harness/analysis/prices.yaml", "harness_dashboards/app.py", "harness/bundled_experiments/demo.yaml",
            "harness/project.py", "harness/serving/vllm_env.sh"} <= shipped  # the last named by vLLM errors
    assert not any("_build" in n or "__pycache__" in n or n.endswith(".pyc") for n in shipped)


def test_installed_package_comes_from_the_fresh_environment(installed):
    probe = ("import json, sys, harness, harness_dashboards; from harness.core.paths import bundled; "
             "print(json.dumps({'harness': harness.__file__, 'dashboards': harness_dashboards.__file__, "
             "'suites': str(bundled('suites')), 'path': sys.path, 'modules': sorted(sys.modules)}))")
    done = subprocess.run([str(installed.python), "-c", probe], cwd=installed.project, env=installed.env,
                          capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    for key in ("harness", "dashboards", "suites"):
        assert Path(found[key]).is_relative_to(installed.site_packages), (key, found[key])
    assert str(REPO) not in found["path"]
    assert not any("__editable__" in m for m in found["modules"])


def test_cli_from_an_empty_folder(installed):
    assert "sweep" in installed.harness("--help").stdout
    assert "ticket-triage 1.1.0: valid" in installed.harness("suite", "validate", "ticket-triage").stdout

    wrote = installed.harness("init").stdout
    assert "wrote experiments/first-sweep.yaml" in wrote and "next: harness sweep experiments/first-sweep.yaml" in wrote
    plan = installed.harness("sweep", "experiments/first-sweep.yaml", "--dry-run").stdout
    assert "study first-sweep" in plan and "suite ticket-triage" in plan
    # a dry run fetches nothing: without the model, no timings, and it says how to get them
    assert "not calibrated" in plan and "harness models pull smollm2-135m" in plan

    rows = [(f"my card {i} was {word}", label) for i in range(12)
            for word, label in (("stolen", "theft"), ("declined", "decline"), ("charged twice", "refund"))]
    (installed.project / "tickets.csv").write_text("text,queue\n" + "".join(f"{t},{q}\n" for t, q in rows))
    installed.harness("suite", "init", "tickets", "--from", "tickets.csv", "--input-field", "text",
                      "--label-field", "queue")
    assert (installed.project / "suites/tickets/suite.yaml").is_file()
    assert "tickets 1.0.0: valid" in installed.harness("suite", "validate", "tickets").stdout


def test_one_trial_sweep_then_trials_and_dashboard(installed, tiny_model_dir):
    experiments = installed.project / "experiments"
    experiments.mkdir(exist_ok=True)
    (experiments / "wheel.yaml").write_text(f"""\
name: wheel
model: {tiny_model_dir}
suite: ticket-triage
data: {{train_limit: 16, dev_limit: 4, test_limit: 4}}
budget: {{trials: 1, max_steps: 1}}
training: {{batch_size: 4, eval_every_steps: 0}}
regression: {{enabled: true, limit: 3}}
space:
  lora: {{r: 4}}
""")
    installed.harness("sweep", "wheel")  # by name: ./experiments/wheel.yaml
    (trial,) = json.loads(installed.harness("trials", "--format", "json").stdout)
    assert trial["status"] == "complete" and trial["method"] == "lora"
    assert trial["metrics"]["task_accuracy"]["n"] == 4
    assert trial["metrics"]["regression_delta"]["n"] == 3  # the bundled lm-eval YAML read its data from the wheel
    results = installed.project / "results"
    assert (results / "harness.duckdb").is_file() and (results / "optuna-journal.log").is_file()

    pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e '.[test]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = installed.project.parent / "dashboard.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(installed.python), str(installed.script), "dashboard", "--db",
                                   "results/harness.duckdb", "--port", str(port)], cwd=installed.project,
                                  env=installed.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert _health(port, server) == "ok", log.read_text()
    finally:
        server.terminate()  # the launcher stops its Streamlit child on SIGTERM
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _health(port: int, server: subprocess.Popen) -> str | None:
    """The dashboard's health answer, polled until it answers, exits, or DASHBOARD_START_S passes."""
    deadline = time.monotonic() + DASHBOARD_START_S
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
                return reply.read().decode()
        except OSError:
            time.sleep(0.25)
    return None
