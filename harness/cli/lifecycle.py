"""`harness registry`, `promote`, `rollback`, `export`, `audit`, `recheck` and `predict`: an adapter's life after the
sweep."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from rich.console import Console

from harness.analysis.decision_rule import DECISION_RULE
from harness.cli.console import print_flagged
from harness.cli.options import db_option, given_db_exists, open_store
from harness.cli.parsing import Help, examples_block, login_name, teach
from harness.core.errors import HarnessError


def add_commands(sub) -> None:
    registry = sub.add_parser("registry", help="adapters with their status (candidate, staging, production, "
                                               "retired), key metrics and history")
    registry.add_argument("--suite", help="only this suite's adapters")
    registry.add_argument("--history", action="store_true",
                          help="also every status change (who, when, why, the gate), every look at test (each "
                               "gate evaluation, passed or refused, each compare on test, each re-check) and every "
                               "audit pack written, with its manifest's sha256")
    registry.add_argument("--verify", action="store_true",
                          help="check the registry's hash chain: every event against its hash and the one before "
                               "it, so an event changed, deleted or reordered in the database shows (exit 1)")
    registry.add_argument("--format", choices=("table", "json"), default="table",
                          help="table (default) for a reader; json for a pipeline: every adapter with its status and "
                               "test metrics as {value, low, high, n}, and with --history every event, look at test "
                               "and audit pack")
    registry.add_argument("--head", metavar="HASH",
                          help="with --verify: a head hash kept outside the database (promote and rollback print "
                               "it, audit packs record it; 12 or more of its characters): the registry must still "
                               "hold it, so a "
                               "history rewritten with its hashes recomputed shows too")
    db_option(registry)
    registry.set_defaults(run=_registry)
    teach(registry, ("harness registry", "every adapter, by suite and status"),
          ("harness registry --suite ticket-triage --history", "one suite, with every change and look at test"),
          ("harness registry --format json | jq '.adapters[] | select(.status == \"production\")'", ""),
          ("harness registry --verify --head 3f2a9c01b7d4e8a6", "the history is the one written, up to that head"),
          description="Adapters (complete fine-tuned trials that kept their weights) with their status: candidate, "
                      "staging, production or retired, and their test metrics with 95% intervals. A suite has at "
                      "most one production adapter. Prompting trials have no weights, so they are not listed.")

    promote = sub.add_parser(
        "promote", help="move an adapter to staging or production, through the gate",
        description="Run the gate first: the candidate against the suite's production adapter (or, with none, the "
                    "best prompting arm of its study), on the same test examples. The objective metric must be "
                    "better (or not worse beyond gate.margin); the adapter must be trained in full (not cut short by "
                    "its time cap) and feasible under the sweep's constraints; format compliance and hallucination "
                    "within their thresholds; forgetting's point estimate within its limit. A failing gate refuses "
                    "and lists every failing rule with its numbers; --force --reason overrides it, on the record. "
                    "Every evaluation, passed or refused, is recorded (registry --history). Promoting to production "
                    "retires the adapter it replaces; --to retired takes an adapter out of service by hand (no gate; "
                    "the approver and --note are recorded, and rollback never restores it). " + DECISION_RULE)
    promote.add_argument("trial", help="the adapter, STUDY/NUMBER")
    promote.add_argument("--to", required=True, choices=("staging", "production", "retired"),
                         help="the new status; production retires the suite's current production adapter; retired "
                              "takes this adapter out of service (no gate; needs --note)")
    promote.add_argument("--approver", required=True, help="who approves it (recorded)")
    promote.add_argument("--note", help="why (recorded)")
    promote.add_argument("--force", action="store_true", help="override a failing gate (needs --reason)")
    promote.add_argument("--reason", help="why the gate is overridden (recorded; only with --force)")
    promote.add_argument("--format", choices=("text", "json"), default="text",
                         help="text (default) for a reader; json for a pipeline: whether anything changed, the move, "
                              "and the gate with every rule, its numbers and whether it passed (on standard output; "
                              "the exit status is the same: 1 when the gate refuses)")
    db_option(promote)
    promote.set_defaults(run=_promote)
    promote.epilog = examples_block(
        ("harness promote demo/1 --to staging --approver ada", "the gate runs first; exit 1 if it refuses"),
        ("harness promote demo/1 --to production --approver ada --note \"beats prompting\"", ""),
        ("harness promote demo/1 --to staging --approver ada --force --reason \"pilot, n too small\"", ""),
        ("harness promote demo/1 --to retired --approver ada --note \"misroutes refunds\"", "out of service, no gate"),
        ("harness promote demo/1 --to staging --approver ci --format json | jq '.gate.rules[] | select(.passed | not)'",
         "the rules a refused gate failed, for a pipeline"))
    promote.formatter_class = Help

    rollback = sub.add_parser("rollback", help="restore the suite's previous production adapter (recorded)")
    rollback.add_argument("suite", help="the suite's name")
    rollback.add_argument("--approver", required=True, help="who rolls back (recorded)")
    rollback.add_argument("--note", help="why (recorded)")
    db_option(rollback)
    rollback.set_defaults(run=_rollback)
    teach(rollback, ("harness rollback ticket-triage --approver ada --note \"drift on new tickets\"", ""),
          description="Put the suite's previous production adapter back in production and retire the current one. "
                      "Both changes are recorded with the approver and the note (`harness registry --history`).")

    export = sub.add_parser("export", help="write an adapter (or model) as serving stacks load it: PEFT safetensors, "
                                           "with the vLLM and PEFT commands; or a prompting trial's prompt")
    export.add_argument("trial", help="the adapter, or the prompting trial, STUDY/NUMBER")
    export.add_argument("--out", required=True, type=Path, help="a new folder")
    export.add_argument("--merged", action="store_true", help="also the base model with the adapter merged in")
    export.add_argument("--replace", action="store_true",
                        help="--out may hold an earlier export, replaced once the new one is written whole (a folder "
                             "that is no export, or holds files the export did not write, is never touched)")
    export.add_argument("--rescore", action="store_true",
                        help="re-score the adapter through vLLM, the engine it will be served on, on its test "
                             "examples: how many served answers equal the stored ones, and the paired difference "
                             "of the objective (written to rescore.json in the export)")
    export.add_argument("--vllm-python", help="for --rescore: the python of vLLM's own environment (default: the "
                                              "study's serving.vllm_python; the harness's harness/serving/vllm_env.sh "
                                              "builds one, `bash scripts/vllm_env.sh` in a clone)")
    export.add_argument("--vllm-url", help="for --rescore: a running vLLM server serving the base model as `base`")
    db_option(export)
    export.set_defaults(run=_export)
    teach(export, ("harness export demo/1 --out serve/", "adapter_config.json, adapter_model.safetensors, README.md"),
          ("harness export demo/1 --out serve/ --merged", "also merged/: the base model with the adapter in it"),
          ("harness export demo/1 --out serve/ --rescore --vllm-python $VLLM_PY", "and re-score it through vLLM"),
          ("harness export demo/0 --out prompt/", "a prompting trial: its prompt, shots and decoding"),
          description="Write a trial's adapter (or fully fine-tuned model) into a new folder as serving stacks load "
                      "it: PEFT safetensors, base_model.json (the base model's identity and sha256), serving.json "
                      "(the system prompt, answer cap and decoding, constrained or not, it was scored with, and the "
                      "vLLM request fields that decode the same way) and a README with the vLLM and PEFT commands. "
                      "Where prompting won, a prompting trial's export is its prompt: serving.json holds the system "
                      "prompt, the shots (or, for shots chosen per input, shots_pool.jsonl and how they are chosen), "
                      "the answer cap and decoding, with the whole conversation where it is the same for every "
                      "input; a hosted trial's names its endpoint and request (never the key). "
                      "Nothing is overwritten (--replace replaces an earlier export, once the new one is whole); "
                      "with --rescore, rescore.json is written before the folder appears.")

    audit = sub.add_parser("audit", help="write a self-contained audit pack (or --verify one)",
                           description="Write the export, a model card and a JSON record: base model, data splits and "
                                       "a provenance line per training example, config and space, seeds, versions, "
                                       "commit and device, training curve, metrics with intervals, the last gate "
                                       "evaluation and the approver, cost, redaction. MANIFEST.json holds the sha256 "
                                       "of every file; the sha256 of MANIFEST.json itself is printed and recorded in "
                                       "the results database. --verify DIR recomputes every file's sha256 and names "
                                       "each that no longer matches, then checks the manifest's sha256 against the "
                                       "one recorded when the pack was written (in --db) or the one given with "
                                       "--manifest-sha256. Without either, a pack edited together with its manifest "
                                       "passes, and the output says it is consistent with itself only.")
    audit.add_argument("trial", nargs="?", help="the adapter, STUDY/NUMBER")
    audit.add_argument("--out", type=Path, help="a new folder for the pack")
    audit.add_argument("--verify", type=Path, metavar="DIR", help="check an existing pack instead")
    audit.add_argument("--manifest-sha256", metavar="HEX",
                       help="with --verify: the sha256 of MANIFEST.json printed when the pack was written and kept "
                            "elsewhere (a ticket, a signed note); checked instead of the results database's record")
    audit.add_argument("--actor", default=login_name(), help="who writes the pack, recorded with its manifest's sha256 "
                                                         "(default: your login name)")
    db_option(audit)
    audit.set_defaults(run=_audit)
    audit.epilog = examples_block(
        ("harness audit demo/1 --out audit-demo-1/", "write a pack; prints its manifest's sha256"),
        ("harness audit --verify audit-demo-1/ --db results/",
         "exit 1 and name each file that changed, or a manifest not the one recorded"),
        ("harness audit --verify audit-demo-1/ --manifest-sha256 HEX",
         "check against a hash kept elsewhere"))
    audit.formatter_class = Help

    recheck = sub.add_parser("recheck", help="has production drifted? re-score the production adapter on the "
                                             "suite's test data or a new labelled file, against its recorded scores")
    recheck.add_argument("suite", help="the suite's name")
    recheck.add_argument("--data", type=Path, help="a labelled file: .jsonl in the suite's format (one {\"input\": "
                                                   "..., \"output\": ...} object per line, as in its test.jsonl), or "
                                                   "a .csv, .tsv, .parquet or .jsonl table read as `suite init` reads "
                                                   "one, from the fields the suite was built from (default: the "
                                                   "suite's current test data)")
    recheck.add_argument("--input-field", metavar="NAME", help="--data's input column (default: the one the suite was "
                                                              "built from, else a common name such as `text`)")
    answer = recheck.add_mutually_exclusive_group()
    answer.add_argument("--label-field", metavar="NAME", help="--data's label column (default: the suite's)")
    answer.add_argument("--output-field", metavar="NAME", help="--data's answer column on a JSON or text suite "
                                                               "(default: the suite's)")
    recheck.add_argument(
        "--actor", default=login_name(), help="who runs it, recorded in the registry's history (default: "
                                          "your login name; a scheduler may name itself)")
    recheck.add_argument("--format", choices=("text", "table", "json"), default="text",
                         help="text (default; `table`, as trials and compare name it, is the same): the change and its "
                              "reading in words; json: every figure behind it, as the adapter's history records it")
    db_option(recheck)
    recheck.set_defaults(run=_recheck)
    teach(recheck, ("harness recheck ticket-triage", "on the suite's current test subset"),
          ("harness recheck ticket-triage --data fresh.jsonl", "on new labelled examples"),
          ("harness recheck my-suite --data march.csv", "a new export, read from the suite's own columns"),
          ("harness recheck ticket-triage --format json || alert", "in a scheduler: exit status 1 on a drop"),
          description="Re-score the suite's production adapter and compare with its recorded scores: paired on the "
                      "examples it was scored on, unpaired (Newcombe's interval) on new ones (a recorded input with "
                      "another answer counts as new, and is named as relabelled), with the interval of the change. "
                      "A file that mixes the two is read in both parts, at Holm-adjusted p-values, and a drop in "
                      "either is a drop. It also says what changed since (library versions, commit, device, "
                      "threads), so a drop an upgrade explains is not read as drift. Recorded in the adapter's "
                      "history. Exit status: 0 when nothing dropped beyond noise, 1 on a drop beyond noise, 2 when "
                      "the re-check could not run.")

    predict = sub.add_parser("predict", help="answer new inputs with a finished trial")
    predict.add_argument("trial", help="trial id STUDY/NUMBER")
    given = predict.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", help="one text to answer as it is, never read as a file name (for text that looks "
                                      "like one: \"see example.com/terms.txt\")")
    given.add_argument("--input",
                       help="the text to answer, or a file of inputs. A table, read as `suite init --from` reads it, "
                            "gives one input per row: .jsonl (one object per line), .csv or .tsv (a header row; the "
                            "delimiter is found), .parquet. A .txt file (or one with no suffix) gives one input per "
                            "line; any other file is refused with the conversion to make. A name that looks like a "
                            "file (.jsonl, .json, .csv, .tsv, .parquet, .txt, or a path) and is not there is refused, "
                            "not answered (--text answers it as text)")
    predict.add_argument("--input-field", metavar="NAME",
                         help="the field or column of a table --input that holds the inputs (a dotted path such as "
                              "doc.body reaches into JSONL objects). Default: the input field the trial's suite was "
                              "built from (suite.yaml `source.fields.input`, written by suite init), else `input`, "
                              "else the first of text, sentence, utterance, question, query, prompt, body, message or "
                              "content, else "
                              "the only one")
    predict.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                         help="where the model answers (default auto: a GPU when torch sees one, else the CPU)")
    db_option(predict)
    predict.set_defaults(run=_predict)
    teach(predict, ("harness predict demo/1 --input \"I lost my card\"", "one answer"),
          ("harness predict demo/1 --text \"see example.com/terms.txt\"", "text that looks like a file name"),
          ("harness predict demo/1 --input tickets.csv > answers.jsonl", "a file of inputs"),
          ("harness predict demo/1 --input new.tsv --input-field utterance_text", "the inputs of a named column"),
          ("harness predict demo/1 --input inputs.txt", "one input per line"),
          description="Answer new inputs with a finished trial: a prompting trial with its prompt and shots, a "
                      "trained one with its saved adapter (while retention keeps it). Prints one JSON line per "
                      "input: at (the file and line it came from, to put the answer back in its row), input, output, "
                      "parsed, format_compliant, error, and hallucinated (a label outside the set, a key outside the "
                      "contract's fields, or a grounded value not in the input; null for free text or an answer that "
                      "did not parse). Blank lines and empty rows are skipped; a row whose text cell is empty gets a "
                      "line with that error, and the rest are answered.")


def _registry(args, console: Console) -> int:
    from harness.analysis import report
    from harness.lifecycle.promote import check_suite

    store = open_store(args.db)
    given_db_exists(args.db, store)
    if args.head and not args.verify:
        raise HarnessError("--head HASH is checked with --verify: `harness registry --verify --head HASH`.")
    if args.verify and (args.suite or args.history):  # one chain holds every suite's events: none is verified alone
        raise HarnessError("--verify checks the whole database: one hash chain holds every suite's history, and every "
                           "trial's seal. Drop --suite and --history (`harness registry --history --suite NAME` "
                           "lists one suite's events).")
    if args.verify and not store.path.exists():
        raise HarnessError(f"no results database at {store.path}: nothing to verify. Point --db at the harness.duckdb "
                           "of a results folder.")
    if args.verify and args.format == "json":
        raise HarnessError("--verify prints its findings and sets the exit status (1 on a changed history); drop "
                           "--format json.")
    if args.verify:
        return _registry_verify(store, args.head, console)
    if args.format == "json":  # an empty list, not a sentence, where there is nothing yet: a pipeline reads it
        if not store.path.exists():
            raise HarnessError(f"no results database at {store.path}: run this in the folder that holds results/, "
                               "or give --db the harness.duckdb a sweep wrote (or the results folder that holds it).")
        if args.suite:
            check_suite(store, args.suite)
        sys.stdout.write(report.registry_json(store, args.suite, args.history) + "\n")
        return 0
    if not store.path.exists():  # empty tables with no word read as a broken command
        console.print(f"no adapters: there is no results database at {store.path} yet. Run a sweep (`harness sweep "
                      "EXPERIMENT`) in this folder, or point --db at the harness.duckdb of a results folder.",
                      highlight=False)
        return 0
    if args.suite:
        check_suite(store, args.suite)
    if report.adapters(store, args.suite):
        console.print(report.registry_table(store, args.suite))
    else:
        console.print(f"no adapters in {store.path}{f' for suite {args.suite}' if args.suite else ''}: an adapter is "
                      "a complete fine-tuned trial that kept its weights; prompting trials have none.", highlight=False)
    if args.history:
        events, looks = store.adapter_events(suite=args.suite), store.looks(suite=args.suite)
        if events:
            console.print(report.history_table(events))
        else:  # an empty table reads as a broken command
            console.print("no changes yet: no adapter has been promoted, retired, rolled back or re-checked "
                          "(`harness promote TRIAL --to staging --approver NAME`).", highlight=False)
        if looks:
            console.print(report.looks_table(looks))
        if packs := [p for p in store.audit_packs() if args.suite in (None, p.suite)]:
            console.print(report.audit_packs_table(packs))
    return 0


def _registry_verify(store, head: str | None, console: Console) -> int:
    """The registry's hash chain, and a head kept elsewhere, checked: exit 1 on a changed history."""
    from harness.lifecycle.audit import chain_problem
    from harness.lifecycle.integrity import evidence
    from harness.store.chain import HEAD_CHARS

    if head is not None and not re.fullmatch(r"[0-9a-fA-F]{12,64}", head.strip()):
        raise HarnessError(f"--head {head!r}: give the hexadecimal head that promote or rollback printed, or an audit "
                           "pack recorded (12 to 64 characters of it).")
    check = store.registry_chain()
    if not check.intact:
        print_flagged(console, "mismatch",
                      f"{store.path}: {chain_problem(check)}. `harness registry --history` lists the "
                      "events by id; restore the database from a backup to recover the history.")
        return 1
    read = evidence(store)
    if problems := read.problems:
        for problem in problems[:-1]:
            print_flagged(console, "mismatch", f"{store.path}: {problem}.")
        print_flagged(console, "mismatch",
                      f"{store.path}: {problems[-1]}. The gate, re-checks and audit packs refuse such a "
                      "trial; restore the database from a backup to recover its evidence, or run its "
                      "configuration again in a new study.")
        return 1
    if head is not None and not check.holds(head):
        print_flagged(console, "mismatch",
                      f"{store.path}: its registry does not hold the head {head.strip()}: its history "
                      "was rewritten after that head was printed (or the head is from another database).")
        return 1
    held = f"; it holds the head {head.strip()} given" if head is not None else ""
    upgraded = read.sealed_on_upgrade
    sealed = ("every trial's evidence as sealed when it was scored" if not upgraded else
              f"every trial's evidence as sealed, {upgraded} of them by the upgrade that added seals, as they stood "
              "then (an edit made before it cannot be told)")
    console.print(f"{store.path}: {check.events} registry events, hash chain intact, head "
                  f"{check.head[:HEAD_CHARS]}{held}; {sealed}.", highlight=False)
    return 0


