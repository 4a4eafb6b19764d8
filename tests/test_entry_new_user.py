"""A new user's first steps, case by case: `harness init` where it cannot write, a `model:` folder of their own that
cannot work (refused before anything loads, with the fix, never unpickled and never running the folder's code), the
model cache, a hosted endpoint written the wrong way (the key never printed or stored), and merging results that do
not belong together. Everything is tiny and real: the tiny model of tests/tiny.py, a stdlib HTTP server on
127.0.0.1, stores written with the real Store."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shlex
import shutil
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import printed
from test_bad_input import experiment, nothing_written, refused
from test_store import make_record

from harness.cli import main
from harness.core.config import EndpointConfig, load_experiment
from harness.core.errors import ConfigError, HarnessError, ModelError
from harness.core.records import StudyRecord
from harness.hosted.client import ChatRequest, HostedClient, HostedEndpoint
from harness.project import EXPERIMENT, init_project
from harness.store.database import Store

KEY = "sk-newuser-not-a-real-key-71c0"

# ------------------------------------------------------------------------------------------------------- init


def test_init_with_a_file_where_it_makes_a_folder_writes_nothing(tmp_path, capsys):
    (tmp_path / "experiments").write_text("notes\n")  # a file named like the folder init makes
    out = refused(["init", str(tmp_path)], capsys)
    assert f"{tmp_path / 'experiments'} (a file, where init makes a folder)" in out and "wrote nothing" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiments"]  # no README.md left behind


def test_init_under_a_file_or_where_nothing_can_be_made_is_an_error_not_a_traceback(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("")
    out = refused(["init", str(tmp_path / "notes.txt" / "project")], capsys)
    assert f"{tmp_path / 'notes.txt'} (a file, where init makes a folder)" in out and "Fix:" in out
    assert not (tmp_path / "notes.txt" / "project").exists()
    with pytest.raises(HarnessError, match="could not write .* so it wrote nothing"):
        init_project(Path("/proc/no-such-project"))


def test_init_next_command_can_be_pasted_for_a_folder_with_spaces_and_quotes(tmp_path):
    root = tmp_path / "team project's $HOME"
    scaffold = init_project(root)
    words = shlex.split(scaffold.next_command)
    assert words[:3] == ["cd", str(root), "&&"] and words[3:] == ["harness", "sweep", EXPERIMENT, "--dry-run"]


# ------------------------------------------------------------------------------------------- a model of their own


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from tiny import build_tiny_model_dir

    return build_tiny_model_dir(tmp_path_factory.mktemp("entry") / "mine")


def variant(model_dir: Path, tmp_path: Path, change) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    change(copy)
    return copy


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


class WritesAFile:
    """A pickle that, when loaded, writes a file: loading it is running code."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (self.target, "unpickled"))


def test_pickled_weights_are_refused_with_the_conversion_and_never_unpickled(model_dir, tmp_path, toy_suite, capsys,
                                                                             no_model_loads):
    ran = tmp_path / "UNPICKLED"

    def to_pickle(d: Path) -> None:
        (d / "model.safetensors").unlink()
        (d / "pytorch_model.bin").write_bytes(pickle.dumps(WritesAFile(ran)))

    folder = variant(model_dir, tmp_path, to_pickle)
    out = refused(["sweep", str(experiment(tmp_path, toy_suite, model=str(folder)))], capsys)
    assert "it holds pytorch_model.bin: pickles" in out and "save_pretrained(NEW_DIR)" in out
    assert not ran.exists()
    nothing_written(tmp_path)


@pytest.mark.parametrize("change, message", [
    (lambda d: [f.unlink() for f in d.iterdir() if f.name.startswith("tokenizer")],
     "has no tokenizer (none of tokenizer.json"),
    (lambda d: edit_json(d / "config.json", model_type="frobnicator", architectures=["FrobForCausalLM"]),
     "`model_type: frobnicator` is not an architecture transformers"),
    (lambda d: edit_json(d / "config.json", model_type="clip"), "`model_type: clip` has no text-generation"),
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:-1000]),
     "model.safetensors is incomplete: its header describes"),
], ids=["no tokenizer", "unknown model_type", "not a causal LM", "truncated safetensors"])
def test_a_model_folder_that_cannot_load_is_refused_before_anything_loads(model_dir, tmp_path, toy_suite, capsys,
                                                                         no_model_loads, change, message):
    folder = variant(model_dir, tmp_path, change)
    out = refused(["sweep", str(experiment(tmp_path, toy_suite, model=str(folder)))], capsys)
    assert f"`model: {folder}`" in out and message in out and "Fix:" in out
    nothing_written(tmp_path)


