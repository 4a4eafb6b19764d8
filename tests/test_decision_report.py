"""`harness report`: the study's answer as one Markdown document. Read from a real DuckDB written through the Store:
study s holds a prompting arm (s/0), a LoRA trial that beats it (s/1), a LoRA trial that failed (s/2) and one whose
time cap cut it short though it leads on dev (s/3). The report must say what the sweep's own verdict and
`harness payback` say, name what went wrong, and never leave a half-written file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from conftest import printed
from test_cost import PRICES, evaluation

from harness.analysis.cost import load_prices
from harness.analysis.decision_report import markdown_table
from harness.analysis.decision_rule import VERDICT_RULE
from harness.analysis.payback import payback_from_store
from harness.analysis.verdict import study_verdict
from harness.cli import main
from harness.core.metric import Metric
from harness.core.records import (
    ExampleRow,
    MetricRow,
    PromptSearch,
    RunRecord,
    StudyRecord,
    TrainingSummary,
    TrialRecord,
)
from harness.store.database import Store

VERSIONS = {"torch": "2.13.0+cpu", "transformers": "5.25.0", "peft": "0.21.2", "trl": "1.16.0"}


def _study(name: str) -> StudyRecord:
    experiment = {"name": name, "model": "tiny", "suite": "colours", "space": {"prompt": {}, "lora": {"r": 8}}}
    return StudyRecord(name=name, experiment_name=name, experiment=experiment, suite="colours", suite_version="1.0.0",
                       suite_path="suites/colours", model_name="tiny", model_sha256="abc123def4567890",
                       objective_metric="task_accuracy", maximize=True)


def _trial(store: Store, study: str, number: int, method: str, right: int, dev: float, *,
           test_seconds: float = 10.0, more_metrics: tuple[MetricRow, ...] = (), **fields) -> None:
    """A trial whose first `right` of 100 test examples are right; `dev` is its dev accuracy (what ranks it). Its
    test answers: 100 in `test_seconds`, 2,000 completion tokens, priced as served on an H100 ($0.001 a second)."""
    n = 100
    scores = {f"t{i:03d}": 1.0 if i < right else 0.0 for i in range(n)}
    test = Metric(right / n, max(0.0, right / n - 0.1), min(1.0, right / n + 0.1), n)
    metrics = [MetricRow.of("dev", "task_accuracy", Metric(dev, dev - 0.1, dev + 0.1, 50)),
               MetricRow.of("test", "task_accuracy", test),
               MetricRow.of("test", "format_compliance", Metric(1.0, 0.96, 1.0, n)), *more_metrics]
    status = fields.pop("status", "complete")
    if method == "prompt":  # prompted as a team would at its best, unless a test says otherwise
        fields.setdefault("params", {"method": "prompt", "shots": 3, "shot_selection": "similar"})
    complete = status == "complete"
    store.record_trial_result(TrialRecord(
        id=f"{study}/{number}", study=study, number=number, run_id=f"r-{study}", method=method,
        trained=method not in ("prompt", "dspy"), status=status, device="cuda",
        train_seconds=0.0 if method in ("prompt", "dspy") else 100.0, eval_seconds=10.0,
        objective=dev if complete else None, feasible=fields.pop("feasible", True if complete else None),
        throughput={"test": evaluation(n, test_seconds, 48_000, 2_000)} if complete else {},
        metrics=metrics if complete else [],
        examples=[ExampleRow("test", i, f"input {i}", "x", "y", scores={"task_accuracy": v}) for i, v in
                  scores.items()] if complete else [],
        **fields,
    ))  # fmt: skip


@pytest.fixture
def results(tmp_path) -> tuple[Path, Path]:
    """(the results folder, a price table with round numbers)."""
    (prices := tmp_path / "prices.yaml").write_text(PRICES)
    store = Store(tmp_path / "results" / "harness.duckdb")
    store.record_study(_study("s"))
    store.record_run(RunRecord("r-s", "s", 1, "gpu-box", "cuda", "NVIDIA H100 80GB HBM3", 16,
                               {"versions": VERSIONS, "git_commit": "0123abc", "python": "3.11.7",
                                "torch_threads": 16}))
    _trial(store, "s", 0, "prompt", 50, 0.5, test_seconds=100.0)  # 10x slower to serve than s/1
    _trial(store, "s", 1, "lora", 90, 0.9, training=TrainingSummary(100, "max_steps", 800, 8, planned_steps=100))
    _trial(store, "s", 2, "lora", 0, 0.0, status="failed",
           failure_reason="out of memory on cuda: lower training.batch_size")
    _trial(store, "s", 3, "lora", 95, 0.95, training=TrainingSummary(13, "time budget", 800, 8, planned_steps=250))
    return tmp_path / "results", prices


def report(results: tuple[Path, Path], *flags: str) -> list[str]:
    return ["report", "--db", str(results[0]), *flags]


def test_the_report_gives_the_sweeps_verdict_with_its_evidence_and_rule(results, capsys):
    assert main(report(results)) == 0
    out = results[0] / "report-s.md"
    assert printed(capsys).strip() == f"YES: wrote {out}"
    text = out.read_text()
    verdict = study_verdict(Store(results[0] / "harness.duckdb"), "s")
    assert verdict.head == "YES" and (verdict.finetuned, verdict.prompting) == ("s/1", "s/0")
    assert text.startswith("# Does fine-tuning beat prompting on colours?")
    assert "**YES.** Fine-tuning beat local prompting." in text
    assert verdict.decision.evidence() in text and VERDICT_RULE in text
    comparison = text.split("## The comparison behind the answer", 1)[1].split("## Every trial", 1)[0]
    assert "| fine-tuned: s/1 | opponent: s/0 (local prompting) |" in comparison
    assert "| test task_accuracy | 90.0% [80.0, 100.0] n=100 | 50.0% [40.0, 60.0] n=100 |" in comparison
    assert "100 of 100 steps of 8 examples, 100 s (stopped by max_steps)" in comparison
    assert "s/3" not in comparison  # it leads on dev, but its time cap cut it short: it never decides
    trials = text.split("## Every trial", 1)[1].split("## Cautions", 1)[0]
    ranked = [line.split(" | ")[1] for line in trials.splitlines() if line.startswith("| ") and " | s/" in line]
    assert ranked == ["s/3", "s/1", "s/0", "s/2"]  # ranked on dev as `harness trials` ranks them
    where = text.split("## Where it ran", 1)[1]
    assert "| r-s | s/0, s/1, s/2, s/3 | gpu-box | cuda NVIDIA H100 80GB HBM3 | 16, 16 | 3.11.7 | 2.13.0+cpu | " \
           "5.25.0 | 0.21.2 | 1.16.0 | - | - | 0123abc |" in where
    assert "Not priced: no volume was given." in text
    assert f"harness compare s/1 s/0 --db {results[0] / 'harness.duckdb'}" in text


def test_the_cautions_name_the_failed_and_the_cut_short_trials(results):
    assert main(report(results)) == 0
    cautions = (results[0] / "report-s.md").read_text().split("## Cautions", 1)[1].split("## ", 1)[0]
    assert "- s/2 (lora) failed: out of memory on cuda: lower training.batch_size." in cautions
    assert "- s/3 (lora) is under-trained (13 of 250 steps, 5%): its time cap stopped it" in cautions
    forgetting = "- The forgetting check has no value for s/1, so nothing here measures what fine-tuning cost"
    assert forgetting in cautions  # the fine-tuned arm's only caution: its forgetting was not measured
    assert "s/1" not in cautions.replace(forgetting, "") and "s/0" not in cautions


def test_a_forgetting_check_too_small_to_decide_is_a_caution(tmp_path):
    """The sweep warned that 20 items cannot read the 5-point limit; the report it writes says so too."""
    store = Store(tmp_path / "harness.duckdb")
    study = _study("small")
    checked = {**study.experiment, "regression": {"enabled": True, "suite": "piqa", "limit": 20},
               "objective": {"max_regression_drop": 0.05}}
    store.record_study(dataclasses.replace(study, experiment=checked))
    _trial(store, "small", 0, "prompt", 50, 0.5)
    assert main(["report", "--db", str(tmp_path)]) == 0
    cautions = (tmp_path / "report-small.md").read_text().split("## Cautions", 1)[1].split("## ", 1)[0]
    assert "- The forgetting check's 20 piqa items read a change only to about ±17 points (95%)" in cautions
    store.record_study(dataclasses.replace(study, name="big", experiment={**checked, "regression": {
        "enabled": True, "suite": "piqa", "limit": 200}}))
    _trial(store, "big", 0, "prompt", 50, 0.5)
    assert main(["report", "--db", str(tmp_path), "--study", "big"]) == 0
    assert "forgetting check" not in (tmp_path / "report-big.md").read_text().split("## Cautions", 1)[1]


def test_with_a_volume_the_payback_is_harness_paybacks_with_every_assumption(results, capsys):
    folder, prices = results
    expected = payback_from_store(Store(folder / "harness.duckdb"), "s/1", "s/0", 100_000, prices=load_prices(prices),
                                  engineering_hours=10, engineering_usd_per_hour=100)
    assert expected.pays_back  # s/1 saves $0.0009 a query: $90 a month against about $1,000 once
    priced = ("--volume", "100000", "--eng-hours", "10", "--eng-rate", "100", "--prices", str(prices))
    assert main(report(results, *priced)) == 0
    assert f"payback: {expected.headline()}" in printed(capsys)
    text = (folder / "report-s.md").read_text()
    cautions = text.split("## Cautions", 1)[1].split("## ", 1)[0]  # the caution the payback's headline points to
    assert expected.machine_caution.endswith("nothing would be saved, and it would never pay back.")  # one H100 each
    assert f"- {expected.machine_caution[:1].upper()}{expected.machine_caution[1:]}" in cautions
    answer = text.split("## Answer", 1)[1].split("## ", 1)[0]  # the money answer beside the quality one, up top
    assert f"**Payback: {expected.headline()}** s/1 against s/0 at 100,000 queries a month" in answer
    section = text.split("## Cost and payback", 1)[1].split("## Where it ran", 1)[0]
    assert f"**{expected.headline()}** s/1 against s/0 at 100,000 queries a month." in section
    assert f"- Why: {expected.reason}" in section and f"- Quality: {expected.quality.reason}" in section
    rows = {line.split(" | ")[0].lstrip("| ") for line in section.splitlines() if line.startswith("| ")}
    assert set(expected.assumptions) <= rows  # every assumption, each on its own row with its unit and source
    assert "| engineering_hours | 10 | hours | user input |" in section
    assert (f"harness payback s/1 --baseline s/0 --volume 100000 --prices {prices} --eng-hours 10 --eng-rate 100 "
            f"--db {folder / 'harness.duckdb'}") in text


def test_a_json_out_gives_a_pipeline_the_verdict_its_decision_and_cautions(results, capsys):
    """A CI job had only the first word of a printed line to gate on: the JSON report holds the verdict's head,
    whether it is ready, the decision with its interval and n, the rule and the cautions."""
    folder, prices = results
    priced = ("--volume", "100000", "--eng-hours", "10", "--eng-rate", "100", "--prices", str(prices))
    assert main(report(results, "--out", str(folder / "verdict.json"), *priced)) == 0
    data = json.loads((folder / "verdict.json").read_text())
    verdict = study_verdict(Store(folder / "harness.duckdb"), "s")
    assert data["schema"] == 1 and data["study"] == "s" and data["objective_metric"] == "task_accuracy"
    shown = data["verdict"]
    assert (shown["head"], shown["ready"], shown["finetuned"], shown["opponent"]) == ("YES", True, "s/1", "s/0")
    assert shown["text"] == verdict.text and shown["rule"] == VERDICT_RULE
    assert shown["decision"]["outcome"] == "better" and shown["decision"]["test"] == "mcnemar-exact"
    assert shown["decision"]["difference"] == {"value": verdict.decision.difference.value,
                                               "low": verdict.decision.difference.low,
                                               "high": verdict.decision.difference.high, "n": 100}
    assert any(line.startswith("s/2 (lora) failed") for line in data["cautions"])
    assert data["payback"]["candidate"] == "s/1" and data["unpriced"] is None
    assert main(report(results, "--format", "json")) == 0  # a folder or no --out: report-STUDY.json
    assert json.loads((folder / "report-s.json").read_text())["payback"] is None
    capsys.readouterr()
    assert main(report(results, "--format", "json", "--out", "-")) == 0  # for a pipe: the document alone on stdout
    piped = capsys.readouterr()
    assert json.loads(piped.out)["verdict"]["ready"] is True and "wrote" not in piped.out
    assert main(report(results, "--out", "-")) == 0  # Markdown, the documented default
    assert capsys.readouterr().out.startswith("# Does fine-tuning beat prompting")
    assert main(report(results, "--format", "pdf", "--out", "-")) == 2  # a PDF goes to a file
    assert "a PDF goes to a file (--out report.pdf)" in printed(capsys)
    for empty in ("", " "):  # not the current folder, nor a file named " ", unasked
        assert main(report(results, "--out", empty)) == 2
        assert "--out is empty: give a file" in printed(capsys)


def test_a_volume_in_the_re_derive_command_is_the_one_given():
    """`--volume 1234567.5` came back as `--volume 1.23457e+06`, whose payback differed from the report's."""
    from harness.analysis.formatting import flag_value

    assert [flag_value(v) for v in (1234567.5, 2_000_000.0, 0.1, 1e30, 40.0)] == [
        "1234567.5", "2000000", "0.1", "1e+30", "40"]
    from harness.analysis.report import _assumed

    assert [_assumed(v) for v in (1234567.5, 6.21937743054096e-07, 0.1, 12, "CPU")] == [
        "1,234,567.5", "6.21938e-07", "0.1", "12", "CPU"]  # the assumptions table, as the payback line gives volume


