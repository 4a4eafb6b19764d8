"""`harness recheck SUITE [--data FILE]`: has production drifted? Re-score the suite's production adapter on the
suite's current test data (the same seeded subset it was scored on) or on a new labelled file, compare with the
scores recorded when it was promoted, and say whether the change is beyond noise. The re-check goes into the
adapter's history.

The change is read by the decision rule (`harness.analysis.decision`) on the study's objective metric: on the same
examples it is paired (the tight test: McNemar's exact test for 0/1 scores), and so is a --data file whose every
example repeats a recorded test example; on new examples it is unpaired (Newcombe's score interval for 0/1 scores,
else each sample resampled on its own). Examples are matched by content, not by line, so a test file with a line
added or moved still pairs; a recorded input with another answer (relabelled) pairs on its input. When at least half
of the re-checked examples repeat recorded inputs, the change is read paired over those, and the new ones are read
unpaired against every recorded test example; the two readings are taken together at Holm-adjusted p-values, and a drop
beyond noise in either is a drop. A file that is mostly new is read unpaired as a whole. Stored inputs may be
redacted, so the suite's examples are redacted the same way before they are matched with them; otherwise a paired
re-check would silently become an unpaired one.

The same adapter on the same examples answers the same way only in the same setting, so the re-check also says what
changed since the scores were recorded: library versions, the harness's commit, the device, torch's threads, and the
suite's test file. A change beyond noise with none of these changed is the data's; with some, it may be theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness.analysis.decision import Decision, Outcome, compare_paired, compare_unpaired, read_together
from harness.analysis.formatting import counted, fmt_metric
from harness.core.config import ExperimentConfig
from harness.core.errors import HarnessError
from harness.core.metric import Metric
from harness.core.records import AdapterEvent, ExampleView, LookAtTest, RunEnvironment, TrialView, ran_with
from harness.core.redaction import Redactor
from harness.core.text import fold
from harness.core.typed import build
from harness.data.formats import SUFFIXES
from harness.data.labelled import FieldNames, read_labelled
from harness.data.suites import Example, seeded_subset, show_path
from harness.evaluation.rules import STATS_RULES
from harness.evaluation.scoring import score_split
from harness.evaluation.stats import bootstrap_mean, proportion
from harness.lifecycle.integrity import check_sealed
from harness.lifecycle.promote import check_suite, check_weights
from harness.models.device import resolve_device
from harness.models.environment import environment
from harness.store.database import Store
from harness.sweep.followups import trained_on
from harness.sweep.predict import beyond_window, load_candidate, study_suite


@dataclass(frozen=True)
class Recheck:
    trial: str
    suite: str
    data: str
    """`the suite's test subset` or the file re-scored."""
    paired: bool
    metric: str
    """The study's objective metric."""
    before: Metric
    """The metric on test as recorded for the trial (when it was scored, before promotion): over the re-checked
    examples when paired, else over every recorded test example."""
    now: Metric
    """The metric now, over the same examples as `before` when paired."""
    decision: Decision
    """now against before (paired on the same examples, else unpaired)."""
    metrics: dict[str, Metric]
    """Every metric of the re-scored data."""
    changed: tuple[str, ...] = ()
    """What differs from the setting that recorded `before` (versions, commit, device, threads, the test file)."""
    unmatched: Metric | None = None
    """When paired over only some of the examples: the metric on the others, which were never scored before."""
    apart: Decision | None = None
    """When paired over only some: the others against every recorded test example, unpaired (read with `decision`
    at Holm-adjusted p-values)."""
    recorded: Metric | None = None
    """When paired over only some: the metric over every recorded test example, what `apart` weighs them against."""
    relabelled: int = 0
    """Re-checked examples whose input is a recorded test input but whose answer is another: paired on the input."""
    answers_changed: tuple[int, int] | None = None
    """(answers now unlike the recorded ones, recorded inputs answered again): whether a change is the adapter's or
    the data's. None where no recorded input was answered again."""

    @property
    def change(self) -> Metric:
        """now - before, with its 95% interval."""
        return self.decision.difference

    @property
    def outcome(self) -> Outcome:
        """A drop beyond noise in any part is a drop; a rise needs one part up and none down."""
        outcomes = {d.outcome for d in (self.decision, self.apart) if d is not None}
        for outcome in (Outcome.WORSE, Outcome.BETTER):
            if outcome in outcomes:
                return outcome
        return Outcome.NOT_SHOWN

    @property
    def beyond_noise(self) -> bool:
        return self.outcome in (Outcome.BETTER, Outcome.WORSE)

    def text(self) -> str:
        head = f"re-check of {self.trial} (production for {self.suite}) on {self.data}: "
        if self.apart is None:
            how = "paired over the same examples" if self.paired else "unpaired: different examples"
            if self.relabelled:
                how += f"; {self._relabelled()}"
            body = (f"{self.metric} now {fmt_metric(self.now)}, recorded {fmt_metric(self.before)}; change (now - "
                    f"recorded) {self.decision.evidence()} ({how})")
        else:
            relabelled = f"; {self._relabelled()}" if self.relabelled else ""
            body = (f"{self.metric} on the {counted(self.before.n, 'example')} scored before now "
                    f"{fmt_metric(self.now)}, recorded {fmt_metric(self.before)}; change (now - recorded) "
                    f"{self.decision.evidence()} (paired{relabelled}). The other "
                    f"{counted(self.unmatched.n, 'example')} (never scored before) scored "
                    f"{fmt_metric(self.unmatched)}, against {fmt_metric(self.recorded)} over every recorded test "
                    "example: change "
                    f"{self.apart.evidence()} (unpaired). The two parts are read together at Holm-adjusted "
                    "p-values")
        return f"{head}{body}: {self._reading()}. {self._answers()}{self.setting()}"

    def _answers(self) -> str:
        """Half the labels moved and the adapter's answers did not: the change read as a drop, with no word that it
        was the labels'."""
        if self.answers_changed is None:
            return ""
        moved, again = self.answers_changed
        said = f"It answered {moved} of the {again} recorded inputs otherwise than when it was scored"
        if moved == 0 and self.relabelled:
            said += ", so a change on them is the labels', not the adapter's"
        return said + ". "

    def _relabelled(self) -> str:
        which = "is a recorded test input" if self.relabelled == 1 else "are recorded test inputs"
        return (f"{self.relabelled} of them {which} with another answer (relabelled), paired on the input: a change "
                "there is the labels' rather than the adapter's")

    def _reading(self) -> str:
        if not self.beyond_noise:  # with two parts, Holm may demote a part whose own interval leaves 0 out
            return ("no change beyond noise (the interval includes 0)" if self.apart is None else
                    "no change beyond noise in either part")
        word = "a DROP beyond noise" if self.outcome is Outcome.WORSE else "a rise beyond noise"
        if self.apart is None:
            return word
        parts = [name for name, d in (("the examples scored before", self.decision), ("the new ones", self.apart))
                 if d.outcome is self.outcome]
        return f"{word} on {' and on '.join(parts)}"

    def detail(self) -> dict:
        """What the adapter's history keeps of the re-check (and `recheck --format json` prints)."""
        return {"trial": self.trial, "suite": self.suite, "data": self.data, "paired": self.paired,
                "changed_since_recorded": list(self.changed), "metric": self.metric, "outcome": self.outcome.value,
                "beyond_noise": self.beyond_noise, "before": self.before.to_dict(), "now": self.now.to_dict(),
                "change": self.change.to_dict(), "decision": asdict(self.decision),
                "unmatched": None if self.unmatched is None else self.unmatched.to_dict(),
                "recorded": None if self.recorded is None else self.recorded.to_dict(),
                "apart": None if self.apart is None else asdict(self.apart), "relabelled": self.relabelled,
                "answers_changed": None if self.answers_changed is None else
                dict(zip(("changed", "of"), self.answers_changed)),
                "metrics": {k: v.to_dict() for k, v in self.metrics.items()}, "stats_rules": STATS_RULES}

    def setting(self) -> str:
        changed = [c for c in self.changed if not c.startswith(UNKNOWN)]
        unknown = [c[len(UNKNOWN):] for c in self.changed if c.startswith(UNKNOWN)]
        if not changed and not unknown:
            return ("Same library versions, harness commit, device and threads as when it was recorded; a change is "
                    "the data's.")
        said = [f"Changed since it was recorded: {'; '.join(changed)}." if changed else
                "Same library versions, device and threads as when it was recorded."]
        if unknown:
            said.append(f"Not known to be the same: {'; '.join(unknown)}.")
        return " ".join(said) + " A change may come from these as well as from the data."


