"""Cost model and payback against hand-computed cases (the arithmetic is in the comments).

Trials and runs are typed views built in memory; one test goes through a real DuckDB file.
Prices come from a small test table with round numbers, not the bundled one, so the figures stay put.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest
import yaml
from views import run_view, trial_view

from harness.analysis.cost import (
    ASSUMED,
    USER,
    api_cost,
    bundled_prices_path,
    device_price_key,
    load_prices,
    serving_cost,
    sweep_cost,
    trial_cost,
)
from harness.analysis.formatting import quantity, queries
from harness.analysis.payback import (
    QualityBar,
    baseline_from_api,
    baseline_from_trial,
    payback,
    payback_from_store,
)
from harness.core.errors import HarnessError
from harness.core.metric import Metric
from harness.core.records import (
    ExampleRow,
    HostedUsage,
    MetricRow,
    PromptSearch,
    RunRecord,
    ServingLoad,
    Throughput,
    TrialRecord,
)
from harness.store.database import Store

PRICES = """\
version: "test v1"
date: "2026-01-01"
devices:
  H100: {usd_per_hour: 3.60, per: gpu, match: ["H100"]}   # $0.001 per second
  L4: {usd_per_hour: 0.72, per: gpu, match: ["L4"]}
  CPU: {usd_per_hour: 0.10, per: core, match: []}
apis:
  test-api: {input_usd_per_1m: 1.0, output_usd_per_1m: 4.0}
