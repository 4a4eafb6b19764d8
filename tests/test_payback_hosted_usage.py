"""A finance tester's cost/payback path on a hosted endpoint: an endpoint that reports no `usage` priced the hosted
baseline at $0 a query (its stored tokens were 0) while its spend showed the budget's worst case as tokens; negative
hours or rates were refused as if missing; the dashboard's sweep line counted the hosted arms' waiting as device
time and all dollars as device dollars; the report dropped an explicit --baseline with "no candidate to price";
and the sensitivity varied a token ratio no measured arm has, and scaled API dollars with device prices.

The arithmetic is test_cost.py's round-number table: test-api at $1 / $4 per 1M tokens, the H100 at $0.001 a second.
"""

from __future__ import annotations

import dataclasses

import pytest
from test_cost import ENVS, H100, PRICES, candidate, flags, prompting
from test_hosted_hostile import Server
from views import trial_view

from harness.analysis.cost import (
    answers_without_usage,
    hosted_cost,
    load_prices,
    serving_cost,
    sweep_cost,
    trial_cost,
    unreported_answers,
    worst_case_requests,
)
from harness.analysis.payback import baseline_from_hosted_trial, baseline_from_trial, payback, payback_from_store
from harness.analysis.payback_model import PaybackInputs, one_time_usd, tornado
from harness.analysis.report import trial_detail
from harness.cli import main
from harness.core.config import EndpointConfig
from harness.core.errors import HarnessError
from harness.core.metric import Metric
from harness.core.records import (
    ExampleRow,
    ExampleView,
    HostedUsage,
    MetricRow,
    RunRecord,
    StudyRecord,
    Throughput,
    TrainingSummary,
    TrialRecord,
)
from harness.hosted.client import ChatRequest, HostedClient, HostedEndpoint
from harness.store.database import Store


@pytest.fixture
def prices(tmp_path):
    (path := tmp_path / "prices.yaml").write_text(PRICES)
    return load_prices(path)


def usage(prompt: int = 100_000, completion: int = 2_000, requests: int = 200, unreported: int = 0) -> HostedUsage:
    return HostedUsage("mini", "https://x", "m", "test-api", True, requests, 0, 0, prompt, completion, None,
                       unreported=unreported)


def hosted_arm(number: int = 2, test: Throughput | None = None, spent: HostedUsage | None = None,
               accuracy: float = 0.80, objective: float | None = None):
    """A hosted arm that answered 100 test examples; by default its endpoint reported 1,000 prompt + 10 completion
    tokens each: 1,000 x $1/1M + 10 x $4/1M = $0.00104 a query."""
    test = test or Throughput(100, 5.0, 16, 100_000, 1_000)
    return trial_view(number, method="api", device="hosted", trained=False, train_seconds=0.0, eval_seconds=160.0,
                      hosted=spent or usage(), throughput={"test": test}, objective=objective,
                      metrics={"test": {"task_accuracy": Metric(accuracy, accuracy - 0.08, accuracy + 0.07, 100)}})


SILENT = Throughput(100, 5.0, 16, 0, 0)
"""What the sweep stored for a split whose endpoint reported no usage: answers, and no token at all."""


# -- F9: an endpoint that reports no usage ---------------------------------------------------------------------


def test_a_hosted_arm_without_reported_usage_is_not_priced_at_0_tokens(prices):
    measured = hosted_cost(hosted_arm(), prices)
    assert measured.usd_per_query == pytest.approx(0.00104) and measured.measured
    silent = hosted_arm(test=SILENT, spent=usage(167_399, 4_320, requests=80))
    with pytest.raises(HarnessError, match="reported no token usage for 100 of its 100 test answers"):
        hosted_cost(silent, prices)  # read from the throughput: a record written before the count existed
    with pytest.raises(HarnessError, match="for 3 of its 100 test answers"):  # some answers without: still refused
        hosted_cost(hosted_arm(), prices, unreported=3)
    assert unreported_answers(hosted_arm()) == 0 and unreported_answers(silent) == 100


def test_answers_without_usage_are_counted_but_refused_requests_are_not():
    def answer(prompt, completion, error=None):
        return ExampleView("test", "e", "in", "x", "y", prompt, completion, 0.1, {}, error)

    examples = [answer(900, 9), answer(None, None), answer(None, 5), answer(None, None, error="400: refused")]
    assert answers_without_usage(examples) == 2


