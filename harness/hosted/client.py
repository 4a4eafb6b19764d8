"""Asking a hosted model: one chat request per example, through the `openai` client library.

- Concurrency is bounded (`concurrency` requests in flight).
- Retries are the client's own: exponential backoff on 429, 5xx, timeouts and dropped connections, honouring
  Retry-After, up to `max_retries`; every request has a `timeout_s`.
- The budget is hard: before a request is sent, its worst case (its prompt's bytes, which no tokenizer exceeds, plus
  `max_tokens`) is reserved; a request that could cross `budget_tokens` or `budget_usd` is not sent, and the arm
  stops with the reason. Answers from the cache cost nothing. In a sweep the spend is the study's, held and settled
  in a ledger every worker of the results folder shares (`ledger.py`).
- Failure is never scored: a request that still fails after its retries stops the arm (what was answered is cached,
  so a re-run resumes). A request the endpoint refuses as such (400, 422) is recorded as that example's error, left
  out of every metric and counted; once more than `max_refused_share` of the arm's requests are refused, the arm
  stops and is never scored, since a score over what is left would describe another endpoint. A content-filter
  refusal (finish_reason `content_filter`, or a 400 whose code names the content policy) is different: it is what
  production would get, so it is kept as the endpoint's (empty) answer, scored, and counted on its own.
- Before an arm runs, `probe` sends one real request with the arm's exact parameters: an endpoint that rejects
  `response_format`, `temperature` or `max_tokens` is refused with its own message, not scored 0% example by example.
- The key is read from the environment by the caller, held in memory, and scrubbed from every message this module
  produces.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from harness.core.config import EndpointConfig
from harness.core.errors import HarnessError, OutsideFailure
from harness.core.progress import bar_options
from harness.core.records import HostedUsage
from harness.hosted.cache import ResponseCache, request_key
from harness.hosted.http import BodyTooLong, bounded_client, redirect_target
from harness.hosted.ledger import SpendLedger, Spent

REFUSED = (400, 422)
"""Statuses that are the endpoint's answer to this request (it will refuse it again): recorded, not retried."""
CONTENT_POLICY = ("content_filter", "content_policy_violation")
"""Error codes (and the finish_reason) with which endpoints say the content, not the request, was refused."""


class EndpointFailed(OutsideFailure):
    """A request still failed after its retries, or the endpoint refused the key or the model; the arm stops."""


class BudgetExhausted(OutsideFailure):
    """The next request could cross the arm's budget; the arm stops before sending it."""


NO_ROUTE = (404, 405, 501)
"""Statuses that say the server has no chat completions route there: a wrong base_url, not a refused request."""
UNKNOWN_MODEL = ("model_not_found",)
"""Error codes of an endpoint that does not serve the model asked for (OpenAI's, with a 404)."""

NOT_A_COMPLETION = "answered a chat request with HTTP 200 but not with a chat completion"
"""In the message for an endpoint whose 200 answers are something else (a gateway's page, another API)."""

KEY_MARK = "<key>"
"""What the key becomes in messages and stored answers; not `[key]`, which the console reads as markup and drops."""


@dataclass(frozen=True)
class HostedEndpoint:
    """An endpoint ready to ask: its config, the key (in memory only) and, when priced, dollars per 1M tokens."""

    name: str
    config: EndpointConfig
    api_key: str = field(repr=False)
    usd_per_1m: tuple[float, float] | None = None
    """(input, output) dollars per 1M tokens, from the price table entry `config.price`."""
    cache_dir: Path | None = None

    def redact(self, text: str) -> str:
        return text.replace(self.api_key, KEY_MARK) if self.api_key else text


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    max_tokens: int
    response_format: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        """Everything sent besides the model: what the cache key covers."""
        body: dict[str, Any] = {"messages": self.messages, "max_tokens": self.max_tokens, "temperature": 0}
        if self.response_format is not None:
            body["response_format"] = self.response_format
        return body

    def worst_case_tokens(self) -> int:
        """No tokenizer makes more tokens than bytes, plus a few per message for the chat format."""
        return sum(len(m["content"].encode()) + 8 for m in self.messages) + self.max_tokens