token_ratio: 1.0
"""
H100 = run_view()
ENVS = {"r1": H100}


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(PRICES)
    return load_prices(path)


def flags(right: int, n: int, start: int = 0) -> dict[str, float]:
    """Per-example 0/1 test scores: the first `right` of `n` examples (from `start`) right."""
    return {f"t{i:04d}": 1.0 if start <= i < start + right else 0.0 for i in range(n)}


def table_scores(both: int, candidate_only: int, baseline_only: int, neither: int) -> tuple[dict, dict]:
    """Paired 0/1 test scores of a candidate and a baseline from the four cells of their 2x2 table."""
    cand, base = [], []
    for count, (x, y) in ((both, (1, 1)), (candidate_only, (1, 0)), (baseline_only, (0, 1)), (neither, (0, 0))):
        cand += [float(x)] * count
        base += [float(y)] * count
    return ({f"t{i:04d}": v for i, v in enumerate(cand)}, {f"t{i:04d}": v for i, v in enumerate(base)})


def evaluation(examples, seconds, prompt_tokens, completion_tokens, batch_size=16):
    return Throughput(examples, seconds, batch_size, prompt_tokens, completion_tokens)


def trial(number, method="lora", status="complete", device="cuda", train=None, evals=None, started=None,
          finished=None, test=None, accuracy=None, objective=None):
    """A trial view; `accuracy` is test task_accuracy (value, low, high)."""
    metrics = {"test": {"task_accuracy": Metric(*accuracy, 1000)}} if accuracy else {}
    return trial_view(number, method=method, status=status, device=device, train_seconds=train,
                      eval_seconds=evals, started_at=started, finished_at=finished, objective=objective,
                      metrics=metrics, throughput={"test": test} if test else {}, trained=method != "prompt")


# Candidate: H100 ($0.001/s). Test: 100 examples in 10 s, 48,000 prompt + 2,000 completion tokens
# -> 200 completion tokens/s; per query 480 + 20 = 500 tokens, 20 / 200 = 0.1 s -> $0.0001 per query.
# Its sweep: train 1000 s + eval 1000 s = 2000 s x $0.001 = $2.00.
def candidate(accuracy=(0.90, 0.85, 0.94)):
    return trial(1, train=1000.0, evals=1000.0, test=evaluation(100, 10.0, 48_000, 2_000), accuracy=accuracy)


# Prompting trial: 10 examples in 10 s, 20,000 prompt + 250 completion tokens -> 2,000 + 25 tokens per query,
# 25 tokens/s. Served on the H100: 25 / 25 = 1 s per query -> $0.001 per query.
def prompting(accuracy=(0.05, 0.04, 0.07), objective=0.05):
    return trial(0, method="prompt", train=0.0, evals=10.0, test=evaluation(10, 10.0, 20_000, 250),
                 accuracy=accuracy, objective=objective)


def test_cpu_trial_is_priced_per_core_as_cpu_never_as_gpu(prices):
    """A CPU run costs cores x core-hours, whatever GPU name its machine reports."""
    row = trial(0, device="cpu", train=3000.0, evals=600.0)
    # 3000 + 600 = 3600 s = 1 h; 2 cores x $0.10 per core-hour x 1 h = $0.20
    for name in ("x86_64", "cpu", "NVIDIA H100 80GB HBM3"):
        cost = trial_cost(row, run_view("cpu", name, 2), prices)
        assert cost.price_key == "CPU"
        assert cost.usd == pytest.approx(0.20)
        assert cost.assumptions["cores"]["source"] == "measured in run r1 (cpu_count)"
        assert cost.assumptions["price.CPU"]["unit"] == "USD per core-hour"


def test_a_cpu_run_on_fewer_threads_than_cores_is_priced_at_its_threads(prices):
    """Held to one torch thread on 2 cores, the run trained and generated on one core: its speeds are one core's,
    so pricing both would double every cost built on them."""
    row = trial(0, device="cpu", train=3000.0, evals=600.0)
    held = dataclasses.replace(run_view("cpu", "x86_64", 2), environment={"torch_threads": 1})
    cost = trial_cost(row, held, prices)
    assert cost.usd == pytest.approx(0.10)  # 1 core x $0.10 per core-hour x 1 h
    assert cost.assumptions["cores"]["value"] == 1.0
    assert cost.assumptions["cores"]["source"] == ("measured in run r1: its 1 torch thread(s), on a machine of 2 cores "
                                                   "(its speeds are those threads')")
    busy = dataclasses.replace(run_view("cpu", "x86_64", 2), environment={"torch_threads": 4})
    assert trial_cost(row, busy, prices).usd == pytest.approx(0.20)  # more threads than cores: the cores


def test_a_trial_of_a_vllm_sweep_costs_the_machines_cores_whatever_the_harness_threads(prices):
    """The study's vLLM server holds its cores for the whole sweep, through each trial's training too."""
    from harness.core.records import EngineInfo

    row = trial(0, device="cpu", train=3000.0, evals=600.0)
    held = dataclasses.replace(run_view("cpu", "x86_64", 2), environment={"torch_threads": 1})
    assert trial_cost(row, held, prices).usd == pytest.approx(0.10)  # the harness's own process: one core
    served = dataclasses.replace(row, engine=EngineInfo("vllm", "0.32.0", "float32"))
    assert trial_cost(served, held, prices).usd == pytest.approx(0.20)  # its server's: both


def test_a_speed_a_vllm_server_measured_is_priced_at_the_machines_cores_whatever_the_harness_threads(prices):
    """vLLM binds its own cores (one to compute, one for its API server on 2 cores), so the harness's one torch thread
    says nothing of what serving held; the harness's own generate, on that one thread, is priced at one core."""
    held = dataclasses.replace(run_view("cpu", "x86_64", 2), environment={"torch_threads": 1})
    fallback = dataclasses.replace(candidate(), device="cpu")
    served = dataclasses.replace(fallback, serving=ServingLoad("vllm", 8, 20.0, 64, source="load test of vLLM"))
    assert serving_cost(fallback, held, prices).assumptions["cores"]["value"] == 1.0
    vllm = serving_cost(served, held, prices)
    assert vllm.engine == "vllm" and vllm.assumptions["cores"]["value"] == 2.0
    assert vllm.assumptions["cores"]["source"].endswith("the serving engine, a process of its own, holds them")