def test_the_sweeps_spend_says_its_tokens_are_the_budgets_worst_case_when_none_were_reported(prices):
    """The spend counts each such request at its worst case, as the budget held it: labelled an upper bound."""
    old = hosted_arm(test=SILENT, spent=usage(167_399, 4_320, requests=80))  # recorded before `unreported`
    new = hosted_arm(spent=usage(requests=200, unreported=7))
    assert (worst_case_requests(old), worst_case_requests(new), worst_case_requests(hosted_arm())) == (80, 7, 0)
    source = trial_cost(old, None, prices).assumptions["prompt_tokens"]["source"]
    assert "reported no token usage for 80 of its 80 requests sent" in source and "an upper bound" in source
    assert "upper bound" not in trial_cost(hosted_arm(), None, prices).assumptions["prompt_tokens"]["source"]
    shown = trial_detail(old, [])  # `harness show`, and the dashboard's trial page, say it too
    assert ("167,399 prompt + 4,320 completion tokens, of which the endpoint reported no usage for 80 requests: "
            "those count at their worst case") in shown
    assert "reported no usage" not in trial_detail(hosted_arm(), [])


def test_the_client_counts_the_answers_that_came_without_usage(tmp_path):
    """The stub endpoint answers like the tester's: a chat completion with no `usage`."""
    body = (b'{"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [{"index": 0, '
            b'"finish_reason": "stop", "message": {"role": "assistant", "content": "red"}}]}')

    def answer(handler, server):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    server = Server(answer)
    try:
        config = EndpointConfig(base_url=server.url, model="m", api_key_env="K", concurrency=1, max_retries=0,
                                cache=False)
        client = HostedClient(HostedEndpoint("mini", config, "sk-key", (1.0, 4.0)))
        asked = [ChatRequest([{"role": "user", "content": f"cup {i} is red"}], max_tokens=6) for i in range(3)]
        answers = client.answer(asked)
    finally:
        server.close()
    assert [a.prompt_tokens for a in answers] == [None, None, None]
    spent = client.usage
    assert (spent.requests, spent.unreported) == (3, 3)
    assert spent.completion_tokens == 3 * 6  # the answer cap of each: the worst case, counted as spent


def _study(store: Store) -> None:
    store.record_study(StudyRecord(
        name="s", experiment_name="s", experiment={"name": "s"}, suite="colours", suite_version="1.0.0",
        suite_path="suites/colours", model_name="tiny", model_sha256="abc", objective_metric="task_accuracy",
        maximize=True))  # fmt: skip
    store.record_run(RunRecord("r1", "s", 1, "host", "cuda", H100.device_name, 16, {}))


def _record(store: Store, row, right: dict[str, float], tokens: tuple[int | None, int | None] = (None, None),
            silent: tuple[str, ...] = (), **fields) -> None:
    """`row` with test examples scored `right`, each with `tokens` (prompt, completion), none for those in
    `silent`."""
    metrics = [MetricRow.of(split, name, m) for split, ms in row.metrics.items() for name, m in ms.items()]
    store.record_trial_result(TrialRecord(
        id=row.id, study="s", number=row.number, run_id="r1", method=row.method, trained=row.trained,
        status=row.status, device=row.device, train_seconds=row.train_seconds, eval_seconds=row.eval_seconds,
        objective=row.objective, throughput=dict(row.throughput), metrics=metrics, hosted=row.hosted,
        examples=[ExampleRow("test", i, f"input {i}", "x", "y", *((None, None) if i in silent else tokens),
                             scores={"task_accuracy": v}) for i, v in right.items()], **fields,
    ))  # fmt: skip


@pytest.fixture
def silent_db(tmp_path) -> list[str]:
    """Study s: local prompting s/0, LoRA s/1, and s/2, a hosted arm (the best on dev) whose endpoint reported no
    usage for its 100 test answers."""
    (table := tmp_path / "prices.yaml").write_text(PRICES)
    store = Store(tmp_path / "harness.duckdb")
    _study(store)
    _record(store, prompting(accuracy=(0.85, 0.77, 0.91), objective=0.85), flags(85, 100), (2_000, 25))
    _record(store, candidate(), flags(90, 100), (480, 20))
    silent = hosted_arm(test=SILENT, spent=usage(167_399, 4_320, requests=100, unreported=100), objective=0.9)
    _record(store, silent, flags(80, 100))
    return ["--db", str(store.path), "--prices", str(table)]


def test_payback_refuses_a_hosted_baseline_without_usage_and_names_what_prices_it(silent_db, capsys):
    for given in ([], ["--baseline", "s/2"]):  # s/2 is the default baseline too: the best hosted arm
        assert main(["payback", "s/1", "--volume", "100000", *given, *silent_db]) == 2
        out = " ".join("".join(capsys.readouterr()).split())
        assert "endpoint mini reported no token usage for its 100 test answers of s/2" in out
        assert "would make it look free" in out and "$0.000000" not in out
        assert "167,399 prompt + 4,320 completion tokens its record shows count 100 such request(s)" in out
        assert "--baseline api:test-api --prompt-trial s/0 --baseline-accuracy FRACTION" in out
        assert "(marked assumed; s/2 measured 80.0% [72.0, 87.0] n=100 on test), or --baseline s/0 weighs it" in out


