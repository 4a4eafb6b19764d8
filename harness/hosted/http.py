"""The HTTP client every request to an endpoint goes through: no redirects, and a bounded answer.

- A redirect is not followed. An endpoint that answers 3xx would have the prompts (customer data) posted again to
  whatever host it names, and that host's answers scored as the endpoint's; the arm stops and says where it was sent.
- An answer's body is read for at most `timeout_s` in all and up to MAX_BODY_BYTES. The client's own timeout bounds
  each read, so a server that trickles bytes without end kept a sweep waiting forever, and one that sends a body
  without end would fill the memory.
"""

from __future__ import annotations

import sys
import time
from typing import Any

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Far above any chat completion (a 4,096-token answer is tens of kilobytes), far below what harms the machine."""


def bounded_client(timeout_s: float) -> Any:
    """openai's default HTTP client (its timeouts, limits and proxies from the environment), with redirects off and
    every response body bounded in time and size."""
    import openai

    client = openai.DefaultHttpxClient(follow_redirects=False)
    http = sys.modules[type(client).__mro__[1].__module__.split(".")[0]]  # httpx, or httpx2 in openai 3
    stream_base = http.SyncByteStream
    too_long = type("BodyTooLong", (BodyTooLong, http.ReadError), {})  # the client's retry and error paths know it

    class BoundedStream(stream_base):
        def __init__(self, inner: Any, deadline: float) -> None:
            self._inner, self._deadline = inner, deadline

        def __iter__(self):
            read = 0
            for chunk in self._inner:
                read += len(chunk)
                if read > MAX_BODY_BYTES:
                    raise too_long(f"the answer's body passed {MAX_BODY_BYTES // 2**20} MiB, and no chat "
                                   "completion is that long")
                if time.monotonic() > self._deadline:
                    raise http.ReadTimeout(f"the answer's body took longer than timeout_s ({timeout_s:g} s) in all")
                yield chunk

        def close(self) -> None:
            self._inner.close()

    def bound(response: Any) -> None:
        response.stream = BoundedStream(response.stream, time.monotonic() + timeout_s)

    client.event_hooks["response"].append(bound)
    return client


class BodyTooLong(Exception):
    """An answer's body passed MAX_BODY_BYTES (raised as the HTTP library's ReadError too)."""


def redirect_target(exc: Any) -> str | None:
    """Where a 3xx answer (an `openai.APIStatusError`) sent the request, or None for any other answer."""
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int) or not 300 <= status < 400:
        return None
    return exc.response.headers.get("location") or "(no Location header)"