def test_sweep_cost_includes_failed_and_pruned_trials(prices):
    """Failed and pruned trials held the device too; a failed one without timings costs its wall time."""
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    rows = [
        trial(0, train=900.0, evals=900.0),                               # 1800 s x $0.001 = $1.80
        trial(1, status="pruned", train=400.0, evals=100.0),              #  500 s          = $0.50
        trial(2, status="failed", started=t0,                             #  600 s of wall  = $0.60
              finished=t0.replace(minute=10)),
        trial(3, status="running", started=t0),                           # no finish yet: left out
    ]  # fmt: skip
    sweep = sweep_cost(rows, ENVS, prices)
    assert sweep.usd == pytest.approx(2.90)
    assert sweep.seconds == pytest.approx(2900.0)
    assert sweep.usd_by_status == pytest.approx({"complete": 1.80, "pruned": 0.50, "failed": 0.60})
    assert list(sweep.skipped) == ["s/3"]
    assert "wall time" in sweep.trials[2].assumptions["seconds"]["source"]
    # the evidence behind the total: each priced trial's own seconds, each price once, no per-trial derived dollars
    assert {key for key in sweep.assumptions if key.startswith("seconds.")} == {"seconds.s/0", "seconds.s/1",
                                                                                 "seconds.s/2"}
    assert [key for key in sweep.assumptions if key.startswith("price.")] == ["price.H100"]
    assert not any(key.startswith(("usd.", "price_key.")) for key in sweep.assumptions)


def test_sweep_evidence_names_each_cpu_trials_cores(prices):
    sweep = sweep_cost([trial(0, device="cpu", train=3000.0, evals=600.0)], {"r1": run_view("cpu", "cpu", 2)},
                       prices)
    assert sweep.assumptions["cores.s/0"] == {"value": 2.0, "unit": "CPU cores",
                                              "source": "measured in run r1 (cpu_count)"}
    assert sweep.assumptions["price.CPU"]["unit"] == "USD per core-hour"


def test_a_prompt_search_is_part_of_what_its_trial_cost(prices):
    """A local search held the device (its seconds count); a hosted one was billed in tokens (they count)."""
    search = PromptSearch("BootstrapFewShotWithRandomSearch (dspy 3.4.1)", "task accuracy", 50, 100, (0.3,), 4, 1150,
                          600.0, prompt_tokens=500_000, completion_tokens=10_000)
    local = trial_view(0, method="dspy", device="cpu", train_seconds=0.0, eval_seconds=600.0, prompt_search=search)
    # (0 + 600 search + 600 eval) s = 1/3 h; 3 cores x $0.10 per core-hour x 1/3 h = $0.10
    cost = trial_cost(local, run_view("cpu", "cpu", 3), prices)
    assert cost.seconds == pytest.approx(1200.0) and cost.usd == pytest.approx(0.10)
    assert "train_seconds + its prompt search's seconds + eval_seconds" in cost.assumptions["seconds"]["source"]
    usage = HostedUsage("mini", "https://x", "m", "test-api", False, 200, 0, 0, 100_000, 2_000, None)
    hosted = trial_view(1, method="api_dspy", device="hosted", eval_seconds=60.0, hosted=usage, prompt_search=search)
    # (100,000 + 500,000) input tokens x $1 per 1M + (2,000 + 10,000) output x $4 per 1M = $0.60 + $0.048
    cost = trial_cost(hosted, None, prices)
    assert cost.seconds == 0.0 and cost.usd == pytest.approx(0.648)
    assert cost.assumptions["search_prompt_tokens"]["value"] == 500_000
    assert "its prompt search's 1,150 calls" in cost.assumptions["search_completion_tokens"]["source"]
    assert sweep_cost([local, hosted], {"r1": run_view("cpu", "cpu", 3)}, prices).usd == pytest.approx(0.748)


def test_serving_cost_from_measured_throughput(prices):
    """$/1M tokens and $/query from completion tokens per second at the evaluated batch size."""
    cost = serving_cost(candidate(), H100, prices)
    assert cost.completion_tokens_per_s == pytest.approx(200.0)
    assert cost.usd_per_1m_completion_tokens == pytest.approx(5.0)  # $0.001/s / 200 tok/s x 1e6
    assert cost.tokens_per_query == pytest.approx(500.0)  # 480 prompt + 20 completion
    assert cost.usd_per_query == pytest.approx(0.0001)  # 0.1 s x $0.001/s
    assert cost.usd_per_1m_tokens == pytest.approx(0.20)  # $0.0001 / 500 tokens x 1e6
    assert cost.assumptions["completion_tokens_per_s"]["source"].startswith("measured in trial s/1")