@dataclass(frozen=True)
class HostedAnswer:
    output: str
    prompt_tokens: int | None
    """As the endpoint reported it; None when it reported no usage."""
    completion_tokens: int | None
    latency_s: float
    """Wall seconds of the request (for a cached answer, those of the request that made it)."""
    error: str | None = None
    cached: bool = False
    refusal: str | None = None
    """`refused`: the endpoint rejected the request (left out of every metric); `content_filter`: it withheld the
    answer on its content policy (kept, and scored as the empty answer production would get)."""

    @property
    def excluded(self) -> bool:
        return self.refusal == "refused"


class HostedClient:
    def __init__(self, endpoint: HostedEndpoint, structured: bool = False, spent: tuple[int, int] = (0, 0),
                 ledger: SpendLedger | None = None) -> None:
        """`spent`: (prompt, completion) tokens the arm's earlier trials already spent; they count against its
        budget, and only what this client adds is reported in `usage`. `ledger`: the study's spend on this
        endpoint, shared with every worker writing to the results folder; where given, the budget is checked against
        it (and `spent` only offsets `usage`)."""
        from openai import OpenAI

        self.endpoint = endpoint
        config = endpoint.config
        self._client = OpenAI(base_url=config.base_url, api_key=endpoint.api_key, timeout=config.timeout_s,
                              max_retries=config.max_retries, http_client=bounded_client(config.timeout_s))
        self._cache = ResponseCache(endpoint.cache_dir) if config.cache and endpoint.cache_dir else None
        self._lock = threading.Lock()
        self._structured = structured
        self._requests = self._hits = self._errors = self._filtered = self._prompt = self._completion = 0
        self._reserved = 0
        self._unreported = 0  # answers without usage, counted at their worst case
        self._ledger = ledger
        # what this arm spent before, in earlier trials or on other workers: the budget is the arm's, not a trial's
        self._before = spent
        self._prompt, self._completion = spent

    @property
    def usage(self) -> HostedUsage:
        config, price = self.endpoint.config, self.endpoint.usd_per_1m
        prompt, completion = self._prompt - self._before[0], self._completion - self._before[1]
        return HostedUsage(
            endpoint=self.endpoint.name, base_url=config.base_url, model=config.model, price=config.price,
            structured=self._structured, requests=self._requests, cache_hits=self._hits, errors=self._errors,
            prompt_tokens=prompt, completion_tokens=completion,
            usd=None if price is None else (prompt * price[0] + completion * price[1]) / 1e6,
            content_filtered=self._filtered, unreported=self._unreported,
        )  # fmt: skip

    def answer(self, requests: Sequence[ChatRequest], desc: str = "ask") -> list[HostedAnswer]:
        """One answer per request, in order; raises EndpointFailed (also once more than `max_refused_share` of the
        requests were refused) or BudgetExhausted, after the requests in flight have finished and been cached."""
        allowed = int(self.endpoint.config.max_refused_share * len(requests))
        answers: list[HostedAnswer | None] = [None] * len(requests)
        keys = [request_key(self.endpoint.config.base_url, self.endpoint.config.model, r.body()) for r in requests]
        pending: dict[Future, int] = {}
        stop: HarnessError | None = None
        with ThreadPoolExecutor(max_workers=self.endpoint.config.concurrency) as pool, \
                tqdm(total=len(requests), desc=desc, unit="req", **bar_options(transient=True)) as bar:
            for i, request in enumerate(requests):
                cached = self._cache.get(keys[i]) if self._cache else None
                if cached is not None:
                    answers[i] = HostedAnswer(cached["output"], cached["prompt_tokens"], cached["completion_tokens"],
                                              cached["latency_s"], cached=True)
                    self._hits += 1
                    bar.update(1)
                    continue
                while len(pending) >= self.endpoint.config.concurrency and stop is None:
                    stop = self._collect(pending, answers, bar, FIRST_COMPLETED)
                if stop is None:
                    stop = self._too_many_refused(answers, allowed, len(requests))
                hold = None
                if stop is None:
                    hold, stop = self._reserve(request)
                if stop is not None:
                    break
                pending[pool.submit(self._ask, request, keys[i], hold)] = i
            while pending:
                stop = self._collect(pending, answers, bar, FIRST_COMPLETED) or stop
        stop = stop or self._too_many_refused(answers, allowed, len(requests))
        if stop is not None:
            stop.usage = self.usage  # what the arm spent before it stopped: the sweep records it with the failure
            raise stop
        return answers  # type: ignore[return-value]

    def _collect(self, pending: dict[Future, int], answers: list, bar, when) -> HarnessError | None:
        done, _ = wait(pending, return_when=when)
        problem = None
        for future in done:
            i = pending.pop(future)
            try:
                answers[i] = future.result()
            except HarnessError as exc:
                problem = problem or exc
            bar.update(1)
        return problem

    def _too_many_refused(self, answers: list, allowed: int, total: int) -> EndpointFailed | None:
        refused = [a for a in answers if a is not None and a.excluded]
        if len(refused) <= allowed:
            return None
        share = self.endpoint.config.max_refused_share
        return EndpointFailed(
            f"endpoint {self.endpoint.name}: it refused {len(refused)} of the arm's {total} requests, more than "
            f"`max_refused_share` ({share:.0%}) allows, so the arm is not scored (a score over the rest would "
            f"describe another endpoint). First refusal: {refused[0].error}. Fix the request the endpoint rejects "
            f"(`structured`, `max_tokens`), or raise endpoints.{self.endpoint.name}.max_refused_share.")

    def _reserve(self, request: ChatRequest) -> tuple[str | None, BudgetExhausted | None]:
        """Hold the request's worst case against the budget: (the ledger's hold, None), or why it may not be sent."""
        worst = request.worst_case_tokens()
        if self._ledger is not None:
            hold, reason = self._ledger.hold(worst, lambda spent: self._over_budget(spent, worst))
            if reason is None:
                with self._lock:
                    self._reserved += worst
            return hold, None if reason is None else BudgetExhausted(reason)
        with self._lock:
            reason = self._over_budget(Spent(self._prompt, self._completion, self._reserved + worst), worst)
            if reason is None:
                self._reserved += worst
        return None, None if reason is None else BudgetExhausted(reason)

    def _over_budget(self, spent: Spent, worst: int) -> str | None:
        """Why a request whose worst case is `worst` may not be sent, when `spent` (with it held) crosses a budget."""
        config, price = self.endpoint.config, self.endpoint.usd_per_1m
        name, settled = self.endpoint.name, spent.prompt + spent.completion
        where = ("by the study's arms on it, across workers" if self._ledger is not None
                 else f"on {self._requests} new requests")
        # a request is held at its worst case (its prompt's bytes, which no tokenizer exceeds, and the answer cap;
        # in dollars at the dearer price) until it is answered, so a cap a few requests wide stops early: say how
        # far, so that the user knows what to raise it to
        cached = "The answers so far are cached: " if settled else "No request of this arm was sent: "
        if config.budget_tokens is not None and spent.tokens > config.budget_tokens:
            return (f"endpoint {name}: stopped before the arm's budget of {config.budget_tokens:,} tokens could be "
                    f"crossed ({settled:,} spent {where}, {spent.held - worst:,} held by requests in flight; the "
                    f"next could take {worst:,}, its prompt's bytes and the answer cap). {cached}raise "
                    "`budget_tokens` and re-run to continue.")
        if config.budget_usd is not None and price is not None and spent.usd(price) > config.budget_usd:
            usd = Spent(spent.prompt, spent.completion).usd(price)
            held, next_one = Spent(held=spent.held - worst).usd(price), Spent(held=worst).usd(price)
            return (f"endpoint {name}: stopped before the arm's budget of ${config.budget_usd:g} could be crossed "
                    f"(${usd:.6f} spent {where}, ${held:.6f} held by requests in flight; the next could cost "
                    f"${next_one:.6f}, its prompt's bytes and the answer cap at the output price). {cached}raise "
                    "`budget_usd` and re-run to continue.")
        return None

    def _ask(self, request: ChatRequest, key: str, hold: str | None = None) -> HostedAnswer:
        import openai

        config = self.endpoint.config
        began = time.perf_counter()
        try:
            response = self._client.chat.completions.create(model=config.model, **request.body())
        except openai.APIStatusError as exc:
            self._release(request, hold)
            if exc.status_code in REFUSED:
                filtered = _code(exc) in CONTENT_POLICY
                with self._lock:
                    self._requests += 1
                    self._filtered += filtered
                    self._errors += not filtered
                return HostedAnswer("", None, None, time.perf_counter() - began,
                                    error=self.endpoint.redact(f"{exc.status_code}: {_said(exc)}"),
                                    refusal="content_filter" if filtered else "refused")
            raise EndpointFailed(self._failure(exc)) from None
        except openai.APIError as exc:  # connection errors and timeouts, after the client's retries
            if _never_sent(exc):
                self._release(request, hold)
            else:  # a timeout or a dropped answer: the endpoint may have received it, and computed and billed it
                self._count_unread(request, hold)
            raise EndpointFailed(self._failure(exc)) from None
        except ValueError as exc:  # a 200 whose body is not JSON at all (a proxy's page, a truncated body)
            self._count_unread(request, hold)
            not_json = self._not_a_completion(f"a body that is not JSON: {exc}")
            raise EndpointFailed(not_json + self._resume()) from None
        latency = time.perf_counter() - began
        try:
            reply = _read_reply(response)
        except _NotACompletion as exc:
            self._count_unread(request, hold)
            raise EndpointFailed(self._not_a_completion(str(exc)) + self._resume()) from None
        prompt, completion = reply.prompt_tokens, reply.completion_tokens
        # an endpoint (or a proxy) that echoes the request's headers must not put the key into the cache or results
        output = self.endpoint.redact(reply.content)
        filtered = reply.finish_reason == "content_filter"
        # without reported usage, the worst case counts as spent: a budget must never be crossed unseen
        used = (prompt if prompt is not None else request.worst_case_tokens() - request.max_tokens,
                completion if completion is not None else request.max_tokens)
        self._spend(request, hold, used)
        with self._lock:
            self._filtered += filtered
            self._unreported += prompt is None or completion is None
        if filtered:  # production would get this too: kept and scored, but never cached as an answer
            return HostedAnswer(output, prompt, completion, latency, error="content filter: the endpoint withheld "
                                "its answer (finish_reason content_filter)", refusal="content_filter")
        if self._cache is not None:
            self._cache.put(key, {"output": output, "prompt_tokens": prompt, "completion_tokens": completion,
                                  "latency_s": latency, "served_model": reply.served_model,
                                  "answered_at": datetime.now(timezone.utc).isoformat()})
        return HostedAnswer(output, prompt, completion, latency)

    def probe(self, request: ChatRequest) -> ProbeProblem | None:
        """Send `request` once, outside the cache and the budget: what went wrong, in the endpoint's own words where
        it gave some, or None when it answers (a content-filter refusal is an answer: the parameters were
        accepted)."""
        import openai

        name, config = self.endpoint.name, self.endpoint.config
        try:
            _read_reply(self._client.chat.completions.create(model=config.model, **request.body()))
        except _NotACompletion as exc:
            return ProbeProblem("not_a_completion", self._not_a_completion(str(exc)))
        except ValueError as exc:
            return ProbeProblem("not_a_completion", self._not_a_completion(f"a body that is not JSON: {exc}"))
        except openai.APIStatusError as exc:
            said = self.endpoint.redact(f"{exc.status_code}: {_said(exc)}")
            if exc.status_code in REFUSED and _code(exc) in CONTENT_POLICY:
                return None
            if (target := redirect_target(exc)) is not None:
                return ProbeProblem("wrong_url", self.endpoint.redact(_redirected(name, target)))
            if _code(exc) in UNKNOWN_MODEL:  # OpenAI answers a misspelt model with 404, as it does a wrong route
                return ProbeProblem("unknown_model", f"{said}; it does not serve model {config.model!r}")
            if exc.status_code in NO_ROUTE:  # the URL is wrong, not the arm's parameters
                return ProbeProblem("wrong_url", self.endpoint.redact(
                    f"{said}; there is no chat completions route at {config.base_url.rstrip('/')}/chat/completions, "
                    f"so `endpoints.{name}.base_url` is likely wrong (OpenAI-compatible servers answer under /v1, e.g. "
                    "http://127.0.0.1:8000/v1)"))
            if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
                return ProbeProblem("key", f"{said}; it refused the key in ${config.api_key_env}")
            if exc.status_code >= 500:  # the server failed, whatever was asked of it
                return ProbeProblem("server_error", f"{said}, after {config.max_retries + 1} attempt"
                                                    f"{'s' if config.max_retries else ''}")
            return ProbeProblem("rejected", said)
        except openai.APIError as exc:  # no answer at all: a timeout, a dropped connection, after the retries
            attempts = f"{config.max_retries + 1} attempt{'s' if config.max_retries else ''}"
            why = (f"no answer within timeout_s ({config.timeout_s:g} s), {attempts}"
                   if isinstance(exc, openai.APITimeoutError) else f"it could not be reached ({attempts})")
            return ProbeProblem("unanswered", self.endpoint.redact(f"{why}: {type(exc).__name__}: "
                                                                   f"{str(exc).rstrip('.')}"))
        return None

    def _count_unread(self, request: ChatRequest, hold: str | None) -> None:
        """A request answered with something unreadable was sent, and may have been billed: its worst case counts."""
        self._spend(request, hold, (request.worst_case_tokens() - request.max_tokens, request.max_tokens))

    def _spend(self, request: ChatRequest, hold: str | None, used: tuple[int, int]) -> None:
        """A sent request's (prompt, completion) tokens replace its held worst case, here and in the ledger."""
        if self._ledger is not None and hold is not None:
            self._ledger.settle(hold, *used)
        with self._lock:
            self._requests += 1
            self._reserved -= request.worst_case_tokens()
            self._prompt += used[0]
            self._completion += used[1]

    def _not_a_completion(self, what: str) -> str:
        name, config = self.endpoint.name, self.endpoint.config
        return self.endpoint.redact(
            f"endpoint {name} ({config.base_url}) {NOT_A_COMPLETION}: {what}. Nothing it sent is scored. Check "
            f"that `endpoints.{name}.base_url` is the OpenAI-compatible API itself (it usually ends in /v1), not a "
            "gateway's or proxy's page")

    def _release(self, request: ChatRequest, hold: str | None) -> None:
        """A request that was not billed (refused with an error status, or never sent) gives its held worst case
        back."""
        if self._ledger is not None and hold is not None:
            self._ledger.release(hold)
        with self._lock:
            self._reserved -= request.worst_case_tokens()

    def _failure(self, exc: Exception) -> str:
        import openai

        name, config = self.endpoint.name, self.endpoint.config
        times = f"{config.max_retries + 1} time{'s' if config.max_retries else ''}"
        if (target := redirect_target(exc)) is not None:
            why = _redirected(name, target)
        elif isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            why = f"it refused the key in ${config.api_key_env}; check the key and its permissions"
        elif isinstance(exc, openai.NotFoundError):
            why = f"it does not know model {config.model!r} at {config.base_url}; check `model` and `base_url`"
        elif isinstance(exc, openai.APITimeoutError):
            why = f"a request took longer than {config.timeout_s:g} s, {times}"
        elif (bounded := _root_cause(exc, BodyTooLong)) is not None:
            why = f"{bounded}, {times}"
        elif isinstance(exc, openai.APIConnectionError):
            why = f"it could not be reached ({config.max_retries + 1} attempts)"
        else:
            why = f"a request failed {times}"
        detail = self.endpoint.redact(f"{type(exc).__name__}: {exc}")
        return f"endpoint {name} ({config.base_url}): {why}{self._resume()} Last error: {detail}"

    def _resume(self) -> str:
        """What re-running the sweep does for an arm that stopped: it runs the trial again (`sweep.resume`), from
        the cache when there is one."""
        if self._cache is None:
            return (f". Re-run the same command to run the trial again; `endpoints.{self.endpoint.name}.cache` is off, "
                    "so every request is asked (and paid for) again.")
        return ". Answers received so far are cached: re-run the same command to resume."


