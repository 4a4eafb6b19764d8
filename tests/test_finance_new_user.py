"""What finance and a lead read, as a new user meets it: `harness payback` with flags that do not fit the baseline,
inputs that overflow, and the sources of its numbers; `harness dashboard` on a results folder, a bad port, a port in
use and a damaged database, and the Cost page's labels; `harness export --rescore` with an unusable vLLM python.

Payback reads a real DuckDB written through the Store (test_cost.py's trials and round-number price table); the
dashboard checks run `harness dashboard` itself, which refuses before it starts Streamlit, and the app's real page
script through Streamlit's AppTest. No vLLM is started here: the refusals come before any server would.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from conftest import printed
from test_cost import PRICES, candidate, flags, prompting

from harness.cli import main
from harness.core.paths import DASHBOARD_DB_ENV
from harness.core.records import ExampleRow, MetricRow, RunRecord, StudyRecord, TrialRecord
from harness.store.database import Store

REPO = Path(__file__).resolve().parents[1]


def _study(name: str, suite: str) -> StudyRecord:
    experiment = {"name": name, "model": "tiny", "suite": suite, "space": {"prompt": {}, "lora": {"r": 8}}}
    return StudyRecord(name=name, experiment_name=name, experiment=experiment, suite=suite, suite_version="1.0.0",
                       suite_path=f"suites/{suite}", model_name="tiny", model_sha256="abc", objective_metric=
                       "task_accuracy", maximize=True)


def _record(store: Store, study: str, row, right: dict[str, float]) -> None:
    metrics = [MetricRow.of(split, name, m) for split, ms in row.metrics.items() for name, m in ms.items()]
    examples = [ExampleRow("test", i, f"input {i}", "x", "y", scores={"task_accuracy": v}) for i, v in right.items()]
    store.record_trial_result(TrialRecord(
        id=f"{study}/{row.number}", study=study, number=row.number, run_id=f"r-{study}", method=row.method,
        trained=row.trained, status=row.status, device="cuda", train_seconds=row.train_seconds,
        eval_seconds=row.eval_seconds, objective=row.objective, throughput=dict(row.throughput), metrics=metrics,
        examples=examples,
    ))  # fmt: skip


@pytest.fixture
def results(tmp_path) -> tuple[Path, Path]:
    """(the results folder, the price table): study s (suite colours) has prompting s/0 and LoRA s/1 on the same
    100 test examples; study o (suite tickets) has one prompting trial, o/0."""
    (prices := tmp_path / "prices.yaml").write_text(PRICES)
    store = Store(tmp_path / "results" / "harness.duckdb")
    for study, suite in (("s", "colours"), ("o", "tickets")):
        store.record_study(_study(study, suite))
        store.record_run(RunRecord(f"r-{study}", study, 1, "host", "cuda", "NVIDIA H100 80GB HBM3", 16, {}))
    _record(store, "s", prompting(accuracy=(0.85, 0.77, 0.91)), flags(85, 100))
    _record(store, "s", candidate(), flags(90, 100))
    _record(store, "o", prompting(), flags(5, 100))
    return tmp_path / "results", prices


def payback(results: tuple[Path, Path], *flags_given: str) -> list[str]:
    folder, prices = results
    return ["payback", "s/1", "--volume", "100000", "--db", str(folder), "--prices", str(prices), *flags_given]


@pytest.mark.parametrize("given", [["--baseline-accuracy", "0.5"], ["--token-ratio", "2"],
                                   ["--prompt-trial", "s/0"]])
def test_flags_for_a_hosted_baseline_are_refused_with_a_trial_baseline_not_ignored(results, given, capsys):
    """They priced nothing: `--baseline s/0 --baseline-accuracy 0.5` printed s/0's measured figures as if obeyed."""
    assert main(payback(results, "--baseline", "s/0", *given)) == 2
    err = "".join(capsys.readouterr())  # the CLI prints its errors on stdout
    assert f"{given[0]} applies only to an api:NAME baseline" in err and "Drop the flag" in err