def test_the_document_names_the_database_by_its_whole_path(results, monkeypatch):
    """Sent to a director, `--db results/harness.duckdb` in its re-derive commands meant nothing."""
    monkeypatch.chdir(results[0].parent)
    assert main(["report", "--db", "results", "--out", "r.md"]) == 0
    text = (results[0].parent / "r.md").read_text()
    assert f"--db {results[0] / 'harness.duckdb'}" in text and "--db results/" not in text


def test_a_payback_flag_without_a_volume_is_refused_and_nothing_is_written(results, capsys):
    assert main(report(results, "--eng-hours", "10", "--eng-rate", "100")) == 2
    said = printed(capsys)
    assert "--eng-hours, --eng-rate price the payback, which needs --volume QUERIES_PER_MONTH" in said
    assert not (results[0] / "report-s.md").exists()


def test_the_study_is_named_when_there_are_several_and_a_wrong_name_lists_them(results, capsys):
    store = Store(results[0] / "harness.duckdb")
    store.record_study(_study("t"))
    assert main(report(results)) == 2
    assert "holds 2 studies (s, t); name the one to report with --study" in printed(capsys)
    assert main(report(results, "--study", "nope")) == 2
    assert "no study 'nope'" in (said := printed(capsys)) and "s, t" in said
    assert main(report(results, "--study", "t")) == 2
    assert "study t has no trial yet" in printed(capsys)
    assert main(report(results, "--study", "s")) == 0


