"""`harness report` after a lead's trial run: every interval it shows carries its n (Markdown, HTML and PDF, the chart
included), `--out` takes a folder and says plainly when a file stands where a folder should, and no sentence ends in
two full stops. Study `lead` holds a prompting arm (lead/0), a LoRA trial that beats it (lead/1, its forgetting check
over 8 items) and a LoRA trial that failed with a reason that brings its own full stop (lead/2)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import printed
from test_cost import PRICES, evaluation

from harness.cli import main
from harness.core.metric import Metric
from harness.core.records import (
    ExampleRow,
    MetricRow,
    RunRecord,
    StudyRecord,
    Throughput,
    TrainingSummary,
    TrialRecord,
)
from harness.store.database import Store

EXAMPLES = 100
PEFT_REASON = ("NoMatchingPeftModuleError: Target modules {'nonexistent_proj'} not found in the base model. Please "
               "check the target modules and try again.")


def lead_study(name: str = "lead") -> StudyRecord:
    experiment = {"name": name, "model": "tiny", "suite": "colours", "space": {"prompt": {}, "lora": {"r": 8}}}
    return StudyRecord(name=name, experiment_name=name, experiment=experiment, suite="colours", suite_version="1.0.0",
                       suite_path="suites/colours", model_name="tiny", model_sha256="abc123def4567890",
                       objective_metric="task_accuracy", maximize=True)


def add_trial(store: Store, number: int, method: str, right: int, dev: float, *, test_seconds: float = 10.0,
              completion_tokens: int = 2_000, study: str = "lead", speed: Throughput | None = None,
              **fields) -> None:
    """A trial whose first `right` of 100 test examples are right, answered in `test_seconds` on an H100 (or as
    `speed` says); a trained one has a forgetting check over 8 items (its n is not the test subset's)."""
    trained = method not in ("prompt", "dspy")
    scores = {f"t{i:03d}": 1.0 if i < right else 0.0 for i in range(EXAMPLES)}
    share = right / EXAMPLES
    metrics = [MetricRow.of("dev", "task_accuracy", Metric(dev, dev - 0.1, dev + 0.1, 50)),
               MetricRow.of("test", "task_accuracy", Metric(share, max(0.0, share - 0.1), min(1.0, share + 0.1),
                                                            EXAMPLES)),
               MetricRow.of("test", "format_compliance", Metric(1.0, 0.96, 1.0, EXAMPLES))]
    if trained:
        metrics.append(MetricRow.of("test", "regression_delta", Metric(0.0, -0.369, 0.369, 8)))
    status = fields.pop("status", "complete")
    complete = status == "complete"
    store.record_trial_result(TrialRecord(
        id=f"{study}/{number}", study=study, number=number, run_id=f"r-{study}", method=method, trained=trained,
        status=status, device="cuda", train_seconds=100.0 if trained else 0.0, eval_seconds=test_seconds,
        objective=dev if complete else None, feasible=True if complete else None,
        throughput=({"test": speed or evaluation(EXAMPLES, test_seconds, 48_000, completion_tokens)}
                    if complete else {}),
        metrics=metrics if complete else [],
        examples=[ExampleRow("test", i, f"input {i}", "x", "y", scores={"task_accuracy": v})
                  for i, v in scores.items()] if complete else [],
        **fields,
    ))  # fmt: skip


def lead_results(folder: Path, study: str = "lead") -> Store:
    store = Store(folder / "harness.duckdb")
    store.record_study(lead_study(study))
    store.record_run(RunRecord(f"r-{study}", study, 1, "gpu-box", "cuda", "NVIDIA H100 80GB HBM3", 16, {}))
    return store


@pytest.fixture
def results(tmp_path) -> tuple[Path, Path]:
    """(the results folder, a price table with round numbers)."""
    (prices := tmp_path / "prices.yaml").write_text(PRICES)
    store = lead_results(tmp_path / "results")
    add_trial(store, 0, "prompt", 50, 0.5, test_seconds=100.0)
    add_trial(store, 1, "lora", 90, 0.9, training=TrainingSummary(100, "max_steps", 800, 8, planned_steps=100))
    add_trial(store, 2, "lora", 0, 0.0, status="failed", failure_reason=PEFT_REASON)
    return tmp_path / "results", prices


def report(results: tuple[Path, Path], *flags: str) -> list[str]:
    return ["report", "--db", str(results[0]), *flags]


def priced(results: tuple[Path, Path], *flags: str) -> list[str]:
    return report(results, "--volume", "100000", "--prices", str(results[1]), *flags)


INTERVAL = re.compile(r"\[[-+]?\d+(?:\.\d+)?, [-+]?\d+(?:\.\d+)?\]")
COUNTED = re.compile(r"n=\d|\d+ (?:pairs|examples)\b")


def intervals_without_n(markdown: str) -> list[str]:
    """Every interval of the report whose n is nowhere near it: in a table, neither in its cell nor in its column's
    header; in a paragraph, not before the clause ends (`;`, or a full stop that ends a sentence)."""
    missing, header = [], []
    for line in markdown.splitlines():
        if line.startswith("| ---"):
            continue
        if line.startswith("| "):
            cells = line.strip("| ").split(" | ")
            if not header or len(cells) != len(header) or not INTERVAL.search(line):
                header = cells if not INTERVAL.search(line) else header
                continue
            missing += [cell for head, cell in zip(header, cells)
                        if INTERVAL.search(cell) and not COUNTED.search(cell) and not COUNTED.search(head)]
            continue
        header = []
        for found in INTERVAL.finditer(line):
            clause = re.split(r";|\.(?:\s|$)", line[found.end():], maxsplit=1)[0]
            if not COUNTED.search(clause):
                missing.append(line[max(0, found.start() - 60):found.end() + 40])
    return missing


def test_every_interval_in_the_markdown_report_carries_its_n(results):
    assert main(priced(results)) == 0
    text = (results[0] / "report-lead.md").read_text()
    assert intervals_without_n(text) == []
    forgetting = next(line for line in text.splitlines() if line.startswith("| forgetting"))
    assert "| +0.0 points, 95% CI [-36.9, +36.9], n=8 | not trained |" in forgetting  # 8 items, not the 100 tests
    header = next(line for line in text.splitlines() if line.startswith("| rank"))
    assert "| test format (n=100) |" in header and "| regression Δ (n=8) |" in header
    why = next(line for line in text.splitlines() if line.startswith("- Why:"))
    assert "(task_accuracy vs lead/0: +40.0 points, 95% CI [" in why and "], n=100 pairs; better" in why


def test_the_checker_finds_an_interval_without_its_n():
    table = "| a | b (n=5) |\n| --- | --- |\n| 1.0 [0.5, 2.0] | 1.0 [0.5, 2.0] |"
    assert intervals_without_n(table) == ["1.0 [0.5, 2.0]"]
    missing = intervals_without_n("scored 1.0 [0.5, 2.0] n=5; then 3.0 [2.5, 4.0]. Done")
    assert len(missing) == 1 and missing[0].endswith("then 3.0 [2.5, 4.0]. Done")


def test_a_column_whose_trials_differ_in_n_gives_each_value_its_own(results):
    """Trials of one column scored on different numbers of examples: no single n fits the header."""
    store = Store(results[0] / "harness.duckdb")
    store.record_trial_result(TrialRecord(
        id="lead/3", study="lead", number=3, run_id="r-lead", method="lora", trained=True, status="complete",
        device="cuda", objective=0.2, feasible=True,
        metrics=[MetricRow.of("dev", "task_accuracy", Metric(0.2, 0.1, 0.3, 20)),
                 MetricRow.of("test", "format_compliance", Metric(1.0, 0.9, 1.0, 30))]))
    assert main(report(results)) == 0
    text = (results[0] / "report-lead.md").read_text()
    assert intervals_without_n(text) == []
    header = next(line for line in text.splitlines() if line.startswith("| rank"))
    assert "| dev acc | test acc (n=100) | test format |" in header
    assert "| 20.0 [10.0, 30.0] n=20 |" in text and "| 90.0 [80.0, 100.0] n=50 |" in text


def test_the_html_report_and_its_chart_carry_n(results):
    out = results[0] / "r.html"
    assert main(priced(results, "--out", str(out))) == 0
    page = out.read_text()
    chart = page[page.index("<figure><svg"):page.index("</svg></figure>")]
    assert "each with its 95% interval and n" in chart
    labels = re.findall(r'text-anchor="end"[^>]*>([^<]*)</text>', chart)
    assert labels == ["lead/1 (lora), n=100", "lead/0 (prompt), n=100", "lead/2 (lora)"]  # lead/2 failed: no value
    assert "+0.0 points, 95% CI [-36.9, +36.9], n=8" in page


def test_the_pdf_report_and_its_chart_carry_n(results):
    from pypdf import PdfReader

    out = results[0] / "r.pdf"
    assert main(priced(results, "--out", str(out))) == 0
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(out).pages)
    assert "lead/1 (lora), n=100" in text and "lead/0 (prompt), n=100" in text  # the chart's labels
    assert "n=8" in text and "test format (n=100)" in text


