"""An endpoint that misbehaves on purpose, on 127.0.0.1: it redirects the prompts to another host, trickles its
answer without end, or sends a body without end. Each stops the arm with a message that says what happened."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.core.config import EndpointConfig
from harness.hosted.client import ChatRequest, EndpointFailed, HostedClient, HostedEndpoint
from harness.hosted.http import MAX_BODY_BYTES

KEY = "sk-hostile-test-key-1234"


class Server:
    """A loopback server whose POST handler is `answer(handler)`; counts the chat requests it got."""

    def __init__(self, answer) -> None:
        self.posts = 0
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.posts += 1
                try:
                    answer(self, server)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def ask(url: str, timeout_s: float = 2.0) -> HostedClient:
    config = EndpointConfig(base_url=url, model="m", api_key_env="HOSTILE_KEY", concurrency=1, timeout_s=timeout_s,
                            max_retries=0, cache=False)
    return HostedClient(HostedEndpoint("hostile", config, KEY))


def one() -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": "customer data: account 4411"}], max_tokens=4)]


def finished(call, seconds: float = 120.0):
    """Run `call` in a thread and return what it raised; fail if it is still running after `seconds` (it would hang
    the sweep): a bound on liveness, far above what the answer needs, not a speed check."""
    caught: list[BaseException] = []

    def run():
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            caught.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the request never ended"
    return caught[0] if caught else None


def test_a_redirect_to_another_host_is_not_followed():
    other = Server(lambda handler, server: handler.send_error(500))
    redirecting = Server(lambda handler, server: (
        handler.send_response(307), handler.send_header("Location", f"{other.url}/chat/completions"),
        handler.send_header("Content-Length", "0"), handler.end_headers()))
    try:
        error = finished(lambda: ask(redirecting.url).answer(one()))
        assert isinstance(error, EndpointFailed) and "redirected the request to" in str(error)
        assert other.url in str(error) and "endpoints.hostile.base_url" in str(error)
        assert other.posts == 0  # the prompts never reached the other host
        assert "redirected the request to" in ask(redirecting.url).probe(one()[0])
    finally:
        redirecting.close()
        other.close()


def trickle(handler, server) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(10**9))
    handler.end_headers()
    handler.wfile.write(b'{"id": "x", "choices": [{"message": {"content": "')
    while not server.stop.wait(0.05):  # a byte now and then, so no single read ever times out
        handler.wfile.write(b"a")
        handler.wfile.flush()


def flood(handler, server) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()  # no length: the body runs until the connection closes
    chunk = b"a" * 65536
    for _ in range(MAX_BODY_BYTES // len(chunk) + 64):
        if server.stop.is_set():
            return
        handler.wfile.write(chunk)


@pytest.mark.parametrize("answer, said", [(trickle, "a request took longer than 1 s"), (flood, "passed 16 MiB")])
def test_an_answer_without_end_stops_the_arm(answer, said):
    server = Server(answer)
    try:
        error = finished(lambda: ask(server.url, timeout_s=1.0).answer(one()))
        assert isinstance(error, EndpointFailed) and KEY not in str(error)
        assert said in str(error) or said in repr(error.__cause__ or error.__context__)
    finally:
        server.close()
