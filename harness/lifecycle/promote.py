"""`harness promote` and `harness rollback`: move an adapter through candidate -> staging -> production -> retired,
through the gate, and keep every change (who, when, why, the gate's result) in the registry's history.

A suite has at most one production adapter. Promoting one to production retires the one it replaces, in the same
transaction; rolling back retires the current one and restores the adapter it replaced. `--to retired` takes an
adapter out of service by hand (no gate: nothing goes into service), which is how a suite is left without one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness.analysis.gate import GateResult, reference_for, run_gate
from harness.core.config import ExperimentConfig, GateConfig
from harness.core.errors import HarnessError, SuiteError
from harness.core.records import GATE_SEALS, AdapterEvent, LookAtTest, StudyView, TrialView, ran_with
from harness.core.text import with_article
from harness.core.typed import build
from harness.data.suites import load_suite, show_path
from harness.evaluation.rules import STATS_RULES
from harness.lifecycle.integrity import check_sealed
from harness.models import loading, sources
from harness.store.database import Store
from harness.store.weights import missing_weights

TARGETS = ("staging", "production", "retired")
WITHDRAW = "withdraw"
"""The action of a retirement by hand. `retire` is kept for an adapter another one replaced in production, the only
kind `rollback` restores: an adapter someone took out of service must not come back by a rollback."""


OVERRIDE = "override the gate with --force --reason TEXT (the override and the reason are recorded)"


class AlreadyThere(HarnessError):
    """The adapter already has the status asked for: nothing to do, which a nightly job that promotes its pick again
    reads as done (exit 0), not as an error (exit 2) that failed the job."""


class GateRefused(HarnessError):
    """The gate failed and nothing changed; the message lists every failing rule with its numbers, and the ways on
    (`ways`, when the usual "improve it, or override" does not fit)."""

    def __init__(self, gate: GateResult, ways: str | None = None) -> None:
        super().__init__(f"{gate.text()}\nNothing changed. {ways or f'Improve the adapter, or {OVERRIDE}.'}")
        self.gate = gate


@dataclass(frozen=True)
class Promotion:
    trial: str
    suite: str
    status: str
    previous: str
    gate: GateResult | None
    """None for a retirement, which runs no gate."""
    forced: bool
    retired: str | None
    """The production adapter this one replaced."""


def status_of(store: Store, trial_id: str) -> str:
    return store.adapter_statuses().get(trial_id, "candidate")


def gate_config(study: StudyView, candidate: TrialView | None = None) -> tuple[GateConfig, str]:
    """The experiment file's `gate:`, else the suite's as the study recorded it when swept, else the defaults; with
    where they came from, in words (a lead who set the objective's limits took them for the gate's).

    The suite's block is the one the study was scored under: a `margin: 1.0` added to suite.yaml after the sweep, with
    no new version, let a candidate 33 points worse replace production. A file changed since is named, not read."""
    # the candidate's own experiment record: a resume with a loosened `gate:` in the file replaces the study's
    experiment = ran_with(candidate, study) if candidate is not None else study.experiment
    if experiment.get("gate"):
        return (build(GateConfig, experiment["gate"], f"study {study.name}: experiment", prefix="gate."),
                f"the experiment's `gate:` ({study.config_path or study.experiment_name}), as "
                f"{candidate.id if candidate is not None else 'the study'} ran with it")
    recorded, block = study.suite_gate
    if not recorded:  # a study swept before the block was recorded: the folder is all there is
        suite = load_suite(_suite_folder(study))
        if suite.gate is not None:
            return suite.gate, (f"suite {suite.name}'s `gate:` ({show_path(suite.path / 'suite.yaml')}, as it reads "
                                "now: studies swept before 2026-12-07 did not record it)")
        return GateConfig(), DEFAULTS
    readable, now = _suite_gate_now(study)
    config = GateConfig() if block is None else build(GateConfig, dict(block), f"study {study.name}: suite gate",
                                                      prefix="gate.")
    changed = "" if not readable or now == (None if block is None else config) else (
        f"; suite.yaml's `gate:` has changed since ({_gate_text(now)}), and is not read: a study is gated by the "
        "thresholds it was scored under. Sweep a new study to be gated by the new ones")
    if block is None:
        return config, DEFAULTS + changed
    return config, f"suite {study.suite}'s `gate:` as study {study.name} was scored under it{changed}"


DEFAULTS = ("the defaults: neither the experiment nor the suite has a `gate:` block (the objective's "
            "min_format_compliance and max_hallucination_rate constrain the sweep, not the gate)")


def _suite_folder(study: StudyView) -> str:
    return study.suite_path if study.suite_path and Path(study.suite_path).is_dir() else study.suite


def _suite_gate_now(study: StudyView) -> tuple[bool, GateConfig | None]:
    """(whether the suite folder reads now, its `gate:` then, None where it has none): a folder gone or broken since
    is nothing to compare with, not a gate removed."""
    try:
        return True, load_suite(_suite_folder(study)).gate
    except SuiteError:
        return False, None


def _gate_text(config: GateConfig | None) -> str:
    if config is None:
        return "it now has none"
    changed = {k: v for k, v in asdict(config).items() if v != getattr(GateConfig(), k)}
    return "now " + (", ".join(f"{k}: {v}" for k, v in changed.items()) or "the defaults")


def promote(store: Store, trial_id: str, to: str, approver: str, note: str | None = None, force: bool = False,
            reason: str | None = None) -> Promotion:
    if to not in TARGETS:
        raise HarnessError(f"--to {to!r}: promote to one of {', '.join(TARGETS)} (an adapter is also retired when "
                           "another replaces it in production, or by `harness rollback`).")
    if not approver.strip():
        raise HarnessError("--approver is empty: name who approves the promotion; it is recorded.")
    if to == "retired":
        if force or reason:
            raise HarnessError("retiring runs no gate, so there is nothing to override: leave out --force and "
                               "--reason, and say why with --note TEXT (recorded).")
        return retire(store, trial_id, approver, note)
    if force and not (reason or "").strip():
        raise HarnessError("--force needs --reason TEXT: an override of the gate is recorded with its reason.")
    if reason and not force:  # else the gate would run, and the reason be dropped without a word
        raise HarnessError("--reason says why a failing gate is overridden, so it goes with --force. Say why you "
                           "promote with --note TEXT (recorded), or add --force to override the gate.")
    trial = _adapter(store, trial_id)
    study = store.study(trial.study)
    previous = status_of(store, trial.id)
    if previous == to:
        raise AlreadyThere(f"{trial.id} is already in {to}; nothing changed: no gate ran and nothing was recorded.")
    if previous == "production":  # a demotion would leave the suite without production, and no adapter restored
        raise HarnessError(f"{trial.id} is the production adapter of suite {study.suite}; promote does not demote it. "
                           + ways_out_of_production(store, study.suite, trial.id))
    production = store.production(study.suite)  # read before the gate: the move is recorded only if it still is
    try:
        reference, kind = reference_for(store, trial, study.suite)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    seals = check_sealed(store, [trial.id, reference.id], "the gate weighs their stored scores, so it did not run")
    config, source = gate_config(study, trial)
    gate = replace(run_gate(store, trial, reference, kind, config, study.suite), thresholds_from=source)
    outcome = "passed" if gate.passed else "overridden" if force else "refused"
    look = gate_look(gate, study.suite, approver, outcome, to)
    if not gate.passed and not force:
        store.record_look(look)  # a refusal changes nothing but is a look at test all the same
        raise GateRefused(gate, ways_to_compare(store, trial, gate) if gate.unpaired else None)
    events, retired = [], None
    if to == "production" and production is not None and production != trial.id:
        retired = production
        events.append(AdapterEvent(production, study.suite, "retired", "production", "retire", approver,
                                   f"replaced in production by {trial.id}"))
    why = "; ".join(text for text in (reason if force else None, note) if text) or None  # --note is kept too
    events.append(AdapterEvent(trial.id, study.suite, to, previous, "promote", approver, why,
                               forced=not gate.passed, gate=gate.to_dict(), detail={GATE_SEALS: seals}))
    # one transaction: never the look without the move, nor the move alone, nor either if production moved meanwhile
    store.record_adapter_events(events, look, production_was=(study.suite, production))
    return Promotion(trial.id, study.suite, to, previous, gate, not gate.passed, retired)


def ways_to_compare(store: Store, candidate: TrialView, gate: GateResult) -> str:
    """How to promote a candidate the gate could not weigh against its reference, scored on another test subset:
    score it on the reference's subset where another data.test_limit or seed drew it, or override on the record.
    Each command runs as printed. Retiring production first is no way: the gate then weighs the candidate against
    the adapter last in production, the same one."""
    reference = gate.reference
    ours, theirs = (_scored_with(store, trial) for trial in (candidate.study, store.require_trial(reference).study))
    if (ours.data.test_limit, ours.seed) != (theirs.data.test_limit, theirs.seed):
        ways = [f"score it on {reference}'s test subset: {_rescore_command(store, candidate, reference, theirs)}, and "
                "promote the new study's trial"]
    else:
        ways = [f"its study drew the test subset with {reference}'s data.test_limit and seed, so they were scored on "
                f"other test data (suite {_version_of(candidate)} against {_version_of(store.require_trial(reference))}"
                ", or its test.jsonl edited since): no re-run with those settings pairs them. Score both on one "
                "version of the suite in one study"]
    ways.append(f"{OVERRIDE}: the record says the objective was not compared like for like")
    return (f"The gate could not weigh {candidate.id} against {gate.reference_kind} {reference} on the same test "
            "examples. To promote it, " + "; or ".join(ways) + ".")


def _scored_with(store: Store, study: str) -> ExperimentConfig:
    view = store.study(study)
    return build(ExperimentConfig, dict(view.experiment), f"study {view.name}")


def _version_of(trial: TrialView) -> str:
    return f"{trial.data.suite or '?'} {trial.data.suite_version or '(version not recorded)'}"


def _rescore_command(store: Store, candidate: TrialView, reference_id: str, scored: ExperimentConfig) -> str:
    """The sweep that runs the candidate's experiment again as a new study, on the reference's test subset (a seeded
    subset of the suite's test split: its study's data.test_limit and seed)."""
    reference = store.study(store.require_trial(reference_id).study)
    limit = "null" if scored.data.test_limit is None else scored.data.test_limit
    experiment = store.study(candidate.study).config_path or "EXPERIMENT"
    return (f"run its experiment again as a new study with study {reference.name}'s data.test_limit and seed, "
            f"`harness sweep {experiment} --study {candidate.study}-like-{reference.name} "
            f"--set data.test_limit={limit} --set seed={scored.seed}`")


def gate_look(gate: GateResult, suite: str, actor: str, outcome: str, target: str) -> LookAtTest:
    """A gate evaluation as a look at test: who asked, for which move, and every rule's result."""
    rule = {"margin": gate.config.margin, "alpha": gate.decision.alpha, "target": target,
            "thresholds": gate.to_dict()["config"]}
    return LookAtTest("gate", suite, gate.subset, gate.candidate, gate.reference, gate.decision.metric, rule,
                      outcome, actor, {"decision": gate.to_dict()["decision"], "rules": gate.to_dict()["rules"],
                                       "earlier_candidates": gate.earlier, "stats_rules": STATS_RULES})


