"""Payback from speeds the harness's own generate timed. Two adapters of one shape differ in cost per query only by
the speed each pass happened to reach (the lead's lead/3 at 1527 and lead/4 at 925 completion tokens/s, on a busy
CPU). Each speed is bootstrapped over the batches of its pass, so payback gives the saving and the months with an
interval; it cautions when the saving rests only on the two speeds, when the interval of the saving reaches 0, and when
other processes took a good share of the machine during a timing; it says nothing of the kind for speeds measured on
a serving stack."""

from __future__ import annotations

import json

import pytest
from conftest import printed
from test_cost import PRICES
from test_report_lead_findings import add_trial, lead_results

from harness.analysis.cost import load_prices
from harness.analysis.payback import QualityBar, payback_from_store
from harness.analysis.speed import speed_interval, timing_text
from harness.cli import main
from harness.core.records import Throughput, TrainingSummary
from harness.store.database import Store

CAUTION = "Caution: the saving per query rests only on the measured speeds"
WITHIN = "is within the timed speeds' spread"
TRAINED = TrainingSummary(100, "max_steps", 800, 8, planned_steps=100)


def timed(seconds: list[float], others: float | None = 0.02, tokens: int = 100) -> Throughput:
    """A test pass of 100 examples in batches of 5, each batch answering in `tokens` completion tokens."""
    return Throughput(100, sum(seconds), 5, 48_000, tokens * len(seconds), tuple((tokens, s) for s in seconds), others)


def steady(mean: float, others: float | None = 0.02) -> Throughput:
    return timed([mean * (1 + 0.1 * ((i % 5) - 2) / 2) for i in range(20)], others)  # +-10% around `mean`


def noisy(low: float, high: float) -> Throughput:
    return timed([low if i % 2 else high for i in range(20)])


@pytest.fixture
def store(tmp_path) -> Store:
    """lead/1 and lead/2: LoRA trials of one shape, equally right, recorded before batch timings, at 10 s and 16 s for
    the same 2,000 completion tokens; lead/3 like them but answering in half the tokens, at a speed between theirs.
    lead/5 to lead/9 carry their batches: 5 and 6 steady at 200 and 125 tokens/s, 7 and 8 close and noisy, 9 as 6
    on a machine others kept 40% busy."""
    store = lead_results(tmp_path)
    add_trial(store, 0, "prompt", 50, 0.5, test_seconds=100.0)  # tokens a query for a hosted baseline
    add_trial(store, 1, "lora", 90, 0.9, test_seconds=10.0, training=TRAINED)
    add_trial(store, 2, "lora", 90, 0.85, test_seconds=16.0, training=TRAINED)
    add_trial(store, 3, "lora", 90, 0.8, test_seconds=12.0, completion_tokens=1_000, training=TRAINED)
    add_trial(store, 5, "lora", 90, 0.9, speed=steady(0.5), training=TRAINED)
    add_trial(store, 6, "lora", 90, 0.85, speed=steady(0.8), training=TRAINED)
    add_trial(store, 7, "lora", 90, 0.9, speed=noisy(0.2, 1.0), training=TRAINED)
    add_trial(store, 8, "lora", 90, 0.85, speed=noisy(0.3, 1.0), training=TRAINED)
    add_trial(store, 9, "lora", 90, 0.85, speed=steady(0.8, others=0.4), training=TRAINED)
    return store


def _payback(store: Store, tmp_path, candidate: str, baseline: str, **kwargs):
    """At a 5-point margin: two trials right on the same 90 of 100 tie within [-3.6, +3.6], so they pass the bar."""
    (prices := tmp_path / "prices.yaml").write_text(PRICES)
    kwargs.setdefault("quality_bar", QualityBar(margin=0.05))
    return payback_from_store(store, candidate, baseline, 100_000, prices=load_prices(prices), **kwargs)


def test_a_speed_is_bootstrapped_over_its_batches():
    speed = speed_interval(steady(0.5))
    assert speed.n == 20 and speed.value == pytest.approx(200.0, rel=0.01)
    assert speed.low < speed.value < speed.high and speed.high - speed.low < 0.1 * speed.value
    wide = speed_interval(noisy(0.2, 1.0))
    assert wide.high - wide.low > 3 * (speed.high - speed.low)
    assert speed_interval(timed([0.5] * 4)).n == 0  # too few batches for an interval
    assert "no interval (4 timed batches, fewer than 5)" in timing_text(timed([0.5] * 4))
    assert timing_text(steady(0.5)).endswith("other processes used 2% of the machine's CPU meanwhile")
    assert timing_text(steady(0.5, others=None)).endswith("no record of the machine's load then")


def test_a_saving_that_rests_only_on_two_fallback_speeds_is_cautioned(store, tmp_path):
    result = _payback(store, tmp_path, "lead/1", "lead/2")
    assert result.savings_per_query_usd > 0 and result.timing is None  # 200 against 125 completion tokens/s
    caution = result.reason[result.reason.index(CAUTION):]
    assert "rests only on the measured speeds, 200 against 125 completion tokens/s" in caution
    assert "at one speed lead/1 would cost $0.000160 a query, the same as lead/2's $0.000160." in caution
    assert ("one pass of the harness's own generate (lead/1: 100 test examples in 10.00 s, 200.0 completion tokens/s, "
            "one figure without an interval (recorded before batch timings); no record of the machine's load then; "
            "lead/2: 100 test examples in 16.00 s") in caution
    assert caution.endswith("--serving-throughput and --baseline-serving-throughput.")