def _registry_head(store, console: Console) -> None:
    """The registry's head after a change, to keep outside the database (`registry --verify --head`)."""
    from harness.store.chain import HEAD_CHARS

    console.print(f"registry head {store.registry_chain().head[:HEAD_CHARS]} (keep it outside the database: "
                  "`harness registry --verify --head` shows a history rewritten before it)", highlight=False)


def _promote(args, console: Console) -> int:
    from harness.lifecycle.promote import AlreadyThere, GateRefused, promote

    asked = {"trial": args.trial, "to": args.to}
    try:
        done = promote(store := open_store(args.db), args.trial, args.to, args.approver, args.note, args.force,
                       args.reason)
    except GateRefused as refused:
        print_flagged(console, "refused", str(refused))
        if args.format == "json":
            _write_json({**asked, "changed": False, "passed": False, "gate": refused.gate.to_dict()})
        return 1
    except AlreadyThere as there:
        print_flagged(console, "note", str(there))
        if args.format == "json":
            _write_json({**asked, "changed": False, "status": args.to, "gate": None})
        return 0
    if args.format == "json":
        from harness.store.chain import HEAD_CHARS

        _write_json({**asked, "trial": done.trial, "changed": True, "suite": done.suite, "previous": done.previous,
                     "status": done.status, "forced": done.forced, "retired": done.retired,
                     "passed": None if done.gate is None else done.gate.passed,
                     "gate": None if done.gate is None else done.gate.to_dict(),
                     "registry_head": store.registry_chain().head[:HEAD_CHARS]})
        return 0
    if done.gate is not None:  # a retirement runs no gate
        console.print(done.gate.text(), highlight=False)
    retired = f"; {done.retired} is retired" if done.retired else ""
    forced = " (gate overridden, reason recorded)" if done.forced else ""
    if done.forced and done.gate.unpaired:  # said again here: the override let through a comparison never made
        forced = " (gate overridden, reason recorded; the objective was not compared: different test subsets)"
    console.print(f"{done.trial}: {done.previous} -> {done.status} for suite {done.suite}{forced}{retired}.",
                  highlight=False)
    _registry_head(store, console)
    return 0


