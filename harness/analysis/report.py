"""What a sweep found, as tables and texts for the terminal: the ranking, one trial in full, the follow-ups, and
the machine-readable exports (`harness trials --format json|csv`)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from harness.analysis.compare import study_contract
from harness.analysis.cost import worst_case_requests
from harness.analysis.floor import floor_of
from harness.analysis.formatting import (
    OLDER_RULES_CAPTION,
    broken_constraint,
    changed_text,
    duration,
    fmt_metric,
    interval,
    is_score,
    marked,
    params_text,
    pct,
    points,
    quantity,
    queries,
    regression_metric,
    regression_text,
    rules_note,
    saving_text,
    shows_older_rules,
    status_text,
    under_trained_text,
    usd,
)
from harness.core.label_report import LabelReport
from harness.core.metric import CORE_METRICS, NOT_MEASURED, Metric
from harness.core.records import PHASES, AdapterEvent, ExampleView, LookAtTest, TrialView
from harness.core.selection import FINISHED, ranked
from harness.core.text import id_order, padded
from harness.data.contract import OutputContract, parse_output
from harness.evaluation.labels import too_few_a_label
from harness.evaluation.regression import ITEMS_GAINED, ITEMS_LOST
from harness.evaluation.stats import proportion
from harness.store.database import AuditPackRecord, Store

Objectives = Mapping[str, str]
"""study -> the metric its sweep optimised (task_accuracy for a study not listed)."""


SUITE_SCORES = ("rouge_l", "field_f1", "macro_f1")
"""Scores a suite adds beside the core four (its partial credit: ROUGE-L on free text, field F1 on extraction,
macro-F1 on labels), in the order the trials table shows them where a trial measured them."""


def ranking_table(trials: Iterable[TrialView], objectives: Objectives | str | None = None) -> Table:
    """Percentages with their 95% interval and n: in a column's header when every trial shares it, else beside each
    value (hallucination: of compliant outputs, always beside each value). When a study optimised another metric than
    task accuracy, its dev and test values come first. The suite's own scores (`SUITE_SCORES`) follow on test where a
    trial measured them; hallucination and forgetting are left out where no trial shown has a value (a free-text
    suite checks no hallucination; prompting trials forget nothing)."""
    ordered = ranked(trials)
    objective_of = _objective_reader(objectives)
    optimised = {objective_of(t) for t in ordered}
    shown = next(iter(optimised)) if len(optimised) == 1 else "objective"
    extra = optimised != {"task_accuracy"} and bool(optimised)
    objective = [(f"{split} {shown}", _score(split, objective_of)) for split in ("dev", "test")] if extra else []
    accuracy, compliance = _named("task_accuracy"), _named("format_compliance")
    suite_scores = [name for name in SUITE_SCORES if name != shown and _measured(ordered, "test", name)]
    scores = _scored_columns(ordered, [*objective, ("dev acc", _score("dev", accuracy)),
                                       ("test acc", _score("test", accuracy)),
                                       ("test format", _score("test", compliance)),
                                       *((f"test {name}", _score("test", _named(name))) for name in suite_scores)])
    hallucination = [("test halluc. (of compliant)", [
        marked(_counted(t.metric("test", "hallucination_rate")), t, "hallucination_rate") for t in ordered])
    ] if _measured(ordered, "test", "hallucination_rate") else []
    forgetting = _scored_columns(ordered, [("regression Δ", _forgetting)]) if any(t.trained for t in ordered) else []
    graded = [name for name in (*(sorted(optimised) if extra else ()), *suite_scores) if is_score(name)]
    table = Table(title="Trials ranked on dev (feasible first). Test is reported, never used to choose. "
                        "Values in %, [95% interval]"
                        + (f"; {', '.join(dict.fromkeys(graded))} a mean score in [0, 1]." if graded else "."))
    columns = [*scores, *hallucination, *forgetting]
    # on a narrow terminal rich squeezes every column, and rank, trial and method had come out empty: they keep
    # their width, the long ones fold
    kept = {"rank": 4, "trial": max((len(t.id) for t in ordered), default=5), "method": 6}
    for column in ("rank", "trial", "method", "params", *(header for header, _ in columns), "train s", "status"):
        table.add_column(column, overflow="fold", min_width=kept.get(column))
    place = 0
    for row, t in enumerate(ordered):
        finished = t.status in FINISHED  # a failed or running trial has no place in the ranking (it read "1" alone)
        place += finished
        table.add_row(str(place) if finished else "-", t.id, t.method, params_text(t.params),
                      *(cells[row] for _, cells in columns), f"{t.train_seconds:.0f}" if t.train_seconds else "-",
                      status_text(t))
    shows_macro = "macro_f1" in suite_scores or "macro_f1" in optimised
    unresampled = shows_macro and any((m := t.metric("test", "macro_f1")) is not None and m.value is not None
                                      and m.low is None for t in ordered)
    notes = [_older_rules_caption(table), NO_MACRO_INTERVAL if unresampled else None]
    table.caption = " ".join(filter(None, notes)) or None
    return table


NO_MACRO_INTERVAL = ("A macro-F1 without an interval: too few test examples a label to resample (`harness show` says "
                     "how many); more test examples give one.")


Cell = tuple[str, Metric | None, str]
"""A trial's cell in a scored column: its text without n, the metric behind it, and that metric's name (for the
older-rules mark)."""


def _named(name: str) -> Callable[[TrialView], str]:
    return lambda trial: name


def _measured(trials: Iterable[TrialView], split: str, name: str) -> bool:
    """Whether any of `trials` has a value of metric `name` on `split`."""
    return any((metric := t.metric(split, name)) is not None and metric.measured for t in trials)


def _score(split: str, name_of: Callable[[TrialView], str]) -> Callable[[TrialView], Cell]:
    def cell(trial: TrialView) -> Cell:
        name = name_of(trial)
        metric = trial.metric(split, name)
        return interval(metric, name=name), metric, name

    return cell


def _forgetting(trial: TrialView) -> Cell:
    """The forgetting check: its n counts the general check's items, not the test subset's."""
    return regression_text(trial), regression_metric(trial), "regression_delta"


def _scored_columns(trials: Sequence[TrialView],
                    columns: Sequence[tuple[str, Callable[[TrialView], Cell]]]) -> list[tuple[str, list[str]]]:
    """Each column's header and cells, every interval with its n: ` (n=160)` in the header when every trial with a
    value shares it, else beside each value (trials of several studies, a hosted arm's refused requests); no n while
    no trial has a value to count (all running)."""
    shaped = []
    for header, read in columns:
        cells = [read(t) for t in trials]
        counts = {metric.n for _, metric, _ in cells if metric is not None and metric.value is not None}
        shared = len(counts) <= 1
        texts = [marked(text if shared or metric is None or metric.value is None else f"{text} n={metric.n}", t, name)
                 for t, (text, metric, name) in zip(trials, cells)]
        shaped.append((f"{header} (n={counts.pop()})" if len(counts) == 1 else header, texts))
    return shaped


def _older_rules_caption(table: Table) -> str | None:
    """What the mark beside an interval means, under a table that has one."""
    shown = shows_older_rules(cell for column in table.columns for cell in column.cells)
    return OLDER_RULES_CAPTION if shown else None


def _objective_reader(objectives: Objectives | str | None):
    if isinstance(objectives, str):
        return lambda trial: objectives
    return lambda trial: (objectives or {}).get(trial.study, "task_accuracy")


def trials_json(trials: Iterable[TrialView], objectives: Objectives | None = None,
                seals: Mapping[str, bool] | None = None) -> str:
    """`harness trials --format json`: test metrics under `metrics`, dev metrics under `dev_metrics`, each with the
    study's objective metric and the suite's own scores (`suite_metrics`) beside the four core ones
    (`objective_metric` names the objective). `seals`: whether each trial's evidence still matches its seal
    (`seal_intact`; None where not checked)."""
    trials = list(trials)
    objective_of = _objective_reader(objectives)
    scores = suite_metrics(trials)
    rows = [{
        "id": t.id, "study": t.study, "method": t.method, "params": dict(t.params), "status": t.status,
        "failure_reason": t.failure_reason, "trained": t.trained, "feasible": t.feasible,
        "under_trained": t.under_trained, "objective_metric": objective_of(t), "objective": t.objective,
        "engine": None if t.engine is None else dataclasses.asdict(t.engine), "stats_rules": t.stats_rules,
        "metrics": _core(t, "test", objective_of(t), scores), "dev_metrics": _core(t, "dev", objective_of(t), scores),
        "seal_intact": (seals or {}).get(t.id),
    } for t in trials]  # fmt: skip
    return json.dumps(rows, indent=2)


def trials_csv(trials: Iterable[TrialView], objectives: Objectives | None = None,
               seals: Mapping[str, bool] | None = None) -> str:
    """`harness trials --format csv`: one row per trial, each metric as `{split}_{name}_{value|low|high|n}`: the core
    four, the suite's own scores (`suite_metrics`) and the objective; `seal_intact` as in `trials_json`."""
    trials = list(trials)
    objective_of = _objective_reader(objectives)
    scores = suite_metrics(trials)
    out = io.StringIO()
    head = ["id", "study", "method", "params", "status", "failure_reason", "feasible", "under_trained",
            "objective_metric", "stats_rules", "seal_intact"]
    columns = head + [f"{split}_{name}_{part}" for split in ("dev", "test")
                      for name in (*CORE_METRICS, *scores, "objective") for part in ("value", "low", "high", "n")]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for t in trials:
        row = {"id": t.id, "study": t.study, "method": t.method, "params": json.dumps(dict(t.params)),
               "status": t.status, "failure_reason": t.failure_reason, "feasible": t.feasible,
               "under_trained": t.under_trained, "objective_metric": objective_of(t), "stats_rules": t.stats_rules,
               "seal_intact": (seals or {}).get(t.id)}
        for split in ("dev", "test"):
            metrics = {**_core(t, split, extra=scores),
                       "objective": (t.metric(split, objective_of(t)) or NOT_MEASURED).to_dict()}
            for name, metric in metrics.items():
                row.update({f"{split}_{name}_{part}": value for part, value in metric.items()})
        writer.writerow(row)
    return out.getvalue()


def suite_metrics(trials: Iterable[TrialView]) -> tuple[str, ...]:
    """The metrics beyond the core four that any of `trials` measured on dev or test (ROUGE-L, field scores,
    macro-F1: what its suite's `scorers:` add), sorted: the same for every row, so the JSON keys and CSV columns
    line up."""
    return tuple(sorted({name for t in trials for split in ("dev", "test") for name, metric in
                         t.metrics.get(split, {}).items() if name not in CORE_METRICS and metric.measured}))


def _core(trial: TrialView, split: str, objective: str | None = None,
          extra: Sequence[str] = ()) -> dict[str, dict]:
    """The core four metrics (`{"value": null, ...}` where not measured, so every row has them), then `extra` and
    the objective."""
    names = dict.fromkeys((*CORE_METRICS, *extra, *((objective,) if objective else ())))
    return {name: (trial.metric(split, name) or NOT_MEASURED).to_dict() for name in names}


def phases_text(trial: TrialView) -> str:
    """Where the trial's time went, and the overhead outside training, generation and the regression check."""
    spent = "  ".join(f"{name} {trial.phase_seconds[name]:.1f} s" for name in PHASES
                      if trial.phase_seconds.get(name, 0.0) >= 0.05)  # phases it skipped are left out
    overhead, wall = trial.overhead_seconds, trial.wall_seconds
    share = f" ({overhead / wall:.1%} of {wall:.1f} s)" if overhead is not None and wall else ""
    return f"time: {spent}  overhead {overhead or 0:.1f} s{share}"


def _feasibility(trial: TrialView) -> str:
    """`yes`, or `no: breaks regression_delta on the general check (-7.0 points, 95% CI [-20.5, +3.1], n=100)`."""
    broken = trial.broken_constraints
    if trial.feasible is None:
        return "not measured"
    if trial.feasible and not broken:
        return "yes"
    listed = ", ".join(broken_constraint(trial, name) for name in broken)
    return f"no: breaks {listed}" if listed else "no"


def _constraint_text(engine: str) -> str:
    """A hosted endpoint is asked for structured output and may ignore it (format compliance shows whether it did);
    the harness's and vLLM's own decoding cannot leave the contract."""
    if engine == "hosted":
        return ", structured output requested (an endpoint may ignore it: format compliance shows whether it did)"
    return ", decoding constrained to the contract"


def _timings(trial: TrialView) -> str:
    """`train 12.0 s  eval 3.1 s`; for a trial stopped before it recorded either (a search interrupted after minutes
    read `train 0.0 s  eval 0.0 s`), the wall time it ran, as its cost counts it."""
    if trial.train_seconds is None and trial.eval_seconds is None and trial.wall_seconds is not None:
        return f"ran {trial.wall_seconds:.1f} s (wall) before it stopped, with no train or eval timing recorded"
    return f"train {trial.train_seconds or 0:.1f} s  eval {trial.eval_seconds or 0:.1f} s"


def trial_detail(trial: TrialView, examples: Sequence[ExampleView], suite: str | None = None,
                 failures: int = 5, contract: OutputContract | None = None) -> str:
    """`harness show`: config, status, timings, every metric with its interval, the answers cut at the token cap,
    and failed examples, each with why it broke the format when `contract` (`suite_contract`) is given."""
    why_none = {"failed": "the trial failed", "pruned": "the trial was pruned", "running": "the trial is running"}
    artifact = trial.artifact_path or ("not trained" if not trial.trained else "not kept (retention)"
                                       if trial.complete else f"none ({why_none.get(trial.status, trial.status)})")
    lines = [
        f"trial {trial.id}  method {trial.method}  status {trial.status}"
        + (f" ({trial.failure_reason})" if trial.failure_reason else ""),
        f"params: {json.dumps(dict(trial.params))}",
        f"device {trial.device}" + (f"  trained in {trial.precision}" if trial.trained and trial.precision else "")
        + f"  {_timings(trial)}"
        + ("" if trial.hosted else "  peak memory " + (f"{trial.peak_memory_mb:.0f} MiB" if trial.peak_memory_mb
                                                       else "not measured"))
        + f"  feasible {_feasibility(trial)}",
        f"artifact: {artifact}",
    ]
    data = trial.data
    if data.suite or data.suite_version or data.sizes:
        lines.append(f"suite {suite or data.suite} {data.suite_version}  sizes {dict(data.sizes) or None}")
    if trial.engine is not None:
        e = trial.engine
        lines.append(f"answers generated by {e.name} {e.version or ''} ({e.dtype or 'dtype not reported'})"
                     + (_constraint_text(e.name) if e.constrained else ""))
    if trial.serving is not None and trial.serving.engine != "hf":
        load = trial.serving
        lines.append(f"serving: {load.completion_tokens_per_s:.1f} completion tokens/s at {load.concurrency} in "
                     f"flight, p50 {load.p50_latency_s:.2f} s, p95 {load.p95_latency_s:.2f} s ({load.source})")
    if trial.hosted:
        lines.append(hosted_text(trial))
    if trial.prompt_search is not None:
        lines.append(f"prompt searched: {trial.prompt_search.text()}")
        if trial.prompt_search.instruction is not None:
            lines.append(f"instruction (searched, in place of the suite's): {trial.prompt_search.instruction}")
    if trial.shots:
        lines.append(f"shots (train ids, in the prompt's order): {', '.join(trial.shots)}")
    if trial.trained and data.train_inputs_cut:
        lines.append(f"train inputs cut: {len(data.train_inputs_cut):,} of {data.sizes.get('train', 0):,} "
                     f"(training.over_length: truncate), each to fit training.max_length={trial.max_length}: it "
                     f"learned from their first tokens only; e.g. {', '.join(data.train_inputs_cut[:5])}")
    if trial.shots_fitted is not None:
        lines.append(f"shots fitted: {trial.shots_fitted.text(data.sizes)}")
    if trial.phase_seconds:
        lines.append(phases_text(trial))
    if trial.training:
        loss = _loss_text(trial.training.loss_curve)
        planned = f" of {trial.training.planned_steps}" if trial.training.planned_steps else ""
        pace = f" at {trial.training.step_seconds:.2f} s a step" if trial.training.step_seconds else ""
        lines.append(f"training: {trial.training.steps}{planned} steps{pace}, stopped by {trial.training.stopped_by}, "
                     f"{loss}"
                     + (f"; {under_trained_text(trial)}: it does not stand for the method in the verdict or the gate"
                        if trial.under_trained else ""))
    cap, capped = trial.max_new_tokens, capped_counts(trial, examples)
    checked = "regression" in trial.metrics  # the forgetting check: one measurement, which dev and test both hold
    for split, metrics in trial.metrics.items():
        lines.append(f"{split}:")
        if split == "regression" and (delta := trial.metric("test", "regression_delta")) is not None:
            lines.append(f"  {'regression_delta':<20} {_delta_text(trial, delta, split)}")
        for name, m in sorted(metrics.items()):
            if name == "regression_delta" and checked:
                continue
            shown = _delta_text(trial, m, split) if name == "regression_delta" else _items_text(m, name) \
                if name.endswith((ITEMS_GAINED, ITEMS_LOST)) else fmt_metric(m, name=name)
            lines.append(f"  {name:<20} {shown}")
        if (usable := _right_and_compliant([e for e in examples if e.split == split])) is not None:
            lines.append(f"  {'right and compliant':<20} {usable}")
        if split in capped:
            lines.append(f"  {'token cap':<20} {capped_text(*capped[split], cap)}")
    if checked:
        lines.append("regression_delta is one measurement on the forgetting check's items; dev's constraint reads it.")
    measured = any("hallucination_rate" in metrics for metrics in trial.metrics.values())
    if measured and contract is not None and (checks := contract.hallucination_checks()):
        lines.append(f"hallucination_rate counts a compliant answer with {checks}.")
    lines += _label_lines(trial.label_reports.get("test"), trial.metric("test", "macro_f1"))
    if (note := rules_note(trial)) is not None:
        lines.append(note)
    wrong = wrong_test_answers(examples)
    if wrong and failures == 0:
        lines.append(f"{len(wrong)} wrong test answers (--examples N lists them)")
    elif wrong:
        lines.append(f"first {min(failures, len(wrong))} of {len(wrong)} wrong test answers:")
        for e in wrong[:failures]:
            lines += [f"  {e.example_id}: {e.input[:80]!r}", _labelled("expected", e.target),
                      _labelled("got", repr(e.output))]
            if notes := _answer_notes(e, cap, contract):
                lines.append(_labelled("note", "; ".join(notes)))
    return "\n".join(lines)


def wrong_test_answers(examples: Sequence[ExampleView]) -> list[ExampleView]:
    """A trial's wrong test answers in id order, as `show` lists them (its table and its JSON)."""
    return sorted((e for e in examples if e.split == "test" and not e.scores.get("task_accuracy")),
                  key=lambda e: id_order(e.example_id))


def trial_json(trial: TrialView, examples: Sequence[ExampleView], failures: int = 5) -> str:
    """`harness show --format json`: every field of the trial as the store reads it (each metric as {value, low, high,
    n}, times in UTC, ISO 8601), its scores laid out as `trials --format json` lays them (`metrics` on test,
    `dev_metrics` on dev, another split's as `<split>_metrics`, so one jq path reads both), `wrong_test_answers`
    counting its wrong test answers, and the first `failures` of them in `wrong_test_examples`, in id order as `show`
    lists them."""
    wrong = wrong_test_answers(examples)
    fields = _jsonable(trial)
    by_split = fields.pop("metrics")
    scores = {("metrics" if split == "test" else f"{split}_metrics"): values for split, values in by_split.items()}
    document = {**fields, "metrics": {}, "dev_metrics": {}, **scores, "wrong_test_answers": len(wrong),
                "wrong_test_examples": [_jsonable(e) for e in wrong[:failures]]}
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)