class ProbeProblem(str):
    """What the one-request check of a hosted arm met (the text), and which setting it points at (`kind`):
    `wrong_url` (no chat route there, or a redirect: base_url), `not_a_completion` (a page, not the API: base_url),
    `unknown_model` (model), `key` (the key), `unanswered` (a timeout or no connection: timeout_s, or the server),
    `server_error` (a 5xx: the server failed), `rejected` (the arm's request itself: its parameters, or a model the
    server will not serve)."""

    kind: str

    def __new__(cls, kind: str, text: str) -> ProbeProblem:
        made = super().__new__(cls, text)
        made.kind = kind
        return made


class _NotACompletion(Exception):
    """The endpoint's 200 answer is not a chat completion; the message says what it was instead."""


@dataclass(frozen=True)
class _Reply:
    """What the harness reads from a chat completion, checked."""

    content: str
    finish_reason: str | None
    prompt_tokens: int | None
    """None when the endpoint reported no usable count (absent, negative, not a number): the worst case counts."""
    completion_tokens: int | None
    served_model: str | None


def _read_reply(response: Any) -> _Reply:
    """The first choice and the usage of `response`, or _NotACompletion. The client returns a bare str or list when
    the body was not a JSON object, and an unvalidated object missing `choices` when it was the wrong object: an
    answer of neither kind may be scored as an empty (wrong) answer."""
    if isinstance(response, str | bytes | list | dict) or response is None:
        raise _NotACompletion(f"a body of type {type(response).__name__} ({_shown(response)})")
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise _NotACompletion(f"no `choices` in it ({_shown(_dump(response))})")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if message is None or not isinstance(content, str | None):
        raise _NotACompletion(f"its first choice has no message text ({_shown(_dump(response))})")
    usage = getattr(response, "usage", None)
    model = getattr(response, "model", None)
    return _Reply(content or "", getattr(choices[0], "finish_reason", None), _count(usage, "prompt_tokens"),
                  _count(usage, "completion_tokens"), model if isinstance(model, str) else None)


