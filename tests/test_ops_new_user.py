"""A platform engineer breaking things on purpose: storage URLs typed wrong (the password never printed, not even a
piece of it), a second team's experiment with the same name pointed at the same results folder, and an endpoint
that answers HTTP 200 with something that is not a chat completion (a gateway's page, another API's JSON)."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import printed

from harness.core.config import EndpointConfig
from harness.core.errors import ConfigError, HarnessError
from harness.core.records import StudyRecord
from harness.hosted.client import NOT_A_COMPLETION, ChatRequest, EndpointFailed, HostedClient, HostedEndpoint
from harness.store.database import Store
from harness.sweep.storage import check_reachable, normalise, redacted

KEY = "sk-ops-test-key-5e1f0a"


# -- storage URLs ---------------------------------------------------------------------------------------------------

def test_a_password_with_an_unencoded_at_is_refused_without_printing_any_of_it():
    """SQLAlchemy ends the password at its first `@`, so the driver tried to resolve the host `ssw0rd@db` and printed
    it: the tail of the password, on the terminal and in CI logs."""
    with pytest.raises(ConfigError) as err:
        normalise("postgresql://harness:p@ssw0rd@db.internal:5432/harness")
    message = str(err.value)
    assert "ssw0rd" not in message and "p@ss" not in message
    assert "%40" in message and "urllib.parse.quote" in message and "HARNESS_STORAGE" in message


def test_a_port_that_is_not_a_number_is_a_config_error_not_a_traceback():
    with pytest.raises(ConfigError, match="cannot be read as a URL .*PORT a number") as err:
        normalise("postgresql://harness:hunter2@db.internal:54x2/harness")
    assert "hunter2" not in str(err.value)


def test_a_password_with_a_colon_is_not_quoted_back_by_the_parsers_error():
    """`p@ss:w0rd_SECRET` read `w0rd_SECRET@127.0.0.1:55433` as the port, and the parser's own message, quoted in the
    refusal, printed the password's tail."""
    with pytest.raises(ConfigError) as err:
        normalise("postgresql://harness:p@ss:w0rd_SECRET@127.0.0.1:55433/harness")
    message = str(err.value)
    assert "w0rd" not in message and "SECRET" not in message and "p@ss" not in message
    assert "is not a port number" in message and "percent-encoded" in message


def test_a_password_given_as_a_query_parameter_is_never_printed():
    url = normalise("postgresql://harness@127.0.0.1:9/harness?password=qu3ry-secret&connect_timeout=2")
    assert redacted(url) == "postgresql+psycopg://harness@127.0.0.1:9/harness?password=***&connect_timeout=2"
    with pytest.raises(HarnessError) as err:  # nothing listens on port 9
        check_reachable(url)
    assert "qu3ry-secret" not in str(err.value) and "password=***" in str(err.value)
    assert "user, password and database" in str(err.value)


# -- two experiments with one name, one results folder ------------------------------------------------------------

def study_record(**changes) -> StudyRecord:
    fields = dict(name="triage", experiment_name="triage", experiment={"data": {"dev_limit": 6}, "seed": 0},
                  suite="toy-colours", suite_version="1.0.0", suite_path="/suites/toy-colours", model_name="/m/tiny",
                  model_sha256="ab" * 32, objective_metric="task_accuracy", maximize=True,
                  notes={"config_path": "team-a/triage.yaml"})
    return StudyRecord(**{**fields, **changes})


def test_another_experiment_with_the_same_name_cannot_join_a_study(tmp_path):
    """Before, the second team's sweep counted the first team's trials toward its total, ranked them on another suite,
    and overwrote the study's suite, so `harness trials` showed team A's scores under team B's suite."""
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(study_record())
    store.record_study(study_record(model_name="/elsewhere/tiny"))  # the same weights, moved: the same study
    store.record_study(study_record(experiment={"data": {"dev_limit": 6}, "seed": 0, "budget": {"trials": 9}}))
    other = study_record(suite="ticket-triage", experiment={"data": {"dev_limit": 5}, "seed": 0},
                         notes={"config_path": "team-b/triage.yaml"})
    with pytest.raises(HarnessError) as err:
        store.record_study(other)
    message = str(err.value)
    assert "study triage" in message and "team-a/triage.yaml" in message and "--study NEW_NAME" in message
    assert "suite: stored 'toy-colours', now 'ticket-triage'" in message and "`data`" in message
    assert store.study("triage").suite == "toy-colours"  # nothing was overwritten
    with pytest.raises(HarnessError, match="model sha256"):
        store.record_study(study_record(model_sha256="cd" * 32))
    with pytest.raises(HarnessError, match="objective"):
        store.record_study(study_record(objective_metric="hallucination_rate", maximize=False))
    assert store.study_conflict(study_record(name="triage-b", suite="ticket-triage")) is None