def recheck(store: Store, suite: str, actor: str, data: Path | None = None, batch_size: int = 16,
            fields: FieldNames = FieldNames()) -> Recheck:
    """Re-score `suite`'s production adapter on its test subset, or on `data` (a labelled file: the suite's JSONL, or
    a table read from `fields`, else from the fields the suite was built from), and weigh the change."""
    check_suite(store, suite)
    if data is not None:
        _check_data(Path(data))
    production = store.production(suite)
    if production is None:
        raise HarnessError(f"suite {suite} has no production adapter to re-check; promote one with "
                           "`harness promote TRIAL --to production --approver NAME`.")
    trial = store.require_trial(production, complete=True)
    check_weights(store, trial)
    check_sealed(store, [trial.id], "a re-check weighs the adapter against them, so it did not run")
    study = store.study(trial.study)
    config = build(ExperimentConfig, ran_with(trial, study), f"trial {trial.id}")
    scored_on = study_suite(study, f"trial {trial.id}", trial.data)  # before the model loads: a bad file costs nothing
    recorded = {e.example_id: e for e in store.examples(trial.id, "test")}
    redactor = Redactor.from_config(config.redaction)  # stored inputs were redacted; match like with like
    if data is None:
        examples, stored, relabelled = _as_recorded(
            seeded_subset(scored_on.splits["test"], config.data.test_limit, config.seed), recorded, redactor)
        # the folder named: a suite of another project in a shared database reads as this one's otherwise
        label = f"the test subset of {show_path(scored_on.path)} ({counted(len(examples), 'example')})"
    else:
        labelled = read_labelled(Path(data), scored_on, "recheck", fields)
        examples, stored, relabelled = _as_recorded(labelled.examples, recorded, redactor)
        notes = [counted(len(examples), "example")]
        if labelled.repeated:
            notes.append(f"{counted(labelled.repeated, 'repeated row')} read once")
        if 0 < stored < len(examples):
            notes.append(f"{stored} of them are recorded test inputs")
        if memorised := _memorised(examples, trained_on(config, scored_on, trial.params)):
            notes.append(memorised)
        label = f"{data} ({'; '.join(notes)})"
    changed = setting_changes(store, trial, scored_on.split_sha256.get("test") if data is None else None,
                              scored_on.setup_sha256)
    candidate, loaded_suite, cap = load_candidate(store, trial.id, as_scored=False)  # the edit is named above
    too_long, context = beyond_window(candidate, examples, cap)
    if too_long:  # scored as any other answer, they had counted in n with only the library's warning
        longest = max(too_long, key=too_long.get)
        raise HarnessError(f"{label}: {len(too_long)} of its inputs are too long for the model: with {cap} tokens "
                           f"for the answer, their prompts do not fit its context window of {context:,} tokens (the "
                           f"longest, {_where(longest)}, is {too_long[longest]:,} tokens). Shorten or remove them "
                           "(nothing was re-checked).")
    answers = candidate.answer(examples, cap, batch_size, desc="recheck")
    again = [(ex.id, answer.output) for ex, answer in zip(examples, answers) if ex.id in recorded]
    moved = sum(1 for i, output in again if redactor.redact(output).strip() != recorded[i].output.strip())
    scores = score_split(examples, [a.output for a in answers], loaded_suite, config.seed)
    metric = study.objective_metric
    now = {ex.id: row.get(metric) for ex, row in zip(examples, scores.per_example)}
    before = {i: r.scores.get(metric) for i, r in recorded.items()}
    shared = {i: v for i, v in now.items() if i in recorded}  # `_as_recorded` gave these their recorded ids
    paired = len(shared) >= PAIRED_SHARE * len(now)
    new = [v for i, v in now.items() if i not in shared]
    direction = dict(higher_is_better=study.maximize, seed=config.seed)
    apart = None
    if paired:
        decision = compare_paired(shared, before, metric, **direction)
        if new:  # the new ones could hide a drop behind the paired ones' "no change": read both, Holm-adjusted
            decision, apart = read_together([decision, compare_unpaired(new, list(before.values()), metric,
                                                                          **direction)])
    else:
        decision = compare_unpaired(list(now.values()), list(before.values()), metric, **direction)
    # paired, "recorded" is over the same examples as "now": a file of 8 recorded examples is not read against all 30
    shown, compared = ([before[i] for i in shared], shared.values()) if paired else (before.values(), now.values())
    result = Recheck(trial.id, suite, label, paired, metric, _summary(shown), _summary(compared), decision,
                     dict(scores.metrics), changed, _summary(new) if apart is not None else None, apart,
                     _summary(before.values()) if apart is not None else None, relabelled,
                     (moved, len(again)) if again else None)
    store.record_adapter_events([AdapterEvent(trial.id, suite, "production", "production", "recheck", actor,
                                              result.text(), detail=result.detail())])
    if paired:  # a re-check on the same test subset is another look at it
        store.record_look(LookAtTest("recheck", suite, trial.data.subset_sha256.get("test"), trial.id, trial.id,
                                     metric, {"alpha": decision.alpha, "margin": 0.0}, decision.outcome.value, actor,
                                     {"decision": asdict(decision)}))
    return result