def _jsonable(value: Any) -> Any:
    """A typed record as JSON reads it: dataclasses and mappings as objects, tuples as lists, a metric as {value, low,
    high, n}, a label report as its own JSON, times in ISO 8601, paths as text."""
    if isinstance(value, Metric):
        return value.to_dict()
    if isinstance(value, LabelReport):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _labelled(label: str, text: str) -> str:
    """`    expected 12 + 4 = 16` with every further line of `text` (a worked reference) under its first."""
    indent = " " * 13
    return f"    {label:<8} " + text.replace("\n", "\n" + indent)


def _answer_notes(example: ExampleView, cap: int | None, contract: OutputContract | None) -> list[str]:
    """What else went wrong with a wrong answer: cut at the token cap, and why it broke the format, read again with
    the contract's own parser (the examples store only the 0/1 score)."""
    notes = [f"cut at the {cap}-token cap"] if at_cap(example, cap) else []
    if contract is not None and example.error is None and example.scores.get("format_compliance") != 1.0:
        parsed = parse_output(example.output, contract)
        if not parsed.compliant and parsed.error:
            notes.append(f"not format-compliant: {parsed.error}")
    return notes




def at_cap(example: ExampleView, cap: int | None) -> bool:
    """Whether the answer took every token the cap allowed: generation stopped it there, mid-answer unless the model
    happened to end on its last allowed token (the stored count cannot tell the two apart)."""
    tokens = example.completion_tokens
    return cap is not None and example.error is None and tokens is not None and tokens >= cap