def test_a_model_saved_in_several_files_with_one_missing_is_refused_before_anything_loads(tmp_path, toy_suite,
                                                                                          capsys, no_model_loads):
    from tiny import build_tiny_model, build_tiny_tokenizer

    folder, tokenizer = tmp_path / "sharded", build_tiny_tokenizer()
    build_tiny_model(tokenizer).save_pretrained(folder, max_shard_size="50KB")
    tokenizer.save_pretrained(folder)
    last = sorted(folder.glob("model-*.safetensors"))[-1]
    last.unlink()  # a download that stopped before the last file
    out = refused(["sweep", str(experiment(tmp_path, toy_suite, model=str(folder)))], capsys)
    assert f"model.safetensors.index.json lists weight files that are not in the folder ({last.name})" in out
    nothing_written(tmp_path)


def test_weights_that_do_not_fit_the_config_are_named_not_a_traceback(model_dir, tmp_path):
    import torch

    from harness.models import loading, sources

    hidden = json.loads((model_dir / "config.json").read_text())["hidden_size"]
    folder = variant(model_dir, tmp_path, lambda d: edit_json(d / "config.json", hidden_size=hidden * 2))
    with pytest.raises(ModelError, match="the shapes of its weights do not match its config.json"):
        loading.load_model(sources.resolve(str(folder)), "cpu", torch.float32)


def test_a_model_folder_that_needs_its_own_code_is_refused_and_the_code_never_runs(model_dir, tmp_path, toy_suite,
                                                                                  capsys, no_model_loads):
    ran = tmp_path / "REMOTE_CODE_RAN"
    code = f"open({str(ran)!r}, 'w').write('ran')\n"

    def custom_model(d: Path) -> None:
        edit_json(d / "config.json", model_type="mine", architectures=["MineForCausalLM"],
                  auto_map={"AutoConfig": "configuration_mine.MineConfig",
                            "AutoModelForCausalLM": "modeling_mine.MineForCausalLM"})
        (d / "configuration_mine.py").write_text(code)
        (d / "modeling_mine.py").write_text(code)

    def custom_tokenizer(d: Path) -> None:
        edit_json(d / "tokenizer_config.json", tokenizer_class="MineTokenizer",
                  auto_map={"AutoTokenizer": ["tokenization_mine.MineTokenizer", None]})
        (d / "tokenization_mine.py").write_text(code)

    folder = variant(model_dir, tmp_path, custom_model)
    out = refused(["sweep", str(experiment(tmp_path, toy_suite, model=str(folder)))], capsys)
    assert "`auto_map` names code shipped in the folder" in out and "never runs a model's own code" in out
    shutil.rmtree(folder)
    folder = variant(model_dir, tmp_path, custom_tokenizer)
    out = refused(["sweep", str(experiment(tmp_path, toy_suite, model=str(folder)))], capsys)
    assert "tokenizer_config.json: `tokenizer_class: MineTokenizer` is the folder's own code" in out
    assert not ran.exists()
    nothing_written(tmp_path)


