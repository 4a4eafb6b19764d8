"""Several workers on one study: the journal on one machine, and a real PostgreSQL server (a throwaway cluster on
127.0.0.1), with a worker SIGKILLed mid-trial and a reader polling the results database while they write."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import pg
import pytest
from conftest import printed
from optuna.trial import TrialState

from harness.core.errors import ConfigError
from harness.core.progress import INTERVAL_ENV
from harness.core.records import is_duplicate
from harness.store.database import Store
from harness.sweep.resume import LEASE_SECONDS, counted_trials
from harness.sweep.storage import normalise, open_storage, redacted

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "s3cret-storage-password"

EXPERIMENT = """
regression: {enabled: false}
budget: {trials: TOTAL, max_steps: STEPS, epochs: 1000, trial_train_seconds: 30}
training: {batch_size: 4, eval_every_steps: 0}
pruning: {enabled: false}
data: {dev_limit: 6, test_limit: 6}
space:
  prompt: {shots: 0}
  full: {learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}}
enqueue: [{method: prompt}]
"""


def write_experiment(tmp_path: Path, model: Path, suite: Path, total: int, steps: int) -> Path:
    path = tmp_path / "exp.yaml"
    body = EXPERIMENT.replace("TOTAL", str(total)).replace("STEPS", str(steps))
    path.write_text(f"name: toy\nmodel: {model}\nsuite: {suite}\nresults_dir: {tmp_path / 'results'}\n{body}")
    return path


class Poller(threading.Thread):
    """Reads the results database as `harness trials` does, as fast as it can, while workers write."""

    def __init__(self, db: Path):
        super().__init__(daemon=True)
        self.db, self.stop, self.reads, self.errors, self.partial = db, threading.Event(), 0, [], []

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.db.exists():
                time.sleep(0.05)
                continue
            try:
                for t in Store(self.db, lock_timeout_s=60).trials():
                    if t.status == "complete" and t.metric("test", "task_accuracy").n == 0:
                        self.partial.append(t.id)  # a finished trial seen without its scores
                self.reads += 1
            except Exception as exc:  # noqa: BLE001 - every failure is what this measures
                self.errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.2)  # five reads a second, as a keen dashboard: back to back, a loaded CPU starves writers


def test_storage_urls_are_checked_before_anything_runs():
    assert normalise("postgresql://u:secret@db:5432/h") == "postgresql+psycopg://u:secret@db:5432/h"
    assert normalise("postgres://u@db/h") == "postgresql+psycopg://u@db/h"
    assert normalise("journal:results/j.log") == "journal:results/j.log"
    assert redacted("postgresql+psycopg://u:secret@db:5432/h") == "postgresql+psycopg://u:***@db:5432/h"
    with pytest.raises(ConfigError, match="is not a storage the harness can use") as err:
        normalise("mysql://u:secret@db/h")
    assert "secret" not in str(err.value)
    with pytest.raises(ConfigError, match="give the journal file"):
        normalise("journal:")


def test_an_unreachable_storage_is_refused_before_any_model_loads(tmp_path, tiny_model_dir, toy_suite, monkeypatch,
                                                                  capsys):
    from harness.cli import main
    from harness.models import loading

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    monkeypatch.setattr(loading, "load_tokenizer", lambda *a, **k: pytest.fail("a tokenizer loaded"))
    monkeypatch.setenv("HARNESS_STORAGE", f"postgresql://harness:{PASSWORD}@127.0.0.1:9/harness")  # nothing there
    experiment = write_experiment(tmp_path, tiny_model_dir, toy_suite, total=2, steps=5)
    assert main(["worker", str(experiment), "--storage", os.environ["HARNESS_STORAGE"]]) == 2
    out = printed(capsys)
    assert "cannot reach the study storage postgresql+psycopg://harness:***@127.0.0.1:9/harness" in out
    assert PASSWORD not in out and "Traceback" not in out


def test_the_claim_lock_excludes_other_processes(tmp_path):
    """Two processes cannot hold a journal study's claim at once (it is what keeps the total exact)."""
    storage = open_storage(normalise(f"journal:{tmp_path / 'j.log'}"))
    child = (
        f"import sys, time; sys.path.insert(0, {str(REPO)!r})\n"
        "from harness.sweep.storage import open_storage\n"
        f"s = open_storage('journal:{tmp_path / 'j.log'}')\n"
        "print('claiming', flush=True)\n"
        "with s.claim('toy'): print(time.time(), flush=True)\n"
    )
    with storage.claim("toy"):
        proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "claiming"  # the child is at the lock, however slow its start
        time.sleep(0.5)  # room for a broken lock to let it through; a working one holds it however long this is
        released = time.time()
    acquired = float(proc.communicate(timeout=60)[0])
    assert acquired >= released, "the child held the claim while this process still did"