def test_no_database_and_an_unwritable_out_are_refused_in_words(results, tmp_path, capsys):
    assert main(["report", "--db", str(tmp_path / "elsewhere")]) == 2
    assert "no results database at" in printed(capsys)
    (blocker := tmp_path / "a-file").write_text("x")
    assert main(report(results, "--out", str(blocker / "report.md"))) == 2
    assert "--out" in (said := printed(capsys)) and f"{blocker} is a file, not a folder" in said
    assert "Traceback" not in said
    assert list(tmp_path.glob("**/*.tmp")) == [] and list(results[0].glob(".*.tmp")) == []


def test_a_folder_the_report_had_to_make_is_named(results, tmp_path, capsys):
    """A typo in --out's folder wrote the decision document into a new folder nobody looks in, without a word."""
    out = tmp_path / "reprots" / "q4" / "decision.md"
    assert main(report(results, "--out", str(out))) == 0
    assert printed(capsys).strip() == f"YES: wrote {out} (made the folder {tmp_path / 'reprots'}, which did not exist)"
    assert main(report(results, "--out", str(out))) == 0
    assert printed(capsys).strip() == f"YES: wrote {out}"  # there now: nothing made


def test_a_report_replaces_the_old_one_whole(results):
    out = results[0] / "decision.md"
    out.write_text("an older report\n")
    assert main(report(results, "--out", str(out))) == 0
    assert out.read_text().startswith("# Does fine-tuning beat prompting") and "an older report" not in out.read_text()
    assert [p.name for p in results[0].iterdir() if p.name.startswith(".")] == []