def test_timed_batches_give_the_saving_and_the_months_an_interval(store, tmp_path):
    result = _payback(store, tmp_path, "lead/5", "lead/6")
    spread = result.timing
    assert spread is not None and spread.n == 20
    low, high = spread.savings_per_query_usd
    assert 0 < low < result.savings_per_query_usd < high  # clearly apart: the saving is beyond the timings' noise
    first, last = spread.months_to_payback
    assert first < result.months_to_payback < last
    assert result.headline().startswith(f"PAYS BACK in {result.headline().split(' in ')[1].split(' [')[0]} [")
    assert "over the timed speeds' spread, with its serving machine paid only while busy" in result.headline()
    assert CAUTION in result.reason and WITHIN not in result.reason  # at one speed there is still no saving
    assert "[" in result.assumptions["candidate.completion_tokens_per_s"]["source"]
    assert "over 20 timed batches; other processes used 2% of the machine's CPU meanwhile" in result.reason


def test_a_saving_within_the_timings_spread_is_cautioned_and_may_never_pay_back(store, tmp_path):
    result = _payback(store, tmp_path, "lead/7", "lead/8")
    assert result.savings_per_query_usd > 0 and result.pays_back
    assert result.timing.savings_per_query_usd[0] < 0 < result.timing.savings_per_query_usd[1]
    assert result.timing.months_to_payback[1] is None and ", never] over the timed speeds' spread, with its serving " \
        "machine paid only while busy" in result.headline()
    assert WITHIN in result.reason and "so the timings cannot tell which costs less" in result.reason


def test_a_speed_timed_on_a_busy_machine_is_named(store, tmp_path):
    result = _payback(store, tmp_path, "lead/5", "lead/9")
    assert "other processes used 40% of the machine's CPU while lead/9 was timed" in result.reason
    assert "while lead/5 was timed" not in result.reason  # 2% is a quiet machine
    api = _payback(store, tmp_path, "lead/9", "api:test-api", baseline_accuracy=0.5)
    assert "while lead/9 was timed" in api.reason
    assert api.reason.endswith("Price it at speeds measured on your serving stack: --serving-throughput.")


def test_harness_payback_and_the_report_print_the_spread_and_the_cautions(store, tmp_path, capsys):
    (prices := tmp_path / "prices.yaml").write_text(PRICES)
    db = ["--db", str(tmp_path), "--prices", str(prices)]
    assert main(["payback", "lead/1", "--baseline", "lead/2", "--volume", "100000", *db]) == 0
    assert CAUTION in " ".join(printed(capsys).split())
    assert main(["payback", "lead/5", "--baseline", "lead/6", "--volume", "100000", "--margin", "0.05", *db]) == 0
    assert "timing spread: saving per query $" in " ".join(printed(capsys).split())
    assert main(["payback", "lead/7", "--baseline", "lead/8", "--volume", "100000", "--margin", "0.05",
                 "--format", "json", *db]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["timing"]["n"] == 20 and shown["timing"]["months_to_payback"][1] is None
    assert main(["report", "--volume", "100000", "--baseline", "lead/2", *db]) == 0
    why = next(line for line in (tmp_path / "report-lead.md").read_text().splitlines() if line.startswith("- Why:"))
    assert CAUTION in why


def test_no_caution_when_the_saving_stays_at_one_speed(store, tmp_path):
    # lead/3 answers in half the tokens: slower per token, it still costs less a query at any one speed
    result = _payback(store, tmp_path, "lead/3", "lead/2")
    assert result.savings_per_query_usd > 0 and CAUTION not in result.reason


def test_no_caution_when_a_speed_was_measured_on_the_serving_stack_or_nothing_is_saved(store, tmp_path):
    given = _payback(store, tmp_path, "lead/7", "lead/9", serving_throughput=200.0, baseline_serving_throughput=125.0)
    assert given.savings_per_query_usd > 0 and given.timing is None
    assert CAUTION not in given.reason and "over the timed" not in given.headline()
    slower = _payback(store, tmp_path, "lead/2", "lead/1")  # costs more: no saving to caution about
    assert slower.savings_per_query_usd < 0 and CAUTION not in slower.reason


def test_a_speed_measured_on_another_machine_is_priced_at_that_machines_hour(store, tmp_path, capsys):
    """A platform engineer measured the adapter on a GPU box: its figure priced at the sweep machine's device would be
    off by the two machines' price ratio."""
    result = _payback(store, tmp_path, "lead/5", "lead/6", serving_throughput=2000.0, serving_usd_per_hour=0.8)
    assert result.inputs.candidate_usd_per_hour == 0.8
    rate = result.assumptions["candidate.usd_per_hour"]
    assert rate["value"] == 0.8 and rate["source"] == "user input (--serving-usd-per-hour)"
    assert result.candidate_usd_per_query == pytest.approx(0.8 / 3600 * 20 / 2000)  # 20 tokens a query at 2000/s
    (prices := tmp_path / "prices.yaml").write_text(PRICES)
    db = ["--db", str(tmp_path), "--prices", str(prices)]
    for bad in ("0", "-5", "nan"):
        with pytest.raises(SystemExit):
            main(["payback", "lead/5", "--volume", "100000", "--serving-usd-per-hour", bad, *db])
    assert main(["payback", "lead/5", "--baseline", "api:test-api", "--baseline-accuracy", "0.5", "--volume", "1000",
                 "--baseline-serving-usd-per-hour", "1.0", *db]) == 2
    assert "--baseline-serving-usd-per-hour price a local baseline served on your own stack" in " ".join(
        printed(capsys).split())