def test_payback_refuses_a_hosted_baseline_some_of_whose_answers_came_without_usage(tmp_path, prices):
    """The stored tokens of a split leave out its answers without usage: 1 of 100 is enough to understate."""
    for name, silent in (("reported.duckdb", ()), ("one.duckdb", ("t0007",))):
        store = Store(tmp_path / name)
        _study(store)
        _record(store, candidate(), flags(90, 100), (480, 20))
        _record(store, hosted_arm(), flags(80, 100), (1_000, 10), silent)
        if not silent:
            result = payback_from_store(store, "s/1", "s/2", 100_000, prices=prices)
            assert result.baseline_usd_per_query == pytest.approx(0.00104)
            continue
        with pytest.raises(HarnessError, match="reported no token usage for 1 of its 100 test answers of s/2"):
            payback_from_store(store, "s/1", "s/2", 100_000, prices=prices)


# -- F10: a negative figure is refused as negative ----------------------------------------------------------------


@pytest.mark.parametrize("given, says", [
    (["--eng-hours", "-1", "--eng-rate", "100"], "`engineering_hours` (--eng-hours) must be >= 0, got -1.0."),
    (["--eng-hours", "10", "--eng-rate", "-100"], "`engineering_usd_per_hour` (--eng-rate) must be >= 0, got -100.0."),
    (["--data-prep-hours", "-3", "--data-prep-rate", "50"],
     "`data_prep_hours` (--data-prep-hours) must be >= 0, got -3.0."),
    (["--eng-rate", "-5"], "`engineering_usd_per_hour` (--eng-rate) must be >= 0, got -5.0."),
])
def test_a_negative_hour_or_rate_is_refused_as_negative_not_as_missing(silent_db, capsys, given, says):
    assert main(["payback", "s/1", "--volume", "100000", "--baseline", "s/0", *given, *silent_db]) == 2
    out = " ".join("".join(capsys.readouterr()).split())
    assert says in out and "needs" not in out


# -- F15: what the sensitivity varies -----------------------------------------------------------------------------


def test_a_measured_hosted_arm_has_no_token_ratio_to_vary_and_device_prices_leave_api_dollars(prices):
    """Sweep: the candidate's 2,000 s on the H100 ($2.00) and the hosted arm's 100,000 + 2,000 tokens at $1 / $4
    per 1M ($0.10 + $0.008 = $0.108)."""
    arm = hosted_arm()
    sweep = sweep_cost([candidate(), arm], ENVS, prices)
    assert (sweep.compute_usd, sweep.hosted_usd) == pytest.approx((2.0, 0.108))
    assert sweep.seconds == pytest.approx(2000.0)  # the arm's 160 s waiting on its endpoint is no device time
    assert "sweep_hosted_usd" in sweep.assumptions
    base = baseline_from_hosted_trial(arm, prices, flags(80, 100))
    result = payback(candidate(), serving_cost(candidate(), H100, prices), base, sweep, 100_000,
                     candidate_scores=flags(90, 100), engineering_hours=10, engineering_usd_per_hour=100)
    bars = {bar.assumption: bar for bar in result.sensitivity.tornado}
    assert "token_ratio" not in bars and "api_input_usd_per_1m" in bars
    assert result.one_time_breakdown["sweep_compute"] == pytest.approx(2.0)
    assert result.one_time_breakdown["sweep_hosted_tokens"] == pytest.approx(0.108)
    # device prices x0.5: $1.00 + $0.108 + $1,000 engineering, not ($2.108 x 0.5) + $1,000
    cheaper = PaybackInputs(**{**result.inputs.__dict__, "device_price_scale": 0.5})
    assert one_time_usd(cheaper) == pytest.approx(1.0 + 0.108 + 1000.0)
    low = bars["device_price_scale"].low
    assert low == 0.5
    # an api:NAME baseline's tokens are converted local ones: its ratio is varied
    from test_cost import api_payback

    assert "token_ratio" in {bar.assumption for bar in api_payback(prices).sensitivity.tornado}
    assert "token_ratio" in {bar.assumption for bar in tornado(api_payback(prices).inputs)}


