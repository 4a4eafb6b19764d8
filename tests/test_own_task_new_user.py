"""A team's own task, end to end, as a new user meets it: a spreadsheet export and JSONL files the repository never
saw, turned into suites with `harness suite init` and read back. Each test writes a small real file."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from views import trial_view

from harness.analysis.report import ranking_table
from harness.analysis.verdict import verdict
from harness.cli import main
from harness.core.metric import Metric
from harness.core.records import TrainingSummary
from harness.data.suite_init import init_suite


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path, so messages name files as a user would type them (`support.csv:3`)."""
    monkeypatch.chdir(tmp_path)


def support_export(path: Path, extra: list[dict] = ()) -> Path:
    """A support-inbox export as a spreadsheet writes it: a BOM, CRLF, multi-line quoted bodies, a `Category`
    column with stray case and trailing spaces."""
    rows = []
    for i in range(12):
        rows.append({"Ticket ID": f"T{i}", "Body": f"Hello,\n\nI was charged twice for order {i}.\nThanks",
                     "Category": "Billing " if i % 4 == 0 else "Billing"})
        rows.append({"Ticket ID": f"S{i}", "Body": f"The app crashes when I open report {i}",
                     "Category": "technical support" if i % 5 == 0 else "Technical Support"})
    rows += extra
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.DictWriter(f, fieldnames=["Ticket ID", "Body", "Category"], lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_repeated_message_with_another_label_is_named_not_dropped_silently(tmp_path, capsys):
    # the same e-mail filed twice, once under each department: only the first copy is kept, so the user must be told
    # which lines disagreed, or a mislabelled first copy becomes the suite's answer unseen
    source = support_export(tmp_path / "support.csv", [
        {"Ticket ID": "T99", "Body": "Hello,\n\nI was charged twice for order 3.\nThanks", "Category": "Sales"}])
    result = init_suite("support", source, "Body", suites_dir=tmp_path / "suites")
    note = ("duplicates: 1 repeated input(s) in support.csv had a different answer than the copy kept (the first): "
            "line 62 (`Sales`) dropped for line 17 (`Billing`). If the first answer is wrong, fix or remove it in the "
            "data.")
    assert result.notes[-1] == note and result.dropped == {"duplicates": 1}
    meta = yaml.safe_load((result.path / "suite.yaml").read_text(encoding="utf-8"))
    assert meta["source"]["detected"][-1] == note and meta["cleaning"]["duplicates_with_a_different_answer"] == 1
    lines = source.read_text(encoding="utf-8-sig").splitlines()
    assert lines[16].startswith('T3,"Hello,') and lines[61].startswith('T99,"Hello,')  # the lines the note names

    assert main(["suite", "init", "again", "--from", str(source), "--input-field", "Body"]) == 0
    assert note in " ".join(capsys.readouterr().out.split())


def support_study():
    """The support suite's two trials: both arms right on all 32 test e-mails, and the adapter 6 PIQA points (of 100
    items) below the base model on the general check, past the 5-point limit."""
    accuracy = {"task_accuracy": Metric(1.0, 0.893, 1.0, 32)}
    prompt = trial_view(0, method="prompt", trained=False, objective=0.967, device="cpu", metrics={"test": accuracy})
    forgetting = Metric(-0.06, -0.12, 0.0, 100)
    lora = trial_view(1, method="lora", objective=1.0, device="cpu", feasible=False,
                      constraints={"regression_delta": 0.01, "format_compliance": -0.1},
                      training=TrainingSummary(60, "max_steps", 200, 8, planned_steps=60),
                      metrics={"test": {**accuracy, "regression_delta": forgetting},
                               "dev": {**accuracy, "regression_delta": forgetting}})
    return prompt, lora


def test_a_tie_with_an_adapter_that_forgets_says_it_is_not_ready():
    # "within noise" alone reads as "fine-tuning costs nothing here"; the broken forgetting limit must be said
    right = {f"e{i}": 1.0 for i in range(32)}
    result = verdict(support_study(), lambda trial, metric: right)
    assert result.head == "NOT SHOWN" and not result.ready
    assert result.text.endswith(" s/1 also breaks regression_delta on the general check (-6.0 points, 95% CI "
                                "[-12.0, +0.0], n=100, broken at its estimate only: its 95% interval reaches back "
                                "within the limit), so it is not ready whatever test says.")


def test_the_forgetting_column_says_its_own_n():
    # 100 PIQA items, not the 32 test e-mails of the accuracy columns: an interval without its n cannot be read
    console = Console(width=300, record=True)
    console.print(ranking_table(support_study(), "task_accuracy"))
    header = next(line for line in console.export_text().splitlines() if "┃ rank" in line)
    assert "test acc (n=32)" in header and "regression Δ (n=100)" in header


def test_a_text_suite_shows_no_hallucination_count_it_never_scored():
    # the conversions suite scores no hallucination: its column read `- n=0`, as if no output had been compliant
    accuracy = {"task_accuracy": Metric(0.767, 0.591, 0.882, 30), "format_compliance": Metric(1.0, 0.886, 1.0, 30),
                "hallucination_rate": Metric(None, None, None, 0)}
    trial = trial_view(1, method="lora", objective=0.733, device="cpu", metrics={"test": accuracy, "dev": accuracy})
    console = Console(width=300, record=True)
    console.print(ranking_table([trial], "task_accuracy"))
    lines = console.export_text().splitlines()
    row = next(line for line in lines if "s/1" in line)
    header = next(line for line in lines if "┃ rank" in line)
    assert "n=0" not in row and "halluc" not in header  # no trial shown measured it: no column at all