UNKNOWN = "unknown: "
"""Marks a `setting_changes` entry that may be no change at all (a tree with uncommitted changes, then and now)."""


def setting_changes(store: Store, trial: TrialView, test_sha256: str | None,
                    suite_setup: str | None = None) -> tuple[str, ...]:
    """What differs between the run that recorded `trial`'s scores and this process: each as `NAME then -> now`.
    `test_sha256`: the suite's test file as it is now, when the re-check reads it; `suite_setup`: the suite's
    `Suite.setup_sha256` now (the re-check prompts and scores with it)."""
    run = store.run(trial.run_id) if trial.run_id else None
    if run is None:
        return ("the recorded run's environment (it is not in the results database)",)
    then = run.env
    now = RunEnvironment.from_dict(environment(resolve_device("auto"), {}, {}))
    changes = [_change(name, then_v, now_v, then) for name, then_v, now_v in _pairs(then, now) if then_v != now_v]
    commit = now.git_commit
    if commit and commit == then.git_commit and commit.endswith("+dirty"):
        changes.append(f"{UNKNOWN}the harness code: commit {commit} then and now, each with uncommitted changes, "
                       "which git does not say were the same")
    recorded = trial.data.split_sha256.get("test")
    if test_sha256 and recorded and recorded != test_sha256:
        changes.append(f"test.jsonl sha256 {recorded[:12]}... -> {test_sha256[:12]}... (the suite's test file was "
                       "edited; its version was not)")
    setup = trial.data.suite_setup_sha256
    if suite_setup and setup is None:
        changes.append(f"{UNKNOWN}suite.yaml's instruction, `output:` and `scorers:` (not recorded for trials scored "
                       "before 2026-12-07; the re-check prompts and scores as it says now)")
    if suite_setup and setup and setup != suite_setup:
        changes.append(f"suite.yaml's instruction, `output:` or `scorers:` sha256 {setup[:12]}... -> "
                       f"{suite_setup[:12]}... (edited; its version was not: the re-check prompts and scores as it "
                       "says now)")
    return tuple(changes)