def test_no_sentence_of_a_report_with_cautions_ends_in_two_full_stops(results):
    assert main(priced(results)) == 0
    markdown = (results[0] / "report-lead.md").read_text()
    cautions = markdown.split("## Cautions", 1)[1].split("## ", 1)[0]
    assert "- lead/2 (lora) failed: NoMatchingPeftModuleError: " in cautions
    assert "Please check the target modules and try again.\n" in cautions
    assert "- The payback's serving cost: " in cautions
    assert ".." not in markdown  # the sensitivity table's ranges read "x to y", not "x .. y"
    assert main(priced(results, "--out", str(results[0] / "r.html"))) == 0
    assert ".." not in (results[0] / "r.html").read_text()


def test_a_folder_given_to_out_gets_report_study_inside_in_the_format_named(results, capsys):
    folder = results[0].parent / "reports"
    folder.mkdir()
    assert main(report(results, "--out", str(folder))) == 0
    assert printed(capsys).strip() == f"YES: wrote {folder / 'report-lead.md'}"
    assert (folder / "report-lead.md").read_text().startswith("# Does fine-tuning beat prompting")
    assert main(report(results, "--out", str(folder), "--format", "pdf")) == 0
    assert (folder / "report-lead.pdf").read_bytes().startswith(b"%PDF-")
    fresh = results[0].parent / "new" / "deeper"
    assert main(report(results, "--out", f"{fresh}/", "--format", "html")) == 0  # a trailing / names a folder
    assert (fresh / "report-lead.html").read_text().startswith("<!doctype html>")
    assert main(report(results, "--format", "html")) == 0  # no --out: beside the results database
    assert (results[0] / "report-lead.html").exists()