@pytest.mark.slow
def test_a_dry_run_with_workers_says_how_they_share_the_machine(tmp_path, tiny_model_dir, toy_suite, capsys):
    import os

    from harness.cli import main

    experiment = write_experiment(tmp_path, tiny_model_dir, toy_suite, total=2, steps=4)
    assert main(["sweep", str(experiment), "--workers", "2", "--dry-run"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    cores = os.cpu_count() or 1
    assert (f"workers: 2 processes take the trials in turn, each with {max(1, cores // 2)} of the {cores} cores; "
            "the estimate below times the trials one after another, each as one worker runs it") in out


def test_local_workers_share_one_study_exactly(tmp_path, tiny_model_dir, toy_suite, capsys, monkeypatch):
    """`sweep --workers 3`: 5 trials in total (not 15), the enqueued baseline once, every trial stored once; the
    machine timed once, by the sweep, not again by each worker."""
    from harness.cli import main

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))  # a calibration of no earlier run; workers inherit it

    experiment = write_experiment(tmp_path, tiny_model_dir, toy_suite, total=5, steps=30)
    # prompting with six configurations, not one: a drawn duplicate of a finished one is pruned at once, without a
    # slot of the total, so with a single prompting configuration the workers would mostly draw duplicates
    experiment.write_text(experiment.read_text().replace("prompt: {shots: 0}", "prompt: {shots: [0, 1, 2, 3, 4, 5]}"))
    db = tmp_path / "results/harness.duckdb"
    poller = Poller(db)
    poller.start()
    try:
        assert main(["sweep", str(experiment), "--workers", "3"]) == 0
    finally:
        poller.stop.set()
        poller.join()
    out = capsys.readouterr().out
    assert "3 workers on cpu" in out
    trials = Store(db).trials("toy")
    assert sum(counted(t) for t in trials) == 5, ([(t.id, t.status) for t in trials], out[-3000:])
    study = optuna.load_study(
        study_name="toy", storage=open_storage(f"journal:{tmp_path / 'results/optuna-journal.log'}").storage
    )
    assert sum("fixed_params" in t.system_attrs for t in study.get_trials()) == 1  # three enqueued it: one trial
    assert counted_trials(study) == 5
    assert not [t for t in trials if t.status == "running"]
    runs = Store(db).runs({t.run_id for t in trials})
    assert len({runs[t.run_id].pid for t in trials}) >= 2  # the work was spread, not done by one worker
    assert poller.reads > 0 and poller.errors == [] and poller.partial == []
    # the sweep calibrated with a worker's threads, and every worker read that calibration rather than time the
    # machine again
    assert "calibrating on" in out, out[-3000:]
    for log in sorted((tmp_path / "results/logs").glob("toy-worker-*.log")):
        assert "calibration cached" in log.read_text() and "calibrating on" not in log.read_text(), log.read_text()


@pytest.mark.slow
@pytest.mark.skipif(
    pg.binaries() is None and not os.environ.get(pg.REQUIRE_ENV),
    reason="PostgreSQL is not installed (`apt-get install postgresql`; .ci/run installs it)",
)
def test_three_postgres_workers_survive_a_sigkill(tmp_path, tiny_model_dir, toy_suite):
    """Three `harness worker` processes on one PostgreSQL study; one is SIGKILLed mid-trial. The study still
    completes with exactly its total, the killed trial is failed with its reason and run again, nothing stays
    RUNNING, and a reader polling the results database throughout never fails nor sees half a trial."""
    total = 6
    experiment = write_experiment(tmp_path, tiny_model_dir, toy_suite, total=total, steps=150)
    db = tmp_path / "results/harness.duckdb"
    with pg.Cluster() as cluster:
        # trust authentication ignores the password; it is here to show that it is never written anywhere
        url = cluster.url.replace("harness@", f"harness:{PASSWORD}@")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HARNESS_STORAGE": url, "OMP_NUM_THREADS": "1"}
        logs = [open(tmp_path / f"worker-{i}.log", "w") for i in range(3)]  # noqa: SIM115 - closed below
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "harness", "worker", str(experiment), "--index", str(i)],
                cwd=REPO,
                env=env,
                stdout=logs[i],
                stderr=subprocess.STDOUT,
            )
            for i in range(3)
        ]
        poller = Poller(db)
        poller.start()
        try:
            victim = _kill_one_mid_training(db, workers)
            for proc in workers:
                proc.wait(timeout=600)
        finally:
            poller.stop.set()
            poller.join()
            for proc in workers:
                if proc.poll() is None:
                    proc.kill()
            for log in logs:
                log.close()
        outputs = [(tmp_path / f"worker-{i}.log").read_text() for i in range(3)]
        survivors = [proc.returncode for proc in workers if proc.pid != victim]
        assert survivors == [0, 0], outputs
        study = optuna.load_study(study_name="toy", storage=normalise(cluster.url))
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        assert counted_trials(study) == total and states[TrialState.RUNNING] == 0, states

    trials = Store(db).trials("toy")
    assert len({t.id for t in trials}) == len(trials)
    assert sum(counted(t) for t in trials) == total
    killed = [t for t in trials if t.status == "failed"]
    assert len(killed) == 1 and "interrupted" in killed[0].failure_reason and "retried" in killed[0].failure_reason
    retried = [t for t in trials if t.params == killed[0].params and t.status == "complete"]
    assert retried, "the killed trial's configuration was not run again"
    assert not [t for t in trials if t.status == "running"]
    assert poller.reads > 0 and poller.errors == [] and poller.partial == [], poller.errors[:3]
    for file in [*(tmp_path / "results").rglob("*"), *tmp_path.glob("worker-*.log")]:
        if file.is_file():
            assert PASSWORD.encode() not in file.read_bytes(), file