def test_api_cost_from_token_counts_and_ratio(prices):
    """Hosted tokens = local tokens x ratio; the table's ratio is the default, a given one is user input."""
    default = api_cost("test-api", prompting(), prices)
    # 2,000 x $1/1M + 25 x $4/1M = $0.002 + $0.0001 = $0.0021
    assert default.usd_per_query == pytest.approx(0.0021)
    assert default.assumptions["token_ratio"]["source"] == "price table test v1"
    given = api_cost("test-api", prompting(), prices, token_ratio=1.5)
    # 3,000 x $1/1M + 37.5 x $4/1M = $0.003 + $0.00015 = $0.00315
    assert given.usd_per_query == pytest.approx(0.00315)
    assert given.assumptions["token_ratio"] == {"value": 1.5, "unit": "hosted tokens per local token", "source": USER}


def api_payback(prices, volume=100_000, accuracy=0.80, **kwargs):
    """Candidate $0.0001/query vs the API's $0.0021: saves $0.002 per query.
    One-time: sweep $2.00 + 8 h x $50 + 16 h x $100 = $2,002."""
    base = baseline_from_api("test-api", prompting(), prices, accuracy=accuracy)
    sweep = sweep_cost([candidate()], ENVS, prices)
    return payback(candidate(), serving_cost(candidate(), H100, prices), base, sweep, volume,
                   candidate_scores=flags(900, 1000), data_prep_hours=8, data_prep_usd_per_hour=50,
                   engineering_hours=16, engineering_usd_per_hour=100, **kwargs)


def test_payback_months_and_break_even_volume(prices):
    result = api_payback(prices)
    assert result.pays_back
    # a hosted model's given accuracy is a figure, not scores on the same examples: nothing is paired
    rule = result.quality.rule
    assert "paired" not in rule and "exact 95% interval, less the baseline's figure" in rule
    assert result.one_time_usd == pytest.approx(2002.0)
    assert result.monthly_savings_usd == pytest.approx(200.0)  # $0.002 x 100,000
    assert result.months_to_payback == pytest.approx(10.01)  # 2002 / 200
    assert result.break_even_volume == pytest.approx(2002 / 12 / 0.002)  # 83,416.7 queries/month in 12 months
    from harness.analysis.report import payback_text

    assert "break-even: 83,417 queries a month pay back within 12 months" in payback_text(result)  # rounded up
    assert (queries(83_416.7), queries(0.3), queries(1.0), queries(2 + 4e-13)) == (
        "83,417 queries", "1 query", "1 query", "2 queries")  # never `0 queries`: one query is the fewest
    assert (queries(1e30), quantity(1e30), quantity(1e15)) == ("1e+30 queries", "1e+30", "1,000,000,000,000,000")
    # The hosted model's accuracy is a user figure: marked assumed wherever it appears.
    assert result.assumptions["baseline.task_accuracy"]["source"] == ASSUMED
    assert ASSUMED in result.quality.reason
    json.dumps(result.to_dict())  # the JSON output works
    assert all(set(a) == {"value", "unit", "source"} for a in result.assumptions.values())


def test_fixed_hosting_cuts_savings_and_sets_a_minimum_volume(prices):
    result = api_payback(prices, fixed_monthly_usd=100)
    assert result.months_to_payback == pytest.approx(20.02)  # 2002 / (200 - 100)
    assert result.min_volume_for_savings == pytest.approx(50_000)  # $100 / $0.002
    assert result.break_even_volume == pytest.approx((2002 / 12 + 100) / 0.002)  # 133,416.7
    low = api_payback(prices, volume=40_000, fixed_monthly_usd=100)  # $80 saved < $100 hosting
    assert not low.pays_back and low.months_to_payback is None
    assert "50,000" in low.reason