def test_a_file_where_a_folder_should_be_is_named_with_the_fix_and_nothing_is_written(results, capsys):
    blocker = results[0].parent / "afile"
    blocker.write_text("hi")
    before = sorted(results[0].parent.rglob("*"))
    for out in (blocker / "r.md", blocker / "sub" / "deeper" / "r.pdf"):
        assert main(report(results, "--out", str(out))) == 2
        said = printed(capsys)
        assert f"error: --out {out}: {blocker} is a file, not a folder, so nothing can be written inside it." in said
        assert f"(e.g. --out {blocker.parent / out.name}), or move {blocker} aside." in said
        assert "File exists" not in said and "Traceback" not in said
    assert sorted(results[0].parent.rglob("*")) == before and blocker.read_text() == "hi"


def test_a_folder_in_the_way_and_a_format_that_contradicts_the_suffix_are_refused(results, capsys):
    (results[0].parent / "out" / "report-lead.md").mkdir(parents=True)
    assert main(report(results, "--out", str(results[0].parent / "out"))) == 2
    assert "a folder of that name is in the way of the report" in printed(capsys)
    out = results[0].parent / "r.md"
    assert main(report(results, "--out", str(out), "--format", "pdf")) == 2
    assert (f"--out {out} ends in .md, which writes Markdown, but --format is pdf: give --out "
            f"{out.with_suffix('.pdf')}, or leave --format out.") in printed(capsys)
    assert not out.exists() and not out.with_suffix(".pdf").exists()
    docx = results[0].parent / "r.docx"  # Markdown in a .docx would not open in Word
    assert main(report(results, "--out", str(docx))) == 2
    assert f"not .docx; give --out {docx.with_suffix('.md')}" in " ".join(printed(capsys).split())
    assert not docx.exists()


def test_report_help_says_a_folder_gets_report_study_inside(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    words = " ".join(printed(capsys).split())
    assert "a folder (one that exists, or a path ending in /) gets report-STUDY.md inside it" in words
    assert "--format {md,html,pdf,json}" in words