needs_postgres = pytest.mark.skipif(
    pg.binaries() is None and not os.environ.get(pg.REQUIRE_ENV),
    reason="PostgreSQL is not installed (`apt-get install postgresql`; .ci/run installs it)")


@pytest.fixture(scope="module")
def postgres():
    with pg.Cluster() as cluster:
        yield cluster


def full_only_experiment(tmp_path: Path, model: Path, suite: Path) -> Path:
    """Two trials of full fine-tuning only, so the first trial trains whatever the sampler's seed, far past any
    signal sent to it (a step budget of 100,000)."""
    experiment = write_experiment(tmp_path, model, suite, total=2, steps=100000)
    body = experiment.read_text()
    experiment.write_text(body[:body.index("space:")] + "space:\n  full: {learning_rate: [1.0e-3, 2.0e-3]}\n")
    return experiment


def signal_mid_trial(command: list[str], env: dict, db: Path, signum: int, preexec=None
                     ) -> tuple[subprocess.Popen, str]:
    """Run `command`, send `signum` once its trial has taken a training step, and return the ended process and what it
    printed. Conditions, not sleeps: the trial is recorded as running, and after that its training has taken a step
    (the trial's own progress bar, not the calibration's, which comes before any trial)."""
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=preexec)  # noqa: PLW1509 - the disposition a background job inherits
    said = Output(proc)
    wait_for(lambda: db.exists() and any(t.status == "running" and t.method == "full" for t in Store(db).trials()),
             proc, said, "a running full trial")
    started = len(said.text)
    wait_for(lambda: re.search(r"train:\s+\d+%.*?\| [1-9]\d*/", said.text[started:]) is not None, proc, said,
             "the trial's first training step")
    proc.send_signal(signum)
    proc.wait(timeout=120)
    said.done.wait(timeout=30)
    return proc, said.text