def _change(name: str, then_value, now_value, then: RunEnvironment) -> str:
    # Releases before 2026-12 wrote the device kind ("cpu") as its name: a CPU model now is no evidence of a change.
    if name == "device" and then_value is not None and then_value == then.device:
        return (f"device {now_value} now; the run that recorded the scores named it only {then_value!r}, so whether "
                "the device changed is not recorded")
    return f"{name} {then_value} -> {now_value}"


def _pairs(then: RunEnvironment, now: RunEnvironment):
    """(name, recorded value, current value) for every setting that can move a score."""
    versions_then, versions_now = then.versions or {}, now.versions or {}
    for package in sorted(set(versions_then) | set(versions_now)):
        if package in versions_then:  # a package the recording run did not track cannot be compared
            yield package, versions_then.get(package), versions_now.get(package)
    yield "harness commit", then.git_commit, now.git_commit
    yield "device", then.device_name, now.device_name
    yield "torch threads", then.torch_threads, now.torch_threads
    yield "python", then.python, now.python


def _as_recorded(examples: Sequence[Example], recorded: dict[str, ExampleView], redactor: Redactor
                 ) -> tuple[Sequence[Example], int, int]:
    """The examples, each that repeats a recorded test example under that example's id, so it is compared paired
    with its recorded score wherever it sits in the file; the others under ids no recorded example has. A repeat is
    the same input and target (redacted as stored) or, failing that, the same input with another answer (relabelled:
    its gold moved, and its score then and now are still the same input's, so it pairs on the input: read unpaired
    against every recorded example, 10 of 30 inputs relabelled from right to wrong read as noise). Each recorded
    example is matched once, exact repeats first. Returns them, how many repeat one, and how many of those are
    relabelled."""
    by_content = {(e.input, e.target): e.example_id for e in recorded.values()}
    by_input: dict[str, list[str]] = {}
    for e in recorded.values():
        by_input.setdefault(e.input, []).append(e.example_id)
    texts = [(redactor.redact(ex.input), redactor.redact(ex.target)) for ex in examples]
    ids: list[str | None] = [None] * len(examples)
    taken: set[str] = set()
    for k, key in enumerate(texts):
        twin = by_content.get(key)
        if twin is not None and twin not in taken:
            taken.add(twin)
            ids[k] = twin
    relabelled = 0
    for k, (text, _) in enumerate(texts):
        twin = None if ids[k] else next((i for i in by_input.get(text, ()) if i not in taken), None)
        if twin is not None:
            taken.add(twin)
            ids[k], relabelled = twin, relabelled + 1
    # a line number may be a recorded id of another example: never let an unmatched one pair with that one
    return [replace(ex, id=ids[k] or f"new:{ex.id}") for k, ex in enumerate(examples)], len(taken), relabelled


