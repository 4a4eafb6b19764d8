"""`harness audit`: a self-contained folder that shows where an adapter came from, and `--verify` to check it.

The pack holds the export, a model card, `record.json` (base model, data splits and a provenance line per training
example, the full config (user redaction regexes withheld) and search space, seeds, versions, commit, device and
determinism settings, what the sweep decided on its machine (seeded subsets, step budget, the calibrated precision,
the engine), the training curve, the metrics with their intervals, the gate and the approver, the cost, and whether
stored examples were redacted), and `MANIFEST.json` with the sha256 of every other file. The manifest's own sha256 is
recorded in the results database as the pack is written (and printed): `--verify` checks it against that record, or
against a hash kept elsewhere, since a pack edited with its manifest recomputed still agrees with itself. A record is
never changed: a later change writes a new pack. A suite whose files changed since the trial was scored is refused:
the pack would otherwise give their new hashes as the data the adapter was trained on.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness.analysis.cost import load_prices, sweep_cost
from harness.analysis.formatting import fmt_metric, points, usd
from harness.core.config import ExperimentConfig, RedactionConfig
from harness.core.errors import HarnessError
from harness.core.metric import Metric
from harness.core.paths import git_commit
from harness.core.records import AdapterEvent, LookAtTest, RunEnvironment, StudyView, TrialView, ran_with
from harness.core.text import markdown_inert, with_article
from harness.core.typed import build
from harness.data.suites import SPLITS, Suite
from harness.lifecycle.export import check_outside_artifacts, export
from harness.lifecycle.integrity import check_sealed
from harness.lifecycle.promote import WITHDRAW
from harness.store.chain import HEAD_CHARS, ChainCheck
from harness.store.database import AuditPackRecord, Store
from harness.sweep.followups import trained_on
from harness.sweep.predict import study_suite

MANIFEST = "MANIFEST.json"
RECORD = "record.json"
CARD = "MODEL_CARD.md"


def audit(store: Store, trial_id: str, out: Path, actor: str | None = None) -> Path:
    """Write the pack into the new folder `out`, whole or not at all, and keep its manifest's sha256 in the results
    database (`manifest_sha256` reads it from the pack)."""
    out = Path(out)
    if out.exists():
        raise HarnessError(f"{out} exists; an audit record is never changed. Write the new one to another folder.")
    trial = store.require_trial(trial_id, complete=True)
    if not trial.trained:
        raise HarnessError(f"{trial.id} is {with_article(trial.method)} trial"
                           ": it has no weights of its own to audit (its prompt "
                           "is in the study); an audit pack documents a trained adapter or model.")
    check_outside_artifacts(out, trial)
    study = store.study(trial.study)
    suite = study_suite(study, f"trial {trial.id}", trial.data)  # the suite it was scored on, at its version
    check_splits_unchanged(trial, suite)
    seal = check_sealed(store, [trial.id], "an audit pack would certify scores that are not the ones scored")
    staging = out.parent / f".{out.name}.audit-tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:  # before the model loads: a folder that cannot be written costs nothing
        staging.mkdir(parents=True)
    except OSError as exc:
        raise HarnessError(f"--out {out}: cannot write there ({exc.strerror}: {exc.filename}); give a folder in a "
                           "writable place.") from None
    try:
        exported = export(store, trial.id, staging / "export")
        record = {**_record(store, trial, study, suite, exported.base), "scores_sealed": seal[trial.id]}
        (staging / RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n",
                                      encoding="utf-8")
        (staging / CARD).write_text(_card(record), encoding="utf-8")
        files = {p.relative_to(staging).as_posix(): _sha256(p) for p in sorted(staging.rglob("*")) if p.is_file()}
        (staging / MANIFEST).write_text(json.dumps({"files": files}, indent=2) + "\n", encoding="utf-8")
        # recorded before the folder appears: a pack on disk always has its hash on record
        store.record_audit_pack(AuditPackRecord(trial.id, study.suite, str(out.resolve()),
                                                manifest_sha256(staging), actor))
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def verify(folder: Path) -> list[str]:
    """Every file whose sha256 no longer matches the manifest, every file missing, and every file added."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file, not a folder (unpack an archived pack first)" if folder.exists() else "does not exist"
        raise HarnessError(f"--verify {folder} {what}; give the folder `harness audit --out` wrote.")
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return [f"{manifest}: missing; this is not an audit pack (or its manifest was removed)"]
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        return [f"{manifest}: not a valid manifest (it was changed)"]
    if not isinstance(listed, dict) or not all(isinstance(d, str) for d in listed.values()):
        return [f"{manifest}: not a valid manifest (it was changed): `files` must map each file to its sha256"]
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    problems = [f"{name}: missing" for name in sorted(set(listed) - present)]
    problems += [f"{name}: not in the manifest (added after the pack was written)"
                 for name in sorted(present - set(listed))]
    problems += [f"{name}: sha256 {_sha256(folder / name)[:16]}... does not match the manifest's {digest[:16]}..."
                 for name, digest in sorted(listed.items()) if name in present and _sha256(folder / name) != digest]
    return problems