@pytest.mark.slow
@pytest.mark.parametrize("storage, inherited", [
    ("journal", "default"),
    pytest.param("postgresql", "default", marks=needs_postgres),
    ("journal", "ignored"),  # started from a shell that ignores SIGINT in background jobs: Ctrl-C was lost there
])
def test_ctrl_c_mid_trial_prints_only_the_clean_message_and_resumes(storage, inherited, request, tmp_path,
                                                                    tiny_model_dir, toy_suite):
    experiment = full_only_experiment(tmp_path, tiny_model_dir, toy_suite)
    url = request.getfixturevalue("postgres").url if storage == "postgresql" else None
    env = {**os.environ, "PYTHONUNBUFFERED": "1", INTERVAL_ENV: "0",  # the wait below reads the bar
           **({"HARNESS_STORAGE": url} if url else {})}
    command = [sys.executable, "-m", "harness", "worker" if url else "sweep", str(experiment),
               "--study", f"sigint-{storage}-{inherited}", "--allow-under-trained"]  # Ctrl-C comes before the cap
    db = tmp_path / "results/harness.duckdb"
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if inherited == "ignored" else None
    proc, output = signal_mid_trial(command, env, db, signal.SIGINT, ignore)
    assert proc.returncode == 130, output[-3000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
    assert "interrupted. Finished trials are saved; re-run the same command to resume." in output
    (stopped,) = [t for t in Store(db).trials() if t.method == "full"]
    assert stopped.status == "failed" and stopped.failure_reason.startswith("interrupted by the user")
    # the same command resumes; the interrupted trial does not count toward the total
    experiment.write_text(experiment.read_text().replace("max_steps: 100000", "max_steps: 10"))
    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    # two counted: a worker's seed comes from its pid, so the second may sample the first's configuration again,
    # which is recorded as a pruned duplicate and takes no slot: both configurations run
    trials = Store(db).trials()
    assert sum(counted(t) for t in trials) == 2 and sum(t.complete for t in trials) == 2
    (rerun,) = [t for t in trials if t.complete and t.params == stopped.params]  # the stopped configuration, again
    assert Store(db).trial(stopped.id).failure_reason.endswith(f"; re-run as {rerun.id}")  # and the stopped one says so


def counted(trial) -> bool:
    """Whether a stored trial takes a slot of the study's total: it finished, and was not a duplicate."""
    return trial.status in ("complete", "pruned") and not is_duplicate(trial.failure_reason)


class Output(threading.Thread):
    """Reads a process's output as it comes (progress bars redraw without newlines), so a test can wait on it."""

    def __init__(self, proc: subprocess.Popen):
        super().__init__(daemon=True)
        self.proc, self.text, self.done = proc, "", threading.Event()
        self.start()

    def run(self) -> None:
        while chunk := self.proc.stdout.read(1):
            self.text += chunk
        self.done.set()


def wait_for(condition, proc: subprocess.Popen, said: Output, what: str, timeout_s: float = 600) -> None:
    """Poll `condition` until it holds; fail at once, with the output, if the process ends first. The timeout only
    guards against a hung process: on a slow machine the wait is longer, never the test weaker."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, f"the process ended before {what}: {said.text[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout_s:.0f} s: {said.text[-3000:]}"
        time.sleep(0.05)


def _kill_one_mid_training(db: Path, workers: list[subprocess.Popen]) -> int:
    """SIGKILL the worker that is training a `full` trial; returns its pid."""
    pids = {proc.pid: proc for proc in workers}
    deadline = time.time() + 300
    while time.time() < deadline:
        if db.exists():
            store = Store(db, lock_timeout_s=60)
            running = [t for t in store.trials("toy") if t.status == "running" and t.method == "full"]
            runs = store.runs({t.run_id for t in running})
            for trial in running:
                pid = runs[trial.run_id].pid if trial.run_id in runs else None
                if pid in pids and pids[pid].poll() is None:
                    pids[pid].send_signal(signal.SIGKILL)
                    pids[pid].wait()
                    return pid
        time.sleep(0.2)
    raise AssertionError("no worker was ever seen training")


def test_a_trial_whose_worker_on_another_machine_went_silent_is_failed_and_retried_once(tmp_path):
    """The path no pid can take: a worker on another host whose lease ran out. Its trial fails with the reason
    and runs again once; the retry, if its worker goes silent too, is not retried again."""
    from harness.sweep.resume import fail_stale_trials
    from harness.sweep.run import RETRY

    study = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'j.log'}").storage, study_name="s")

    def silent_trial():
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        for key, value in (("pid", 4242), ("host", "another-machine"), ("lease_until", time.time() - 1)):
            trial.set_user_attr(key, value)
        return trial

    first = silent_trial()
    ((number, reason, last_seen),) = fail_stale_trials(study, RETRY)
    assert number == first.number and "lease of process 4242 on another-machine expired" in reason
    lease = study.trials[first.number].user_attrs["lease_until"]
    assert last_seen == pytest.approx(lease - LEASE_SECONDS)  # its last renewal ends its time, not this call
    assert reason.endswith("retried once")
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].params == first.params

    retry = study.ask()  # picks up the waiting retry
    assert retry.params == first.params
    for key, value in (("pid", 4243), ("host", "another-machine"), ("lease_until", time.time() - 1)):
        retry.set_user_attr(key, value)
    ((_, again, _),) = fail_stale_trials(study, RETRY)
    assert f"not retried again (it was the retry of trial {first.number})" in again
    assert study.get_trials(states=(TrialState.WAITING,)) == []
    live = silent_trial()
    live.set_user_attr("lease_until", time.time() + 60)  # renewed: alive, whatever its host
    assert fail_stale_trials(study, RETRY) == []


@pytest.mark.slow
def test_sigterm_mid_trial_stops_as_ctrl_c_does_and_records_the_trial(tmp_path, tiny_model_dir, toy_suite):
    """Schedulers stop a job with SIGTERM: the process ended at once (exit 143, no word) and left its trial running in
    the study storage until a lease ran out."""
    experiment = full_only_experiment(tmp_path, tiny_model_dir, toy_suite)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", INTERVAL_ENV: "0"}
    command = [sys.executable, "-m", "harness", "sweep", str(experiment), "--study", "sigterm", "--allow-under-trained"]
    db = tmp_path / "results/harness.duckdb"
    proc, output = signal_mid_trial(command, env, db, signal.SIGTERM)
    assert proc.returncode == 143, output[-3000:]
    assert "Traceback" not in output and "stopped (SIGTERM). Finished trials are saved" in output, output[-3000:]
    (stopped,) = [t for t in Store(db).trials() if t.method == "full"]
    assert stopped.status == "failed" and stopped.failure_reason.startswith("stopped by SIGTERM during the trial")


def test_a_sample_asked_before_a_dead_workers_retry_was_queued_gives_way_to_it(tmp_path):
    """A worker asked Optuna for a trial, then its claim found a dead worker's trial and queued its retry: the fresh
    sample ran in the study's last slot, and the retry stayed queued for ever, its configuration never run again."""
    from harness.sweep.resume import fail_stale_trials
    from harness.sweep.run import RETRY, _queued_first

    study = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'j.log'}").storage, study_name="s")
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    dead = study.ask(space)
    for key, value in (("pid", 4242), ("host", "another-machine"), ("lease_until", time.time() - 1)):
        dead.set_user_attr(key, value)
    fresh = study.ask(space)  # asked before its claim looked for dead workers
    assert _queued_first(study, fresh) is None  # nothing queued yet
    fail_stale_trials(study, RETRY, current=fresh.number)
    kind, reason = _queued_first(study, fresh)
    assert kind == "yield" and "runs first, in its place" in reason
    retry = study.ask(space)  # what the worker asks for next: the queued retry
    assert retry.params == dead.params and _queued_first(study, retry) is None  # a queued trial never gives way


