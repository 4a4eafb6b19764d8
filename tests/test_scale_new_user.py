"""A big labelled set (hundreds of labels, thousands of examples): the same results, with work that grows with the
data, not with the data times the label set. Work is bounded by counting operations, or against a baseline measured
in the same run, never by a wall-clock limit."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import datetime, timezone

import duckdb
import numpy as np
import pytest

import harness.data.contract as contract_module
import harness.data.suite_init as suite_init
import harness.evaluation.labels as labels_module
from harness.core.records import ExampleRow, StudyRecord, TrialRecord, trial_id
from harness.core.text import fold
from harness.data.contract import OutputContract, parse_output, parse_target
from harness.data.formats import Row
from harness.data.suites import Example
from harness.evaluation.labels import INVALID, label_bootstrap, label_report
from harness.evaluation.scorers import ScoredCase
from harness.evaluation.stats import at_a_bound
from harness.store.database import Store
from harness.store.migrations import apply_migrations


def label_cases(n: int, labels: int, seed: int = 0) -> tuple[list[ScoredCase], OutputContract]:
    """n answers over `labels` labels: right, right in another case, another label, outside the set, or no JSON."""
    rng = random.Random(seed)
    names = tuple(f"Label {i:04d}" for i in range(labels))
    contract = OutputContract(kind="label", key="intent", labels=names)
    cases = []
    for i in range(n):
        true = rng.choice(names[: max(2, labels - 3)])  # the last labels have no support
        roll = rng.random()
        said = true if roll < 0.4 else true.upper() if roll < 0.6 else rng.choice(names) if roll < 0.9 else "nope"
        output = "no json here" if roll > 0.97 else json.dumps({"intent": said})
        target = json.dumps({"intent": true})
        cases.append(ScoredCase(Example(f"test:{i + 1}", f"input {i}", target), output,
                                parse_output(output, contract), parse_target(target, contract)))
    return cases, contract


# -- the label report and its bootstrap ------------------------------------------------------------------------


def reference_bootstrap(cases, contract, seed: int, resamples: int, report: dict):
    """The bootstrap as first written (every draw counted in one array, the label set folded per example): what the
    chunked one must reproduce exactly."""
    names = sorted(contract.labels)
    index = {name: i for i, name in enumerate(names)}
    by_fold = {fold(label): label for label in contract.labels}

    def said(case):
        value = case.parsed.value
        got = value.get(contract.key) if isinstance(value, dict) else None
        return by_fold.get(fold(got), INVALID) if isinstance(got, str) else INVALID

    true = np.array([index[by_fold[fold(c.target[contract.key])]] for c in cases])
    pred = np.array([index.get(said(c), len(names)) for c in cases])
    # which examples each draw holds is labels' rule (v8: each label's count drawn, then within it); counting the
    # draws in one array is what the chunked counting must reproduce
    draws = labels_module._stratified_draws(true, seed, resamples)
    true, pred = np.append(true, len(names)), np.append(pred, len(names))  # the padding index counts nowhere
    width = len(names) + 1
    offset = np.arange(resamples)[:, None] * width

    def counts(drawn):
        return np.bincount((drawn + offset).ravel(), minlength=resamples * width).reshape(resamples, width)[:, :-1]

    t, p = true[draws], pred[draws]
    support, predicted, hits = counts(t), counts(p), counts(np.where(t == p, t, len(names)))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * hits / (support + predicted)
    present = support > 0
    macro = np.where(present, f1, 0.0).sum(axis=1) / present.sum(axis=1)
    shift = report.macro_f1 - float(np.median(macro))  # centred on the estimate (labels._centred)
    ends = np.percentile(macro, [2.5, 97.5]) + shift
    low, high = at_a_bound(report.macro_f1, max(0.0, float(ends[0])), min(1.0, float(ends[1])), report.n)
    spans = {}
    for name, column in zip(names, f1.T):
        row, defined = report.labels[name], column[~np.isnan(column)]
        if row.f1 is None or not defined.size:
            continue
        decided = row.support + row.predicted - report.confusion.get(name, {}).get(name, 0)
        span = at_a_bound(row.f1, *map(float, np.percentile(defined, [2.5, 97.5])), decided)
        spans[name] = (float(span[0]), float(span[1]))
    return (float(low), float(high)), spans


def test_label_report_and_bootstrap_are_unchanged_when_counted_in_blocks(monkeypatch):
    cases, contract = label_cases(600, 80)
    report = label_report(cases, contract)
    # a hand count of the same pairs: the report is what counting gives, with invalid answers no label's positive
    pairs = Counter((c.target["intent"], labels_module.predicted_label(c, contract)) for c in cases)
    assert report.invalid == sum(n for (_, said), n in pairs.items() if said == INVALID) > 0
    assert sum(row.support for row in report.labels.values()) == report.n == 600
    expected_macro, expected_spans = reference_bootstrap(cases, contract, seed=7, resamples=300, report=report)
    monkeypatch.setattr(labels_module, "_CHUNK_CELLS", 600 * 7)  # 7 draws a block, the last one shorter
    macro, spans = label_bootstrap(cases, contract, seed=7, resamples=300, report=report)
    assert (macro.low, macro.high) == expected_macro and macro.value == report.macro_f1 and macro.n == 600
    assert spans == expected_spans and len(spans) >= 70


def test_label_scoring_folds_the_label_set_once_not_once_per_example(monkeypatch):
    calls = Counter()

    def counting(text: str) -> str:
        calls["fold"] += 1
        return fold(text)

    monkeypatch.setattr(labels_module, "fold", counting)
    monkeypatch.setattr(contract_module, "fold", counting)

    def folds(labels: int) -> int:
        contract_module._label_lookup.cache_clear()
        calls.clear()
        cases, contract = label_cases(400, labels)
        calls.clear()  # parsing the cases is not the work under test
        report = label_report(cases, contract)
        label_bootstrap(cases, contract, resamples=50, report=report)
        return calls["fold"]

    small, large = folds(40), folds(400)
    # 360 more labels cost one fold each (the lookup, built once); folding them for each of the 400 examples, as
    # before, cost 400 * 360 * 2 more
    assert large - small <= 360


def test_reference_labels_are_checked_in_one_lookup_each():
    contract = OutputContract(kind="label", key="intent", labels=tuple(f"l{i}" for i in range(1000)))
    assert parse_target('{"intent": "l999"}', contract) == {"intent": "l999"}
    with pytest.raises(ValueError, match="'L999' is not in `output.labels`"):
        parse_target('{"intent": "L999"}', contract)  # exact spelling, as before
    assert contract_module._label_set(contract.labels) == frozenset(contract.labels)


# -- suite init ------------------------------------------------------------------------------------------------


def test_dedupe_folds_each_input_once(monkeypatch):
    calls = Counter()
    near_fold = suite_init.near_fold

    def counting(text: str) -> str:
        calls["near_fold"] += 1
        return near_fold(text)

    monkeypatch.setattr(suite_init, "near_fold", counting)
    rows = [Row(line=i + 2, input=f"Message {i % 700}!" if i % 3 else f"message {i % 700}", answer=f"l{i % 9}")
            for i in range(2000)]
    kept, counts, conflicts, _ = suite_init._dedupe(rows)
    assert calls["near_fold"] == len(rows)
    assert len(kept) == 700 and counts["duplicates"] == 1300
    assert [r.line for r in kept] == [r.line for r in rows[:700]]  # the first copy of each input is kept
    assert all(first.answer != dropped.answer for first, dropped in conflicts)


def test_many_rare_labels_are_counted_not_all_listed(tmp_path):
    rows = [{"text": f"common message {i}", "label": f"big{i % 2}"} for i in range(700)]
    rows += [{"text": f"rare message {i}", "label": f"rare{i:03d}"} for i in range(300)]
    source = tmp_path / "rare.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(suite_init.SuiteError) as refused:
        suite_init.init_suite("rare", source, suites_dir=tmp_path / "suites")
    message = str(refused.value)
    assert "rare.jsonl: 300 label(s) with fewer than 3 examples" in message
    assert "'rare000' (1)" in message and "'rare009' (1)" in message and "'rare010'" not in message
    assert "and 290 more (with --drop-rare-labels, suite.yaml's `cleaning.rare_labels_dropped` names every one)" \
        in message
    assert len(message) < 800 and not (tmp_path / "suites" / "rare").exists()


# -- the results store -----------------------------------------------------------------------------------------


def example_rows(n: int) -> list[ExampleRow]:
    """Rows whose optional columns stay empty for most of the trial (an endpoint's tokens arrive late, one refusal at
    the end), so the insert must not guess a column's type from its first rows."""
    return [ExampleRow("test" if i % 3 else "dev", f"ex:{i:05d}", f"input é {i}\n\ttabs", '{"intent": "a"}',
                       '{"intent": "b"}' if i % 2 else "", None if i < n * 0.8 else 300 + i,
                       None if i < n * 0.9 else 7, 0 if i < n // 2 else 0.25 * i,
                       {"task_accuracy": float(i % 2), "hallucination_rate": None},
                       "refused: 400" if i == n - 1 else None)
            for i in range(n)]


