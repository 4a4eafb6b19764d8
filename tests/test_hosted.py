"""The hosted arm against a real OpenAI-compatible server on 127.0.0.1 (`transformers serve`, a tiny model), with a
fault-injecting proxy in front of it: retries on 429 (honouring Retry-After) and 500, a request that hangs past its
timeout, the server killed mid-arm, the response cache, and the budget cap."""

from __future__ import annotations

import time

import pytest
from conftest import OpenAIServer
from fault_proxy import FaultProxy

from harness.core.config import EndpointConfig
from harness.hosted.cache import request_key
from harness.hosted.client import BudgetExhausted, ChatRequest, EndpointFailed, HostedClient, HostedEndpoint

KEY = "sk-test-not-a-real-key-4f1d9c"


def requests(n: int, tag: str = "q") -> list[ChatRequest]:
    return [ChatRequest([{"role": "system", "content": "Name the colour."},
                         {"role": "user", "content": f"{tag} {i}: the cup is red"}], max_tokens=6) for i in range(n)]


def client(url: str, model: str, tmp_path, **changes) -> HostedClient:
    fields = dict(base_url=url, model=model, api_key_env="HOSTED_TEST_KEY", concurrency=1, timeout_s=10.0,
                  max_retries=2)
    config = EndpointConfig(**{**fields, **changes})
    return HostedClient(HostedEndpoint("tiny", config, KEY, (1.0, 2.0), tmp_path / "cache"))


@pytest.fixture
def proxy(openai_server):
    with FaultProxy(openai_server.url) as p:
        yield p


def test_answers_carry_the_endpoints_tokens_and_latency(proxy, openai_server, tmp_path):
    ask = client(proxy.url, openai_server.model, tmp_path, concurrency=3)
    answers = ask.answer(requests(5))
    assert len(answers) == 5 and all(a.error is None and not a.cached for a in answers)
    assert all(a.prompt_tokens > 0 and a.completion_tokens > 0 and a.latency_s > 0 for a in answers)
    usage = ask.usage
    assert (usage.requests, usage.cache_hits, usage.errors) == (5, 0, 0)
    assert usage.prompt_tokens == sum(a.prompt_tokens for a in answers)
    assert usage.usd == pytest.approx((usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0) / 1e6)
    assert proxy.forwarded == 5 and proxy.authorizations == {f"Bearer {KEY}"}


def test_429_is_retried_after_the_time_it_names(proxy, openai_server, tmp_path):
    proxy.script = ["429", "pass"]
    (answer,) = client(proxy.url, openai_server.model, tmp_path).answer(requests(1))
    assert answer.error is None and proxy.forwarded == 1
    assert len(proxy.received) == 2 and proxy.received[1] - proxy.received[0] >= 0.9  # Retry-After: 1


def test_500s_are_retried_with_backoff(proxy, openai_server, tmp_path):
    proxy.script = ["500", "500", "pass"]
    (answer,) = client(proxy.url, openai_server.model, tmp_path).answer(requests(1))
    assert answer.error is None and len(proxy.received) == 3 and proxy.forwarded == 1
    proxy.script = ["500"] * 3
    with pytest.raises(EndpointFailed, match="a request failed 3 times") as info:
        client(proxy.url, openai_server.model, tmp_path, cache=False).answer(requests(1, "other"))
    assert KEY not in str(info.value)


def test_a_request_that_hangs_past_its_timeout_is_retried_then_fails_the_arm(proxy, openai_server, tmp_path):
    proxy.hang_s = 20.0  # far past the timeout, so the bound below holds on any machine's speed
    proxy.script = ["hang", "pass"]
    (answer,) = client(proxy.url, openai_server.model, tmp_path, timeout_s=1.0, max_retries=1).answer(requests(1))
    assert answer.error is None and proxy.forwarded == 1
    proxy.script = ["hang"]
    began = time.monotonic()
    with pytest.raises(EndpointFailed, match="took longer than 1 s") as info:
        client(proxy.url, openai_server.model, tmp_path, timeout_s=1.0, max_retries=0).answer(requests(1, "slow"))
    assert time.monotonic() - began < 15  # the timeout ended it, not the 20 s hang
    # the endpoint received it and may bill it: its worst case stays spent (a timeout gave it back, under the cap)
    (slow,) = requests(1, "slow")
    usage = info.value.usage
    assert (usage.requests, usage.completion_tokens) == (1, 6)
    assert usage.prompt_tokens == slow.worst_case_tokens() - slow.max_tokens


