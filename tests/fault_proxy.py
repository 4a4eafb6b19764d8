"""A loopback HTTP proxy in front of a real OpenAI-compatible server, injecting the faults hosted endpoints have.

Each chat request takes the next action of `script` (then `pass` once the script is empty):
- `pass`: forward to the server and relay its answer; if the server is gone, drop the connection as a dead one would
- `429`: answer 429 Too Many Requests with `Retry-After: 1`
- `500`: answer 500
- `hang`: say nothing for `hang_s` seconds, then drop the connection (the client's timeout comes first)
- `400`: refuse the request as an endpoint refuses a parameter it does not support
- `content_filter`: refuse it as a content policy does (400 with code `content_filter`)
- `model_not_found`: answer as OpenAI answers a model it does not serve (404 with code `model_not_found`)
With `rejects` set, every chat request is refused with that message (400), as an endpoint that does not accept the
arm's parameters would. It counts what it received and what it forwarded, with the time of each, and keeps the
Authorization headers seen.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultProxy:
    def __init__(self, upstream: str, script: list[str] | None = None, hang_s: float = 5.0,
                 rejects: str | None = None) -> None:
        self.origin = upstream.rstrip("/").removesuffix("/v1")
        """scheme://host:port of the server; request paths (`/v1/...`) are appended as they came."""
        self.script = list(script or [])
        self.hang_s = hang_s
        self.rejects = rejects
        self.received: list[float] = []
        """Arrival time of every chat request."""
        self.forwarded = 0
        """Chat requests the server answered."""
        self.authorizations: set[str] = set()
        self.after_forward: Callable[[int], None] | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next_action(self) -> str:
        with self._lock:
            self.received.append(time.monotonic())
            if self.rejects is not None:
                return "400"
            return self.script.pop(0) if self.script else "pass"

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.authorizations.add(self.headers.get("Authorization", ""))
                action = proxy._next_action() if self.path.endswith("/chat/completions") else "pass"
                if action in ("429", "500", "400", "content_filter", "model_not_found"):
                    error = {"message": proxy.rejects or f"injected {action}", "type": "invalid_request_error"}
                    if action == "model_not_found":
                        error = {"message": "The model `x` does not exist or you do not have access to it.",
                                 "type": "invalid_request_error", "code": "model_not_found"}
                    if action == "content_filter":
                        error = {"message": "The response was filtered due to the prompt triggering the content "
                                            "management policy.", "type": "invalid_request_error",
                                 "code": "content_filter"}
                    payload = json.dumps({"error": error}).encode()
                    statuses = {"content_filter": 400, "model_not_found": 404}
                    self.send_response(statuses.get(action) or int(action))
                    if action == "429":
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                elif action == "hang":
                    time.sleep(proxy.hang_s)
                    self.close_connection = True
                else:
                    self._forward(body)

            def _forward(self, body: bytes | None) -> None:
                request = urllib.request.Request(proxy.origin + self.path, data=body, method=self.command,
                                                 headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                except OSError:  # the server is gone: drop the connection, as a dead server's socket would
                    self.close_connection = True
                    return
                if body is not None and self.path.endswith("/chat/completions"):
                    with proxy._lock:
                        proxy.forwarded += 1
                        count = proxy.forwarded
                    if proxy.after_forward is not None:
                        proxy.after_forward(count)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
