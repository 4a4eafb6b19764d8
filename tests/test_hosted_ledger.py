"""The study's spend on an endpoint is shared by every worker writing to one results folder: two processes cannot
both spend the last of a budget, a worker killed mid-request leaves its worst case spent, and a line cut by a crash
never counts nor breaks the ledger."""

from __future__ import annotations

import multiprocessing

import pytest
from conftest import OpenAIServer  # noqa: F401  (the fixture's type)
from test_hosted import KEY, requests

from harness.core.config import EndpointConfig
from harness.hosted.client import BudgetExhausted, HostedClient, HostedEndpoint
from harness.hosted.ledger import SpendLedger, Spent


def over(budget: int):
    return lambda spent: f"would spend {spent.tokens} of {budget}" if spent.tokens > budget else None


def test_two_workers_see_each_others_holds_and_settlements(tmp_path):
    path = tmp_path / "spend.jsonl"
    a, b = SpendLedger(path, carried=lambda: (10, 5)), SpendLedger(path, carried=lambda: (999, 999))
    hold, why = a.hold(40, over(100))
    assert why is None and b.spent() == Spent(10, 5, 40)  # carried once, by whoever made the ledger
    assert b.hold(50, over(100)) == (None, "would spend 105 of 100")  # a's hold counts for b
    a.settle(hold, 20, 3)  # the answer used less than its worst case
    assert b.spent() == Spent(30, 8, 0)
    other, _ = b.hold(50, over(100))
    b.release(other)  # never billed
    assert a.spent() == Spent(30, 8, 0)
    lost, _ = a.hold(25, over(100))  # its worker is killed before the answer: it stays spent at the worst case
    assert SpendLedger(path).spent() == Spent(30, 8, 25) and lost


def test_a_line_cut_by_a_crash_is_skipped_and_the_ledger_goes_on(tmp_path):
    path = tmp_path / "spend.jsonl"
    ledger = SpendLedger(path)
    hold, _ = ledger.hold(30, over(100))
    ledger.settle(hold, 12, 4)
    with path.open("ab") as handle:
        handle.write(b'{"settle": "abc", "prom')  # a crash mid-write
    fresh = SpendLedger(path)
    assert fresh.spent() == Spent(12, 4, 0)
    again, _ = fresh.hold(10, over(100))
    fresh.settle(again, 5, 1)
    assert SpendLedger(path).spent() == Spent(17, 5, 0)
    assert path.read_bytes().count(b"\n") == len(path.read_bytes().splitlines())  # every line ends


def _hold_once(path: str, start, results) -> None:
    start.wait()
    results.put(SpendLedger(path).hold(60, over(100))[0] is not None)


def test_of_two_processes_racing_for_the_last_of_a_budget_only_one_gets_it(tmp_path):
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as two workers are
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_hold_once, args=(str(tmp_path / "spend.jsonl"), start, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
    assert sorted(results.get(timeout=10) for _ in workers) == [False, True]


def test_a_second_workers_arm_stops_where_the_first_left_the_budget(openai_server, tmp_path):
    """Before, each worker read the study's spend when its arm started, so two arms running at once could each spend
    the whole remainder; with the ledger, the second counts every request the first sends."""
    one = requests(1)[0].worst_case_tokens()
    config = EndpointConfig(base_url=openai_server.url, model=openai_server.model, api_key_env="HOSTED_TEST_KEY",
                            concurrency=1, budget_tokens=3 * one, cache=False)
    endpoint = HostedEndpoint("tiny", config, KEY, (1.0, 2.0))
    path = tmp_path / "study--tiny.jsonl"
    first = HostedClient(endpoint, ledger=SpendLedger(path))
    first.answer(requests(2, "first"))
    spent = SpendLedger(path).spent()
    assert spent.held == 0 and spent.prompt + spent.completion == first.usage.prompt_tokens + \
        first.usage.completion_tokens
    second = HostedClient(endpoint, ledger=SpendLedger(path))
    with pytest.raises(BudgetExhausted, match="spent by the study's arms on it, across workers") as info:
        second.answer(requests(5, "second"))
    assert SpendLedger(path).spent().tokens <= 3 * one  # never crossed, across both
    assert second.usage.requests < 5 and info.value.usage.requests == second.usage.requests