def test_an_unpriced_self_hosted_arm_is_left_out_of_the_one_time_cost_with_a_caution_not_a_refusal(prices):
    """The README's recipe for a team's own server sets `price: null`: the study must still price its other
    baselines, saying what the one-time cost leaves out."""
    own = hosted_arm(spent=dataclasses.replace(usage(), price=None))
    sweep = sweep_cost([candidate(), own, prompting()], ENVS, prices)
    assert own.id in sweep.skipped and "no `price` entry" in sweep.skipped[own.id]
    assert sweep.hosted_usd == 0.0 and sweep.compute_usd > 0
    base = baseline_from_trial(prompting(), H100, prices, flags(80, 100))
    result = payback(candidate(), serving_cost(candidate(), H100, prices), base, sweep, 100_000,
                     candidate_scores=flags(90, 100))
    assert f"Caution: the sweep's one-time cost leaves out 1 trial(s) ({own.id}: a hosted arm on endpoint mini" \
        in result.reason
    with pytest.raises(HarnessError, match="no `price` entry"):  # the arm itself has no cost per query to weigh
        hosted_cost(own, prices)


# -- F14: the report prices what `harness payback` prices, and says so -----------------------------------------


def test_the_report_prices_an_under_trained_trial_as_payback_does_and_keeps_the_given_baseline(tmp_path, capsys):
    """The only LoRA trial is cut short: the verdict weighs none, and `harness payback s/1` still prices it, with a
    caution. The report must price the same, against the --baseline given, and say so."""
    (table := tmp_path / "prices.yaml").write_text(PRICES)
    store = Store(tmp_path / "harness.duckdb")
    _study(store)
    _record(store, prompting(accuracy=(0.85, 0.77, 0.91), objective=0.85), flags(85, 100), (2_000, 25))
    _record(store, hosted_arm(objective=0.9), flags(80, 100), (1_000, 10))
    cut = trial_view(1, method="lora", device="cuda", train_seconds=1000.0, eval_seconds=1000.0, objective=0.9,
                     throughput={"test": Throughput(100, 10.0, 16, 48_000, 2_000)},
                     metrics={"test": {"task_accuracy": Metric(0.9, 0.85, 0.94, 100)}})
    _record(store, cut, flags(90, 100), (480, 20),
            training=TrainingSummary(7, "time budget", 800, 8, planned_steps=10))
    out = tmp_path / "report.md"
    given = ["--db", str(store.path), "--prices", str(table), "--volume", "100000", "--out", str(out)]
    assert main(["report", *given, "--baseline", "s/0"]) == 0
    assert "payback:" in capsys.readouterr().out
    text = " ".join(out.read_text().split())
    assert "no candidate to price" not in text
    assert "**PAYS BACK" in text and "s/1 against s/0 at 100,000 queries a month" in text
    assert "The verdict weighs no fine-tuned trial: s/1 is under-trained (7 of 10 steps, 70%)" in text
    assert "as `harness payback s/1` does" in text and "It is priced against s/0" in text
    assert "s/1 is under-trained (its time cap stopped it at 7 of 10 steps)" in text  # payback's own caution
    assert "harness payback s/1 --baseline s/0 --volume 100000" in text
    # without --baseline: `harness payback s/1`'s default, the best hosted arm, whose tokens add to the one-time cost
    assert main(["report", *given]) == 0
    text = " ".join(out.read_text().split())
    assert "s/1 against s/2 at 100,000 queries a month" in text and "sweep_hosted_tokens $0.108" in text


def test_a_hosted_arm_that_ran_unpriced_is_priced_after_the_fact_with_hosted_price(tmp_path, prices):
    """The suggested fix, a `price:` on the endpoint, cannot reach a trial already run (a completed configuration never
    runs again): payback was a dead end. --hosted-price prices its recorded tokens now, marked user input."""
    store = Store(tmp_path / "harness.duckdb")
    _study(store)
    _record(store, candidate(), flags(90, 100), (480, 20))
    _record(store, hosted_arm(spent=dataclasses.replace(usage(), price=None)), flags(80, 100), (1_000, 10))
    with pytest.raises(HarnessError, match=r"Price its recorded tokens now with --hosted-price NAME"):
        payback_from_store(store, "s/1", "s/2", 100_000, prices=prices)
    result = payback_from_store(store, "s/1", "s/2", 100_000, prices=prices, hosted_price="test-api")
    assert result.baseline_usd_per_query == pytest.approx(0.00104)  # as the same arm priced when it ran
    entry = result.assumptions["baseline.api_price_entry"]
    assert entry["value"] == "test-api" and entry["source"] == "user input: --hosted-price (s/2 ran without a price)"
    assert "one-time cost leaves out" not in result.reason  # its spend is in the one-time cost now
    with pytest.raises(HarnessError, match="nope"):
        payback_from_store(store, "s/1", "s/2", 100_000, prices=prices, hosted_price="nope")