@pytest.mark.slow
def test_a_second_teams_sweep_into_the_same_folder_is_refused_and_the_first_is_intact(tmp_path, tiny_model_dir,
                                                                                       toy_suite, capsys):
    from harness.cli import main

    def write(name: str, body: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"name: triage\nmodel: {tiny_model_dir}\nresults_dir: {tmp_path / 'results'}\n"
                        "regression: {enabled: false}\nbudget: {trials: 1}\nspace: {prompt: {shots: 0}}\n" + body)
        return path

    first = write("team-a", f"suite: {toy_suite}\ndata: {{dev_limit: 4, test_limit: 4}}\n")
    second = write("team-b", "suite: ticket-triage\ndata: {dev_limit: 3, test_limit: 3}\n")
    assert main(["sweep", str(first)]) == 0
    capsys.readouterr()
    assert main(["sweep", str(second), "--dry-run"]) == 2  # refused before calibration, in the dry run too
    out = printed(capsys)
    assert "was run with another setup" in out and "machine:" not in out  # no calibration, cached or not
    assert main(["sweep", str(second), "--trials", "2"]) == 2
    out = printed(capsys)
    assert "was run with another setup" in out and "Traceback" not in out and "machine:" not in out
    store = Store(tmp_path / "results" / "harness.duckdb")
    assert store.study("triage").suite == "toy-colours"
    assert [t.metric("test", "task_accuracy").n for t in store.trials("triage")] == [4]


@pytest.mark.slow
def test_a_worker_with_its_own_results_folder_cannot_join_another_setups_shared_study(tmp_path, tiny_model_dir,
                                                                                      toy_suite, capsys):
    """Two machines, each with its own results database, one shared study storage: only the storage can tell that
    the second sweep scores other test examples."""
    from harness.cli import main

    storage = f"sqlite:///{tmp_path / 'shared.db'}"

    def write(name: str, test_limit: int) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"name: triage\nmodel: {tiny_model_dir}\nresults_dir: {tmp_path / name}\nsuite: {toy_suite}\n"
                        f"data: {{dev_limit: 4, test_limit: {test_limit}}}\nregression: {{enabled: false}}\n"
                        "budget: {trials: 2}\nspace: {prompt: {shots: 0}}\n")
        return path

    assert main(["sweep", str(write("machine-a", 4)), "--storage", storage, "--trials", "1"]) == 0
    capsys.readouterr()
    assert main(["sweep", str(write("machine-b", 6)), "--storage", storage, "--trials", "2"]) == 2
    out = printed(capsys)
    assert "created by a sweep with another setup" in out and "data: created with" in out and "Traceback" not in out
    assert Store(tmp_path / "machine-b" / "harness.duckdb").trials("triage") == []
    assert main(["sweep", str(write("machine-c", 4)), "--storage", storage, "--trials", "2"]) == 0  # the same setup


# -- an endpoint that answers 200 with something else --------------------------------------------------------------