def test_no_payback_for_a_worse_candidate(prices):
    """Cheaper but worse is not a saving. Paired on 1,000 test examples: both right 860, only the candidate 20, only
    the baseline 40, so -2.0 points with an exact interval of about [-4.4, -0.3]: worse beyond noise, and its bad end
    lies beyond the default 2-point margin."""
    cand_scores, base_scores = table_scores(860, 20, 40, 80)
    base = baseline_from_trial(prompting(accuracy=(0.90, 0.88, 0.92)), H100, prices, base_scores)  # $0.001/query
    sweep = sweep_cost([candidate()], ENVS, prices)
    worse = candidate(accuracy=(0.88, 0.86, 0.90))
    serving = serving_cost(worse, H100, prices)

    def run(**kwargs):
        return payback(worse, serving, base, sweep, 100_000, candidate_scores=cand_scores, **kwargs)

    result = run()
    assert not result.pays_back and result.months_to_payback is None and result.break_even_volume is None
    assert result.savings_per_query_usd == pytest.approx(0.0009)  # it is cheaper: $0.001 - $0.0001
    decision = result.quality.decision
    assert decision.test == "mcnemar-exact" and (decision.a_only, decision.b_only) == (20, 40)
    assert decision.difference.value == pytest.approx(-0.02) and decision.outcome == "worse"
    assert -0.05 < decision.difference.low < -0.02 < decision.difference.high < 0
    assert "fails the quality bar (task_accuracy vs s/0: -2.0 points" in result.reason
    assert "fails the bar" in result.quality.reason
    assert result.quality.reason not in result.reason  # `why` and `quality` are printed one under the other
    assert result.sensitivity.tornado == []
    # A 5-point margin admits it (the interval's bad end, about -4.4, stays within -5); an absolute bar of 0.95 not.
    assert run(quality_bar=QualityBar(margin=0.05)).pays_back
    assert run(quality_bar=QualityBar(margin=0.05)).quality.decision.outcome == "not worse"
    assert not run(quality_bar=QualityBar(absolute=0.95)).pays_back


def test_a_cheaper_candidate_as_good_as_the_baseline_pays_back_within_the_margin(prices):
    """The issue's case: equal accuracy (85% on 200) used to fail an unpaired bar (the candidate's Wilson low end,
    79%, against the baseline's 85%). Paired, two models that agree on every example are within +-1.8 points
    (no discordant pair among 200), inside the default 2-point margin: as good, and cheaper. Two that disagree on 20
    examples, 10 each way, are not shown to be within 2 points (about +-6.8): no figure, and the reason says so."""
    sweep = sweep_cost([candidate()], ENVS, prices)
    row = candidate(accuracy=(0.85, 0.79, 0.89))
    serving = serving_cost(row, H100, prices)
    same = flags(170, 200)
    base = baseline_from_trial(prompting(accuracy=(0.85, 0.79, 0.89)), H100, prices, same)
    agreeing = payback(row, serving, base, sweep, 100_000, candidate_scores=same)
    assert agreeing.pays_back and agreeing.quality.decision.outcome == "not worse"
    assert agreeing.quality.decision.difference.low == pytest.approx(-(1 - 0.025 ** (1 / 200)))
    cand_scores, base_scores = table_scores(160, 10, 10, 20)
    noisy = payback(row, serving, baseline_from_trial(prompting(), H100, prices, base_scores), sweep, 100_000,
                    candidate_scores=cand_scores)
    assert not noisy.pays_back and noisy.quality.decision.outcome == "not shown"
    assert "not within the 2.0-point margin" in noisy.quality.reason


def test_no_payback_when_not_cheaper(tmp_path):
    """At $0.01/1M tokens the API costs 2,025 x $0.01/1M = $0.00002025 per query, below the candidate's $0.0001."""
    path = tmp_path / "prices.yaml"
    path.write_text(PRICES)
    cheap = load_prices(path, overrides={"apis": {"test-api": {"input_usd_per_1m": 0.01, "output_usd_per_1m": 0.01}}})
    result = api_payback(cheap)
    assert not result.pays_back and result.months_to_payback is None and result.break_even_volume is None
    assert "s/1 costs $0.000100 per query, $0.0000798 more than api:test-api's $0.0000203" in result.reason
    assert "so there is no saving to pay back the one-time cost of $2,002" in result.reason


def test_unknown_device_names_the_device_and_the_fix(prices):
    for name in ("NVIDIA GeForce RTX 4090", "NVIDIA L40S"):  # "L4" is a word of neither name
        with pytest.raises(HarnessError, match="Add a price") as info:
            device_price_key("cuda", name, prices)
        assert name in str(info.value)
    assert device_price_key("cuda", "NVIDIA L4", prices) == "L4"