SELF_ONLY = ("the pack is consistent with itself only (no recorded hash to compare: keep the printed hash elsewhere, "
             "and pass it with --manifest-sha256 HEX{where}). That shows no file changed by accident, not that this "
             "is the pack the harness wrote: whoever edits a file can recompute the manifest too")


@dataclass(frozen=True)
class PackCheck:
    """What `audit --verify` found: every file against MANIFEST.json, and MANIFEST.json against a hash kept outside
    the pack (the one recorded in the results database when it was written, or one given)."""

    folder: Path
    problems: list[str]
    manifest_sha256: str | None
    """None where the pack has no manifest to hash."""
    anchor: str = ""
    """What the manifest's hash was checked against, in words, when it passed."""

    def summary(self) -> str:
        if self.problems:
            return f"{self.folder}: {len(self.problems)} problem(s)"
        return f"{self.folder}: every file matches {MANIFEST}; {self.anchor}."


def manifest_sha256(folder: Path) -> str:
    """The sha256 of a pack's MANIFEST.json: it holds every other file's, so this one hash stands for the pack."""
    return _sha256(Path(folder) / MANIFEST)


def check_pack(folder: Path, store: Store | None = None, expected: str | None = None) -> PackCheck:
    """`verify`, then the manifest's hash against `expected` (a hash kept elsewhere) when given, else against the
    hashes `store` recorded as packs were written. A pack edited with its manifest recomputed passes `verify`, and
    fails here once a recorded or given hash is at hand."""
    if expected is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", expected.strip()):
        raise HarnessError(f"--manifest-sha256 {expected!r}: give the 64 hexadecimal digits printed when the pack was "
                           "written.")
    folder = Path(folder)
    problems = verify(folder)
    if not (folder / MANIFEST).is_file():
        return PackCheck(folder, problems, None)
    digest = manifest_sha256(folder)
    if expected is not None:
        problem, anchor = _against_given(digest, expected.strip().lower())
    else:
        problem, anchor = _against_recorded(folder, digest, store)
    problems += [problem] if problem else []
    if store is not None and (registry := registry_problem(folder, store)) is not None:
        problems.append(registry)
    return PackCheck(folder, problems, digest, anchor)


def _against_given(digest: str, expected: str) -> tuple[str | None, str]:
    """(a problem, or None; what was checked) for a hash the user kept."""
    if digest != expected:
        return (f"{MANIFEST}: sha256 {digest} is not the {expected} given with --manifest-sha256: this is not the "
                "pack that hash was kept for (it was changed after it was written, its manifest included)"), ""
    return None, f"{MANIFEST} (sha256 {digest[:16]}...) matches the hash given with --manifest-sha256"