def _write_json(document: dict) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def _rollback(args, console: Console) -> int:
    from harness.analysis.report import ungated_warning
    from harness.lifecycle.promote import rollback

    restored, retired = rollback(store := open_store(args.db), args.suite, args.approver, args.note)
    console.print(f"suite {args.suite}: {restored} is in production again; {retired} is retired.", highlight=False)
    if (ungated := ungated_warning(store, args.suite, restored)) is not None:  # not only in --history
        print_flagged(console, "warning", ungated)
    _registry_head(store, console)
    return 0


def _export(args, console: Console) -> int:
    from harness.lifecycle.export import check_flags, export

    given = " and ".join(flag for flag, value in (("--vllm-python", args.vllm_python), ("--vllm-url", args.vllm_url))
                         if value)
    if given and not args.rescore:
        raise HarnessError(f"{given} is for --rescore; add --rescore to re-score the export through vLLM, or leave "
                           f"{given} out.")
    store = open_store(args.db)
    if args.rescore or args.merged:  # for a prompting trial, refused before vLLM's settings are asked for
        check_flags(store.require_trial(args.trial, complete=True), args.merged, args.rescore)
    settings = None
    if args.rescore:  # vLLM's settings are checked before the export is written, not after it
        from harness.lifecycle.served import served_settings

        settings = served_settings(store, args.trial, args.vllm_python, args.vllm_url)
    done = export(store, args.trial, args.out, merged=args.merged, rescore=settings,  # all of it, or nothing
                  replace=args.replace)
    what = "answered by" if done.kind == "prompt" else "base"
    console.print(f"wrote {done.kind} {args.trial} to {done.folder} ({what}: {done.base}); see "
                  f"{done.folder}/README.md", highlight=False)
    if done.rescore is not None:
        console.print(done.rescore.text(), highlight=False)
    if done.caution is not None:
        print_flagged(console, "warning", done.caution)
    return 0


