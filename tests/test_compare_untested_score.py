"""`harness compare` on a score it could not test: no p-value is shown (a placeholder 1 would read as a measured
non-difference), the test reads "no test", and the reading says why. A prompting arm whose outputs are never
compliant has no hallucination_rate on any example, as in the lead's `harness compare lead/3 lead/0`."""

from __future__ import annotations

import json

from conftest import printed
from rich.console import Console
from test_compare import A_RIGHT, B_RIGHT, N, record, rows

from harness.analysis.compare import compare_trials, comparison_json, comparison_table
from harness.cli import main
from harness.store.database import Store

NEVER_COMPLIANT = [None] * N


def _store(tmp_path) -> Store:
    store = Store(tmp_path / "h.duckdb")
    store.record_trial_result(record(0, rows("test", A_RIGHT, [0.0] * N)))
    store.record_trial_result(record(1, rows("test", B_RIGHT, NEVER_COMPLIANT, tag="b"), trained=False))
    return store


def _row(table_text: str, score: str) -> list[str]:
    line = next(line for line in table_text.splitlines() if line.startswith(f"│ {score}"))
    return [cell.strip() for cell in line.strip("│").split("│")]


def test_a_score_with_no_test_shows_a_dash_for_p_and_says_why(tmp_path):
    result = compare_trials(_store(tmp_path), "s/0", "s/1")
    untested = result.score("hallucination_rate")
    assert untested.test == "none" and untested.p_value == 1.0  # the Decision's placeholder, never printed
    console = Console(width=400, record=True)
    console.print(comparison_table(result))
    table = console.export_text()
    cells = _row(table, "hallucination_rate")
    assert cells[4:8] == ["-", "no test", f"0 ({N} without a value)",
                          f"no shared example has a hallucination_rate value for both ({N} shared)"]
    tested = _row(table, "task_accuracy")
    assert tested[4] != "-" and tested[5].startswith("mcnemar-exact")


def test_json_gives_no_p_value_for_a_score_with_no_test(tmp_path):
    scores = {s["metric"]: s for s in json.loads(comparison_json(compare_trials(_store(tmp_path), "s/0", "s/1")))
              ["scores"]}
    assert scores["hallucination_rate"]["p_value"] is None and scores["hallucination_rate"]["why"]
    assert isinstance(scores["task_accuracy"]["p_value"], float)


def test_the_cli_prints_no_p_for_the_untested_score(tmp_path, capsys):
    _store(tmp_path)
    assert main(["compare", "s/0", "s/1", "--db", str(tmp_path / "h.duckdb")]) == 0
    row = next(line for line in printed(capsys).splitlines() if line.startswith("│ hallucination_rate"))
    assert [cell.strip() for cell in row.strip("│").split("│")][4:6] == ["-", "no test"]