def test_a_prompt_trial_of_another_suite_does_not_price_a_hosted_baseline(results, capsys):
    """Another task's prompts are not this task's tokens per query."""
    assert main(payback(results, "--baseline", "api:test-api", "--prompt-trial", "o/0")) == 2
    err = "".join(capsys.readouterr())  # the CLI prints its errors on stdout
    assert "--prompt-trial o/0 was scored on suite tickets" in err and "prompting trial of suite colours" in err
    assert main(payback(results, "--baseline", "api:test-api", "--prompt-trial", "s/0", "--baseline-accuracy",
                        "0.5")) == 0


def test_the_baseline_throughput_is_labelled_and_refused_by_its_own_flag(results, capsys):
    with pytest.raises(SystemExit) as refused:  # refused as it is parsed, naming its own flag
        main(payback(results, "--baseline", "s/0", "--baseline-serving-throughput", "0"))
    err = "".join(capsys.readouterr())
    assert refused.value.code == 2 and "argument --baseline-serving-throughput: '0' is not a number above 0" in err
    assert main(payback(results, "--baseline", "s/0", "--baseline-serving-throughput", "50", "--format", "json")) == 0
    source = json.loads(capsys.readouterr().out)["assumptions"]["baseline.completion_tokens_per_s"]["source"]
    assert source == "user input (--baseline-serving-throughput, measured elsewhere)"


@pytest.mark.parametrize("given", [["--eng-hours", "1e308", "--eng-rate", "1e308"],
                                   ["--data-prep-hours", "1e308", "--data-prep-rate", "1e308"]])
def test_inputs_that_overflow_are_refused_not_reported_as_paying_back_in_inf_months(results, given, capsys):
    assert main(payback(results, "--baseline", "s/0", *given)) == 2
    said = printed(capsys)
    assert "came out infinite" in said and "realistic range" in said
    assert "PAYS BACK" not in said and "$inf" not in said


def test_a_serving_throughput_too_small_to_price_is_refused_before_anything_is_read(results, capsys):
    with pytest.raises(SystemExit) as refused:  # 1e-320 tokens/s had overflowed the cost to infinity
        main(payback(results, "--baseline", "s/0", "--serving-throughput", "1e-320"))
    assert refused.value.code == 2 and "is no serving figure" in capsys.readouterr().err


def test_a_measured_baseline_quality_carries_its_interval_and_n(results, capsys):
    assert main(payback(results, "--baseline", "s/0", "--format", "json")) == 0
    quality = json.loads(capsys.readouterr().out)["assumptions"]["baseline.task_accuracy"]
    assert quality["value"] == pytest.approx(0.85)
    assert quality["source"] == "measured in trial s/0 (test: 85.0% [77.0, 91.0] n=1000)"


# -- the dashboard -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_dashboard_refuses_a_port_that_is_not_one_before_starting(results, port, capsys):
    """70000 and -1 were a Streamlit traceback; 0 said `http://127.0.0.1:0` while Streamlit picked another port."""
    assert main(["dashboard", "--db", str(results[0]), "--port", port]) == 2
    assert f"--port {port} is not a TCP port; give one in 1..65535" in printed(capsys)


