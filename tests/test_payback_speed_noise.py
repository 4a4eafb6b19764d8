"""Payback between two adapters of one shape: their only difference in cost per query is the speed the harness's own
generate happened to reach, once each (the lead's lead/3 at 1527 and lead/4 at 925 completion tokens/s, on a busy
CPU). Payback must say that such a saving rests on two single timings, with no interval and no record of the CPU's
load, and not say so when the saving stays at one speed or the speeds were measured on a serving stack."""

from __future__ import annotations

import pytest
from conftest import printed
from test_cost import PRICES
from test_report_lead_findings import add_trial, lead_results

from harness.analysis.cost import load_prices
from harness.analysis.payback import payback_from_store
from harness.cli import main
from harness.core.records import TrainingSummary
from harness.store.database import Store

CAUTION = "Caution: the saving per query rests only on the measured speeds"
TRAINED = TrainingSummary(100, "max_steps", 800, 8, planned_steps=100)


@pytest.fixture
def store(tmp_path) -> Store:
    """lead/1 and lead/2: LoRA trials of one shape, equally right, timed at 10 s and 16 s for the same 2,000 completion
    tokens; lead/3 like them but answering in half the tokens, at a speed between theirs."""
    store = lead_results(tmp_path)
    add_trial(store, 1, "lora", 90, 0.9, test_seconds=10.0, training=TRAINED)
    add_trial(store, 2, "lora", 90, 0.85, test_seconds=16.0, training=TRAINED)
    add_trial(store, 3, "lora", 90, 0.8, test_seconds=12.0, completion_tokens=1_000, training=TRAINED)
    return store


def _payback(store: Store, tmp_path, candidate: str, baseline: str, **kwargs):
    (prices := tmp_path / "prices.yaml").write_text(PRICES)
    return payback_from_store(store, candidate, baseline, 100_000, prices=load_prices(prices), **kwargs)


def test_a_saving_that_rests_only_on_two_fallback_speeds_is_cautioned(store, tmp_path):
    result = _payback(store, tmp_path, "lead/1", "lead/2")
    assert result.savings_per_query_usd > 0  # 200 against 125 completion tokens/s
    caution = result.reason[result.reason.index(CAUTION):]
    assert "rests only on the measured speeds, 200 against 125 completion tokens/s" in caution
    assert "at one speed lead/1 would cost $0.000160 a query, the same as lead/2's $0.000160." in caution
    assert ("one timed pass of the harness's own generate (lead/1: 100 test examples in 10.00 s, prompts of 480 "
            "tokens; lead/2: 100 test examples in 16.00 s, prompts of 480 tokens), with no interval and no record of "
            "the CPU's load then") in caution
    assert caution.endswith("--serving-throughput and --baseline-serving-throughput.")


def test_harness_payback_and_the_report_print_the_caution(store, tmp_path, capsys):
    (prices := tmp_path / "prices.yaml").write_text(PRICES)
    db = ["--db", str(tmp_path), "--prices", str(prices)]
    assert main(["payback", "lead/1", "--baseline", "lead/2", "--volume", "100000", *db]) == 0
    assert CAUTION in " ".join(printed(capsys).split())
    assert main(["report", "--volume", "100000", "--baseline", "lead/2", *db]) == 0
    why = next(line for line in (tmp_path / "report-lead.md").read_text().splitlines() if line.startswith("- Why:"))
    assert CAUTION in why


def test_no_caution_when_the_saving_stays_at_one_speed(store, tmp_path):
    # lead/3 answers in half the tokens: slower per token, it still costs less a query at any one speed
    result = _payback(store, tmp_path, "lead/3", "lead/2")
    assert result.savings_per_query_usd > 0 and CAUTION not in result.reason


def test_no_caution_when_a_speed_was_measured_on_the_serving_stack_or_nothing_is_saved(store, tmp_path):
    given = _payback(store, tmp_path, "lead/1", "lead/2", serving_throughput=200.0, baseline_serving_throughput=125.0)
    assert given.savings_per_query_usd > 0 and CAUTION not in given.reason
    slower = _payback(store, tmp_path, "lead/2", "lead/1")  # costs more: no saving to caution about
    assert slower.savings_per_query_usd < 0 and CAUTION not in slower.reason