def capped_counts(trial: TrialView, examples: Iterable[ExampleView]) -> dict[str, tuple[int, int]]:
    """Per split, for the splits where any answer was cut at the trial's token cap: (answers cut, answers whose
    tokens were counted)."""
    cap = trial.max_new_tokens
    if cap is None:
        return {}
    counts: dict[str, list[int]] = {}
    for e in examples:
        if e.completion_tokens is not None and e.error is None:
            tally = counts.setdefault(e.split, [0, 0])
            tally[0] += at_cap(e, cap)
            tally[1] += 1
    return {split: (cut, n) for split, (cut, n) in counts.items() if cut}


def capped_text(cut: int, n: int, cap: int | None) -> str:
    """`1 of 10 answers cut at the 264-token cap (generation.max_new_tokens)`."""
    return f"{cut} of {n} answers cut at the {cap}-token cap (generation.max_new_tokens)"


def _delta_text(trial: TrialView, delta: Metric, split: str) -> str:
    return f"{points(delta)} n={delta.n}{changed_text(trial)}" if delta.value is not None else \
        regression_text(trial, split)


def _right_and_compliant(examples: Sequence[ExampleView]) -> str | None:
    """The answers both right and within the contract, where some right ones break it: task accuracy reads what an
    answer says whatever its format, and a reader takes it for the answers a service could use."""
    pairs = [(e.scores.get("task_accuracy"), e.scores.get("format_compliance")) for e in examples]
    pairs = [(right, compliant) for right, compliant in pairs if right is not None and compliant is not None]
    broken = sum(1 for right, compliant in pairs if right == 1.0 and compliant == 0.0)
    if not broken:
        return None
    both = proportion([1.0 if right == 1.0 and compliant == 1.0 else 0.0 for right, compliant in pairs])
    return (f"{fmt_metric(both)}: {broken} of the right answers break{'s' if broken == 1 else ''} the contract "
            "(task accuracy reads what an answer says, whatever its format)")