def trial_record(number: int, rows: list[ExampleRow]) -> TrialRecord:
    return TrialRecord(id=trial_id("big", number), study="big", number=number, run_id="run-1", method="prompt",
                       status="complete", started_at=datetime(2026, 1, 1, tzinfo=timezone.utc), examples=rows)


def test_a_trial_with_thousands_of_examples_round_trips_exactly(tmp_path):
    store = Store(tmp_path / "h.duckdb")
    store.record_study(StudyRecord("big", "big", {}, "big", "1", "suites/big", "tiny", "abc", "task_accuracy", True))
    rows = example_rows(3000)
    store.record_trial_result(trial_record(0, rows))
    stored = store.examples("big/0")
    expected = sorted(rows, key=lambda r: (r.split, r.example_id))
    assert [(e.split, e.example_id, e.input, e.target, e.output, e.prompt_tokens, e.completion_tokens, e.latency_s,
             e.scores, e.error) for e in stored] == \
        [(r.split, r.example_id, r.input, r.target, r.output, r.prompt_tokens, r.completion_tokens, r.latency_s,
          r.scores, r.error) for r in expected]
    assert [e.example_id for e in stored if e.error] == ["ex:02999"]  # the one refusal, after 2,999 empty rows
    store.record_trial_result(trial_record(0, rows[:10]))  # rewritten, not appended
    assert len(store.examples("big/0")) == 10