def rollback(store: Store, suite: str, approver: str, note: str | None = None) -> tuple[str, str]:
    """Retire the suite's production adapter and restore the one it replaced; returns (restored, retired)."""
    if not approver.strip():
        raise HarnessError("--approver is empty: name who rolls back; it is recorded.")
    check_suite(store, suite)
    current = store.production(suite)
    if current is None:
        left = [e for e in store.adapter_events(suite=suite) if e.previous == "production" and e.status == "retired"]
        how = (f" {left[-1].trial_id} was last in production, retired by {left[-1].actor} ({left[-1].action}); put "
               f"an adapter back with `harness promote TRIAL --to production --approver NAME` (the gate weighs any "
               f"other against {left[-1].trial_id})." if left else
               " Promote one with `harness promote TRIAL --to production --approver NAME`.")
        raise HarnessError(f"suite {suite} has no production adapter to roll back.{how}")
    restored = restorable(store, suite, current)
    if restored is None:
        raise HarnessError(f"suite {suite}: {current} has no earlier production adapter to roll back to (rollback "
                           "restores one that another adapter replaced, never one retired by hand). "
                           + ways_out_of_production(store, suite, current))
    _adapter(store, restored)  # its weights must still be there to serve
    why = note or f"rolled back from {current}"
    store.record_adapter_events([
        AdapterEvent(current, suite, "retired", "production", "rollback", approver, why),
        AdapterEvent(restored, suite, "production", status_of(store, restored), "rollback", approver, why),
    ], production_was=(suite, current))
    return restored, current


