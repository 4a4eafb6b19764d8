"""`harness report`: a study's answer as one Markdown document that a lead or finance reads without the tool.

In order: the verdict and the one rule that gave it; the two arms it weighed, every score with its 95% interval and
n, and their paired difference; every trial; the cautions (failed, cut-short and infeasible trials, intervals by older
rules); the payback with every assumption and its source, when a volume is given; the machines and library versions
the trials ran on; the commands that re-derive each figure. It reads the results database only; it decides nothing
the sweep did not (the verdict is `harness.analysis.verdict`'s, the payback `harness.analysis.payback`'s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import json
import os
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.table import Table

from harness.analysis.compare import study_suite
from harness.analysis.decision_rule import DECISION_RULE, VERDICT_RULE
from harness.analysis.formatting import (
    broken_constraint,
    constraint_readings,
    duration,
    flag_value,
    fmt_metric,
    params_text,
    quantity,
    regression_counted,
    rules_note,
    sentence,
    under_trained_text,
)
from harness.analysis.interval_chart import IntervalRow, interval_svg
from harness.analysis.payback import PaybackResult
from harness.analysis.report import (
    assumption_rows,
    capped_counts,
    capped_text,
    constant_answer_floor,
    payback_facts,
    ranking_table,
)
from harness.analysis.verdict import Verdict, arm_kind, below_floor, short_training, study_verdict, weak_opponents
from harness.core.config import RedactionConfig
from harness.core.errors import ConfigError, HarnessError
from harness.core.records import RunView, StudyView, TrialView
from harness.core.redaction import Redactor
from harness.core.selection import best, ranked
from harness.core.text import markdown_inert
from harness.core.typed import build
from harness.data.suite_warnings import suite_warnings
from harness.data.suites import Suite, differs_from_recorded, show_path
from harness.evaluation.regression import too_few_to_decide
from harness.store.database import Store

Pricer = Callable[[str, str | None], PaybackResult]
"""(fine-tuned trial id, the verdict's opponent id) -> its payback, as `harness payback` computes it: against the
user's --baseline when one was given, else that opponent, else (None) `harness payback`'s default baseline."""

TRACKED = ("torch", "transformers", "peft", "trl", "optuna", "duckdb")
"""The library versions a report names for each run (a run records more; `harness show` and the audit pack list
them all)."""


@dataclass(frozen=True)
class DecisionReport:
    study: StudyView
    trials: tuple[TrialView, ...]
    verdict: Verdict
    runs: Mapping[str, RunView]
    """The runs the study's trials ran in, by run id: their machines and library versions."""
    database: Path
    written_at: datetime
    payback: PaybackResult | None = None
    unpriced: str = ""
    """Why the report has no payback figure, when it has none."""
    payback_flags: str = ""
    """The flags that priced it, as `harness payback` takes them (` --eng-hours 40 --eng-rate 120`)."""
    payback_note: str = ""
    """Why the payback prices what the verdict does not weigh (an under-trained trial, a baseline it lacks), if so."""
    edited: tuple[str, ...] = ()
    """Each of the study's trials whose evidence no longer matches its seal, in words: the report reads the edited
    numbers, and says so first."""
    same_test: tuple[str, ...] = ()
    """Other sweep studies of this database scored on the same test examples: an answer picked among their verdicts
    is picked on test."""
    suite_warnings: tuple[str, ...] = ()
    """What the sweep warned of the suite (test inputs that copy or reword train inputs, labels train lacks), read
    again from its folder where it still holds the version the study was scored on."""
    answer_notes: tuple[str, ...] = ()
    """What the verdict's two arms' test answers show that their scores do not: answers cut at the token cap, and a
    free-text arm that gives nearly one answer whatever the input."""

    def trial(self, trial_id: str | None) -> TrialView | None:
        return next((t for t in self.trials if t.id == trial_id), None)


def pick_study(store: Store, given: str | None) -> StudyView:
    """The study named, or the database's only sweep study; otherwise an error that lists the studies to name."""
    if not store.path.exists():
        raise HarnessError(f"no results database at {store.path}: run a sweep (`harness sweep EXPERIMENT`) in this "
                           "folder first, or point --db at the harness.duckdb of a results folder.")
    sweeps = [s for s in store.studies() if s.kind == "sweep"]
    names = ", ".join(s.name for s in sweeps) or "none"
    if given is not None:
        study = store.study(given)
        if study is None:
            raise HarnessError(f"no study {given!r} in {store.path}; its studies: {names}. Pass one of them to "
                               "--study.")
        return study
    if len(sweeps) == 1:
        return sweeps[0]
    if not sweeps:
        raise HarnessError(f"{store.path} holds no study yet: run a sweep (`harness sweep EXPERIMENT`) first.")
    raise HarnessError(f"{store.path} holds {len(sweeps)} studies ({names}); name the one to report with --study.")


def build_report(store: Store, study: StudyView, price: Pricer | None, written_at: datetime,
                 payback_flags: str = "") -> DecisionReport:
    """The study's verdict, trials and runs; with `price`, the payback of the verdict's fine-tuned trial, else of the
    study's best one cut short (as `harness payback` prices it, said so in `payback_note`)."""
    trials = tuple(store.trials(study.name))
    if not trials:
        raise HarnessError(f"study {study.name} has no trial yet in {store.path}: run or resume its sweep first.")
    verdict = study_verdict(store, study.name)
    runs = store.runs(t.run_id for t in trials if t.run_id)
    payback, unpriced, note = None, "", ""
    fallback = best(trials, trained=True)  # under-trained ones too, as `harness payback` takes them
    tuned = verdict.finetuned or (fallback.id if fallback is not None else None)
    if price is None:
        unpriced = ("Not priced: no volume was given. `harness report --volume QUERIES_PER_MONTH` adds the payback, "
                    "with your one-time costs and rates (`harness report --help`).")
    elif tuned is None:
        unpriced = (f"Not priced: study {study.name} has no complete fine-tuned trial, so there is nothing to weigh "
                    "against a baseline, the verdict's or --baseline's: payback prices what a fine-tuned model saves.")
    else:
        try:
            payback = price(tuned, verdict.prompting)
        except HarnessError as exc:
            if verdict.finetuned is not None and verdict.prompting is not None:
                raise  # the verdict's own pair refused: the user's inputs or the data need fixing, as for payback
            unpriced = f"Not priced: the verdict weighs no fine-tuned trial against a prompting arm, and {exc}"
        else:
            note = _outside_the_verdict(next(t for t in trials if t.id == tuned), verdict, payback)
    edited = tuple(check.problem() for check in store.seals([t.id for t in trials]) if not check.intact)
    suite = study_suite(study)  # its folder as it is now, read once for the warnings and the answers' kind
    # absolute: the document is read elsewhere, where `--db results` means nothing
    return DecisionReport(study, trials, verdict, runs, store.path.absolute(), written_at, payback, unpriced,
                          payback_flags, note, edited, _same_test(store, study, trials),
                          _suite_warnings(study, suite, verdict, trials), _answer_notes(store, suite, trials, verdict))


NEAR_CONSTANT = 0.25
"""A free-text arm with distinct test answers at most this share of its test inputs answers nearly alike whatever
the input: 14 summaries that were 3 strings scored ROUGE-L 0.23 to prompting's 0.05, a YES, where one fixed
sentence scored 0.40."""


def _answer_notes(store: Store, suite: Suite | None, trials: Sequence[TrialView], verdict: Verdict
                  ) -> tuple[str, ...]:
    free_text = suite is not None and suite.contract.kind == "text"
    notes = []
    for trial in (t for t in trials if t.id in (verdict.finetuned, verdict.prompting)):
        examples = [e for e in store.examples(trial.id, "test") if e.error is None]
        if (cut := capped_counts(trial, examples).get("test")) is not None:
            notes.append(f"{trial.id}: {capped_text(*cut, trial.max_new_tokens)} on test, so it is scored on cut "
                         "answers; raise generation.max_new_tokens where the answers are meant to be longer.")
        distinct = len({e.output.strip() for e in examples})
        if free_text and len(examples) >= 10 and distinct <= NEAR_CONSTANT * len(examples):
            notes.append(f"{trial.id} gave {distinct} distinct answer{'s' if distinct > 1 else ''} to "
                         f"{len(examples)} test inputs: a near-constant answer scores what a fixed text would, not "
                         "what reading the input does, and free text has no constant-answer floor to weigh it "
                         f"against here. Read its answers (`harness show {trial.id} --examples 20`) before acting on "
                         "its score.")
    return tuple(notes)


def _suite_warnings(study: StudyView, suite: Suite | None, verdict: Verdict, trials: Sequence[TrialView]
                    ) -> tuple[str, ...]:
    """The suite's warnings as its folder holds it now, and whether that folder still holds what the verdict's
    trials were scored on: a test file cleaned under the same version had the report repeat the old YES unremarked."""
    if suite is None:
        return ()
    # the study's redaction holds for what the report quotes of its data too: a warning quotes inputs
    try:
        redaction = build(RedactionConfig, study.redaction, f"study {study.name}", "redaction.")
    except ConfigError:  # a block this release no longer reads: redact with the defaults rather than not at all
        redaction = RedactionConfig(enabled=True)
    redactor = Redactor.from_config(redaction)
    said = [redactor.redact(_in_the_suite(warning, Path(suite.path))) for warning in suite_warnings(suite)]
    for trial in trials:
        if trial.id in (verdict.finetuned, verdict.prompting) and (changed := differs_from_recorded(
                suite, trial.data.split_sha256, trial.data.suite_setup_sha256)) is not None:
            said.insert(0, f"{changed} changed since {trial.id} was scored, under the same version: the scores here "
                           "are of the suite as it was then. Bump its `version` and run a new study to score the "
                           "suite as it is.")
            break
    return tuple(said)


def _same_test(store: Store, study: StudyView, trials: Sequence[TrialView]) -> tuple[str, ...]:
    """The other sweep studies whose trials were scored on this study's test subset (its follow-ups are its own)."""
    def test_of(trial: TrialView) -> tuple:  # the examples by id, the file they came from and its version
        data = trial.data
        return data.suite_version, data.split_sha256.get("test"), data.subset_sha256.get("test")

    tests = {test_of(t) for t in trials if t.data.subset_sha256.get("test")}
    if not tests:
        return ()
    # a study that scored nothing took no look, and one of another suite (relabelled, say) or version is not the
    # same test, whatever ids its examples share
    return tuple(other.name for other in store.studies() if other.kind == "sweep" and other.name != study.name
                 and other.suite == study.suite and any(t.complete and test_of(t) in tests
                                                        for t in store.trials(other.name)))


def _in_the_suite(warning: str, folder: Path) -> str:
    """A suite warning as the report quotes it under the suite's name: its files by their names alone, since the
    folder's path holds only on the machine, and in the folder, where the command ran."""
    for shown in dict.fromkeys((show_path(folder), str(folder), str(folder.resolve()))):
        warning = warning.removeprefix(f"{shown}: ").replace(f"{shown}/", "")
    return warning


def _outside_the_verdict(tuned: TrialView, verdict: Verdict, payback: PaybackResult) -> str:
    """What the payback prices that the verdict does not weigh, as `harness payback` prices it; "" when it prices
    the verdict's own pair."""
    said = []
    if verdict.finetuned is None:
        why = f"{tuned.id} is {under_trained_text(tuned)}" if tuned.under_trained else f"it leaves out {tuned.id}"
        said.append(f"The verdict weighs no fine-tuned trial: {why}, so it does not stand for fine-tuning. This "
                    f"payback prices it all the same, as `harness payback {tuned.id}` does, with its cautions below.")
    if payback.baseline != verdict.prompting:
        opponent = (f"not the verdict's opponent {verdict.prompting}" if verdict.prompting
                    else "as the verdict weighed no prompting arm")
        said.append(f"It is priced against {payback.baseline}, {opponent}.")
    return " ".join(said)


def to_markdown(report: DecisionReport) -> str:
    return "\n\n".join(text for _, text in _sections(report) if text) + "\n"


def _sections(report: DecisionReport) -> list[tuple[str, str]]:
    return [("title", _title(report)), ("answer", _answer(report)), ("comparison", _comparison(report)),
            ("trials", _every_trial(report)), ("cautions", _cautions(report)), ("payback", _payback(report)),
            ("machines", _machines(report)), ("reproduce", _reproduce(report))]


FORMATS = {"md": "Markdown", "html": "a self-contained HTML page", "pdf": "a PDF",
           "json": "JSON for a pipeline (the verdict, its decision and cautions, the payback)"}
"""`--format`'s choices, each the suffix of the file it writes, and what it writes."""
SUFFIXES = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf", ".json": "json"}
"""An `--out` file's suffix decides its format; another suffix is refused, and a file without one is written as
--format says."""


STYLE = ("body{font-family:system-ui,sans-serif;max-width:75rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
         "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}"
         "th,td{border:1px solid #bbb;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#eee}"
         "code,pre{background:#f5f5f5}pre{padding:.5rem;white-space:pre-wrap}figure{margin:1rem 0}"
         "@media print{body{max-width:none}}")
"""Inline, so the page needs no network, and prints as it shows."""


JSON_SCHEMA = 1
"""Bumped when a key of `to_json` changes meaning or goes; new keys may be added within a version."""


def to_json(report: DecisionReport) -> str:
    """The answer for a pipeline to gate on without parsing prose (`jq -e '.verdict.head == "YES"'`): the verdict's
    head (YES, NOT READY, NO, NOT SHOWN, No verdict) and whether it is ready to act on, the decision behind it (the
    difference with its 95% interval and n, the test and p), the rule, the cautions and the payback, as the Markdown
    report gives them."""
    verdict, study = report.verdict, report.study
    decision = None
    if verdict.decision is not None:
        decision = dataclasses.asdict(verdict.decision)
        decision["p_value"] = None if verdict.decision.test == "none" else decision["p_value"]  # no test was run
    return json.dumps({
        "schema": JSON_SCHEMA,
        "study": study.name, "suite": study.suite, "suite_version": study.suite_version, "model": study.model_name,
        "objective_metric": study.objective_metric, "written_at": report.written_at.isoformat(timespec="seconds"),
        "verdict": {"head": verdict.head, "ready": verdict.ready, "text": verdict.text,
                    "finetuned": verdict.finetuned, "opponent": verdict.prompting,
                    "opponent_kind": verdict.opponent_kind, "decision": decision, "rule": VERDICT_RULE},
        "cautions": caution_lines(report),
        "payback": None if report.payback is None else report.payback.to_dict(),
        "unpriced": report.unpriced or None,
    }, indent=2, ensure_ascii=False, default=str) + "\n"


def to_html(report: DecisionReport) -> str:
    """The report as one HTML page, with the trials' test scores drawn under their table: no scripts, no links out;
    any HTML in the report's text is escaped."""
    from markdown_it import MarkdownIt

    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = []
    for name, text in _sections(report):
        body.append(markdown.render(text) if text else "")
        if name == "trials":
            body.append(f"<figure>{_trials_chart(report)}</figure>\n")
    title = html.escape(f"Does fine-tuning beat prompting on {report.study.suite}? Study {report.study.name}")
    return (f'<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{''.join(body)}</body>\n</html>\n")


def to_pdf(report: DecisionReport) -> bytes:
    """The report as a PDF (landscape A4, fonts embedded), the trials' chart under their table as in the HTML."""
    from harness.analysis.report_pdf import FAMILY, markdown_pdf

    footer = f"Study {report.study.name} on {report.study.suite}, written {report.written_at:%Y-%m-%d %H:%M} UTC"
    return markdown_pdf(_sections(report), {"trials": _trials_chart(report, FAMILY)}, footer)


def pdf_gaps(report: DecisionReport) -> tuple[list[str], list[str]]:
    """What the report's PDF cannot show as written, from one rendering of its text: the characters its font cannot
    draw (they show blank), and the right-to-left words it draws reversed and unjoined (`right_to_left`)."""
    from harness.analysis.report_pdf import missing_glyphs, right_to_left

    text = to_markdown(report)
    return missing_glyphs(text), right_to_left(text)


def _trials_chart(report: DecisionReport, font: str = "sans-serif") -> str:
    metric = report.study.objective_metric
    weighed = {report.verdict.finetuned, report.verdict.prompting}
    rows = [IntervalRow(f"{t.id} ({t.method})", t.metric("test", metric), t.id in weighed)
            for t in ranked(report.trials)]
    return interval_svg(rows, f"Test {metric}, each with its 95% interval and n (ranked on dev; the two weighed in "
                              "bold)", font)


def report_target(given: str | None, results: Path, study: str, chosen: str | None) -> tuple[Path, str]:
    """(the file to write, its format) for `--out given` and `--format chosen`: a file's suffix decides, and must
    agree with --format; a folder (one that exists, or a path ending in `/`), or no --out (`results`, the results
    folder), gets `report-STUDY.md` inside it, or the suffix --format names. A path under a file is refused here,
    before anything is built or written."""
    if given is None or given.endswith(("/", os.sep)) or Path(given).is_dir():
        fmt = chosen or "md"
        out = (results if given is None else Path(given)) / f"report-{study}.{fmt}"
    else:
        out = Path(given)
        fmt = _format_of(out, chosen)
    _require_folders(out)
    return out, fmt


def _format_of(out: Path, chosen: str | None) -> str:
    named = SUFFIXES.get(out.suffix.lower())
    if out.suffix and named is None:  # a .docx of Markdown would not open, and a .txt hides what it holds
        raise HarnessError(f"--out {out}: the report is written as Markdown (.md), HTML (.html), PDF (.pdf) or "
                           f"JSON (.json), not {out.suffix}; give --out {out.with_suffix('.' + (chosen or 'md'))}.")
    if chosen is not None and named is not None and named != chosen:
        raise HarnessError(f"--out {out} ends in {out.suffix}, which writes {FORMATS[named]}, but --format is "
                           f"{chosen}: give --out {out.with_suffix('.' + chosen)}, or leave --format out.")
    return named or chosen or "md"


def _require_folders(out: Path) -> None:
    """Every existing folder on the way to `out` must be a folder, and `out` itself not one: otherwise the OS says
    only "File exists" or "Is a directory", which names neither the path in the way nor the fix."""
    if out.is_dir():
        raise HarnessError(f"--out {out}: a folder of that name is in the way of the report. Give another file name, "
                           "or move the folder aside.")
    if out.exists() and not out.is_file():  # the write moves a new file over `out`: a device or pipe would be gone
        raise HarnessError(f"--out {out}: not a regular file (a device, a pipe or a socket), which the report would "
                           "replace. Write it to standard output with --out - (and redirect that), or give a file.")
    blocker = next((folder for folder in out.parents if folder.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise HarnessError(f"--out {out}: {blocker} is a file, not a folder, so nothing can be written inside it. "
                           f"Give --out a path in a folder (e.g. --out {blocker.parent / out.name}), or move "
                           f"{blocker} aside.")


def render(report: DecisionReport, fmt: str) -> str | bytes:
    """The report in `fmt`, one of FORMATS."""
    if fmt == "pdf":
        return to_pdf(report)
    if fmt == "json":
        return to_json(report)
    return to_html(report) if fmt == "html" else to_markdown(report)


def write_report(content: str | bytes, out: Path) -> list[Path]:
    """Whole or not at all: written beside `out`, then moved over it; a folder it had to make is removed again when
    the write fails. Returns the folders it made, shallowest first, for the caller to name (a typo in --out made a
    folder nobody looks in, without a word)."""
    if out.is_symlink() and out.resolve().is_file():  # written through the link, which stays a link
        out = out.resolve()
    _require_folders(out)
    made = [folder for folder in out.parents if not folder.exists()]
    staging = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # two reports to one file each stage their own
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            staging.write_bytes(content)
        else:
            staging.write_text(content, encoding="utf-8")
        staging.replace(out)
    except OSError as exc:
        if staging.is_file():
            staging.unlink()
        for folder in made:  # deepest first, as `parents` lists them; only the ones this write made
            with contextlib.suppress(OSError):  # not empty after all: leave it
                folder.rmdir()
        raise HarnessError(f"--out {out}: cannot write there ({exc.strerror}); give a file in a folder you can "
                           "write to.") from None
    return list(reversed(made))


def markdown_table(table: Table) -> str:
    """A rich table as a Markdown table, its title above and its caption below."""
    header = [_cell(column.header) for column in table.columns]
    rows = list(zip(*([_cell(cell) for cell in column.cells] for column in table.columns)))
    lines = [f"| {' | '.join(header)} |", f"|{'|'.join(' --- ' for _ in header)}|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    title = f"{_cell(table.title)}\n\n" if table.title else ""
    caption = f"\n\n{_cell(table.caption)}" if table.caption else ""
    return title + "\n".join(lines) + caption


def _cell(value: object) -> str:
    """One line, with Markdown's table separator and emphasis mark escaped (the older-rules mark is a `*`), and no
    link or HTML from the data in it (`markdown_inert`)."""
    return markdown_inert(" ".join(str(value).split())).replace("|", "\\|").replace("*", "\\*")


def _title(report: DecisionReport) -> str:
    study = report.study
    direction = "higher" if study.maximize else "lower"
    return (f"# Does fine-tuning beat prompting on {study.suite}?\n\n"
            f"Study `{study.name}`: suite {study.suite} {study.suite_version}, base model {study.model_name} (sha256 "
            f"{study.model_sha256[:12]}), objective {study.objective_metric} ({direction} is better), "
            f"{len(report.trials)} trials. Written {report.written_at:%Y-%m-%d %H:%M} UTC from `{report.database}`.")


def _answer(report: DecisionReport) -> str:
    text = report.verdict.text  # "YES - fine-tuning beat ...", or "No verdict: ..."
    head, _, rest = text.partition(" - ") if " - " in text else text.partition(": ")
    payback = report.payback  # the money answer beside the quality one, where a reader who stops early reads both
    money = ("" if payback is None else f"**Payback: {payback.headline()}** {payback.candidate} against "
             f"{payback.baseline} at {quantity(payback.volume)} queries a month; the figures and every assumption are "
             "under Cost and payback.\n\n")
    tuned = report.trial(report.verdict.finetuned)
    doubtful = [f"{r.what} ({r.shown})" for r in constraint_readings(tuned) if r.doubtful] if tuned else []
    # "meets its constraints" only where none is broken: the answer above has said which are
    judged = ("" if not doubtful or tuned is None else
              (f"Besides, for {tuned.id}, " if tuned.broken_constraints else
               f"{tuned.id} meets its dev constraints by their estimates, but ")
              + ("the 95% interval of one reaches past its limit: " if len(doubtful) == 1 else
                 f"the 95% intervals of {len(doubtful)} reach past their limits: ")
              + f"{'; '.join(doubtful)}. They are listed below the comparison, and among the cautions.\n\n")
    return (f"## Answer\n\n**{head}.** {rest[:1].upper()}{rest[1:]}\n\n{judged}{money}"
            f"How the answer is decided: {VERDICT_RULE}\n\n{DECISION_RULE}")


def _comparison(report: DecisionReport) -> str:
    verdict = report.verdict
    tuned, opponent = report.trial(verdict.finetuned), report.trial(verdict.prompting)
    if tuned is None or opponent is None:
        return ""
    metric = report.study.objective_metric
    arms = (tuned, opponent)
    rows = [("method", *(t.method for t in arms)),
            ("parameters", *(params_text(t.params) or "-" for t in arms)),
            (f"dev {metric} (chose them)", *(fmt_metric(t.metric("dev", metric), name=metric) for t in arms)),
            *((f"test {name}", *(fmt_metric(t.metric("test", name), name=name) for t in arms))
              for name in dict.fromkeys((metric, "task_accuracy", "format_compliance", "hallucination_rate"))),
            ("forgetting: regression Δ on the general check", *(regression_counted(t) for t in arms)),
            ("training", *(_training_text(t) for t in arms)),
            *((("prompt searched", *(t.prompt_search.text() if t.prompt_search else "-" for t in arms)),)
              if any(t.prompt_search for t in arms) else ()),
            ("where its answers came from", *(_engine_text(t) for t in arms))]
    table = Table()
    for header in ("", f"fine-tuned: {tuned.id}", f"opponent: {opponent.id} ({verdict.opponent_kind} prompting)"):
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    decision = verdict.decision
    paired = (f"Paired difference on test {decision.metric}, fine-tuned minus opponent: {decision.evidence()}. "
              f"Reading: {decision.reading()}." if decision is not None else "")
    body = f"{markdown_table(table)}\n\n{paired}\n\n{_constraints(tuned)}"
    return f"## The comparison behind the answer\n\n{body}".rstrip()


def _constraints(tuned: TrialView) -> str:
    """The dev constraints the fine-tuned trial is held to, with their limits: "meets every dev constraint" means
    these, judged by their estimates."""
    readings = constraint_readings(tuned)
    if not readings:
        return ""
    lines = "\n".join(f"- {r.text}" for r in readings)
    return (f"The constraints {tuned.id} is held to (the experiment's `objective`, on dev, and forgetting on the "
            f"general check's own items; a trial that breaks one never stands for its method), each judged by its "
            f"estimate:\n\n{lines}")


def _training_text(trial: TrialView) -> str:
    training = trial.training
    if not trial.trained or training is None:
        return "not trained"
    steps = (f"{training.steps} of {training.planned_steps} steps" if training.planned_steps
             else f"{training.steps} steps")
    seconds = f", {trial.train_seconds:.0f} s" if trial.train_seconds else ""
    precision = f", {trial.precision}" if trial.precision else ""
    return f"{steps} of {training.examples_per_step} examples{seconds}{precision} (stopped by {training.stopped_by})"


def _engine_text(trial: TrialView) -> str:
    if trial.hosted is not None:
        return f"{trial.hosted.model} via {trial.hosted.endpoint}"
    engine = trial.engine
    if engine is None:
        return trial.device or "-"
    return " ".join(part for part in (engine.name, engine.version, engine.dtype, trial.device) if part)


def _every_trial(report: DecisionReport) -> str:
    table = ranking_table(report.trials, report.study.objective_metric)
    return f"## Every trial\n\n{markdown_table(table)}"


def _cautions(report: DecisionReport) -> str:
    lines = caution_lines(report)
    body = "\n".join(f"- {line}" for line in lines) if lines else (
        "None: every trial completed, none was cut short by its time cap, every trained trial meets the dev "
        "constraints, and every interval is by this release's rules.")
    return f"## Cautions\n\n{body}"


def caution_lines(report: DecisionReport) -> list[str]:
    """What the answer must be read with, a sentence each: the report's Cautions."""
    lines = [f"{problem[:1].upper()}{problem[1:]}: this report reads the edited numbers (`harness registry --verify` "
             "lists every such trial; the gate refuses them)." for problem in report.edited]
    lines += _caution_lines(report.trials)
    if (check := report.study.forgetting_check) is not None and (why := too_few_to_decide(*check)) is not None:
        lines.append(sentence(why[:1].upper() + why[1:]))
    scored = report.trial(report.verdict.finetuned) or next((t for t in report.trials if t.complete), None)
    if scored is not None and (labels := scored.label_reports.get("test")) and (floor := constant_answer_floor(labels)):
        lines.append(sentence("The test answers are unbalanced: " + floor))
    tuned = report.trial(report.verdict.finetuned)
    if (opponent := report.trial(report.verdict.prompting)) is not None:  # the verdict's opponent, when weakly prompted
        lines += weak_opponents(list(report.trials), {report.verdict.opponent_kind or arm_kind(opponent): opponent})
        if tuned is not None and (weak := below_floor(tuned, opponent, report.study.objective_metric)) is not None:
            lines.append(weak)
    if tuned is not None and report.verdict.head not in ("YES", "NOT READY") and (short := short_training(tuned)):
        lines.append(short)
    if tuned is not None and not _forgetting_measured(tuned):
        off = report.study.forgetting_off
        lines.append(f"The forgetting check {'did not run (regression.enabled: false)' if off else 'has no value'} "
                     f"for {tuned.id}, so nothing here measures what fine-tuning cost the model's general ability.")
    lines += (f"The suite {report.study.suite}: {warning}" for warning in report.suite_warnings)
    lines += report.answer_notes
    lines += (sentence(f"{method} was in the space and was skipped on the machine that ran the study: "
                       f"{why.rstrip('.')}") for method, why in report.study.skipped_methods.items())
    for reading in constraint_readings(tuned) if tuned is not None else []:
        if reading.doubtful:
            lines.append(f"{tuned.id}'s {reading.text} (a constraint is judged by its estimate; more dev or check "
                         "items narrow the interval).")
    if report.same_test:
        many = len(report.same_test)
        lines.append(f"{report.database} holds {many} other stud{'ies' if many > 1 else 'y'} scored on the same test "
                     f"examples ({', '.join(report.same_test)}): an answer picked among several studies' verdicts "
                     "is picked on test, and each study run again on it is another look that makes a YES by luck "
                     "likelier. Report the study planned first, or score the final pick on fresh test data.")
    if report.payback is not None and report.payback.machine_caution:  # the headline says "see the caution"
        lines.append(report.payback.machine_caution[:1].upper() + report.payback.machine_caution[1:])
    if report.payback is not None and report.payback.serving_engine == "hf":
        lines.append(sentence(f"The payback's serving cost: {report.payback.serving_source}"))
    return lines


def _forgetting_measured(trial: TrialView) -> bool:
    delta = trial.metric("test", "regression_delta")
    return delta is not None and delta.value is not None


def _caution_lines(trials: Sequence[TrialView]) -> Iterable[str]:
    for t in trials:
        if not t.complete:
            why = f": {markdown_inert(t.failure_reason)}" if t.failure_reason else ""
            yield sentence(f"{t.id} ({t.method}) {t.status}{why}")
        elif t.under_trained:
            yield (f"{t.id} ({t.method}) is {under_trained_text(t)}: its time cap stopped it, so it never stands "
                   "for fine-tuning in the answer.")
        elif t.trained and t.broken_constraints:
            yield (f"{t.id} ({t.method}) breaks " + ", ".join(broken_constraint(t, c) for c in t.broken_constraints)
                   + ", so it is not ready whatever test says.")
        if t.complete and t.trained and (cut := t.data.train_inputs_cut):
            yield (f"{t.id} ({t.method}) learned from {len(cut):,} of its {t.data.sizes.get('train', 0):,} train "
                   "examples with their inputs cut to fit training.max_length (training.over_length: truncate): "
                   "what lay past the cut it never saw.")
        if t.complete and (note := rules_note(t)):
            yield f"{t.id}: {note}"


def _payback(report: DecisionReport) -> str:
    result = report.payback
    if result is None:
        return f"## Cost and payback\n\n{report.unpriced}"
    facts = [sentence(f"{label[:1].upper()}{label[1:]}: {text}") for label, text in payback_facts(result)]
    lines = [f"## Cost and payback\n\n**{result.headline()}** {result.candidate} against {result.baseline} at "
             f"{quantity(result.volume)} queries a month.", *(["", report.payback_note] if report.payback_note else []),
             "", *(f"- {fact}" for fact in facts)]
    if result.sensitivity.tornado:
        table = Table(title="Sensitivity: time to payback at the low and high end of each assumption's range")
        for header in ("assumption", "range", "at the low end", "at the high end"):
            table.add_column(header)
        for bar in result.sensitivity.tornado:
            table.add_row(bar.assumption, f"{quantity(bar.low)} to {quantity(bar.high)} {bar.unit}",
                          duration(bar.months_at_low), duration(bar.months_at_high))
        lines += ["", markdown_table(table)]
    table = Table(title="Every assumption, with its unit and where it comes from")
    for header in ("assumption", "value", "unit", "source"):
        table.add_column(header)
    for row in assumption_rows(result):
        table.add_row(*row)
    return "\n".join([*lines, "", markdown_table(table)])


def _machines(report: DecisionReport) -> str:
    if not report.runs:
        return "## Where it ran\n\nNo run of this study recorded its machine."
    table = Table(title="Each run that scored a trial of this study")
    for header in ("run", "trials", "host", "device", "cores, torch threads", "python", *TRACKED, "harness commit"):
        table.add_column(header)
    for run_id, run in sorted(report.runs.items(), key=lambda item: str(item[1].started_at)):
        env = run.env
        versions = env.versions or {}
        ran = ", ".join(t.id for t in report.trials if t.run_id == run_id)
        table.add_row(run_id, ran, run.host or "-", " ".join(p for p in (run.device, run.device_name) if p) or "-",
                      f"{run.cpu_count or '-'}, {env.torch_threads or '-'}", env.python or "-",
                      *(versions.get(name) or "-" for name in TRACKED), env.git_commit or "-")
    return f"## Where it ran\n\n{markdown_table(table)}"


def _reproduce(report: DecisionReport) -> str:
    verdict, db = report.verdict, f" --db {shlex.quote(str(report.database))}"
    commands = [f"harness trials --study {report.study.name}{db}"]
    if verdict.finetuned and verdict.prompting:
        commands += [f"harness show {verdict.finetuned}{db}",
                     f"harness compare {verdict.finetuned} {verdict.prompting}{db}"]
    if report.payback is not None:
        commands.append(f"harness payback {report.payback.candidate} --baseline {report.payback.baseline} --volume "
                        f"{flag_value(report.payback.volume)}{report.payback_flags}{db}")
    winner = ""
    if verdict.head == "NO" and verdict.prompting:  # the answer is a prompt: how to take it to production
        winner = (f"\n\nPrompting won: `harness export {verdict.prompting} --out prompt/{db}` writes its prompt (the "
                  "system prompt, shots and decoding it was scored with) as a service sends it.")
    return ("## Re-derive each figure\n\nFrom the same results database (`harness compare` on test is recorded as a "
            "look at test):\n\n```bash\n" + "\n".join(commands) + "\n```" + winner)