def _items_text(metric: Metric, name: str) -> str:
    """A forgetting check's changed items, as the count they are (stored as a share of the items, for McNemar)."""
    if metric.value is None:
        return "-"
    which = "right where the base model was wrong" if name.endswith(ITEMS_GAINED) else \
        "wrong where the base model was right"
    return f"{round(metric.value * metric.n)} of {metric.n} items ({which})"


def suite_contract(store: Store, trial: TrialView) -> OutputContract | None:
    """The output contract the trial was scored under, read from its study's suite folder now, so `harness show` can
    say why an answer broke the format; None where that folder is gone or no longer loads, or holds another version
    of the suite than the trial was scored on (`compare.study_contract`)."""
    return study_contract(store.study(trial.study), trial.data.suite_version)


def _loss_text(curve: Sequence[tuple[int, float]]) -> str:
    """The training loss as logged: first -> last, or the one value a short run logs (not `2.088 -> 2.088`)."""
    if not curve:
        return "no loss logged"
    if len(curve) == 1:
        step, value = curve[0]
        return f"loss {value:.3f} (one logged value, at step {step})"
    return f"loss {curve[0][1]:.3f} -> {curve[-1][1]:.3f}"


def hosted_text(trial: TrialView) -> str:
    """What a hosted arm asked of its endpoint, and what that cost; requests answered without token usage count at
    their worst case, and are said to."""
    usage = trial.hosted
    assert usage is not None
    spent = f"{usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion tokens"
    if worst := worst_case_requests(trial):
        spent += (f", of which the endpoint reported no usage for {worst} request{'s' if worst > 1 else ''}: those "
                  "count at their worst case (prompt bytes + max_tokens, as the budget held them), an upper bound, "
                  "not tokens billed")
    cost = f", {usd(usage.usd)} at price entry {usage.price}" if usage.usd is not None else ", unpriced"
    return (f"hosted: {usage.model} via endpoint {usage.endpoint} ({usage.base_url}); {usage.requests} requests sent "
            f"({spent}{cost}), {usage.cache_hits} answered from the cache, {usage.errors} refused (left out of every "
            f"metric), {usage.content_filtered} withheld by a content filter (scored as empty); structured output "
            f"{'requested' if usage.structured else 'not requested'}")