def _audit(args, console: Console) -> int:
    from harness.lifecycle.audit import audit, chain_problem, manifest_sha256

    if args.verify:
        return _audit_verify(args, console)
    if args.manifest_sha256:
        raise HarnessError("--manifest-sha256 checks a pack, with --verify DIR; writing a pack prints its hash.")
    if not args.trial or not args.out:
        raise HarnessError("give TRIAL and --out DIR to write a pack, or --verify DIR to check one.")
    store = open_store(args.db)
    folder = audit(store, args.trial, args.out, args.actor)
    digest = manifest_sha256(folder)
    if not (chain := store.registry_chain()).intact:  # the pack says so too, in its card and record
        print_flagged(console, "warning", f"{store.path}: {chain_problem(chain)}; the pack records the history as it "
                                          "stands, with the broken chain.")
    console.print(f"wrote the audit pack of {args.trial} to {folder}.\nsha256 of {folder / 'MANIFEST.json'}: "
                  f"{digest}\n(recorded in {store.path}; keep it elsewhere too). Check the pack later with "
                  f"`harness audit --verify {folder} --db {store.path}`, or with --manifest-sha256 {digest}.",
                  highlight=False)
    return 0


def _audit_verify(args, console: Console) -> int:
    """Every file against the manifest, and the manifest against the hash recorded in the results database (--db,
    else results/harness.duckdb here when there is one) or given with --manifest-sha256."""
    from harness.lifecycle.audit import check_pack

    if args.trial or args.out:
        raise HarnessError("--verify DIR checks a pack; it writes none. Give TRIAL --out DIR to write one, or "
                           "--verify DIR alone to check one, in two commands.")
    default = Path("results") / "harness.duckdb"
    store = open_store(args.db) if args.db is not None or default.is_file() else None
    checked = check_pack(args.verify, None if args.manifest_sha256 else store, args.manifest_sha256)
    for problem in checked.problems:
        print_flagged(console, "mismatch", problem)
    console.print(checked.summary(), highlight=False)
    return 1 if checked.problems else 0


