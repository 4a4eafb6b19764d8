"""`harness show` and `harness trials` on a free-text suite (GSM8K's worked answers ending `#### <number>`), as a
user who fine-tunes for generation reads them: an answer cut off at the token cap says so, a format failure says
why, a worked reference keeps the layout, ROUGE-L reads as the score it is, and the trials table ranks by the
suite's own scores rather than an always-empty hallucination column. Real GSM8K problems from the bundled suite."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import pytest
from conftest import printed
from rich.console import Console

from harness.analysis import report
from harness.analysis.formatting import fmt_metric
from harness.analysis.report import ranking_table, trial_detail, trials_csv, trials_json
from harness.analysis.verdict import verdict
from harness.cli import main
from harness.core.metric import Metric
from harness.core.records import ExampleRow, MetricRow, StudyRecord, TrialRecord
from harness.data.suites import load_suite
from harness.evaluation.rules import STATS_RULES
from harness.store.database import Store

SUITE = Path(__file__).resolve().parents[1] / "suites" / "math-word-problems"
CAP = 24
ROUGE = Metric(0.295, 0.227, 0.367, 10)
RAN_ON = "The tax is a form of a tax. The company pays you a tax on your sales, which is a form of a"


def gsm8k_store(path: Path, suite_version: str = "1.0.0") -> Store:
    """Study `math` on the bundled GSM8K suite: m/0 prompting, m/1 LoRA, scored on four real test problems.

    m/0's wrong test answers: a final line with the wrong number (compliant), one that ran on to the cap without a
    final line, and one with no `####` line that stopped by itself; one dev answer reached the cap too."""
    problems = load_suite(str(SUITE)).splits["test"][:4]
    store = Store(path)
    store.record_study(StudyRecord(name="m", experiment_name="math", experiment={}, suite="math-word-problems",
                                   suite_version="1.0.0", suite_path=str(SUITE), model_name="tiny",
                                   model_sha256="abc", objective_metric="task_accuracy", maximize=True))
    outputs = [("She has 10 - 8 = 2 left.\n#### 2", 14), (RAN_ON, CAP), ("The answer is 42.", 6),
               (problems[3].target, 20)]
    examples = [ExampleRow("test", e.id, e.input, e.target, output, 90, tokens,
                           scores={"format_compliance": float("####" in output), "task_accuracy": float(i == 3),
                                   "rouge_l": 0.3})
                for i, (e, (output, tokens)) in enumerate(zip(problems, outputs))]
    examples.append(ExampleRow("dev", "dev:1", "How many?", "1 + 1 = 2\n#### 2", RAN_ON, 90, CAP,
                               scores={"format_compliance": 0.0, "task_accuracy": 0.0, "rouge_l": 0.1}))
    for number, method in ((0, "prompt"), (1, "lora")):
        metrics = [MetricRow.of(split, name, metric) for split in ("dev", "test") for name, metric in (
            ("task_accuracy", Metric(0.25, 0.05, 0.7, 4)), ("format_compliance", Metric(0.5, 0.15, 0.85, 4)),
            ("hallucination_rate", Metric(None, None, None, 0)), ("rouge_l", ROUGE))]
        provenance = {"data": {"suite": "math-word-problems", "suite_version": suite_version,
                               "sizes": {"train": 40, "dev": 1, "test": 4}}, "max_new_tokens": CAP}
        store.record_trial_result(TrialRecord(
            f"m/{number}", "m", number, "run-1", method, params={"method": method}, status="complete",
            trained=method != "prompt", feasible=True, objective=0.25, provenance=provenance, metrics=metrics,
            stats_rules=STATS_RULES,
            examples=examples if number == 0 else []))
    return store


@pytest.fixture
def store(tmp_path) -> Store:
    return gsm8k_store(tmp_path / "harness.duckdb")


def _answers(text: str) -> dict[str, list[str]]:
    """The wrong-answer block of `harness show`: each listed example's lines, by its id."""
    listed: dict[str, list[str]] = {}
    for line in text.split("wrong test answers:\n", 1)[1].splitlines():
        if line.startswith("  test:"):
            listed[current := line.split(": ", 1)[0].strip()] = []
        listed[current].append(line)
    return listed