class GarbleProxy:
    """A loopback proxy in front of the real OpenAI-compatible server: `GET /v1/models` is relayed, and every chat
    request is answered 200 with `body`, as a misrouted gateway or another API would."""

    def __init__(self, upstream: str, body: bytes, content_type: str = "application/json") -> None:
        self.chats = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                with urllib.request.urlopen(upstream.rstrip("/").removesuffix("/v1") + self.path, timeout=10) as r:
                    self._send(r.status, r.read(), r.headers.get("Content-Type", "application/json"))

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.chats += 1
                self._send(200, body, content_type)

            def _send(self, status: int, data: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> GarbleProxy:
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def hosted_client(url: str, model: str, tmp_path: Path) -> HostedClient:
    config = EndpointConfig(base_url=url, model=model, api_key_env="OPS_TEST_KEY", concurrency=1, timeout_s=10.0,
                            max_retries=0)
    return HostedClient(HostedEndpoint("gw", config, KEY, (1.0, 2.0), tmp_path / "cache"))


def ask(n: int) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": f"q{i}: the cup is red"}], max_tokens=6) for i in range(n)]


@pytest.mark.parametrize(("body", "content_type", "shown"), [
    (b"<html><body>502 Bad Gateway</body></html>", "text/html", "502 Bad Gateway"),
    (b'{"result": "ok", "data": [1, 2]}', "application/json", "'result': 'ok'"),
    (b'{"choices": []}', "application/json", "'choices': []"),
    (b'{"choices": [', "application/json", "not JSON"),
])
def test_a_200_that_is_not_a_chat_completion_stops_the_arm_and_is_never_scored(openai_server, tmp_path, body,
                                                                                 content_type, shown):
    """Before, `{"result": ...}` and `{"choices": []}` were scored as empty (wrong) answers, and an HTML page or a
    cut-off body ended the trial with `AttributeError: 'str' object has no attribute 'usage'`."""
    with GarbleProxy(openai_server.url, body, content_type) as proxy:
        problem = hosted_client(proxy.url, openai_server.model, tmp_path).probe(ask(1)[0])
        assert problem is not None and NOT_A_COMPLETION in problem and shown in problem
        client = hosted_client(proxy.url, openai_server.model, tmp_path)
        with pytest.raises(EndpointFailed) as err:
            client.answer(ask(3))
        assert proxy.chats == 2  # the probe, then one request of the arm: it stopped there
    message = str(err.value)
    assert NOT_A_COMPLETION in message and shown in message and "endpoints.gw.base_url" in message
    assert KEY not in message
    usage = err.value.usage  # the request that was sent counts, at its worst case: it may have been billed
    request = ask(1)[0]
    assert (usage.requests, usage.errors) == (1, 0)
    assert usage.completion_tokens == request.max_tokens
    assert usage.prompt_tokens == request.worst_case_tokens() - request.max_tokens
    assert not list((tmp_path / "cache").rglob("*.json"))  # nothing cached as an answer


def test_usage_that_is_not_a_count_is_spent_at_its_worst_case(openai_server, tmp_path):
    """A negative count would have given budget back; a string one ended the trial with a TypeError."""
    completion = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                  "choices": [{"index": 0, "finish_reason": "stop",
                               "message": {"role": "assistant", "content": '{"colour": "red"}'}}],
                  "usage": {"prompt_tokens": -500, "completion_tokens": "many", "total_tokens": 0}}
    with GarbleProxy(openai_server.url, json.dumps(completion).encode()) as proxy:
        client = hosted_client(proxy.url, openai_server.model, tmp_path)
        (answer,) = client.answer(ask(1))
    request = ask(1)[0]
    assert answer.output == '{"colour": "red"}' and (answer.prompt_tokens, answer.completion_tokens) == (None, None)
    assert client.usage.prompt_tokens == request.worst_case_tokens() - request.max_tokens > 0
    assert client.usage.completion_tokens == request.max_tokens


def test_a_sweep_against_such_an_endpoint_is_refused_before_any_model_loads(tmp_path, tiny_model_dir, toy_suite,
                                                                            openai_server, monkeypatch, capsys):
    from harness.cli import main
    from harness.models import loading

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    monkeypatch.setenv("OPS_TEST_KEY", KEY)
    with GarbleProxy(openai_server.url, b"<html>Sign in to continue</html>", "text/html") as proxy:
        path = tmp_path / "hosted.yaml"
        path.write_text(f"""
name: gw
model: {tiny_model_dir}
suite: {toy_suite}
results_dir: {tmp_path / "results"}
regression: {{enabled: false}}
data: {{dev_limit: 4, test_limit: 4}}
budget: {{trials: 1}}
endpoints:
  gw: {{base_url: "{proxy.url}", model: "{openai_server.model}", api_key_env: OPS_TEST_KEY, concurrency: 1}}
space:
  api: {{endpoint: gw, shots: 0}}
""")
        assert main(["sweep", str(path)]) == 2
        assert proxy.chats == 1
    out = printed(capsys)
    assert NOT_A_COMPLETION in out and "Sign in to continue" in out and "would all be refusals" not in out
    assert "Traceback" not in out and KEY not in out
    assert Store(tmp_path / "results" / "harness.duckdb").trials() == []