def test_writing_a_trial_costs_less_than_binding_its_rows_one_by_one(tmp_path):
    """The write holds the database's lock, so its cost matters: 10 times the rows written by the store must take
    less time than a tenth of them bound one row at a time (`executemany`), which is how the store wrote them before
    (it then took about 10 times as long, not less)."""
    store = Store(tmp_path / "h.duckdb")
    store.record_study(StudyRecord("big", "big", {}, "big", "1", "suites/big", "tiny", "abc", "task_accuracy", True))
    rows = example_rows(3000)
    store.record_trial_result(trial_record(0, rows[:5]))  # migrations and first open, outside the comparison

    def write_all() -> float:
        start = time.perf_counter()
        store.record_trial_result(trial_record(1, rows))
        return time.perf_counter() - start

    def bind_a_tenth() -> float:
        conn = duckdb.connect(str(tmp_path / "baseline.duckdb"))
        apply_migrations(conn)
        conn.execute("DELETE FROM examples")
        start = time.perf_counter()
        conn.executemany(
            "INSERT INTO examples (trial_id, split, example_id, input, target, output, prompt_tokens,"
            " completion_tokens, latency_s, scores, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [["big/1", r.split, r.example_id, r.input, r.target, r.output, r.prompt_tokens, r.completion_tokens,
              r.latency_s, json.dumps(r.scores), r.error] for r in rows[:300]])
        elapsed = time.perf_counter() - start
        conn.close()
        return elapsed

    assert min(write_all() for _ in range(3)) < min(bind_a_tenth() for _ in range(3))
    assert len(store.examples("big/1")) == 3000