@dataclass(frozen=True)
class AdapterRow:
    trial: TrialView
    suite: str
    status: str
    last: AdapterEvent | None
    """The event that gave the adapter its status (a re-check leaves the status, so it is not this one); None for a
    candidate never moved."""
    gate: str = "none"
    """What the gate made of it, over its whole history: `passed` (once at least), `overridden` (only ever
    promoted over a failed gate, --force), or `none` (never gated)."""


def adapters(store: Store, suite: str | None = None) -> list[AdapterRow]:
    """Every adapter: trained, complete trials that kept their weights, and any the registry has seen; production
    first, then staging, candidates, retired."""
    studies = {s.name: s for s in store.studies()}
    events: dict[str, AdapterEvent] = {}
    gates: dict[str, str] = {}
    for event in store.adapter_events(suite=suite):
        if event.action != "recheck":  # "since" is since the status began, by whom, not the last re-check
            events[event.trial_id] = event
        if event.gate_outcome == "passed" or (event.forced and gates.get(event.trial_id) != "passed"):
            gates[event.trial_id] = "passed" if event.gate_outcome == "passed" else "overridden"
    rows = []
    for trial in store.trials():
        study = studies.get(trial.study)
        if not trial.trained or not trial.complete or study is None or (suite and study.suite != suite):
            continue
        if trial.artifact_path is None and trial.id not in events:
            continue
        last = events.get(trial.id)
        rows.append(AdapterRow(trial, study.suite, last.status if last else "candidate", last,
                               gates.get(trial.id, "none")))
    order = {status: i for i, status in enumerate(("production", "staging", "candidate", "retired"))}
    return sorted(rows, key=lambda r: (r.suite, order[r.status], r.trial.study, r.trial.number))