def test_a_report_is_written_through_a_link_and_never_over_a_pipe_or_device(results, tmp_path, capsys):
    """A rename moved the report over whatever --out named: a symlink became a file (the linked report unchanged),
    a FIFO's reader waited forever, and, as root, --out /dev/full turned the device into a Markdown file."""
    import os

    kept = tmp_path / "shared" / "decision.md"
    kept.parent.mkdir()
    kept.write_text("last quarter's\n")
    (link := tmp_path / "latest.md").symlink_to(kept)
    assert main(report(results, "--out", str(link))) == 0
    assert link.is_symlink() and kept.read_text().startswith("# Does fine-tuning beat prompting")
    os.mkfifo(pipe := tmp_path / "pipe.md")
    assert main(report(results, "--out", str(pipe))) == 2
    said = " ".join(printed(capsys).split())
    assert "not a regular file (a device, a pipe or a socket)" in said and "--out -" in said
    assert not pipe.is_file() and pipe.exists()


def test_markdown_table_keeps_every_row_on_one_line_and_escapes_its_marks():
    from rich.table import Table

    table = Table(title="T", caption="* older rules")
    table.add_column("a|b")
    table.add_column("c")
    table.add_row("x | y", "41.0 [35.0, 47.0]*")
    table.add_row("two\nlines", "-")
    assert markdown_table(table) == ("T\n\n| a\\|b | c |\n| --- | --- |\n| x \\| y | 41.0 [35.0, 47.0]\\* |\n"
                                     "| two lines | - |\n\n\\* older rules")


def test_without_a_fine_tuned_trial_the_report_says_no_verdict_and_prices_nothing(tmp_path, capsys):
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(_study("p"))
    store.record_run(RunRecord("r-p", "p", 1, "host", "cpu", "x86_64", 2, {}))
    _trial(store, "p", 0, "prompt", 50, 0.5)
    assert main(["report", "--db", str(tmp_path), "--volume", "1000"]) == 0
    assert printed(capsys).startswith("No verdict: wrote")
    text = (tmp_path / "report-p.md").read_text()
    assert "**No verdict yet.** The study has no completed fine-tuned trial." in text
    assert "## The comparison behind the answer" not in text
    assert "Not priced: study p has no complete fine-tuned trial, so there is nothing to weigh against" in text


def test_an_html_out_gets_one_self_contained_page_with_the_reports_text_escaped(results):
    store = Store(results[0] / "harness.duckdb")
    _trial(store, "s", 4, "lora", 0, 0.0, status="failed", failure_reason="<script>alert(1)</script> in the data")
    out = results[0] / "decision.html"
    assert main(report(results, "--out", str(out))) == 0
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "<h1>Does fine-tuning beat prompting on colours?</h1>" in page
    assert "<strong>YES.</strong>" in page and page.count("<table>") == 3  # comparison, every trial, machines
    assert "&lt;script&gt;alert(1)&lt;/script&gt; in the data" in page
    assert "<script" not in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    chart = page[page.index("<figure><svg"):page.index("</svg></figure>")]  # under the trials' table
    assert page.index("<h2>Every trial</h2>") < page.index("<figure>") < page.index("<h2>Cautions</h2>")
    assert chart.count("<circle") == 3 and chart.count("not measured") == 2  # s/2 and s/4 failed
    assert chart.count('font-weight="bold">s/') == 2  # the two the verdict weighs: s/1 and s/0


def _pdf_text(path: Path) -> tuple[str, set[str]]:
    """(the PDF's text, in reading order, with its lines joined; the fonts it embeds)."""
    from pypdf import PdfReader

    pages = PdfReader(path).pages
    text = " ".join(" ".join(page.extract_text().split()) for page in pages)
    embedded = set()
    for page in pages:
        for font in page["/Resources"]["/Font"].values():
            descriptor = font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            if "/FontFile2" in descriptor:
                embedded.add(str(font.get_object()["/BaseFont"]).split("+", 1)[1])
    return text, embedded


def test_a_pdf_out_holds_the_reports_text_chart_and_payback_with_its_fonts_embedded(results, capsys):
    folder, prices = results
    out = folder / "decision.pdf"
    assert main(report(results, "--out", str(out), "--volume", "100000", "--prices", str(prices))) == 0
    assert printed(capsys).startswith(f"YES: wrote {out}")
    assert out.read_bytes().startswith(b"%PDF-") and [p.name for p in folder.iterdir() if p.name[0] == "."] == []
    text, fonts = _pdf_text(out)
    markdown = folder / "report-s.md"
    assert main(report(results, "--volume", "100000", "--prices", str(prices))) == 0
    headline = next(line for line in markdown.read_text().splitlines() if line.startswith("**DOES") or
                    line.startswith("**PAYS"))
    for words in ("Does fine-tuning beat prompting on colours?", "YES. Fine-tuning beat", "Every trial",
                  "s/2 (lora) failed: out of memory on cuda", "regression Δ", "Where it ran", "gpu-box",
                  headline.split("**")[1], "Test task_accuracy, each with its 95% interval",  # the chart's title
                  f"harness compare s/1 s/0 --db {folder / 'harness.duckdb'}", "page 1 of"):
        assert words in text, words
    assert fonts == {"DejaVuSansBook", "DejaVuSansBold", "DejaVuSansMonoBook"}  # the harness's, whatever the host has