def test_server_killed_mid_arm_fails_the_arm_and_a_rerun_resumes_from_the_cache(tiny_model_dir, tmp_path):
    server = OpenAIServer(tiny_model_dir, tmp_path / "serve.log")
    with FaultProxy(server.url) as proxy:  # the endpoint's address stays the proxy's; the server behind it changes
        try:
            proxy.after_forward = lambda count: server.stop() if count == 3 else None
            with pytest.raises(EndpointFailed, match="could not be reached") as info:
                client(proxy.url, server.model, tmp_path, max_retries=1).answer(requests(8))
            assert proxy.forwarded == 3 and "re-run the same command to resume" in str(info.value)
            # what it spent before it stopped travels with the failure: the three answered, and the fourth, which
            # reached the endpoint's address and got no answer, at its worst case (it may have been billed)
            assert info.value.usage.requests == 4
        finally:
            server.stop()
        restarted = OpenAIServer(tiny_model_dir, tmp_path / "serve2.log")
        try:
            proxy.origin, proxy.after_forward = restarted.url.removesuffix("/v1"), None
            again = client(proxy.url, server.model, tmp_path)
            answers = again.answer(requests(8))
            assert len(answers) == 8 and proxy.forwarded == 3 + 5  # only the unanswered five were asked again
            assert (again.usage.cache_hits, again.usage.requests) == (3, 5)
        finally:
            restarted.stop()


def test_rerun_sends_no_request_and_the_cache_can_be_switched_off(proxy, openai_server, tmp_path):
    first = client(proxy.url, openai_server.model, tmp_path, concurrency=2).answer(requests(6))
    assert proxy.forwarded == 6
    again = client(proxy.url, openai_server.model, tmp_path, concurrency=2)
    assert [a.output for a in again.answer(requests(6))] == [a.output for a in first]
    assert proxy.forwarded == 6 and again.usage.cache_hits == 6 and again.usage.requests == 0
    off = client(proxy.url, openai_server.model, tmp_path, cache=False)
    off.answer(requests(6))
    assert proxy.forwarded == 12 and off.usage.cache_hits == 0


def test_cache_keys_never_mix_models_prompts_or_parameters():
    body = requests(1)[0].body()
    key = request_key("http://x/v1", "m", body)
    assert key == request_key("http://x/v1/", "m", body)
    assert key != request_key("http://x/v1", "other-model", body)
    assert key != request_key("http://y/v1", "m", body)
    assert key != request_key("http://x/v1", "m", requests(1, "different")[0].body())
    assert key != request_key("http://x/v1", "m", {**body, "max_tokens": 7})
    assert key != request_key("http://x/v1", "m", {**body, "response_format": {"type": "json_object"}})


def test_the_budget_cap_stops_the_arm_before_it_is_crossed(proxy, openai_server, tmp_path):
    one = requests(1)[0].worst_case_tokens()
    ask = client(proxy.url, openai_server.model, tmp_path, budget_tokens=3 * one)
    with pytest.raises(BudgetExhausted, match="budget of") as info:
        ask.answer(requests(10))
    spent = ask.usage.prompt_tokens + ask.usage.completion_tokens
    assert ask.usage.requests >= 3 and proxy.forwarded == ask.usage.requests  # the worst case is rarely reached
    assert spent <= 3 * one < spent + one  # never crossed; the next request could have crossed it
    assert "raise `budget_tokens` and re-run" in str(info.value)
    dollars = client(proxy.url, openai_server.model, tmp_path, budget_usd=1e-9, cache=False)
    with pytest.raises(BudgetExhausted, match=r"budget of \$1e-09") as info:
        dollars.answer(requests(2, "usd"))
    assert dollars.usage.requests == 0
    next_one = requests(2, "usd")[0].worst_case_tokens() * 2.0 / 1e6  # the dearer of the client's prices
    assert f"the next could cost ${next_one:.6f}" in str(info.value)
    assert "No request of this arm was sent: raise `budget_usd`" in str(info.value)