def _notes(text: str, output: str) -> list[str]:
    """The `note` lines of the listed wrong answer whose output starts with `output`."""
    lines = next(lines for lines in _answers(text).values() if any(f"got      {output[:20]!r}"[:-1] in line
                                                                      for line in lines))
    return [line for line in lines if line.startswith("    note")]


def test_show_counts_the_answers_cut_at_the_token_cap_per_split_and_marks_each(store, tmp_path, capsys):
    text = trial_detail(store.require_trial("m/0"), store.examples("m/0"))
    dev, test = text.split("\ntest:\n")[0].split("\ndev:\n")[1], text.split("\ntest:\n")[1].split("wrong")[0]
    assert "  token cap            1 of 1 answers cut at the 24-token cap (generation.max_new_tokens)" in dev
    assert "  token cap            1 of 4 answers cut at the 24-token cap (generation.max_new_tokens)" in test
    assert len(_answers(text)) == 3
    assert _notes(text, RAN_ON) == ["    note     cut at the 24-token cap"]
    assert _notes(text, "The answer is 42.") == [] and _notes(text, "She has 10 - 8") == []
    assert main(["show", "m/0", "--db", str(tmp_path / "harness.duckdb")]) == 0  # as the command prints it
    shown = " ".join(printed(capsys).split())
    assert "token cap 1 of 4 answers cut at the 24-token cap" in shown and "note cut at the 24-token cap" in shown


def test_a_trial_recorded_without_its_cap_says_nothing_of_one(store):
    bare = dataclasses.replace(store.require_trial("m/0"), provenance={})
    assert "token cap" not in trial_detail(bare, store.examples("m/0"))


def test_show_says_why_an_answer_broke_the_format_with_the_contracts_own_parser(store):
    trial = store.require_trial("m/0")
    text = trial_detail(trial, store.examples("m/0"), contract=report.suite_contract(store, trial))
    pattern = "no final answer matching `####\\s*(.+)$`"
    assert _notes(text, "The answer is 42.") == [f"    note     not format-compliant: {pattern}: 'The answer is 42.'"]
    ran_on = _notes(text, RAN_ON)
    assert len(ran_on) == 1 and ran_on[0].startswith(f"    note     cut at the {CAP}-token cap; not format-compliant: "
                                                     f"{pattern}: ")
    assert _notes(text, "She has 10 - 8") == []  # a final line with the wrong number: nothing more to say


def test_no_reason_is_read_from_a_suite_at_another_version_than_the_trials(tmp_path):
    store = gsm8k_store(tmp_path / "harness.duckdb", suite_version="0.9.0")
    trial = store.require_trial("m/0")
    assert report.suite_contract(store, trial) is None  # its contract may have changed since: no guessed reason
    assert "not format-compliant" not in trial_detail(trial, store.examples("m/0"), contract=None)


def test_a_worked_reference_is_indented_under_its_first_line(store):
    text = trial_detail(store.require_trial("m/0"), store.examples("m/0"))
    for lines in _answers(text).values():
        assert all(line.startswith("    ") for line in lines[1:]), lines  # nothing falls back to column 0
        expected = [line for line in lines if not line.startswith(("  test:", "    got", "    note"))]
        assert expected[0].startswith("    expected ") and len(expected) > 2  # GSM8K's worked steps, line by line
        assert all(line.startswith(" " * 13) and line[13] != " " for line in expected[1:])
        assert expected[-1].strip().startswith("####")