def test_overrides_change_entries_and_are_marked_user_input(prices, tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(PRICES)
    table = load_prices(path, overrides={
        "devices": {"H100": {"usd_per_hour": 2.0}, "RTX4090": {"usd_per_hour": 0.5, "match": ["RTX 4090"]}},
        "token_ratio": 1.2,
    })  # fmt: skip
    assert (table.devices["H100"].usd_per_hour, table.devices["H100"].per) == (2.0, "gpu")  # rest kept
    assert table.devices["H100"].source == USER and table.devices["L4"].source == "price table test v1"
    assert device_price_key("cuda", "NVIDIA GeForce RTX 4090", table) == "RTX4090"
    assert (table.token_ratio, table.token_ratio_source) == (1.2, USER)
    with pytest.raises(HarnessError, match="usd_per_hur"):
        load_prices(path, overrides={"devices": {"H100": {"usd_per_hur": 2.0}}})
    bundled = load_prices()  # the shipped table: versioned, dated, with a CPU price per core-hour
    assert bundled_prices_path().is_file() and bundled.version and bundled.date
    assert bundled.devices["CPU"].per == "core"


def test_sensitivity_tornado_is_sorted_by_swing(prices):
    result = api_payback(prices)
    bars = result.sensitivity.tornado
    swings = [abs(b.months_at_high - b.months_at_low) for b in bars]
    assert swings == sorted(swings, reverse=True)
    # volume x0.5 / x2: 2002 / 100 = 20.02 and 2002 / 400 = 5.005 months (swing 15.0)
    # API input price x0.5 / x1.5: saves $0.001 -> 20.02, $0.003 -> 6.67 (swing 13.3)
    # engineering hours 8 / 32: 1202 / 200 = 6.01 and 3602 / 200 = 18.01 (swing 12.0)
    assert [b.assumption for b in bars[:3]] == ["volume", "api_input_usd_per_1m", "engineering_hours"]
    assert (bars[0].months_at_low, bars[0].months_at_high) == pytest.approx((20.02, 5.005))
    assert (bars[2].months_at_low, bars[2].months_at_high) == pytest.approx((6.01, 18.01))
    # A range end that never pays back (API at $0 input: $0.0001 = the candidate's cost) swings widest.
    never = api_payback(prices, ranges={"api_input_usd_per_1m": (0.0, 1.0)}).sensitivity.tornado[0]
    assert never.assumption == "api_input_usd_per_1m" and never.months_at_low is None


def test_payback_from_a_real_duckdb(prices, tmp_path):
    """The same figures read back through harness.store.database.Store: run, trials, metrics, throughput."""
    store = Store(tmp_path / "harness.duckdb")
    store.record_run(RunRecord("r1", "s", 1, "host", "cuda", H100.device_name, H100.cpu_count, {}))
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    right = {0: flags(5, 100), 1: flags(90, 100), 2: {}}  # the quality bar pairs the stored test examples
    for row in (prompting(), candidate(), trial(2, status="failed", started=t0, finished=t0.replace(minute=10))):
        metrics = [MetricRow.of(split, name, m) for split, ms in row.metrics.items() for name, m in ms.items()]
        examples = [ExampleRow("test", i, f"input {i}", "x", "y", scores={"task_accuracy": v})
                    for i, v in right[row.number].items()]
        store.record_trial_result(TrialRecord(
            id=row.id, study="s", number=row.number, run_id="r1", method=row.method, trained=row.trained,
            status=row.status, device="cuda", train_seconds=row.train_seconds, eval_seconds=row.eval_seconds,
            started_at=row.started_at, finished_at=row.finished_at, objective=row.objective,
            throughput=dict(row.throughput), metrics=metrics, examples=examples,
        ))  # fmt: skip
    result = payback_from_store(store, "s/1", "s/0", 100_000, prices=prices)
    # Sweep: prompt 10 s + candidate 2000 s + failed 600 s of wall = 2610 s x $0.001 = $2.61
    assert result.one_time_breakdown["sweep_compute"] == pytest.approx(2.61)
    # Baseline $0.001 - candidate $0.0001 = $0.0009 x 100,000 = $90/month; 2.61 / 90 months
    assert result.months_to_payback == pytest.approx(2.61 / 90)
    assert result.quality.decision.test == "mcnemar-exact" and result.quality.decision.difference.n == 100
    assert "not like for like" not in result.reason  # both priced on the harness's own generate
    mixed = payback_from_store(store, "s/1", "s/0", 100_000, prices=prices, serving_throughput=500.0)
    assert "priced on a throughput you measured elsewhere and s/0 on the harness's own generate" in mixed.reason
    measured_tps = result.inputs.baseline_tokens_per_s
    both = payback_from_store(store, "s/1", "s/0", 100_000, prices=prices, serving_throughput=500.0,
                              baseline_serving_throughput=2 * measured_tps)
    assert "not like for like" not in both.reason
    assert both.baseline_usd_per_query == pytest.approx(result.baseline_usd_per_query / 2)  # twice as fast, half
    api = payback_from_store(store, "s/1", "api:test-api", 100_000, prices=prices, baseline_accuracy=0.5)
    assert api.baseline_usd_per_query == pytest.approx(0.0021)  # tokens from s/0, the study's prompting trial
    with pytest.raises(HarnessError, match="hosted model"):
        payback_from_store(store, "s/1", "api:test-api", 100_000, prices=prices, baseline_accuracy=0.5,
                           baseline_serving_throughput=10.0)
    assert api.assumptions["baseline.prompt_tokens_per_query"]["source"].startswith("measured in trial s/0")


@pytest.mark.parametrize("ratio", [-2.0, 0.0, float("nan")])
def test_a_token_ratio_that_is_not_above_0_is_refused(prices, ratio):
    with pytest.raises(HarnessError, match="token_ratio .* must be above 0"):
        api_cost("test-api", prompting(), prices, token_ratio=ratio)


@pytest.mark.parametrize("margin", [5.0, 1.0, -0.5])
def test_a_quality_bar_margin_outside_0_to_1_is_refused(prices, margin):
    with pytest.raises(HarnessError, match=r"margin .*a share of accuracy in \[0, 1\)"):
        api_payback(prices, quality_bar=QualityBar(margin=margin))


def test_payback_text_says_what_was_given_and_what_was_assumed(prices):
    from harness.analysis.report import payback_text

    result = api_payback(prices, volume=1.5)
    text = payback_text(result)
    assert "at 1.5 queries a month" in text and "at 1.5 queries/month" in result.reason and "2 queries" not in text
    assert text.count(result.quality.reason) == 1  # on the quality line only, not again under `why`
    assert "passes the quality bar (task_accuracy 90.0% vs api:test-api's 80.0%" in result.reason
    horizon = result.assumptions["horizon_months"]
    assert horizon["value"] == 12 and horizon["source"].startswith("default") and USER not in horizon["source"]
    assert api_payback(prices, horizon_months=24).assumptions["horizon_months"]["source"] == USER
    assert result.assumptions["utilisation"]["source"].startswith("default")
    assert api_payback(prices, utilisation=0.5).assumptions["utilisation"]["source"] == USER


def test_without_a_load_test_a_vllm_speed_is_named_as_vllms_and_priced_at_the_machine(prices):
    """serving.load_test_requests: 0 with the vLLM engine: the test split's answers came through vLLM, so its speed is
    not 'the harness's own generate', and the server, not the harness's threads, held the cores."""
    from harness.sweep.trial import Evaluation, _fallback

    speed = Throughput(16, 8.0, 16, 4_000, 400)
    load = _fallback(Evaluation(None, [], speed), "vllm", 4)
    assert (load.engine, load.concurrency) == ("vllm", 4) and "through vllm" in load.source
    assert "no load test (serving.load_test_requests: 0)" in load.source
    held = dataclasses.replace(run_view("cpu", "x86_64", 2), environment={"torch_threads": 1})
    cost = serving_cost(dataclasses.replace(candidate(), device="cpu", serving=load), held, prices)
    assert cost.engine == "vllm" and cost.assumptions["cores"]["value"] == 2.0 and cost.timed is None
    assert _fallback(Evaluation(None, [], speed), "hf", 4).source.startswith("fallback: the harness's own generate")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_a_price_that_is_not_a_finite_number_is_refused_where_it_is_written(value):
    """`.inf` passed, and payback then blamed --volume, the hours and the throughput, never the price table."""
    with pytest.raises(HarnessError, match=r"`apis.myserv.input_usd_per_1m` must be a finite number >= 0"):
        load_prices(overrides={"apis": {"myserv": {"input_usd_per_1m": yaml.safe_load(value),
                                                   "output_usd_per_1m": 0.6}}})