def retire(store: Store, trial_id: str, approver: str, note: str | None) -> Promotion:
    """Take an adapter out of service by hand (`promote --to retired`), with who and why on the record. No gate runs,
    and its weights need not be there any more (a reason to retire it)."""
    if not approver.strip():
        raise HarnessError("--approver is empty: name who retires the adapter; it is recorded.")
    if not (note or "").strip():
        raise HarnessError("--to retired needs --note TEXT: why the adapter is taken out of service is recorded.")
    trial = store.require_trial(trial_id, complete=True)
    if not trial.trained:
        raise HarnessError(f"{trial.id} is {with_article(trial.method)} trial"
                           ": only adapters (trained trials) are in the "
                           "registry, so there is nothing to retire.")
    suite = store.study(trial.study).suite
    previous = status_of(store, trial.id)
    if previous == "retired":
        raise HarnessError(f"{trial.id} is already retired.")
    store.record_adapter_events([AdapterEvent(trial.id, suite, "retired", previous, WITHDRAW, approver, note)])
    return Promotion(trial.id, suite, "retired", previous, None, False, None)


def restorable(store: Store, suite: str, current: str) -> str | None:
    """What `rollback` restores: the adapter last replaced in production by another, unless it was retired by hand
    since."""
    events = [e for e in store.adapter_events(suite=suite) if e.action != "recheck"]  # a re-check changes no status
    latest = {e.trial_id: e.action for e in events}
    replaced = [e.trial_id for e in events if e.action == "retire" and e.previous == "production"
                and e.trial_id != current and latest[e.trial_id] != WITHDRAW]
    return replaced[-1] if replaced else None