def _recheck(args, console: Console) -> int:
    from harness.analysis.decision import Outcome
    from harness.data.labelled import FieldNames
    from harness.lifecycle.recheck import recheck

    columns = FieldNames(args.input_field, args.label_field, args.output_field)
    if args.data is None and any((columns.input, columns.label, columns.output)):
        raise HarnessError("--input-field, --label-field and --output-field name the columns of --data; pass the file "
                           "with --data, or drop them to re-check on the suite's test data.")
    result = recheck(open_store(args.db), args.suite, args.actor, args.data, fields=columns)
    if args.format == "json":
        sys.stdout.write(json.dumps(result.detail(), default=str, indent=2) + "\n")
    else:
        console.print(result.text(), highlight=False)
    return 1 if result.outcome is Outcome.WORSE else 0  # a scheduler reads the drop without parsing words


def _predict(args, console: Console) -> int:
    import dataclasses

    from harness.sweep.predict import Given, predict, read_input_rows, suite_input_field

    if args.text is not None and not args.text.strip():
        raise HarnessError("--text is empty: give the text to answer.")
    if args.text is not None and args.input_field:
        raise HarnessError("--input-field names the column of an --input file; --text is answered as it is.")
    store = open_store(args.db)
    # a missing or unreadable file is refused before any model loads; the suite is looked up only for a table
    inputs = [Given(args.text)] if args.text is not None else read_input_rows(
        args.input, args.input_field, lambda: suite_input_field(store, args.trial))
    for row in predict(store, args.trial, inputs, device=args.device):
        fields = dataclasses.asdict(row)
        at = {"at": at} if (at := fields.pop("at")) is not None else {}  # a file's row and line, first; text has none
        sys.stdout.write(json.dumps({**at, **fields}, ensure_ascii=False) + "\n")
    if skipped := [g for g in inputs if g.problem]:
        print_flagged(console, "warning",
                      f"{len(skipped)} row(s) had nothing to answer ({skipped[0].at}: {skipped[0].problem}"
                      f"{'; ...' if len(skipped) > 1 else ''}); their lines carry that error.")
    return 0