def test_a_pdf_says_which_characters_its_font_cannot_draw(tmp_path, capsys):
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(_study("工单"))
    _trial(store, "工单", 0, "prompt", 50, 0.5)
    assert main(["report", "--db", str(tmp_path), "--out", str(tmp_path / "r.pdf")]) == 0
    said = printed(capsys)
    assert "no glyph for 2 character(s) of the report (工 单); they show blank there" in said
    assert "`--out r.html` shows them" in said and (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF-")
    assert main(["report", "--db", str(tmp_path), "--out", str(tmp_path / "r.md")]) == 0
    assert "glyph" not in printed(capsys)  # Markdown draws nothing


def test_a_pdf_says_that_right_to_left_text_reads_reversed_there(tmp_path, capsys):
    """Arabic was drawn left to right with its letters unjoined, and nothing said so: the font has the glyphs."""
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(_study("فواتير"))
    _trial(store, "فواتير", 0, "prompt", 50, 0.5)
    assert main(["report", "--db", str(tmp_path), "--out", str(tmp_path / "r.pdf")]) == 0
    said = " ".join(printed(capsys).split())
    assert "note: the report holds text written right to left (فواتير), which the PDF draws left to right" in said
    assert "`--out r.html` shows it as written" in said
    assert main(["report", "--db", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 0
    assert "right to left" not in printed(capsys)  # a browser shapes it


def test_the_chart_draws_each_score_and_interval_where_the_axis_puts_them():
    from harness.analysis.interval_chart import LABEL, PLOT, IntervalRow, interval_svg

    svg = interval_svg([IntervalRow("a <b>", Metric(0.5, 0.25, 1.0, 10)), IntervalRow("c", None)], "t & u")
    assert f'<circle cx="{LABEL + PLOT / 2:.1f}"' in svg
    assert f'x1="{LABEL + PLOT / 4:.1f}"' in svg and f'x2="{LABEL + PLOT:.1f}"' in svg
    assert "a &lt;b&gt;" in svg and "t &amp; u" in svg and svg.count("<circle") == 1 and "not measured" in svg


def test_a_searched_opponent_says_how_its_prompt_was_chosen(tmp_path, capsys):
    """The real opponent is a `dspy` arm: the comparison shows its search beside the fine-tuned trial's training."""
    store = Store(tmp_path / "results" / "harness.duckdb")
    store.record_study(_study("d"))
    search = PromptSearch("BootstrapFewShotWithRandomSearch (dspy 3.4.1)", "task accuracy", 50, 100,
                          (0.24, 0.22, 0.1), 8, 1104, 294.0)
    _trial(store, "d", 0, "dspy", 50, 0.5, prompt_search=search, shots=("train:1", "train:2"))
    _trial(store, "d", 1, "lora", 90, 0.9, training=TrainingSummary(100, "max_steps", 800, 8, planned_steps=100))
    out = tmp_path / "report.md"
    assert main(["report", "--db", str(tmp_path / "results"), "--out", str(out)]) == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| prompt searched"))
    assert row.split(" | ")[1] == "-" and search.text() in row  # the fine-tuned trial searched nothing
    assert "chose 8 shots from 100 train examples: 24.0% on 50 train examples held out" in row


def test_a_pdf_tables_spare_width_goes_to_the_smallest_needs_first():
    from harness.analysis.report_pdf import _fill

    # an interval that wants 5 mm more gets them all; the two long columns share the remaining 55 equally
    assert _fill({0: 10.0, 1: 10.0, 2: 10.0}, {0: 5.0, 1: 100.0, 2: 50.0}, 60.0) == {0: 15.0, 1: 37.5, 2: 37.5}
    assert _fill({0: 10.0}, {0: 5.0}, 100.0) == {0: 15.0}  # never more than it wants
    assert _fill({0: 10.0, 1: 10.0}, {0: 5.0, 1: 5.0}, -3.0) == {0: 10.0, 1: 10.0}  # no room: each keeps its least


def test_a_fine_tuned_trial_with_no_prompting_arm_to_weigh_is_written_unpriced_with_payback_s_reason(tmp_path,
                                                                                                   capsys):
    """Outside the verdict's own pair, what payback refuses leaves the report unpriced, with the reason; the report
    is still written."""
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(_study("t"))
    store.record_run(RunRecord("r-t", "t", 1, "host", "cpu", "x86_64", 2, {}))
    _trial(store, "t", 0, "lora", 70, 0.7)
    assert main(["report", "--db", str(tmp_path), "--volume", "1000"]) == 0
    text = (tmp_path / "report-t.md").read_text()
    assert "Not priced: the verdict weighs no fine-tuned trial against a prompting arm, and " in text
    assert "--baseline" in text.split("Not priced:")[1]  # payback's own refusal, which names the fix


def test_unbalanced_test_answers_are_a_caution_with_the_score_of_always_answering_the_commonest(tmp_path):
    """`harness show` gave the floor; the report, which leads and finance read, did not."""
    from harness.core.label_report import LabelReport, LabelRow

    store = Store(tmp_path / "harness.duckdb")
    store.record_study(_study("skewed"))
    skewed = LabelReport(n=100, invalid=0, macro_f1=0.5, macro_labels=2, confusion={},
                         labels={"red": LabelRow(0.9, 0.9, 0.9, 90, 90), "blue": LabelRow(0.1, 0.1, 0.1, 10, 10)})
    _trial(store, "skewed", 0, "prompt", 50, 0.5)
    _trial(store, "skewed", 1, "lora", 90, 0.9, label_reports={"test": skewed},
           training=TrainingSummary(100, "max_steps", 800, 8, planned_steps=100))
    assert main(["report", "--db", str(tmp_path)]) == 0
    cautions = (tmp_path / "report-skewed.md").read_text().split("## Cautions", 1)[1].split("## ", 1)[0]
    assert "- The test answers are unbalanced: always answering `red`, the commonest test label, would score 90.0% [" \
           in cautions and "n=100" in cautions


def test_the_dev_constraints_are_listed_with_their_limits_and_an_interval_past_one_is_a_caution(tmp_path):
    """Finance read "meets every dev constraint" with no limit printed, beside a forgetting interval of [-9.1, +6.7]
    points under a 5-point limit: met by its estimate, not shown by its interval."""
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(_study("c"))
    _trial(store, "c", 0, "prompt", 50, 0.5)
    checks = (MetricRow.of("dev", "format_compliance", Metric(1.0, 0.929, 1.0, 50)),
              MetricRow.of("dev", "hallucination_rate", Metric(0.0, 0.0, 0.071, 50)),
              MetricRow.of("dev", "regression_delta", Metric(-0.01, -0.091, 0.067, 200)))
    excess = {"format_compliance": 0.9 - 1.0, "hallucination_rate": 0.0 - 0.1, "regression_delta": -0.05 + 0.01}
    _trial(store, "c", 1, "lora", 90, 0.9, more_metrics=checks, constraints=excess)
    assert main(["report", "--db", str(tmp_path)]) == 0
    text = (tmp_path / "report-c.md").read_text()
    comparison = text.split("## The comparison behind the answer", 1)[1].split("## Every trial", 1)[0]
    assert "- format compliance on dev at least 90.0%: 100.0% [92.9, 100.0] n=50: met, with its whole interval" \
        in comparison
    assert "- hallucination rate on dev at most 10.0%: 0.0% [0.0, 7.1] n=50: met, with its whole interval" in comparison
    doubtful = ("forgetting on the general check no worse than -5.0 points: -1.0 points, 95% CI [-9.1, +6.7], n=200: "
                "met at its estimate, but its 95% interval reaches past the limit: not shown")
    assert f"- {doubtful}" in comparison
    cautions = text.split("## Cautions", 1)[1].split("## ", 1)[0]
    assert f"- c/1's {doubtful} (a constraint is judged by its estimate" in cautions
    answer = text.split("## Answer", 1)[1].split("## ", 1)[0]  # beside "meets every dev constraint"
    assert ("c/1 meets its dev constraints by their estimates, but the 95% interval of one reaches past its limit: "
            "forgetting on the general check no worse than -5.0 points (-1.0 points, 95% CI [-9.1, +6.7], n=200). "
            "They are listed below") in answer

    # a trial that breaks another constraint does not "meet its dev constraints": the answer said it breaks one
    broken = tmp_path / "broken"
    store = Store(broken / "harness.duckdb")
    store.record_study(_study("c"))
    _trial(store, "c", 0, "prompt", 50, 0.5)
    unformatted = (MetricRow.of("dev", "format_compliance", Metric(0.0, 0.0, 0.071, 50)), *checks[1:])
    _trial(store, "c", 1, "lora", 90, 0.9, more_metrics=unformatted, constraints={**excess, "format_compliance": 0.9})
    assert main(["report", "--db", str(broken)]) == 0
    answer = (broken / "report-c.md").read_text().split("## Answer", 1)[1].split("## ", 1)[0]
    assert "meets its dev constraints" not in answer and "breaks format_compliance on dev" in answer
    assert "Besides, for c/1, the 95% interval of one reaches past its limit: forgetting" in answer


def test_a_constraint_broken_at_its_estimate_only_says_its_interval_reaches_back_within_the_limit(tmp_path):
    """A trial at 12% invented labels on 50 dev examples, under a 10% limit, was called "broken" as plainly as one at
    40%: its interval [4.5, 24.3] reaches back within the limit, so the veto rests on the estimate alone. The veto
    stands (trials are judged by their estimates); the report, the verdict and the gate say what it rests on."""
    from harness.analysis import gate

    store = Store(tmp_path / "harness.duckdb")
    store.record_study(_study("v"))
    _trial(store, "v", 0, "prompt", 50, 0.5)
    checks = (MetricRow.of("dev", "format_compliance", Metric(0.80, 0.67, 0.89, 50)),
              MetricRow.of("dev", "hallucination_rate", Metric(0.12, 0.045, 0.243, 50)))
    excess = {"format_compliance": 0.9 - 0.80, "hallucination_rate": 0.12 - 0.10, "regression_delta": None}
    _trial(store, "v", 1, "lora", 90, 0.9, more_metrics=checks, constraints=excess, feasible=False)
    assert main(["report", "--db", str(tmp_path)]) == 0
    text = (tmp_path / "report-v.md").read_text()
    comparison = text.split("## The comparison behind the answer", 1)[1].split("## Every trial", 1)[0]
    assert ("- hallucination rate on dev at most 10.0%: 12.0% [4.5, 24.3] n=50: broken at its estimate, which "
            "decides; its 95% interval reaches back within the limit, so more items could lift it") in comparison
    assert "- format compliance on dev at least 90.0%: 80.0% [67.0, 89.0] n=50: broken, with its whole interval" \
        in comparison
    answer = text.split("## Answer", 1)[1].split("## ", 1)[0]
    assert "NOT READY" in answer
    assert ("hallucination_rate on dev (12.0% [4.5, 24.3] n=50, broken at its estimate only: its 95% interval reaches "
            "back within the limit)") in answer
    assert "format_compliance on dev (80.0% [67.0, 89.0] n=50)" in answer  # broken with its whole interval
    trials = {t.id: t for t in store.trials(study="v")}
    rule = gate._feasible_rule(trials["v/1"])  # the gate's rule on the sweep's constraints
    assert not rule.passed
    assert "hallucination_rate (beyond its limit by 2.0 points, broken at its estimate only" in rule.detail


def test_other_studies_on_the_same_test_examples_are_a_caution(tmp_path):
    """Six studies run on the same 36 test examples until one read YES: the report of any one never named the
    others."""
    store = Store(tmp_path / "harness.duckdb")
    same = {"data": {"subset_sha256": {"test": "t-same"}}}
    for name, subset in (("first", same), ("again", same), ("fresh", {"data": {"subset_sha256": {"test": "t-new"}}})):
        store.record_study(_study(name))
        _trial(store, name, 0, "prompt", 50, 0.5, provenance=subset)
        _trial(store, name, 1, "lora", 90, 0.9, provenance=subset)
    assert main(["report", "--study", "again", "--db", str(tmp_path)]) == 0
    cautions = " ".join((tmp_path / "report-again.md").read_text().split("## Cautions", 1)[1].split())
    assert "holds 1 other study scored on the same test examples (first): an answer picked among several" in cautions
    assert main(["report", "--study", "fresh", "--db", str(tmp_path)]) == 0
    assert "other stud" not in (tmp_path / "report-fresh.md").read_text()
    # a study that scored nothing took no look; one of another suite (relabelled targets) is not the same test
    store.record_study(_study("failed"))
    _trial(store, "failed", 0, "lora", 0, 0.0, status="failed", failure_reason="stopped by SIGTERM",
           provenance=same)
    store.record_study(dataclasses.replace(_study("relabelled"), suite="colours-relabelled"))
    _trial(store, "relabelled", 0, "prompt", 50, 0.5, provenance=same)
    store.record_study(_study("v2"))  # the same ids in another version of the suite's test file
    _trial(store, "v2", 0, "prompt", 50, 0.5,
           provenance={"data": {"subset_sha256": {"test": "t-same"}, "suite_version": "2.0.0"}})
    assert main(["report", "--study", "again", "--db", str(tmp_path)]) == 0
    cautions = " ".join((tmp_path / "report-again.md").read_text().split("## Cautions", 1)[1].split())
    assert "holds 1 other study scored on the same test examples (first)" in cautions


def test_the_cautions_say_what_the_answer_prose_warns_of(tmp_path):
    """An opponent no better than a constant answer, the forgetting check off, and test inputs that
    copy train inputs: each was said in the answer's prose or the sweep's output, and none in the Cautions a
    director reads or the JSON `cautions` a pipeline reads."""
    from harness.core.label_report import LabelReport, LabelRow

    suite = tmp_path / "suites" / "colours"
    suite.mkdir(parents=True)
    (suite / "suite.yaml").write_text("name: colours\nversion: 1.0.0\ntask: classification\ninstruction: Name it.\n"
                                      "output: {kind: label, key: colour, labels: [red, blue, green]}\n")
    rows = [("item 1: the sock is red", "red"), ("item 2: the sky is blue", "blue"),
            ("item 3: grass, says jane.doe@example.com", "green")]
    for split, shift in (("train", 0), ("dev", 10), ("test", 20)):
        (suite / f"{split}.jsonl").write_text("".join(
            json.dumps({"input": text.replace(text.split(":")[0], f"item {i + shift}"), "output": {"colour": label}})
            + "\n" for i, (text, label) in enumerate(rows)))
    store = Store(tmp_path / "harness.duckdb")
    study = _study("weak")
    study = dataclasses.replace(study, suite_path=str(suite), notes={"skipped_methods": {"qlora": "needs CUDA."}},
                                experiment={**study.experiment, "regression": {"enabled": False},
                                            "redaction": {"enabled": True}})
    store.record_study(study)
    mix = LabelReport(n=100, invalid=0, macro_f1=0.5, macro_labels=3, confusion={},
                      labels={"red": LabelRow(0.4, 0.4, 0.4, 40, 40), "blue": LabelRow(0.3, 0.3, 0.3, 30, 30),
                              "green": LabelRow(0.3, 0.3, 0.3, 30, 30)})
    _trial(store, "weak", 0, "prompt", 25, 0.3)  # below always answering `red` (40%)
    scored_on = hashlib.sha256((suite / "test.jsonl").read_bytes()).hexdigest()
    _trial(store, "weak", 1, "lora", 90, 0.9, label_reports={"test": mix},
           training=TrainingSummary(100, "max_steps", 800, 8, planned_steps=100),
           provenance={"data": {"split_sha256": {"test": scored_on}}})
    assert main(["report", "--db", str(tmp_path), "--out", str(tmp_path / "weak.json")]) == 0
    cautions = json.loads((tmp_path / "weak.json").read_text())["cautions"]
    assert "weak/0 scored no better than always answering `red` (40.0%), so it is a weak measure of what local " \
           "prompting can do here." in cautions
    assert "The forgetting check did not run (regression.enabled: false) for weak/1, so nothing here measures what " \
           "fine-tuning cost the model's general ability." in cautions
    assert any(c.startswith("The suite colours: 3 dev input(s) equal a train input but for their numbers")
               for c in cautions), cautions
    assert "qlora was in the space and was skipped on the machine that ran the study: needs CUDA." in cautions
    assert not any("changed since" in c for c in cautions)
    # the study's redaction holds for the inputs a warning quotes, and the suite is named, not its folder's path
    assert "[REDACTED:email]" in " ".join(cautions) and "jane.doe" not in " ".join(cautions)
    assert str(tmp_path) not in " ".join(cautions) and "test.jsonl:1" in " ".join(cautions)
    cleaned = (suite / "test.jsonl").read_text().splitlines()[0] + "\n"  # under the same version
    (suite / "test.jsonl").write_text(cleaned)
    assert main(["report", "--db", str(tmp_path), "--out", str(tmp_path / "weak.json")]) == 0
    cautions = json.loads((tmp_path / "weak.json").read_text())["cautions"]
    assert "The suite colours: its test.jsonl changed since weak/1 was scored, under the same version: the scores " \
           "here are of the suite as it was then." in " ".join(cautions)


def test_a_loss_after_less_than_one_pass_is_a_caution(tmp_path):
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(_study("short"))
    _trial(store, "short", 0, "prompt", 50, 0.5)
    _trial(store, "short", 1, "lora", 48, 0.45, training=TrainingSummary(6, "max_steps", 480, 8, planned_steps=6))
    assert main(["report", "--db", str(tmp_path), "--out", str(tmp_path / "short.json")]) == 0
    shown = json.loads((tmp_path / "short.json").read_text())
    assert shown["verdict"]["head"] == "NOT SHOWN"
    assert any(c.startswith("short/1 trained 6 steps of 8 examples, 0.1 passes over its 480 train examples: this says "
                            "fine-tuning did not win at this budget") for c in shown["cautions"]), shown["cautions"]


def test_payback_against_a_weakly_prompted_baseline_says_so(tmp_path):
    """The verdict named the 0-shot opponent the best of weaker prompting; payback, which finance reads, priced the
    saving against it without a word."""
    (prices := tmp_path / "prices.yaml").write_text(PRICES)
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(_study("w"))
    store.record_run(RunRecord("r-w", "w", 1, "gpu-box", "cuda", "NVIDIA H100 80GB HBM3", 16,
                               {"versions": VERSIONS, "python": "3.11.7", "torch_threads": 16}))
    _trial(store, "w", 0, "prompt", 50, 0.5, test_seconds=100.0, params={"method": "prompt", "shots": 0})
    _trial(store, "w", 1, "lora", 90, 0.9, training=TrainingSummary(100, "max_steps", 800, 8, planned_steps=100))
    result = payback_from_store(store, "w/1", "w/0", 100_000, prices=load_prices(prices))
    assert "Caution: No local prompting trial retrieved shots for each input or searched its prompt, so w/0 " \
           "(shots=0) is the best of weaker prompting" in result.reason


def test_where_prompting_won_the_report_says_how_to_take_its_prompt_to_production():
    from types import SimpleNamespace

    from harness.analysis.decision_report import _reproduce
    from harness.analysis.verdict import Verdict

    def section(text: str) -> str:
        return _reproduce(SimpleNamespace(verdict=Verdict(text, finetuned="s/1", prompting="s/0"), payback=None,
                                          database=Path("r/harness.duckdb"), study=SimpleNamespace(name="s")))

    assert ("Prompting won: `harness export s/0 --out prompt/ --db r/harness.duckdb` writes its prompt"
            in section("NO - local prompting beat fine-tuning. s/1 scored ..."))
    assert "harness export" not in section("YES - fine-tuning beat local prompting. s/1 scored ...")


def test_the_registry_table_flags_adapters_the_gate_would_refuse(tmp_path, capsys):
    """Only the registry's JSON said an adapter was infeasible or under-trained; its table read plain "candidate"."""
    store = Store(tmp_path / "harness.duckdb")
    store.record_study(_study("r"))
    full = TrainingSummary(100, "max_steps", 800, 8, planned_steps=100)
    _trial(store, "r", 0, "lora", 90, 0.9, artifact_path="a0", training=full)
    _trial(store, "r", 1, "lora", 90, 0.9, feasible=False, artifact_path="a1", training=full)
    _trial(store, "r", 2, "lora", 90, 0.9, artifact_path="a2",
           training=TrainingSummary(13, "time budget", 800, 8, planned_steps=250))
    assert main(["registry", "--db", str(tmp_path)]) == 0
    rows = {line.split("│")[3].strip(): line.split("│")[2].strip() for line in capsys.readouterr().out.splitlines()
            if line.count("│") > 4 and " r/" in line}
    assert rows == {"r/0": "candidate", "r/1": "candidate (infeasible)", "r/2": "candidate (under-trained)"}


def test_a_free_text_arm_that_answers_alike_or_cut_at_the_cap_is_a_caution(tmp_path):
    """14 summaries that were 3 strings read YES against prompting; answers all cut at the 48-token cap were said by
    `show` alone."""
    suite = tmp_path / "suites" / "summ"
    suite.mkdir(parents=True)
    (suite / "suite.yaml").write_text("name: summ\nversion: 1.0.0\ntask: generation\ninstruction: Summarise.\n"
                                      "output: {kind: text, whole_output: true}\n"
                                      "scorers: [format_compliance, task_accuracy, rouge_l]\n")
    for split in ("train", "dev", "test"):
        (suite / f"{split}.jsonl").write_text("".join(json.dumps({"input": f"{split} story {i} " * 3,
                                                                  "output": f"{split} summary {i}"}) + "\n"
                                                      for i in range(12)))
    store = Store(tmp_path / "harness.duckdb")
    study = dataclasses.replace(_study("summ"), suite="summ", suite_path=str(suite), objective_metric="rouge_l")
    store.record_study(study)

    def answers(trial: str, outputs: list[str], tokens: int) -> None:
        store.record_trial_result(TrialRecord(
            id=trial, study="summ", number=int(trial[-1]), run_id="r", method="lora" if trial[-1] == "1" else "prompt",
            trained=trial[-1] == "1", status="complete", device="cpu", train_seconds=1.0, eval_seconds=1.0,
            objective=0.5 if trial[-1] == "1" else 0.1, feasible=True, provenance={"max_new_tokens": 48},
            metrics=[MetricRow.of("dev", "rouge_l", Metric(0.5, 0.4, 0.6, 12)),
                     MetricRow.of("test", "rouge_l", Metric(0.5, 0.4, 0.6, 12))],
            examples=[ExampleRow("test", f"t{i}", "x", "y", out, completion_tokens=tokens,
                                 scores={"rouge_l": 0.5 if trial[-1] == "1" else 0.1})
                      for i, out in enumerate(outputs)]))

    answers("summ/1", [f"the town voted {i % 3}" for i in range(12)], 6)  # 3 answers for 12 inputs
    answers("summ/0", [f"a long answer {i}" for i in range(12)], 48)  # every one at the cap
    assert main(["report", "--db", str(tmp_path), "--out", str(tmp_path / "summ.json")]) == 0
    cautions = json.loads((tmp_path / "summ.json").read_text())["cautions"]
    assert any(c.startswith("summ/1 gave 3 distinct answers to 12 test inputs: a near-constant") for c in cautions), \
        cautions
    assert any(c.startswith("summ/0: 12 of 12 answers cut at the 48-token cap (generation.max_new_tokens) on test")
               for c in cautions), cautions
    assert not any(c.startswith("summ/0 gave") or c.startswith("summ/1:") and "cap" in c for c in cautions)