def ungated_warning(store: Store, suite: str, trial_id: str) -> str | None:
    """What a rollback says of the adapter it restored, where no gate ever passed it: an auditor read the restore as
    a return to a gated adapter, when it had reached production over a failed gate."""
    gate = next((row.gate for row in adapters(store, suite) if row.trial.id == trial_id), "none")
    if gate == "passed":
        return None
    how = "over a failed gate (--force)" if gate == "overridden" else "without a gate"
    return f"{trial_id} never passed a gate: it reached production {how}; `harness registry --history --suite " \
           f"{suite}` gives the reason."


def registry_table(store: Store, suite: str | None = None) -> Table:
    table = Table(title=Text("Adapters by suite and status. Test metrics in %, [95% interval], n examples."))
    for column in ("suite", "status", "trial", "method", "test acc", "format", "halluc.", "regression Δ", "since"):
        table.add_column(column, overflow="fold")
    for row in adapters(store, suite):
        t, last = row.trial, row.last
        since = f"{last.at:%Y-%m-%d %H:%M} by {last.actor}" if last else "-"
        regression = regression_text(t)
        if delta := regression_metric(t):
            regression += f" n={delta.n}" if delta.value is not None else ""  # the items of the forgetting check
        serving = row.status in ("staging", "production")  # how it got there matters while it serves
        flags = [word for word, on in (("infeasible", t.feasible is False), ("under-trained", t.under_trained),
                                       ("gate overridden", serving and row.gate == "overridden"),
                                       ("never gated", serving and row.gate == "none"))
                 if on]
        status = row.status + (f" ({', '.join(flags)})" if flags else "")  # the gate refuses either: say so here
        table.add_row(row.suite, status, t.id, t.method,
                      *(marked(_counted(t.metric("test", name)), t, name)
                        for name in ("task_accuracy", "format_compliance", "hallucination_rate")),
                      marked(regression, t, "regression_delta"), since)
    table.caption = _older_rules_caption(table)
    return table


def registry_json(store: Store, suite: str | None = None, history: bool = False) -> str:
    """`harness registry --format json`: every adapter as `registry_table` lists it, each test metric as {value, low,
    high, n}, and its status since when and by whom; with `history`, every event, look at test and audit pack as the
    registry keeps them (times in UTC, ISO 8601)."""
    document: dict = {"adapters": [{
        "trial": row.trial.id, "suite": row.suite, "status": row.status, "method": row.trial.method,
        "params": dict(row.trial.params), "under_trained": row.trial.under_trained, "feasible": row.trial.feasible,
        "gate": row.gate,
        "metrics": {**_core(row.trial, "test"), **{name: metric.to_dict() for name, metric in
                                                   sorted(row.trial.metrics.get("test", {}).items())}},
        "since": None if row.last is None else {"at": row.last.at.isoformat() if row.last.at else None,
                                                "actor": row.last.actor, "action": row.last.action},
    } for row in adapters(store, suite)]}  # fmt: skip
    if history:
        document["history"] = [_jsonable(event) for event in store.adapter_events(suite=suite)]
        document["looks_at_test"] = [_jsonable(look) for look in store.looks(suite=suite)]
        document["audit_packs"] = [_jsonable(pack) for pack in store.audit_packs() if suite in (None, pack.suite)]
    return json.dumps(document, indent=2, default=str)


def _counted(metric: Metric | None) -> str:
    """`62.0 [52.2, 70.9] n=100` (percent in the title), or `-` when not measured."""
    return "-" if metric is None or metric.value is None else f"{interval(metric)} n={metric.n}"


def history_table(events: Iterable[AdapterEvent]) -> Table:
    table = Table(title=Text("Registry history, oldest first."))
    for column in ("when", "trial", "suite", "change", "by", "why", "gate"):
        table.add_column(column, overflow="fold")
    for e in events:
        gate = "FAILED, overridden" if e.gate_outcome == "failed, overridden" else e.gate_outcome or "-"  # stands out
        change = e.status if e.action == "recheck" else f"{e.previous} -> {e.status}"
        by = e.actor if e.os_account is None else f"{e.actor} (run by {e.os_account})"
        table.add_row(f"{e.at:%Y-%m-%d %H:%M}", e.trial_id, e.suite, f"{e.action}: {change}", by,
                      Text(e.note or ""), gate)
    return table