def _against_recorded(folder: Path, digest: str, store: Store | None) -> tuple[str | None, str]:
    """(a problem, or None; what was checked) against the packs the results database recorded. A hash no pack of
    this adapter (nor of this folder) was recorded with is a changed pack; a database that recorded none of them
    has nothing to compare with, and says so."""
    if store is None:
        return None, SELF_ONLY.format(where=", or give --db RESULTS, the results database it was written from")
    packs = store.audit_packs()
    same = next((p for p in packs if p.manifest_sha256 == digest), None)
    if same is not None:
        when = f"{same.at:%Y-%m-%d %H:%M} UTC" if same.at else "at an unrecorded time"
        return None, (f"{MANIFEST} (sha256 {digest[:16]}...) matches the hash recorded when it was written ("
                      f"{same.trial_id}, {when}{f' by {same.actor}' if same.actor else ''}, in {store.path})")
    claimed = _claimed_trial(folder)
    here = str(folder.resolve())
    theirs = [p for p in packs if p.trial_id == claimed or p.folder == here]
    if theirs:
        kept = "; ".join(f"{p.manifest_sha256[:16]}... for {p.trial_id} at {p.folder}" for p in theirs)
        return (f"{MANIFEST}: sha256 {digest[:16]}... is none of the hashes {store.path} recorded when the packs of "
                f"{claimed or 'this folder'} were written ({kept}): the pack was changed after it was written, its "
                "manifest included"), ""
    return None, SELF_ONLY.format(where=f"; {store.path} holds no pack of {claimed or 'the trial this pack names'}")