def test_rouge_l_prints_as_a_score_and_rates_stay_percentages(store):
    assert fmt_metric(ROUGE, name="rouge_l") == "0.295 [0.227, 0.367] n=10"
    assert fmt_metric(Metric(0.9, 0.596, 0.982, 10), name="format_compliance") == "90.0% [59.6, 98.2] n=10"
    text = trial_detail(store.require_trial("m/0"), [])
    assert "  rouge_l              0.295 [0.227, 0.367] n=10" in text and "29.5%" not in text
    assert "  task_accuracy        25.0% [5.0, 70.0] n=4" in text
    table = _rendered(ranking_table(store.trials(), {"m": "rouge_l"}))  # a study that optimised ROUGE-L
    assert "rouge_l a mean score in [0, 1]" in table and "0.295 [0.227, 0.367]" in table and "29.5" not in table


def test_the_verdict_gives_a_rouge_l_objective_as_a_score(store):
    ids = [f"test:{i}" for i in range(12)]
    scores = {"m/0": dict.fromkeys(ids, 0.2), "m/1": dict.fromkeys(ids, 0.6)}
    text = verdict(store.trials(), lambda trial, metric: scores[trial], metric="rouge_l").text
    assert "lora m/1 scored 0.295 [0.227, 0.367] n=10" in text and "with 0.295 [0.227, 0.367] n=10" in text
    assert "29.5%" not in text


def test_the_trials_table_json_and_csv_carry_rouge_l_and_drop_the_unmeasured_hallucination(store):
    table = ranking_table(store.trials(), {"m": "task_accuracy"})
    headers = [column.header for column in table.columns]
    assert "test rouge_l (n=10)" in headers and not any("halluc" in header for header in headers)
    assert "rouge_l a mean score in [0, 1]" in str(table.title)
    assert "0.295 [0.227, 0.367]" in _rendered(table)
    rows = json.loads(trials_json(store.trials(), {"m": "task_accuracy"}))
    assert rows[0]["metrics"]["rouge_l"] == ROUGE.to_dict() and rows[0]["dev_metrics"]["rouge_l"] == ROUGE.to_dict()
    assert rows[0]["metrics"]["hallucination_rate"]["value"] is None  # the core four stay, for scripts that read them
    row = next(csv.DictReader(io.StringIO(trials_csv(store.trials(), {"m": "task_accuracy"}))))
    assert row["test_rouge_l_value"] == "0.295" and row["test_rouge_l_n"] == "10"


def test_a_suite_that_checks_hallucination_keeps_the_column(store):
    prompt, lora = store.trials("m")
    checked = dataclasses.replace(lora, metrics={**lora.metrics, "test": {
        **lora.metrics["test"], "hallucination_rate": Metric(0.0, 0.0, 0.3, 9)}})
    headers = [column.header for column in ranking_table([prompt, checked], "task_accuracy").columns]
    assert "test halluc. (of compliant)" in headers


def test_prompting_alone_has_no_forgetting_column_and_a_trained_trial_keeps_it(store):
    prompt, lora = store.trials("m")
    assert not prompt.trained and lora.trained
    assert not any("regression" in c.header for c in ranking_table([prompt], "task_accuracy").columns)
    assert any("regression" in c.header for c in ranking_table([prompt, lora], "task_accuracy").columns)


def _rendered(table) -> str:
    console = Console(record=True, width=300)
    console.print(table)
    return console.export_text()


def test_the_trial_page_says_which_answers_were_cut_at_the_token_cap(store, tmp_path, monkeypatch):
    pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e '.[test]'")
    from streamlit.testing.v1 import AppTest

    from harness.core.paths import DASHBOARD_DB_ENV

    monkeypatch.setenv(DASHBOARD_DB_ENV, str(tmp_path / "harness.duckdb"))
    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboards" / "app.py"), default_timeout=30)
    app.query_params["trial"] = "m/0"
    app.run()
    app.switch_page("views/trial.py").run()
    assert not app.exception, [e.value for e in app.exception]
    captions = " ".join(str(e.value) for e in app.caption)
    assert "Cut at the token cap: " in captions
    assert "test 1 of 4 answers cut at the 24-token cap" in captions and "dev 1 of 1 answers cut at" in captions