def test_the_budget_is_the_arms_earlier_spending_counts_against_it(proxy, openai_server, tmp_path):
    """A retry (or another worker's trial of the same endpoint) starts from what the arm already spent."""
    one = requests(1)[0].worst_case_tokens()
    fields = dict(base_url=proxy.url, model=openai_server.model, api_key_env="HOSTED_TEST_KEY", concurrency=1,
                  budget_tokens=3 * one, cache=False)
    endpoint = HostedEndpoint("tiny", EndpointConfig(**fields), KEY, (1.0, 2.0))
    with pytest.raises(BudgetExhausted):
        HostedClient(endpoint, spent=(3 * one, 0)).answer(requests(2, "spent"))
    assert proxy.forwarded == 0
    fresh = HostedClient(endpoint, spent=(one, 0))
    fresh.answer(requests(1, "fits"))
    assert fresh.usage.requests == 1 and fresh.usage.prompt_tokens < one  # usage reports only what it added


def test_refused_requests_are_errors_left_out_and_counted(openai_server, tmp_path):
    with FaultProxy(openai_server.url, script=["pass", "400"]) as proxy:
        ask = client(proxy.url, openai_server.model, tmp_path, max_refused_share=0.2, cache=False)
        answers = ask.answer(requests(5))
    assert [a.excluded for a in answers] == [False, True, False, False, False]
    assert answers[1].refusal == "refused" and answers[1].error.startswith("400")
    assert (ask.usage.errors, ask.usage.content_filtered) == (1, 0)


def test_more_refusals_than_the_arm_allows_fail_it_unscored(openai_server, tmp_path):
    with FaultProxy(openai_server.url, script=["400", "400"]) as proxy:
        ask = client(proxy.url, openai_server.model, tmp_path, cache=False)  # 2% of 10 requests: none may be refused
        with pytest.raises(EndpointFailed, match="refused 1 of the arm's 10 requests") as info:
            ask.answer(requests(10))
    assert "max_refused_share" in str(info.value) and "injected 400" in str(info.value)
    assert proxy.forwarded == 0  # it stopped at the first refusal it could not allow


def test_a_content_filter_refusal_is_kept_as_the_answer_and_counted_apart(openai_server, tmp_path):
    with FaultProxy(openai_server.url, script=["content_filter"]) as proxy:
        ask = client(proxy.url, openai_server.model, tmp_path, cache=False)
        answers = ask.answer(requests(3))
    first = answers[0]
    assert first.refusal == "content_filter" and not first.excluded and first.output == ""
    assert (ask.usage.content_filtered, ask.usage.errors) == (1, 0)


def test_probe_returns_the_endpoints_own_message_when_it_rejects_the_request(openai_server, tmp_path):
    with FaultProxy(openai_server.url, rejects="response_format is not supported by this model") as proxy:
        problem = client(proxy.url, openai_server.model, tmp_path).probe(requests(1)[0])
    assert "400" in problem and "response_format is not supported" in problem
    with FaultProxy(openai_server.url) as proxy:
        assert client(proxy.url, openai_server.model, tmp_path).probe(requests(1)[0]) is None


def test_a_server_failing_with_500_is_named_a_server_failure_not_a_rejected_request(openai_server, tmp_path):
    """The probe called a 500 a rejection of the arm's parameters and advised changing `structured` or the model."""
    with FaultProxy(openai_server.url, script=["500"] * 3) as proxy:
        problem = client(proxy.url, openai_server.model, tmp_path, max_retries=2).probe(requests(1)[0])
    assert problem.kind == "server_error" and problem.startswith("500: ") and problem.endswith("after 3 attempts")


def test_a_request_that_never_reached_the_endpoint_gives_its_worst_case_back(tmp_path):
    """Nothing listens at the address: the connection itself failed, so nothing can have been billed."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ask = client(f"http://127.0.0.1:{port}/v1", "any", tmp_path, max_retries=0, cache=False)
    with pytest.raises(EndpointFailed, match="could not be reached") as info:
        ask.answer(requests(1))
    assert (info.value.usage.requests, info.value.usage.prompt_tokens) == (0, 0)