def _claimed_trial(folder: Path) -> str | None:
    """The trial the pack's record names (it may have been edited: only a recorded hash is evidence)."""
    try:
        return json.loads((folder / RECORD).read_text(encoding="utf-8"))["trial"]["id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _record(store: Store, trial: TrialView, study: StudyView, suite: Suite, base: str) -> dict:
    experiment = ran_with(trial, study)
    config = build(ExperimentConfig, experiment, f"trial {trial.id}")
    run = store.run(trial.run_id) if trial.run_id else None
    env = run.env if run else RunEnvironment()
    sweep_trials = store.trials(trial.study)
    runs = store.runs(t.run_id for t in sweep_trials if t.run_id)
    prices = load_prices(overrides=config.prices or None)
    try:
        spent = sweep_cost(sweep_trials, runs, prices)
        cost = {"sweep_usd": spent.usd, "sweep_usd_text": usd(spent.usd), "price_table": prices.version,
                "not_priced": spent.skipped}
    except HarnessError as exc:
        cost = {"sweep_usd": None, "why": str(exc)}
    test = trial.throughput.get("test")
    if test:
        cost["tokens_per_query"] = {"prompt": test.prompt_tokens_per_query,
                                    "completion": test.completion_tokens_per_query}
    events = store.adapter_events(trial_id=trial.id)
    looks = [look for look in store.looks(suite=study.suite) if trial.id in (look.candidate, look.reference)]
    gated = next((e for e in reversed(events) if e.gate), None)  # the last move the gate decided (or was overridden)
    return {
        "written_at": datetime.now(timezone.utc).isoformat(),
        "trial": {"id": trial.id, "study": trial.study, "method": trial.method, "params": dict(trial.params),
                  "status": trial.status, "feasible": trial.feasible, "started_at": trial.started_at,
                  "finished_at": trial.finished_at},
        "base_model": {"name": study.model_name, "sha256": study.model_sha256, "note": study.model_note,
                       "base_model_name_or_path": base},
        "data": {"suite": suite.name, "version": suite.version, "path": str(suite.path),
                 "splits": {s: {"file": f"{s}.jsonl", "sha256": suite.split_sha256[s], "rows": len(suite.splits[s])}
                            for s in SPLITS}},
        "training_examples": _provenance(suite, trained_on(config, suite, dict(trial.params))),
        "config": _shareable(experiment),
        "search_space": dict(experiment.get("space", {})),
        "seeds": {"experiment": config.seed, "trial": trial.params.get("seed", config.seed)},
        "environment": {"versions": env.versions, "python": env.python,
                        "harness_git_commit": env.git_commit, "audit_git_commit": git_commit(),
                        "device": env.device, "device_name": env.device_name, "host": run and run.host,
                        "platform": env.platform, "torch_threads": env.torch_threads,
                        "determinism": env.determinism},
        "scored_with": _scored_with(trial),
        "training": _training(trial),
        "metrics": {split: {name: m.to_dict() for name, m in metrics.items()}
                    for split, metrics in trial.metrics.items()},
        "stats_rules": trial.stats_rules,  # the interval rules the metrics were scored under (evaluation/rules.py)
        # the weights as they were scored, each file's sha256 recorded when the trial saved them (null: not
        # recorded, a trial saved before 2026-12-07); the export in this pack was checked against them
        "weights_sha256_when_scored": None if trial.weights_sha256 is None else dict(trial.weights_sha256),
        "registry": [asdict(e) for e in events],
        # the registry's hash chain when the pack was written: `audit --verify --db` checks the database still holds
        # this head, so a registry rewritten since shows (store/chain.py)
        "registry_chain": _chain(store.registry_chain()),
        "gate": gated and gated.gate,
        "gate_override": {"by": gated.actor, "reason": gated.note} if gated and gated.forced else None,
        "looks_at_test": _looks(looks, trial.id),
        "last_gate_evaluation": _last_gate(looks, trial.id),
        "approver": next((e.actor for e in reversed(events) if e.action == "promote"), None),
        "status": _status(events),
        "cost": cost,
        "redaction": _redaction(config.redaction),
    }


# User regexes may spell out what they hide (a customer's name, an account-number prefix), and an audit pack is made
# to be handed to reviewers outside the team. So the pack names the built-in patterns but gives only the number of
# user regexes, also in its copy of the config; a hash would not help, as a short regex is easy to guess from it.
# The experiment file (and the results database) still hold them for whoever reproduces the run.
WITHHELD = "<withheld from the audit pack>"


def check_splits_unchanged(trial: TrialView, suite: Suite) -> None:
    """Refuse a pack whose suite files changed since the trial was scored (its version unchanged): the pack would
    give the hashes and lines of data the adapter never saw as the data it was trained and scored on."""
    recorded = trial.data.split_sha256
    now = suite.split_sha256
    changed = [f"{split}.jsonl: sha256 {digest[:16]}... when {trial.id} was scored, {now[split][:16]}... now"
               for split, digest in recorded.items() if split in now and now[split] != digest]
    if changed:
        raise HarnessError(f"suite {suite.name} {suite.version} at {suite.path} is not the data {trial.id} was trained "
                           f"and scored on, though its version is the same: {'; '.join(changed)}. Restore those files "
                           "(from version control or a backup) and write the pack again; and give an edited suite a "
                           "new `version:` in suite.yaml, so its scores are never mistaken for these.")


def _scored_with(trial: TrialView) -> dict:
    """What the sweep decided for this trial on its machine: the seeded subsets (sizes and sha256 of their ids), the
    step budget, the precision the calibration chose and its timings, the answer cap, the forgetting check, and the
    engine that generated every scored answer (what ended training is under `training`)."""
    # the config it ran with is the record's `config`, its user regexes withheld: not repeated here whole
    provenance = {key: value for key, value in trial.provenance.items() if key != "experiment"}
    return {"provenance": provenance, "engine": None if trial.engine is None else asdict(trial.engine)}


def _status(events: list[AdapterEvent]) -> dict:
    """The adapter's status in the registry when the pack was written, and the event that set it (a re-check sets
    none): a pack is a snapshot, so a reader learns from it what held then, and from `harness registry` what holds
    now."""
    moves = [e for e in events if e.action != "recheck"]
    if not moves:
        return {"status": "candidate", "since": None, "action": None, "by": None}
    last = moves[-1]
    return {"status": last.status, "since": last.at, "action": last.action, "by": last.actor}


def _redaction(config: RedactionConfig) -> dict:
    """Whether the examples in the results database were redacted before they were stored, and how."""
    if not config.enabled:
        return {"enabled": False, "note": "stored examples are kept as generated; no redaction was applied"}
    return {"enabled": True, "patterns": list(config.patterns), "user_regexes": len(config.regexes),
            "replacement": config.replacement,
            "note": "input, target, output and error of every stored example were redacted before they were stored; "
                    "the metrics were computed before, on the text as generated"}


def _shareable(experiment: dict) -> dict:
    """The study's config as stored, with the user's redaction regexes withheld (see WITHHELD)."""
    config = dict(experiment)
    redaction = config.get("redaction")
    if isinstance(redaction, dict) and redaction.get("regexes"):
        config["redaction"] = {**redaction, "regexes": [WITHHELD] * len(redaction["regexes"])}
    return config


def _provenance(suite: Suite, examples) -> list[dict]:
    """id, sha256 of the example's line as it stands in its file, and the file and line: one per training example."""
    lines = (suite.path / "train.jsonl").read_bytes().split(b"\n")
    out = []
    for ex in examples:
        split, _, number = ex.id.partition(":")
        line = lines[int(number) - 1]
        out.append({"id": ex.id, "sha256": hashlib.sha256(line).hexdigest(), "file": f"{split}.jsonl",
                    "line": int(number)})
    return out


def _training(trial: TrialView) -> dict | None:
    """What ended training, and whether its time cap cut it short of its step budget: an under-trained adapter does
    not stand for its method, and the card says so as `trials`, `show` and the gate do."""
    if trial.training is None:
        return None
    return {**asdict(trial.training), "under_trained": trial.under_trained,
            "completed_share": trial.training.completed_share}


def _last_gate(looks: list[LookAtTest], trial_id: str) -> dict | None:
    """The last gate evaluation of this adapter, whatever came of it: a refused gate leaves no registry event, only
    this look, so the card would otherwise call a refused adapter ungated."""
    last = next((look for look in reversed(looks) if look.kind == "gate" and look.candidate == trial_id), None)
    if last is None:
        return None
    return {"outcome": last.outcome, "at": last.at, "by": last.actor, "target": last.target,
            "reference": last.reference,
            "failed_rules": [{"name": name, "detail": detail} for name, detail in last.failed_rules]}


def _looks(looks: list[LookAtTest], trial_id: str) -> dict:
    """Every recorded look at test of this adapter, and how many other candidates had been gated against the same
    reference on the same test subset before the gate that moved it last (more looks make a lucky pass likelier)."""
    gates = [look for look in looks if look.kind == "gate" and look.candidate == trial_id]
    last = next((g for g in reversed(gates) if g.outcome in ("passed", "overridden")), None)
    return {"looks": [asdict(look) for look in looks], "gate_evaluations": len(gates),
            "earlier_candidates_at_last_pass": None if last is None else last.earlier_candidates}


def _card(record: dict) -> str:
    trial, data, base = record["trial"], record["data"], record["base_model"]
    test = record["metrics"].get("test", {})
    rows = "\n".join(f"| {name} | {_metric_text(name, Metric.from_dict(m))} |" for name, m in sorted(test.items()))
    return f"""# Model card: {trial['id']}

- **Method:** {trial['method']} with {json.dumps({k: v for k, v in trial['params'].items() if k != 'method'})}
- **Base model:** {base['name']} (sha256 {base['sha256']}){'; ' + base['note'] if base['note'] else ''}
- **Data:** suite {data['suite']} {data['version']}; train {data['splits']['train']['rows']} rows (sha256
  {data['splits']['train']['sha256'][:16]}...); {len(record['training_examples'])} examples trained on, each listed with
  its sha256, file and line in `record.json`.
- **Training:** {_training_text(record['training'])}.
- **Status when this pack was written ({record['written_at'][:10]}):** {_status_text(record['status'])}; the registry
  has what holds now (`harness registry`).
- **Approved by:** {_approval_text(record)}.
- **Last gate evaluation:** {_last_gate_text(record['last_gate_evaluation'], record['gate_override'])}.
- **Looks at test:** {_looks_text(record['looks_at_test'])}.
- **Registry history:** {_chain_text(record['registry_chain'])}.
- **Cost of the sweep:** {record['cost'].get('sweep_usd_text', 'not priced')}.
- **Redaction of stored examples:** {_redaction_text(record['redaction'])}.

## Test metrics (95% interval, n)

| metric | value |
| --- | --- |
{rows}

Every file of this folder is listed with its sha256 in `{MANIFEST}`; `harness audit --verify DIR` checks them. The
sha256 of `{MANIFEST}` itself was printed when the pack was written and kept in the results database: `--verify DIR
--db RESULTS` (or `--manifest-sha256 HEX`) checks it too, so a pack edited together with its manifest is caught.
"""


def _chain(check: ChainCheck) -> dict:
    return {"events": check.events, "head_sha256": check.head, "intact": check.intact,
            "first_broken_event": check.broken_at, "events_without_hash": check.unlinked}


def _chain_text(chain: dict) -> str:
    if not chain["events"]:
        return "no registry event yet"
    if chain["intact"]:
        return (f"{chain['events']} events, hash chain intact, head {chain['head_sha256'][:HEAD_CHARS]}... "
                "(`harness registry --verify --head` checks the registry still holds it)")
    where = (f"event {chain['first_broken_event']} no longer matches its hash" if chain["first_broken_event"]
             is not None else f"{chain['events_without_hash']} events have no hash")
    return (f"**the hash chain was broken when this pack was written: {where}** (an event was changed or deleted "
            "after it was written; `harness registry --verify` names it)")


def registry_problem(folder: Path, store: Store) -> str | None:
    """Why the registry in `store` is not the one the pack at `folder` recorded (its chain is broken, or no longer
    holds the head the pack recorded), or None. A pack written before the chain recorded no head: nothing to
    check."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        chain = record.get("registry_chain") or {}
    except (OSError, ValueError, AttributeError):
        return None  # the manifest check names a missing or changed record
    if (problem := _evidence_since(record, store)) is not None:
        return problem
    check = store.registry_chain()
    if not check.intact:
        return f"{store.path}: {chain_problem(check)}"
    head = chain.get("head_sha256")
    if isinstance(head, str) and chain.get("events") and not check.holds(head):
        return (f"{store.path}: its registry no longer holds the head {head[:HEAD_CHARS]}... this pack recorded: "
                "the registry's history was rewritten after the pack was written")
    return None


def _evidence_since(record: dict, store: Store) -> str | None:
    """Why the audited trial's evidence in `store` is not what the pack recorded (`scores_sealed`), or None; a pack
    written before seals recorded none: nothing to check."""
    trial = record.get("trial") if isinstance(record.get("trial"), dict) else {}
    sealed = record.get("scores_sealed")
    checks = store.seals([trial["id"]]) if isinstance(trial.get("id"), str) and isinstance(sealed, str) else []
    if not checks or (checks[0].recorded == sealed and checks[0].intact):
        return None
    now = checks[0]
    return (f"{store.path}: trial {now.trial_id}'s evidence is not what this pack recorded (sealed {sealed[:12]} "
            f"then; {(now.recorded or 'no seal')[:12]} now, {'consistent' if now.intact else 'broken'}): it was "
            "edited after the pack was written")


def chain_problem(check: ChainCheck) -> str:
    """A broken chain in words (`check.intact` is False)."""
    if check.broken_at is not None:
        return (f"registry event {check.broken_at} does not match its hash: it was changed after it was written, or "
                "an event before it was changed or deleted")
    return f"{check.unlinked} registry events have no hash: written outside the harness"


def _metric_text(name: str, metric: Metric) -> str:
    """A rate as `62.0% [52.2, 70.9] n=100`; a difference (the forgetting check) in signed points, not as a rate."""
    if name.endswith("_delta") and metric.value is not None:
        return f"{points(metric)} n={metric.n}"
    return fmt_metric(metric)


def _gate_text(gate: dict | None, override: dict | None) -> str:
    """`passed`, `not run`, or `failed, overridden by ada: "pilot, n too small"`: an override names who and why."""
    if not gate:
        return "not run"
    if gate["passed"]:
        return "passed"
    if override is None:
        return "failed"
    return f"failed, overridden {_override_text(override)}"


def _override_text(override: dict) -> str:
    """`by ada: "pilot, n too small"`, the approver's words as written (the card is markdown: see
    `markdown_inert`)."""
    reason = markdown_inert(override["reason"] or "no reason recorded")
    return f"by {markdown_inert(override['by'])}: \"{reason}\""


def _status_text(status: dict) -> str:
    """`production (promoted by ada, 2026-12-06)`, `retired (taken out of service by ana, ...)`, or `candidate (never
    promoted)`: the registry's action in a reader's words."""
    if status["action"] is None:
        return f"{status['status']} (never promoted)"
    since = f", {str(status['since'])[:10]}" if status["since"] else ""
    return f"{status['status']} ({_change_text(status['action'], status['status'], status['by'])}{since})"


def _change_text(action: str, status: str, by: str) -> str:
    by = markdown_inert(by)
    words = {"promote": f"promoted by {by}", "retire": f"replaced in production by another adapter, approved by {by}",
             WITHDRAW: f"taken out of service by {by}",
             "rollback": f"restored by a rollback, by {by}" if status == "production" else f"rolled back by {by}"}
    return words.get(action, f"{action} by {by}")


def _training_text(training: dict | None) -> str:
    """`150 of 150 steps, stopped by max_steps`, or UNDER-TRAINED with the share of its step budget it completed."""
    if training is None:
        return "no training record"
    steps = f"{training['steps']} of {training['planned_steps']} steps" if training["planned_steps"] else (
        f"{training['steps']} steps")
    if not training.get("under_trained"):
        return f"{steps}, stopped by {training['stopped_by']}"
    share = training.get("completed_share")
    share = "" if share is None else f" ({'under 1%' if share < 0.01 else f'{share:.0%}'} of its step budget)"
    return (f"UNDER-TRAINED: {steps}{share}, stopped by {training['stopped_by']}: its time cap cut training short, "
            "so it does not stand for what the method can do")


def _approval_text(record: dict) -> str:
    """Who approved its last move, and how the gate of that move went; `not promoted` where none was approved."""
    if not record["approver"]:
        return "not promoted"
    return f"{markdown_inert(record['approver'])}; gate {_gate_text(record['gate'], record['gate_override'])}"


def _last_gate_text(last: dict | None, override: dict | None) -> str:
    """`refused on 2026-12-06 (ana, for staging, against lead/0); failing rule(s): trained in full (...)`."""
    if last is None:
        return "none (the gate was never run on this adapter)"
    overridden = last["outcome"] == "overridden"
    outcome = "failed" if overridden else last["outcome"]  # passed | refused
    when = f" on {str(last['at'])[:10]}" if last["at"] else ""
    by = markdown_inert(last["by"] or "unknown")
    text = f"{outcome}{when} ({by}, for {last['target'] or '?'}, against {last['reference']})"
    if overridden:
        text += "; overridden " + (_override_text(override) if override
                                   else "(the reason is in `harness registry --history`)")
    failed = "; ".join(f"{rule['name']} ({rule['detail']})" for rule in last["failed_rules"])
    return text + (f"; failing rule(s): {failed}" if failed else "")


def _looks_text(looks: dict) -> str:
    earlier = looks["earlier_candidates_at_last_pass"]
    text = f"{looks['gate_evaluations']} gate evaluation(s) of this adapter, {len(looks['looks'])} look(s) in all"
    if earlier is not None:
        # as that gate counted them: against any reference since 2026-12-07, against its own reference before
        text += f"; {earlier} other candidate(s) had been gated on the same test subset before its last pass"
    return text


def _redaction_text(redaction: dict) -> str:
    if not redaction["enabled"]:
        return "off"
    patterns = ", ".join(redaction["patterns"]) or "no built-in pattern"
    return f"on ({patterns}; {redaction['user_regexes']} user regex(es))"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