def _where(ex: Example) -> str:
    """Where a re-checked example came from: its line in the file given, or the recorded test example it repeats."""
    return f"line {ex.id.rsplit(':', 1)[1]}" if ex.id.startswith("new:") else f"the recorded test example {ex.id}"


PAIRED_SHARE = 0.5
"""The share of re-checked examples that must repeat recorded ones for the change to be read paired over them;
below it, the few shared pairs would say less than all the examples read unpaired."""


def _memorised(examples: Sequence[Example], train: Sequence[Example]) -> str | None:
    """A note when --data repeats inputs the adapter trained on (compared after folding case, spacing and
    punctuation): there it answers from memory, and a re-check that includes them reads better than new traffic."""
    seen = {fold(ex.input) for ex in train}
    repeated = [ex.id for ex in examples if fold(ex.input) in seen]
    if not repeated:
        return None
    where = ", ".join(repeated[:5]) + (", ..." if len(repeated) > 5 else "")
    return (f"warning: {counted(len(repeated), 'example')} of them repeat the adapter's training inputs ({where}): "
            "on those it answers from memory, so they say little about drift; leave them out for a fair re-check")


def _check_data(path: Path) -> None:
    """--data is a file of one of the formats `harness suite init` reads (the suite's JSONL among them)."""
    if path.is_dir():
        raise HarnessError(f"--data {path} is a folder; give the labelled file itself (a suite's new test data is "
                           f"its test.jsonl, e.g. --data {path / 'test.jsonl'}).")
    if path.suffix.lower() not in SUFFIXES:
        kind = f"a {path.suffix} file" if path.suffix else "a file without a suffix"
        raise HarnessError(f"{path} is {kind}: recheck reads labelled examples as `harness suite init` does, from "
                           ".jsonl, .csv, .tsv or .parquet. Export them as one of those, then pass it to --data.")
    if not path.is_file():
        raise HarnessError(f"{path}: no such file; give --data an existing labelled file.")


def _summary(values) -> Metric:
    """The metric over the examples that have a value: a proportion (Wilson) for 0/1 scores, else a bootstrap mean."""
    kept = [float(v) for v in values if v is not None]
    return proportion(kept) if all(v in (0.0, 1.0) for v in kept) else bootstrap_mean(kept)