def test_dashboard_takes_the_results_folder_and_refuses_a_port_in_use(results, capsys):
    """`--db results` is refused no more (every command takes the folder), and a taken port is said before any
    "dashboard on ..." line points at the other program."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["dashboard", "--db", str(results[0]), "--port", str(port)]) == 2
    said = printed(capsys)
    assert f"port {port} on 127.0.0.1 is in use" in said and "Pick another with --port" in said
    assert "dashboard on" not in said


def test_dashboard_refuses_a_file_that_is_no_results_database_before_starting(tmp_path, capsys):
    """`harness dashboard --db notes.txt` started, then showed the error on every page; `trials` refuses it at once."""
    (notes := tmp_path / "notes.txt").write_text("just notes\n")
    assert main(["dashboard", "--db", str(notes), "--port", "8799"]) == 2
    said = printed(capsys)
    assert "it is not a DuckDB database" in said and "dashboard on" not in said


def test_dashboard_says_in_words_that_a_damaged_database_cannot_be_read(tmp_path, monkeypatch):
    """A zero-byte harness.duckdb (a copy cut short) was a traceback on every page."""
    pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e '.[test]'")
    from streamlit.testing.v1 import AppTest

    (damaged := tmp_path / "harness.duckdb").write_bytes(b"")
    monkeypatch.setenv(DASHBOARD_DB_ENV, str(damaged))
    at = AppTest.from_file(str(REPO / "dashboards" / "app.py"), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("cannot be read" in e.value for e in at.error)


@pytest.mark.parametrize("given", ["api:", "api: "])
def test_a_hosted_baseline_without_a_name_lists_the_names_to_give(results, given, capsys):
    """It said "no price for hosted model ``" and suggested adding an entry with an empty name."""
    assert main(payback(results, "--baseline", given)) == 2
    said = printed(capsys)
    assert "names no hosted model: give api:NAME" in said and "known: test-api" in said


def cost_page(results, monkeypatch):
    """The dashboard's Cost page for study s, driven in-process by Streamlit's AppTest."""
    pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e '.[test]'")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(DASHBOARD_DB_ENV, str(results[0] / "harness.duckdb"))
    at = AppTest.from_file(str(REPO / "dashboards" / "app.py"), default_timeout=30)
    at.run()
    at.selectbox(key="study").set_value("s").run()
    return at.switch_page("views/cost.py").run()


def test_the_cost_page_marks_an_untouched_token_ratio_as_the_price_tables(results, monkeypatch):
    """The Cost page passed its token-ratio box's default on every run, so the table's own ratio read 'user input'."""
    at = cost_page(results, monkeypatch)
    at.selectbox(key="cost-baseline").set_value("api:gpt-4o-mini").run()
    at.number_input(key="cost-api-accuracy").set_value(60.0).run()  # without it there is no estimate to show
    assert not at.exception, [e.value for e in at.exception]
    frame = next(f.value for f in at.dataframe if "baseline.token_ratio" in f.value.astype(str).to_numpy())
    row = frame[frame.astype(str).apply(lambda r: "baseline.token_ratio" in r.values, axis=1)]
    assert "price table" in " ".join(row.astype(str).to_numpy().ravel())
    assert "user input" not in " ".join(row.astype(str).to_numpy().ravel())


def test_the_candidates_quality_is_read_with_its_interval_and_n(results, capsys):
    assert main(payback(results, "--baseline", "s/0")) == 0
    assert "task_accuracy 90.0% [85.0, 94.0] n=1000 against s/0" in capsys.readouterr().out


def test_a_volume_near_the_float_limit_is_refused_and_the_largest_keeps_the_json_valid(results, capsys):
    """Twice 1e308 queries (the tornado's high end) was `Infinity` in the JSON, which strict parsers refuse; no
    service serves 1e308 queries a month, so it is refused as a unit slip, and the largest volume taken prices."""
    with pytest.raises(SystemExit):
        main(payback(results, "--baseline", "s/0", "--volume", "1e308", "--format", "json"))
    assert "more than any one service serves" in capsys.readouterr().err
    assert main(payback(results, "--baseline", "s/0", "--volume", "1e12", "--format", "json")) == 0
    result = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert "volume" in [bar["assumption"] for bar in result["sensitivity"]["tornado"]]


def test_the_cost_pages_starting_figures_are_not_labelled_as_the_users(results, monkeypatch):
    """The page starts at 0 data-preparation hours at $0 and 100,000 queries; nobody typed them, yet the table
    (and the CSV and HTML for finance) said 'user input'. A figure the user changes is theirs."""
    at = cost_page(results, monkeypatch)

    def source(name: str) -> str:
        frame = at.dataframe[0].value
        return frame[frame["assumption"] == name]["source"].item()

    for name in ("volume", "horizon_months", "data_prep_hours", "data_prep_usd_per_hour"):
        assert source(name).startswith("the Cost page's starting figure, not entered"), name
    at.number_input(key="keep-prep-h").set_value(8.0).run()
    assert source("data_prep_hours") == "user input" and source("volume").startswith("the Cost page's")


@pytest.mark.parametrize("python", ["missing", "without-vllm"])
def test_export_rescore_refuses_an_unusable_vllm_python_before_writing_the_export(results, tmp_path, python,
                                                                                  capsys):
    """The export was written, then --rescore failed on the python: the folder stood without rescore.json, and the
    re-run was refused because the folder was not empty."""
    given = str(tmp_path / "no-python") if python == "missing" else sys.executable  # the harness's venv: no vLLM
    out = tmp_path / "served"
    assert main(["export", "s/1", "--out", str(out), "--rescore", "--vllm-python", given, "--db", str(results[0])]) == 2
    said = printed(capsys)
    assert f"the vLLM python {given}" in said and "harness/serving/vllm_env.sh" in said  # a path that exists
    assert not out.exists()


@pytest.mark.parametrize("given, says", [
    (["--data-prep-hours", "-1"], "`data_prep_hours` (--data-prep-hours) must be >= 0"),
    (["--eng-rate", "-5"], "`engineering_usd_per_hour` (--eng-rate) must be >= 0"),
    (["--hosting", "-1"], "`fixed_monthly_usd` (--hosting) must be >= 0"),
    (["--utilisation", "0"], "`utilisation` (--utilisation) must be in (0, 1]"),
])
def test_a_refused_figure_names_the_flag_to_change(results, given, says, capsys):
    """It named the Python field only (`engineering_usd_per_hour`), which no flag of `harness payback` is called."""
    assert main(payback(results, "--baseline", "s/0", *given)) == 2
    assert says in printed(capsys)


@pytest.mark.parametrize("given, said", [
    (["--hosted-price", "test-api"], "--hosted-price test-api: study s has no hosted arm that ran without a price, so "
                                     "it prices nothing"),
    (["--serving-usd-per-hour", "5"], "--serving-usd-per-hour prices an hour of the machine the --serving-throughput "
                                      "figure was measured on; without that figure"),
    (["--baseline", "s/0", "--baseline-serving-usd-per-hour", "5"],
     "--baseline-serving-usd-per-hour prices an hour of the machine the --baseline-serving-throughput figure"),
])
def test_a_pricing_flag_that_would_price_nothing_or_one_arm_alone_is_refused(results, given, said, capsys):
    """Finance read the same answer with --hosted-price as without it, and believed it priced at that model; and
    --serving-usd-per-hour alone priced the candidate at a $5 hour on its own measured speed, the baseline at the
    table's, with no word."""
    assert main(payback(results, *given)) == 2
    assert said in " ".join("".join(capsys.readouterr()).split())


def test_a_price_table_in_another_currency_is_refused_rather_than_printed_as_dollars(results, tmp_path, capsys):
    euros = tmp_path / "eur.yaml"
    euros.write_text(results[1].read_text().replace('version:', 'currency: EUR\nversion:', 1))
    assert main(["payback", "s/1", "--volume", "100000", "--db", str(results[0]), "--prices", str(euros)]) == 2
    out = " ".join("".join(capsys.readouterr()).split())
    assert "`currency: 'EUR'`: prices are in US dollars" in out and "Convert the table's prices to USD" in out
    euros.write_text(results[1].read_text().replace('version:', 'currency: null\nversion:', 1))  # none given: USD
    assert main(["payback", "s/1", "--volume", "100000", "--db", str(results[0]), "--prices", str(euros)]) == 0


def test_the_horizon_is_a_flag_of_payback_as_it_is_a_field_of_the_cost_page(results, capsys):
    """Finance set the horizon on the dashboard, then asked the CLI for `--horizon 24` and was offered `--hosting`."""
    assert main(payback(results, "--baseline", "s/0", "--horizon", "24", "--format", "json")) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["horizon_months"] == 24 and result["assumptions"]["horizon_months"]["source"] == "user input"
    with pytest.raises(SystemExit):
        main(payback(results, "--horizon", "0"))