def test_an_enqueued_entry_gives_way_to_the_retry_of_a_trial_that_came_before_it(tmp_path):
    """A sweep killed in its LoRA trial, resumed: the retry joined Optuna's queue after the next enqueued entry, which
    ran in the LoRA's place (a prompt search of minutes where the plan had said LoRA, and no fine-tuned trial). The
    entry gives way, is queued again, and runs after the retry."""
    from harness.sweep.resume import fail_stale_trials
    from harness.sweep.run import RETRY, _queued_first

    study = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'j.log'}").storage, study_name="s")
    space = {"method": optuna.distributions.CategoricalDistribution(["prompt", "lora", "dspy"])}
    for method in ("lora", "dspy"):
        study.enqueue_trial({"method": method})
    killed = study.ask(space)
    assert killed.params == {"method": "lora"}
    for key, value in (("pid", 4242), ("host", "another-machine"), ("lease_until", time.time() - 1)):
        killed.set_user_attr(key, value)
    fail_stale_trials(study, RETRY)  # the resumed sweep finds it dead and queues its retry, after the dspy entry
    entry = study.ask(space)
    assert entry.params == {"method": "dspy"}
    kind, reason = _queued_first(study, entry)
    assert kind == "yield" and f"the retry of trial {killed.number}" in reason and "queued again" in reason
    retry = study.ask(space)
    assert retry.params == {"method": "lora"} and _queued_first(study, retry) is None  # a retry never gives way
    again = study.ask(space)
    assert again.params == {"method": "dspy"} and _queued_first(study, again) is None  # nothing before it now


def test_a_killed_workers_trial_stops_showing_as_running_in_its_own_results_folder(tmp_path):
    """A worker killed mid-trial leaves the trial running in its own results database; another worker fails it in
    the study storage. Whenever a worker next uses that results folder (at its start, even with nothing left to run,
    or at a claim), the trial is recorded as failed there too, naming its retry."""
    from test_store import make_record

    from harness.sweep.run import record_storage_failures

    study = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'j.log'}").storage, study_name="s1")
    killed, alive = study.ask(), study.ask()
    study.tell(killed, state=TrialState.FAIL)
    store = Store(tmp_path / "harness.duckdb")
    for number in (killed.number, alive.number):
        store.record_trial_start(make_record(number=number))
    record_storage_failures(store, "s1", study)
    trials = {t.number: t for t in store.trials("s1")}
    assert trials[killed.number].status == "failed"
    assert trials[killed.number].failure_reason.startswith("interrupted: its worker stopped (another worker of the "
                                                           "study found it stale); retried once")
    assert trials[alive.number].status == "running"  # still running in the storage: left as it is