def audit_packs_table(packs: Iterable[AuditPackRecord]) -> Table:
    """Every audit pack written, oldest first, with the sha256 of its MANIFEST.json: what `audit --verify` checks a
    pack against, so an auditor can see which packs exist and where they were written."""
    table = Table(title=Text("Audit packs written, oldest first (`harness audit --verify DIR` checks one against its "
                             "manifest's sha256 here)."))
    for column in ("when", "trial", "suite", "by", "folder", "MANIFEST.json sha256"):
        table.add_column(column, overflow="fold")
    for pack in packs:
        table.add_row(f"{pack.at:%Y-%m-%d %H:%M}" if pack.at else "-", pack.trial_id, pack.suite, pack.actor or "-",
                      Text(pack.folder), pack.manifest_sha256)
    return table


def looks_table(looks: Iterable[LookAtTest]) -> Table:
    """Every look at test, oldest first: gate evaluations (passed or refused), compares on test, re-checks."""
    table = Table(title=Text("Looks at test, oldest first. Each one that could pick what ships is kept: gating "
                             "candidates on the same test subset until one passes leaves a trace here."))
    for column in ("when", "kind", "candidate", "reference", "metric", "outcome", "by", "test subset"):
        table.add_column(column, overflow="fold")
    for look in looks:
        table.add_row(f"{look.at:%Y-%m-%d %H:%M}" if look.at else "-", look.kind, look.candidate,
                      look.reference or "-", look.metric, look.outcome, look.actor or "-",
                      (look.subset or "-")[:12])
    return table


def seed_spread_table(trials: Iterable[TrialView], repeats: Iterable[TrialView]) -> Table | None:
    """Each re-run configuration with its original: mean and range of accuracy across seeds."""
    by_id = {t.id: t for t in trials}
    groups: dict[str, list[TrialView]] = {}
    for r in repeats:
        if r.complete and r.params.get("source_trial") in by_id:
            groups.setdefault(r.params["source_trial"], []).append(r)
    if not groups:
        return None
    table = Table(title=Text("Repeated seeds: does the ranking survive another draw? Accuracy in %, mean [min, max]."))
    for column in ("trial", "method", "params", "seeds", "dev accuracy", "test accuracy"):
        table.add_column(column, overflow="fold")
    for source_id, runs in groups.items():
        source = by_id[source_id]
        runs = [source, *runs]
        seeds = ", ".join(str(r.params.get("seed", "orig")) for r in runs)
        table.add_row(source_id, source.method, params_text(source.params), seeds, _spread(runs, "dev"),
                      _spread(runs, "test"))
    return table


def learning_curve_table(curve: Iterable[TrialView]) -> Table | None:
    """Accuracy against the number of training examples, with intervals (same config, nested subsets)."""
    done = sorted((t for t in curve if t.complete), key=lambda t: t.params["train_examples"])
    if not done:
        return None
    table = Table(title=f"Learning curve of {done[0].params['source_trial']}: accuracy in % [95% interval] by "
                        "training examples.")
    for column in ("train examples", "dev accuracy", "test accuracy", "train s"):
        table.add_column(column)
    for t in done:
        table.add_row(str(t.params["train_examples"]), interval(t.metric("dev", "task_accuracy")),
                      interval(t.metric("test", "task_accuracy")), f"{t.train_seconds or 0:.0f}")
    return table


def _spread(runs: list[TrialView], split: str) -> str:
    values = [m.value for r in runs if (m := r.metric(split, "task_accuracy")) and m.value is not None]
    if not values:
        return "-"
    return f"{pct(sum(values) / len(values))} [{pct(min(values))}, {pct(max(values))}]"


def _label_lines(report: LabelReport | None, macro: Metric | None, worst: int = 5) -> list[str]:
    """The weakest labels and the commonest confusions on test; the full table is in the trial's label report."""
    if report is None:
        return []
    scored = [(row.f1, name, row) for name, row in report.labels.items() if row.support]
    scored.sort(key=lambda item: (item[0] is not None, item[0] or 0.0))
    overall = interval(macro) if macro is not None else pct(report.macro_f1)
    floor = constant_answer_floor(report)
    lines = [*([floor] if floor else []), f"per label (test, macro-F1 {overall} over {report.macro_labels} labels); "
                                        f"weakest {min(worst, len(scored))}:"]
    for f1, name, row in scored[:worst]:
        span = Metric(f1, row.f1_low, row.f1_high, row.support)  # records before 2026-12-05 have no interval
        lines.append(f"  {padded(name, 40)} F1 {interval(span):<18} support {row.support}")
    confusions = sorted(((count, true, pred) for true, row in report.confusion.items()
                         for pred, count in row.items() if pred != true), reverse=True)[:worst]
    if confusions and confusions[0][0] == 1:  # five pairs seen once each would read as a pattern
        lines.append("no confusion repeated: every wrong label was a different pair (true -> predicted)")
    elif confusions:
        lines.append("commonest confusions (true -> predicted):")
        lines += [f"  {count:>3} x {true} -> {pred}" for count, true, pred in confusions]
    supports = sorted((row.support, name) for name, row in report.labels.items() if row.support)
    few = too_few_a_label(count for count, _ in supports)
    if few is not None and macro is not None and macro.low is None:  # scored by rules v8 or later: say why none
        lines.append(f"(no macro-F1 interval: {few})")
    elif supports and supports[0][0] < 30:  # the fewest, not the mean: 38 / 1 / 1 read "13 test examples a label"
        fewest = ", ".join(f"{name} {count}" for count, name in supports[:3])
        lines.append(f"(fewest test examples a label: {fewest}{', ...' if len(supports) > 3 else ''}: their F1 and "
                     "macro-F1 intervals are rough; more test examples narrow them)")
    return lines