def ways_out_of_production(store: Store, suite: str, current: str) -> str:
    """The commands that take `current` out of production, each runnable as printed; rollback only where it has an
    adapter to restore."""
    ways = [f"Take it out of service with `harness promote {current} --to retired --approver NAME --note WHY` (the "
            f"suite then has no production adapter)", f"promote another adapter to production (it retires {current})"]
    restored = restorable(store, suite, current)
    if restored is not None:
        ways.append(f"restore {restored}, the adapter it replaced, with `harness rollback {suite} --approver NAME`")
    return ", or ".join(ways) + "."


def check_suite(store: Store, suite: str) -> None:
    """A suite no study of this database was scored on is a wrong name, not a suite without production."""
    known = sorted({study.suite for study in store.studies()} | {e.suite for e in store.adapter_events()})
    if suite not in known and not known:
        raise HarnessError(f"no suite {suite!r} in {store.path}: it holds no study yet. Run a sweep first, or point "
                           "--db at the harness.duckdb of a results folder.")
    if suite not in known:
        raise HarnessError(f"no suite {suite!r} in {store.path}: its studies are on {', '.join(known)}. Give one of "
                           "those suite names (`harness registry` lists each suite's adapters).")


def production_for(store: Store, trial_id: str) -> str:
    """The production adapter of the trial's suite: what `harness compare A` compares A with."""
    trial = store.require_trial(trial_id)
    suite = store.study(trial.study).suite
    current = store.production(suite)
    if current is None:
        raise HarnessError(f"suite {suite} has no production adapter to compare {trial.id} with; give a second trial, "
                           "or promote one first.")
    if current == trial.id:
        raise HarnessError(f"{trial.id} is the production adapter of suite {suite}; give a second trial to compare.")
    return current


def _adapter(store: Store, trial_id: str) -> TrialView:
    trial = store.require_trial(trial_id, complete=True)
    if not trial.trained:
        raise HarnessError(f"{trial.id} is {with_article(trial.method)} trial"
                           ": only adapters (trained trials) are promoted. Its "
                           "scores can still serve as the reference a gate compares with. Where prompting won, the "
                           f"base model serves it as prompted: `harness export {trial.id} --out prompt/` writes its "
                           f"prompt, shots and decoding as a service sends them, and `harness predict {trial.id} "
                           "--input FILE` answers new inputs that way.")
    check_weights(store, trial)
    return trial


def check_weights(store: Store, trial: TrialView) -> None:
    """Refuse, before any model loads, a trained trial whose saved weights are gone (`missing_weights`), or do not
    belong on its base model: an adapter made for another base (see `loading.check_adapter_base`). `promote`,
    `rollback`, `export`, `audit` and `recheck` call it (`predict` checks through `load_candidate`)."""
    study = store.study(trial.study)
    if (missing := missing_weights(trial, study)) is not None:
        raise HarnessError(missing)
    if not trial.trained or study is None:
        return
    source = sources.resolve_recorded(study.model_name, f"trial {trial.id}", pull_missing=False)
    loading.check_adapter_base(trial.artifact_path, source, f"trial {trial.id}")