def test_a_mistyped_relative_path_is_not_taken_for_a_hub_id(tmp_path, toy_suite, capsys, no_model_loads,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # models/mine exists nowhere, but models/ does: a typo, not org/name on the hub
    out = refused(["sweep", str(experiment(tmp_path, toy_suite, model="models/mnie"))], capsys)
    assert f"models/mnie does not exist (looked for {tmp_path / 'models/mnie'}" in out
    out = refused(["sweep", str(experiment(tmp_path, toy_suite, model="~/no-such-model-here"))], capsys)
    assert f"{Path.home() / 'no-such-model-here'} does not exist" in out


def test_a_hub_id_not_downloaded_is_refused_at_plan_time_offline(tmp_path, toy_suite, capsys, no_model_loads,
                                                                 monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no request is sent: the refusal comes from the cache and the flag
    out = refused(["sweep", str(experiment(tmp_path, toy_suite, model="Qwen/Qwen2.5-0.5B"))], capsys)
    assert "Qwen/Qwen2.5-0.5B is a Hugging Face Hub id that is not in the local Hugging Face cache" in out
    assert "hf download Qwen/Qwen2.5-0.5B --local-dir DIR" in out
    nothing_written(tmp_path)


def test_the_harness_reaches_no_hub_unless_asked(tmp_path, toy_suite, capsys, no_model_loads, monkeypatch):
    """A sweep sent TRL's telemetry and huggingface_hub's registry fetch to huggingface.co, where everything was
    local: every command now runs with the hub off unless the user's environment says otherwise."""
    for name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.delenv(name, raising=False)
    out = refused(["sweep", str(experiment(tmp_path, toy_suite, model="Qwen/Qwen2.5-0.5B"))], capsys)
    assert "the harness reaches no hub unless asked" in out and "run with HF_HUB_OFFLINE=0" in out
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"


def test_python_callers_reach_no_hub_either_and_keep_their_own_switches(tmp_path, toy_suite, monkeypatch):
    """Only the command line turned the hub off: a notebook that imported transformers first (so huggingface_hub had
    read its switches off) and planned a sweep sent the telemetry and the registry fetch. harness.api.sweep turns
    them on, in the environment and in the constants huggingface_hub read at import, for the sweep only: the
    notebook's own downloads afterwards are its own."""
    import huggingface_hub.constants as hub

    import harness.api

    for name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(hub, name, False)
    with pytest.raises(HarnessError, match="the harness reaches no hub unless asked"):  # offline while it planned
        harness.api.sweep(experiment(tmp_path, toy_suite, model="Qwen/Qwen2.5-0.5B"), echo=lambda _: None)
    assert hub.HF_HUB_OFFLINE is False and hub.HF_HUB_DISABLE_TELEMETRY is False  # as they were
    assert "HF_HUB_OFFLINE" not in os.environ and "HF_HUB_DISABLE_TELEMETRY" not in os.environ


def test_a_user_who_allows_the_hub_keeps_it(monkeypatch):
    """`HF_HUB_OFFLINE=0` lets a hub id be downloaded: the switch the user set is theirs."""
    import huggingface_hub.constants as hub

    from harness.core.offline import no_calls_home

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    no_calls_home()
    assert hub.HF_HUB_OFFLINE is False and os.environ["HF_HUB_OFFLINE"] == "0"


def test_a_model_folder_beside_the_experiment_is_named_when_run_from_elsewhere(tmp_path, toy_suite, tiny_model_dir,
                                                                              capsys, no_model_loads, monkeypatch):
    """`suite:` is read from the experiment's folder, `model:` from the one harness runs in: a cron job started
    elsewhere was told its model folder was a hub id the hub did not give."""
    project = tmp_path / "proj"
    shutil.copytree(tiny_model_dir, project / "models/tiny")
    path = experiment(project, toy_suite, model="models/tiny")
    monkeypatch.chdir(tmp_path)
    out = refused(["sweep", str(path)], capsys)
    assert f"A model folder {path.parent / 'models/tiny'} is beside the experiment file" in " ".join(out.split())
    assert f"from the folder you run harness in ({tmp_path})" in " ".join(out.split())


# ------------------------------------------------------------------------------------------------ the model cache


def test_a_model_cache_that_is_a_file_is_named_before_any_download_or_calibration(tmp_path, toy_suite, capsys,
                                                                                 monkeypatch, model_dir,
                                                                                 no_model_loads):
    cache = tmp_path / "cache"
    cache.write_text("")
    monkeypatch.setenv("HARNESS_CACHE", str(cache))
    out = refused(["models", "pull", "smollm2-135m"], capsys)  # no pip run: refused first
    assert f"the model cache {cache} (HARNESS_CACHE={cache}) cannot hold models" in out and "Fix:" in out
    out = refused(["sweep", str(experiment(tmp_path, toy_suite, model=str(model_dir)))], capsys)
    assert f"{cache} is a file, not a folder" in out and "set HARNESS_CACHE to a folder you can write" in out
    nothing_written(tmp_path)


# ---------------------------------------------------------------------------------------------- hosted endpoints


def endpoint_experiment(tmp_path: Path, suite: Path, base_url: str, api_key_env: str) -> Path:
    body = f"endpoints:\n  mini: {{base_url: '{base_url}', model: m, api_key_env: '{api_key_env}'}}\n"
    return experiment(tmp_path, suite, body, space="api: {endpoint: mini}")


@pytest.mark.parametrize("base_url, api_key_env, message", [
    ("http://127.0.0.1:9/v1", KEY, "`endpoints.mini.api_key_env` must be the name of an environment variable"),
    (f"http://user:{KEY}@127.0.0.1:9/v1", "HOSTED_KEY", "`endpoints.mini.base_url` holds a user name or password"),
    (f"https://x.example/openai/v1?api-version=2024-02-01&api-key={KEY}", "HOSTED_KEY",
     "`endpoints.mini.base_url` carries a credential in its query (`api-key=...`)"),
], ids=["the key pasted as the variable's name", "the key in the URL", "the key in the URL's query"])
def test_a_key_written_into_the_experiment_is_refused_and_never_repeated(tmp_path, toy_suite, capsys,
                                                                        no_model_loads, base_url, api_key_env,
                                                                        message):
    path = endpoint_experiment(tmp_path, toy_suite, base_url, api_key_env)
    out = refused(["sweep", str(path)], capsys)
    assert message in out and KEY not in out
    nothing_written(tmp_path)


def test_a_query_without_a_credential_is_kept(tmp_path, toy_suite):
    url = "https://x.example/openai/v1?api-version=2024-02-01"  # Azure's: a version, not a key
    config = load_experiment(endpoint_experiment(tmp_path, toy_suite, url, "HOSTED_KEY"))
    assert config.endpoints["mini"].base_url == url


@pytest.mark.parametrize("base_url", ["htp:/127.0.0.1:8000/v1", "127.0.0.1:8000/v1"])
def test_a_base_url_without_http_is_refused_naming_the_key(tmp_path, toy_suite, base_url):
    with pytest.raises(ConfigError, match=r"`endpoints.mini.base_url: .*` is not an http:// or https:// URL"):
        load_experiment(endpoint_experiment(tmp_path, toy_suite, base_url, "HOSTED_KEY"))


@pytest.mark.parametrize("value, state", [(None, "is not set"), ("", "is empty"), ("  ", "holds only whitespace")])
def test_a_key_variable_unset_empty_or_blank_is_named_as_what_it_is(tmp_path, monkeypatch, value, state):
    """Refused before any request: nothing listens on port 9, and the error is the key's, not the endpoint's."""
    from harness.sweep.plan import resolve_endpoints

    path = tmp_path / "exp.yaml"
    path.write_text("name: x\nspace: {prompt: {}}\nendpoints:\n  mini: {base_url: 'http://127.0.0.1:9/v1', model: m, "
                    "api_key_env: HOSTED_KEY}\n")
    if value is None:
        monkeypatch.delenv("HOSTED_KEY", raising=False)
    else:
        monkeypatch.setenv("HOSTED_KEY", value)
    with pytest.raises(ConfigError, match=f"reads its key from \\$HOSTED_KEY, which {state}"):
        resolve_endpoints(load_experiment(path), ["mini"], str(path), tmp_path)


@pytest.fixture
def echoing_server():
    """A real OpenAI-compatible server on 127.0.0.1 that answers with the Authorization header it was sent, as a
    misconfigured proxy or a debugging endpoint does."""

    class Echo(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                               "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                   "role": "assistant", "content": f"you sent {self.headers['Authorization']}"}}],
                               "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_an_endpoint_that_echoes_the_key_never_gets_it_into_answers_or_the_cache(echoing_server, tmp_path):
    config = EndpointConfig(base_url=echoing_server, model="m", api_key_env="HOSTED_KEY", max_retries=0)
    client = HostedClient(HostedEndpoint("mini", config, KEY, None, tmp_path / "cache"))
    request = ChatRequest([{"role": "user", "content": "the cup is red"}], max_tokens=6)
    answers = client.answer([request]) + client.answer([request])  # the second comes from the cache
    assert [answer.cached for answer in answers] == [False, True]
    assert all(answer.output == "you sent Bearer <key>" for answer in answers)
    assert not any(KEY in path.read_text() for path in (tmp_path / "cache").rglob("*") if path.is_file())


def test_a_base_url_without_the_api_path_is_named_as_the_url_not_the_arms_parameters(tmp_path):
    from http.server import SimpleHTTPRequestHandler

    server = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)  # a web server, not an OpenAI one
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"  # `/v1` left off
        config = EndpointConfig(base_url=url, model="m", api_key_env="HOSTED_KEY", max_retries=0)
        client = HostedClient(HostedEndpoint("mini", config, KEY, None, None))
        problem = client.probe(ChatRequest([{"role": "user", "content": "hi"}], max_tokens=4))
    finally:
        server.shutdown()
        server.server_close()
    assert f"no chat completions route at {url}/chat/completions" in problem
    assert "`endpoints.mini.base_url` is likely wrong" in problem and KEY not in problem


# ------------------------------------------------------------------------------------------------ workers, merge


def test_a_worker_on_its_own_storage_says_other_machines_do_not_share_its_study(model_dir, toy_suite, tmp_path,
                                                                               capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HARNESS_STORAGE", raising=False)
    path = experiment(tmp_path, toy_suite, "data: {train_limit: 6, dev_limit: 3, test_limit: 3}\n",
                      space="prompt: {shots: 0}", model=str(model_dir))
    assert main(["worker", str(path), "--results", str(tmp_path / "results-b"), "--trials", "1", "--index", "1"]) == 0
    out = " ".join(printed(capsys).split())
    assert f"study bad in journal:{tmp_path / 'results-b'}/optuna-journal.log, the default storage" in out
    assert "a worker elsewhere runs a study of its own. Give every worker the same --storage" in out
    assert "worker 1: ran 1 trial(s) of study bad" in out




def study_store(path: Path) -> Store:
    store = Store(path)
    store.record_study(StudyRecord(name="s1", experiment_name="e", experiment={}, suite="toy", suite_version="1",
                                   suite_path="/x", model_name="tiny", model_sha256="0" * 64, model_note="",
                                   objective_metric="task_accuracy", maximize=True, notes={}))
    return store


def test_merging_another_study_of_the_same_name_is_refused_not_silently_dropped(tmp_path, capsys):
    ours, theirs = study_store(tmp_path / "a/harness.duckdb"), study_store(tmp_path / "b/harness.duckdb")
    ours.record_trial_result(make_record(number=0, accuracy=0.4))
    other_run = dataclasses.replace(make_record(number=0, accuracy=0.9), run_id="run-b", params={"r": 16},
                                    started_at=datetime(2025, 2, 1, tzinfo=timezone.utc))
    theirs.record_trial_result(other_run)  # a sweep run on its own, not a worker of study s1
    theirs.record_trial_result(make_record(number=1, accuracy=0.8))
    out = refused(["merge", str(tmp_path / "b"), "--db", str(ours.path)], capsys)
    assert "holds another study named s1: its trial s1/0 (run run-b, started 2025-02-01 00:00 UTC)" in out
    assert "nothing was merged" in out
    assert [t.id for t in ours.trials("s1")] == ["s1/0"] and ours.trial("s1/0").objective == 0.4
    assert main(["merge", str(tmp_path / "a"), "--db", str(tmp_path / "c/harness.duckdb")]) == 0  # a copy is fine
    assert main(["merge", str(tmp_path / "a"), "--db", str(tmp_path / "c/harness.duckdb")]) == 0  # and twice


def test_merging_a_file_that_is_not_a_results_database_says_so(tmp_path, capsys):
    (tmp_path / "exp.yaml").write_text("name: x\n")
    out = refused(["merge", str(tmp_path / "exp.yaml"), "--db", str(tmp_path / "results/harness.duckdb")], capsys)
    assert f"{tmp_path / 'exp.yaml'} is not a results database (not a DuckDB file)" in out
    assert "--db" not in out  # the source is the wrong file, not the database merged into


def test_merging_a_database_copied_without_its_adapters_warns_which_weights_are_missing(tmp_path, capsys):
    ours, theirs = study_store(tmp_path / "a/harness.duckdb"), study_store(tmp_path / "b/harness.duckdb")
    record = make_record(number=1, accuracy=0.8)
    record.artifact_path = str(tmp_path / "b/artifacts/s1/1")  # kept on the worker, not copied with the database
    theirs.record_trial_result(record)
    assert main(["merge", str(theirs.path), "--db", str(ours.path)]) == 0
    out = " ".join(printed(capsys).split())
    assert "1 trial(s) merged" in out and "0 adapter folder(s) copied" in out
    assert f"1 merged trial(s) kept weights that are not in {tmp_path / 'b'}: {tmp_path / 'b/artifacts/s1/1'}" in out


def test_a_results_dir_or_suite_under_the_home_folder_is_read_as_the_shell_reads_it(tmp_path, toy_suite):
    path = experiment(tmp_path, Path("~/suites/mine"))
    path.write_text(path.read_text().replace(f"results_dir: {tmp_path / 'results'}", "results_dir: ~/team-results"))
    config = load_experiment(path)  # not a folder named `~` in the current folder
    assert config.results_dir == str(Path.home() / "team-results") and config.suite == str(Path.home() / "suites/mine")


def test_a_model_cache_that_cannot_be_written_is_named_before_calibration(tmp_path, toy_suite, capsys, monkeypatch,
                                                                         model_dir, no_model_loads):
    """Permission bits said yes (to root, and to /sys), and the sweep calibrated before failing with a traceback
    where it saved the timings."""
    import harness.models.sources as sources_module

    def cannot(folder):  # as /sys answers root: the folder exists, its bits allow, a write fails
        raise PermissionError(1, "Operation not permitted", str(folder))

    monkeypatch.setattr(sources_module, "probe_writable", cannot)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    out = refused(["sweep", str(experiment(tmp_path, toy_suite, model=str(model_dir))), "--check"], capsys)
    assert f"{tmp_path} cannot be written (Operation not permitted)" in out
    assert "set HARNESS_CACHE to a folder you can write" in out