def constant_answer_floor(report: LabelReport) -> str | None:
    """What answering the commonest test label every time would score: the floor that a task accuracy on an
    unbalanced test set reads against (10 `false` of 12 make 83% for a model that never reads its input). None where
    no label is near a majority: the floor is low, and saying it would be noise."""
    if (floor := floor_of(report)) is None or not floor.near_majority:
        return None
    constant = proportion([1.0] * floor.count + [0.0] * (floor.n - floor.count))
    return (f"always answering `{floor.label}`, the commonest test label, would score {fmt_metric(constant)} task "
            "accuracy (the floor any score here reads against)")


def estimate_text(expected) -> str:
    """`harness sweep` (and its --dry-run): every planned trial's expected time on this machine, and the total."""
    total = expected.total_seconds
    shown = f"{total / 60:.0f} min" if total >= 600 else f"{total / 60:.1f} min" if total >= 60 else f"{total:.0f} s"
    planned = (sum(t.seconds for t in expected.trials) + expected.once_seconds if expected.budget_seconds else total)
    capped = (f", budget.sweep_minutes ({expected.budget_seconds / 60:g}) stopping the trials planned below, "
              f"{planned / 60:.1f} min in all" if planned > total + 1 else "")
    lines = [f"estimated duration: about {shown} ({expected.basis}{capped}):"]
    if expected.once_seconds:
        lines.append(f"  0. the base model's forgetting check, once: {expected.once_seconds / 60:.1f} min")
    for number, trial in enumerate(expected.trials, start=1):
        train = (f"{trial.planned_steps} steps, train {trial.train_seconds / 60:.1f} min (dev probes included), "
                 if trial.planned_steps else "")
        search = (f"prompt search {trial.search_calls:,} answers, {trial.search_seconds / 60:.1f} min, "
                  if trial.search_calls else "")
        if trial.search_proposer_calls:  # MIPROv2: a bound, since its calls depend on what it proposes
            search = (f"prompt search up to {trial.search_calls:,} model calls ({trial.search_proposer_calls} "
                      f"proposing instructions), {trial.search_seconds / 60:.1f} min, ")
        forgetting = " and forgetting" if trial.forgetting_seconds else ""
        method = f"{trial.method} (sampled; method assumed)" if trial.sampled else trial.method
        lines.append(f"  {number}. {method}: {search}{train}dev and test{forgetting} {trial.eval_seconds / 60:.1f} "
                     "min")
    lines += [f"  {note}" for note in expected.notes]
    return "\n".join(lines)


def payback_text(result) -> str:
    """`harness payback`: the answer first, then every number behind it with its unit and source."""
    head = (f"Payback of {result.candidate} against {result.baseline} at {quantity(result.volume)} queries a month: "
            + result.headline())
    lines = [head, *(f"  {label}: {text}" for label, text in payback_facts(result))]
    sensitivity = result.sensitivity
    if sensitivity.tornado:
        lines.append("  sensitivity (time to payback at the low / high end of each assumption's range):")
        for bar in sensitivity.tornado:  # every one, as the report and the dashboard show them
            lines.append(f"    {bar.assumption:<28} {duration(bar.months_at_low):>13} / "
                         f"{duration(bar.months_at_high):<13} ({quantity(bar.low)} .. {quantity(bar.high)} {bar.unit})")
    lines.append("assumptions:")
    for name, value, unit, source in assumption_rows(result):
        lines.append(f"  {name:<40} {value:>14} {unit:<30} {source}")
    return "\n".join(lines)


def payback_facts(result) -> list[tuple[str, str]]:
    """(label, text): why, the quality bar, the cost per query, the serving engine, per month, the break-even."""
    facts = [("why", result.reason), ("quality", result.quality.reason),
             ("cost per query", f"candidate {usd(result.candidate_usd_per_query)}, baseline "
                                f"{usd(result.baseline_usd_per_query)} ({saving_text(result.savings_per_query_usd)})"),
             ("candidate served on", f"{result.serving_engine}: {result.serving_source}"),
             ("per month", f"{saving_text(result.monthly_savings_usd)}; one-time {usd(result.one_time_usd)} ("
                           + ", ".join(f"{k} {usd(v)}" for k, v in result.one_time_breakdown.items()) + ")")]
    if (spread := result.timing) is not None:
        low, high = spread.savings_per_query_usd
        facts.append(("timing spread", f"saving per query {usd(low)} to {usd(high)}, time to payback"
                                       f"{result.months_spread() or ' (none)'} (95%, n={spread.n} timed batches; every "
                                       "other input held)"))
    if result.break_even_volume is not None:
        facts.append(("break-even", f"{queries(result.break_even_volume)} a month pay back within "
                                    f"{result.horizon_months:g} months"))
    return facts


def assumption_rows(result) -> list[tuple[str, str, str, str]]:
    """(name, value, unit, source) of every assumption behind a payback, by name."""
    return [(name, _assumed(item["value"]), item["unit"], item["source"])
            for name, item in sorted(result.assumptions.items())]


def _assumed(value) -> str:
    """A large figure as the user gave it (`1,234,567.5`, never `1.23457e+06`); a small one to 6 digits."""
    if not isinstance(value, float):
        return str(value)
    return quantity(value) if abs(value) >= 1e5 else f"{value:.6g}"