def _count(usage: Any, name: str) -> int | None:
    value = getattr(usage, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _dump(response: Any) -> Any:
    """The fields the endpoint actually sent: the client fills every field it expected with None."""
    try:
        fields = {**response.model_dump(exclude_none=True), **(response.model_extra or {})}
    except Exception:  # an object the client built without validating: show what Python can
        return response
    return fields or "an empty object"


def _shown(value: Any, limit: int = 160) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _never_sent(exc: BaseException) -> bool:
    """Whether the request never reached the endpoint: the connection itself failed (the HTTP library's ConnectError
    or ConnectTimeout behind openai's; the library is httpx, or httpx2 in openai 3, so they are known by name). A read
    timeout or a dropped answer may follow a request the endpoint received, computed and billed, so its worst case
    stays spent (a timed-out paid request is billed all the same)."""
    return any(type(cause).__name__ in ("ConnectError", "ConnectTimeout") for cause in _causes(exc))


def _root_cause(exc: BaseException, kind: type) -> BaseException | None:
    """The first exception of `kind` behind `exc` (openai wraps the HTTP library's errors in its own)."""
    return next((cause for cause in _causes(exc) if isinstance(cause, kind)), None)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then each exception behind it, nearest first."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _redirected(name: str, target: str) -> str:
    return (f"it redirected the request to {target}, which is not followed (the prompts would go to another host); "
            f"if that is the API, set `endpoints.{name}.base_url` to it")


def _said(exc) -> str:
    """What the endpoint said in its error body. The openai client reads OpenAI's `{"error": {"message": ...}}`; a
    server that answers otherwise (FastAPI's `{"detail": ...}`: `transformers serve`, many proxies) leaves only
    "Error code: 400" in the exception's message, so its own words are read from the body."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        said = error.get("message") or error.get("detail") if isinstance(error, dict) else error
        return str(said or json.dumps(body, ensure_ascii=False))[:500]
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return str(exc.message)


def _code(exc) -> str | None:
    """The error code an endpoint put in its error body (OpenAI: `content_filter`), if any."""
    code = getattr(exc, "code", None)
    body = getattr(exc, "body", None)
    if code is None and isinstance(body, dict):
        error = body.get("error", body)
        code = error.get("code") if isinstance(error, dict) else None
    return None if code is None else str(code)


def check_endpoint(name: str, config: EndpointConfig, api_key: str) -> str | None:
    """Why the endpoint cannot be used (unreachable, or the key refused), or None; sends no chat request. The key is
    not blank: `resolve_endpoints` refuses that first (scrubbing a blank key from messages would mangle them)."""
    import openai

    client = openai.OpenAI(base_url=config.base_url, api_key=api_key, timeout=min(config.timeout_s, 10.0),
                           max_retries=0, http_client=bounded_client(min(config.timeout_s, 10.0)))
    try:
        client.models.list()
    except (openai.AuthenticationError, openai.PermissionDeniedError):
        return f"endpoint `{name}` ({config.base_url}) refused the key in ${config.api_key_env}"
    except openai.APIStatusError:  # it answered, if not to /models (some servers have none): it is there
        return None
    except openai.APIError as exc:
        detail = f"{type(exc).__name__}: {exc}".replace(api_key, KEY_MARK) if api_key else str(exc)
        return f"endpoint `{name}` ({config.base_url}) cannot be reached ({detail})"
    return None
